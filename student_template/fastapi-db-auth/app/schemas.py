"""Request and response bodies (Pydantic v2)."""

from pydantic import BaseModel


class HealthOut(BaseModel):
    status: str = "ok"


class ErrorOut(BaseModel):
    detail: str


# TODO: UserCreate  {email: a valid e-mail (pydantic.EmailStr), password: 8..128 characters}
# TODO: UserOut     {id: int, email: str, is_active: bool}   (never a password field!)
# TODO: ItemCreate  {title: 1..200 characters, description: str | None (optional)}
# TODO: ItemUpdate  any of {title: 1..200 characters, not null; description: str | None}
# TODO: ItemOut     {id: int, title: str, description: str | None, owner_id: int}
# TODO: Token       {access_token: str, token_type: "bearer"}
#
# Remember: PostgreSQL cannot store the NUL character "\u0000" — a string containing it is
# invalid input (422), it must never reach the database (that would be a 500).
