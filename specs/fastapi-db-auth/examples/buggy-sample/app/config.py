"""Settings read from the environment (and from a `.env` file when one exists)."""

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url


class DatabaseSettings(BaseSettings):
    """What Alembic needs: migrations run without the app's secrets."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # postgresql://USER:PASSWORD@HOST:PORT/DB — the plain scheme; we pick the driver (asyncpg).
    DATABASE_URL: str


class Settings(DatabaseSettings):
    SECRET_KEY: str = Field(min_length=1)
    ACCESS_TOKEN_EXPIRE_MINUTES: int = Field(default=30, gt=0)


@lru_cache
def get_settings() -> Settings:
    return Settings()  # type: ignore[call-arg]  # the required fields come from the environment


def async_url(url: str) -> URL:
    """`postgresql://…` (or `postgres://…`, or another driver) -> `postgresql+asyncpg://…`."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"DATABASE_URL must be a PostgreSQL URL, got {parsed.drivername!r}")
    return parsed.set(drivername="postgresql+asyncpg")
