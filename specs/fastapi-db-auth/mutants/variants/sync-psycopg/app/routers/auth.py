from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, status

from app.deps import DB, Config, authenticate
from app.responses import errors
from app.schemas import Token, TokenRequest
from app.security import create_access_token

router = APIRouter(tags=["auth"])


@router.post("/token", response_model=Token, responses=errors(401))
def login_for_access_token(form: Annotated[TokenRequest, Form()], db: DB, settings: Config) -> Token:
    user = authenticate(db, form.username, form.password)
    if not user:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "Incorrect username or password",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Token(
        access_token=create_access_token(user.email, settings.SECRET_KEY, settings.ACCESS_TOKEN_EXPIRE_MINUTES),
        token_type="bearer",
    )
