from fastapi import APIRouter

from app.todo import not_implemented

router = APIRouter(tags=["auth"])


@router.post("/token")
async def login_for_access_token() -> None:
    # TODO: read the form fields `username` (the e-mail) and `password`
    #       (fastapi.security.OAuth2PasswordRequestForm), check them and answer
    #       200 {"access_token": <JWT>, "token_type": "bearer"};
    #       otherwise 401 {"detail": "Incorrect username or password"} + `WWW-Authenticate: Bearer`.
    not_implemented()
