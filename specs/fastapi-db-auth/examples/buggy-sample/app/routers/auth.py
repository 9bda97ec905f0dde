from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, status

from app.deps import SessionDep, SettingsDep, authenticate
from app.responses import errors
from app.schemas import Token, TokenRequest
from app.security import create_access_token

router = APIRouter(tags=["auth"])


@router.post("/token", response_model=Token, responses=errors(401))
async def login_for_access_token(
    form: Annotated[TokenRequest, Form()],
    session: SessionDep,
    settings: SettingsDep,
) -> Token:
    user = await authenticate(session, form.username, form.password)
    if user is None:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="Incorrect username or password",
            headers={"WWW-Authenticate": "Bearer"},
        )
    token = create_access_token(
        user.email, settings.SECRET_KEY, settings.ACCESS_TOKEN_EXPIRE_MINUTES
    )
    return Token(access_token=token, token_type="bearer")
