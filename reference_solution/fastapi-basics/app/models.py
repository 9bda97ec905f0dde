"""Request and response models."""

from pydantic import BaseModel, Field


class Item(BaseModel):
    name: str
    description: str | None = None
    # finite: 1e999 parses as infinity, which JSON cannot carry back (422, not 500)
    price: float = Field(allow_inf_nan=False)
    tax: float | None = Field(default=None, allow_inf_nan=False)


class User(BaseModel):
    username: str
    full_name: str | None = None
