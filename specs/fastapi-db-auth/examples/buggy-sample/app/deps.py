"""FastAPI dependencies: the database session and the authenticated user (Bearer or Basic)."""

import binascii
from base64 import b64decode
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPBasic, HTTPBasicCredentials, OAuth2PasswordBearer
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import EmailStr, TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.concurrency import run_in_threadpool

from app import crud
from app.config import Settings, get_settings
from app.db import get_session
from app.models import User
from app.security import DUMMY_HASH, decode_access_token, verify_password

SessionDep = Annotated[AsyncSession, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="token")

_email = TypeAdapter(EmailStr)


async def authenticate(session: AsyncSession, username: str, password: str) -> User | None:
    """The active user with this e-mail and password, or None. Takes as long either way."""
    try:
        # Registration stored the normalized address (e.g. the domain lower-cased): look that up.
        # A NUL character (which PostgreSQL cannot store) fails validation too: just wrong credentials.
        email = _email.validate_python(username)
    except ValidationError:
        email = None
    user = await crud.get_user_by_email(session, email) if email and "\x00" not in email else None
    hashed = user.hashed_password if user else DUMMY_HASH
    password_ok = await run_in_threadpool(verify_password, password, hashed)
    if user is None or not password_ok or not user.is_active:
        return None
    return user


async def get_current_user(
    token: Annotated[str, Depends(oauth2_scheme)], session: SessionDep, settings: SettingsDep
) -> User:
    unauthorized = HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail="Could not validate credentials",
        headers={"WWW-Authenticate": "Bearer"},
    )
    email = decode_access_token(token, settings.SECRET_KEY)
    if email is None:
        raise unauthorized
    user = await crud.get_user_by_email(session, email)
    if user is None or not user.is_active:
        raise unauthorized
    return user


class HTTPBasicUTF8(HTTPBasic):
    """FastAPI's HTTPBasic decodes credentials as ASCII; e-mails may be internationalized (UTF-8)."""

    async def __call__(self, request: Request) -> HTTPBasicCredentials:  # type: ignore[override]
        scheme, param = get_authorization_scheme_param(request.headers.get("Authorization"))
        if scheme.lower() != "basic":
            raise basic_unauthorized("Not authenticated")
        try:
            data = b64decode(param, validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError, binascii.Error):
            raise basic_unauthorized("Invalid authentication credentials") from None
        username, separator, password = data.partition(":")
        if not separator:
            raise basic_unauthorized("Invalid authentication credentials")
        return HTTPBasicCredentials(username=username, password=password)


def basic_unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": "Basic"},
    )


basic_scheme = HTTPBasicUTF8(scheme_name="HTTPBasic")


async def get_current_user_basic(
    credentials: Annotated[HTTPBasicCredentials, Depends(basic_scheme)], session: SessionDep
) -> User:
    user = await authenticate(session, credentials.username, credentials.password)
    if user is None:
        raise basic_unauthorized("Incorrect email or password")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]
BasicUser = Annotated[User, Depends(get_current_user_basic)]
