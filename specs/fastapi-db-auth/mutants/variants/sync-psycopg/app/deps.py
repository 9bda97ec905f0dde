"""Dependencies (sync): the session, the Bearer user and the Basic user."""

import binascii
from base64 import b64decode
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPBasic, HTTPBasicCredentials, OAuth2PasswordBearer
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import EmailStr, TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from app import crud
from app.config import Settings, get_settings
from app.db import get_session
from app.models import User
from app.security import DUMMY_HASH, decode_access_token, verify_password

DB = Annotated[Session, Depends(get_session)]
Config = Annotated[Settings, Depends(get_settings)]

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="token")
_email_adapter = TypeAdapter(EmailStr)


def authenticate(db: Session, username: str, password: str) -> User | None:
    try:
        email = _email_adapter.validate_python(username)
    except ValidationError:
        email = ""
    user = crud.user_by_email(db, email) if email and "\x00" not in email else None
    ok = verify_password(password, user.hashed_password if user else DUMMY_HASH)
    return user if user is not None and ok and user.is_active else None


def get_current_user(token: Annotated[str, Depends(oauth2_scheme)], db: DB, settings: Config) -> User:
    subject = decode_access_token(token, settings.SECRET_KEY)
    user = crud.user_by_email(db, subject) if subject else None
    if user is None or not user.is_active:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="Could not validate credentials",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user


def _basic_401(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Basic"})


class Utf8Basic(HTTPBasic):
    async def __call__(self, request: Request) -> HTTPBasicCredentials:  # type: ignore[override]
        scheme, param = get_authorization_scheme_param(request.headers.get("Authorization"))
        if scheme.lower() != "basic":
            raise _basic_401("Not authenticated")
        try:
            username, sep, password = b64decode(param, validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError, binascii.Error):
            raise _basic_401("Invalid authentication credentials") from None
        if not sep:
            raise _basic_401("Invalid authentication credentials")
        return HTTPBasicCredentials(username=username, password=password)


basic_scheme = Utf8Basic(scheme_name="HTTPBasic")


def get_current_user_basic(credentials: Annotated[HTTPBasicCredentials, Depends(basic_scheme)], db: DB) -> User:
    user = authenticate(db, credentials.username, credentials.password)
    if user is None:
        raise _basic_401("Incorrect email or password")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]
BasicUser = Annotated[User, Depends(get_current_user_basic)]
