"""Request and response bodies (Pydantic v2)."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field


def reject_nul(value: str) -> str:
    # PostgreSQL cannot store U+0000 in text: refuse it at the door (422) instead of failing later (500).
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (\\u0000)")
    return value


Text = Annotated[str, AfterValidator(reject_nul)]
Email = Annotated[EmailStr, AfterValidator(reject_nul)]
Password = Annotated[str, Field(min_length=8, max_length=128), AfterValidator(reject_nul)]
Title = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(reject_nul)]


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


class UserCreate(BaseModel):
    email: Email
    password: Password


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    is_active: bool
    email: str
    id: int
    full_name: str | None = None  # not collected yet: always null


class ItemCreate(BaseModel):
    title: Title
    description: Text | None = None


class ItemUpdate(BaseModel):
    # Absent: unchanged. `title: null` is a 422 (an item always has a title); `description: null` clears it.
    title: Title = Field(default=None, json_schema_extra=_no_default)  # type: ignore[assignment]
    description: Text | None = None


class ItemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    owner_id: int
    title: str
    id: int
    description: str | None
    created_at: datetime


class TokenRequest(BaseModel):
    """The OAuth2 password flow's form (`grant_type`, `scope`, ... are accepted and ignored)."""

    username: Text = Field(description="The user's e-mail")
    password: Text = Field(json_schema_extra={"format": "password"})


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"


class HealthOut(BaseModel):
    status: str = "ok"


class ErrorOut(BaseModel):
    detail: str
