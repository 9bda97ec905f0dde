"""Dependencies: shared query parameters, a nested query-or-cookie extractor, header checks and
HTTP Basic credentials compared in constant time."""

import secrets
from typing import Annotated, Any

from fastapi import Cookie, Depends, Header, HTTPException, status
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from app.config import Settings, get_settings

SettingsDep = Annotated[Settings, Depends(get_settings)]
security = HTTPBasic()


async def common_parameters(q: str | None = None, skip: int = 0, limit: int = 100) -> dict[str, Any]:
    return {"q": q, "skip": skip, "limit": limit}


def query_extractor(q: str | None = None) -> str | None:
    return q


def query_or_cookie_extractor(
    q: Annotated[str | None, Depends(query_extractor)],
    last_query: Annotated[str | None, Cookie()] = None,
) -> str | None:
    if not q:  # an empty q counts as absent (FastAPI's documented example)
        return last_query
    return q


def _same(given: str, expected: str) -> bool:
    return secrets.compare_digest(given.encode("utf8"), expected.encode("utf8"))


async def verify_token(x_token: Annotated[str, Header()], settings: SettingsDep) -> None:
    if not _same(x_token, settings.x_token):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "X-Token header invalid")


async def verify_key(x_key: Annotated[str, Header()], settings: SettingsDep) -> str:
    if not _same(x_key, settings.x_key):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "X-Key header invalid")
    return x_key


def current_username(
    credentials: Annotated[HTTPBasicCredentials, Depends(security)], settings: SettingsDep
) -> str:
    # both comparisons always run: the time taken does not tell which part was wrong
    right_user = _same(credentials.username, settings.basic_username)
    right_password = _same(credentials.password, settings.basic_password)
    if not (right_user and right_password):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "Incorrect username or password",
            headers={"WWW-Authenticate": "Basic"},
        )
    return credentials.username
