"""FastAPI dependencies: the database session and (TODO) the authenticated user."""

from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings, get_settings
from app.db import get_session

SessionDep = Annotated[AsyncSession, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

# TODO: `get_current_user` — the user named by the Bearer token (see fastapi.security's
#       OAuth2PasswordBearer); 401 with `WWW-Authenticate: Bearer` otherwise.
# TODO: `get_current_user_basic` — the user whose e-mail:password came in HTTP Basic
#       (fastapi.security's HTTPBasic); 401 with `WWW-Authenticate: Basic` otherwise.
#
# On protected routes the checks run in this order: authentication (401), input validation (422),
# existence (404), ownership (403). Dependencies run before FastAPI validates the path, query and
# body parameters, so authenticating in a dependency gives you the first step for free.
