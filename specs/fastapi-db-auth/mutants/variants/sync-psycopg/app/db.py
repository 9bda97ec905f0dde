"""A plain (sync) SQLAlchemy engine on psycopg 3, and a session per request."""

from collections.abc import Iterator

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from app.config import get_settings, psycopg_url


def make_engine(url: str) -> Engine:
    return create_engine(psycopg_url(url), pool_pre_ping=True, connect_args={"connect_timeout": 3})


engine = make_engine(get_settings().DATABASE_URL)
SessionLocal = sessionmaker(bind=engine, expire_on_commit=False)


def get_session() -> Iterator[Session]:
    with SessionLocal() as session:
        yield session
