"""Alembic environment (sync, psycopg 3); the URL comes from DATABASE_URL."""

from logging.config import fileConfig

from alembic import context
from app.config import DatabaseSettings, psycopg_url
from app.models import Base
from sqlalchemy import create_engine, pool

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name)

target_metadata = Base.metadata


def database_url() -> str:
    return context.get_x_argument(as_dictionary=True).get("url") or DatabaseSettings().DATABASE_URL  # type: ignore[call-arg]


def run_migrations_offline() -> None:
    context.configure(
        url=psycopg_url(database_url()).render_as_string(hide_password=False),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(psycopg_url(database_url()), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
