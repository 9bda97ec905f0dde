"""The async engine and session factory (SQLAlchemy 2.0 + asyncpg)."""

from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.config import async_url, get_settings

CONNECT_TIMEOUT = 3.0  # seconds; /health must answer fast when the database is unreachable


def make_engine(url: str) -> AsyncEngine:
    return create_async_engine(
        async_url(url),
        pool_pre_ping=True,  # survive a database restart
        connect_args={"timeout": CONNECT_TIMEOUT},
    )


engine = make_engine(get_settings().DATABASE_URL)
SessionLocal = async_sessionmaker(engine, expire_on_commit=False)


async def get_session() -> AsyncIterator[AsyncSession]:
    async with SessionLocal() as session:
        yield session
