"""Lesson 1: path and query parameters, validation, bodies, forms, files, response models,
dependencies and HTTP Basic."""

import math
from enum import Enum
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, File, Form, Path, Query, Request, UploadFile
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.dependencies import common_parameters, current_username, query_or_cookie_extractor, verify_key, verify_token
from app.models import Item, User

app = FastAPI(title="FastAPI basics")


def _json_safe(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


@app.exception_handler(RequestValidationError)
async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's default 422 body, except that a rejected infinite number (JSON 1e999) is shown as
    "inf": the default handler echoes it as a float JSON cannot carry, and answers 500."""
    detail = jsonable_encoder(exc.errors(), custom_encoder={float: _json_safe})
    return JSONResponse(status_code=422, content={"detail": detail})


class RequestType(str, Enum):
    service = "service"
    new_feature = "new_feature"


@app.get("/")
async def root() -> dict[str, str]:
    return {"message": "Hello World"}


@app.get("/items/", response_model=list[Item])
async def read_items() -> Any:
    return [
        {"name": "Portal Gun", "price": 42.0},
        {"name": "Plumbus", "price": 32.0},
    ]


@app.get("/items/{item_id}")
async def read_item(item_id: int) -> dict[str, int]:
    return {"item_id": item_id}


@app.post("/items/")
async def create_item(item: Item) -> dict[str, Item]:
    return {"item": item}


@app.put("/items/{item_id}")
async def update_item(
    item_id: int, item: Item, user: User, importance: Annotated[int, Body()]
) -> dict[str, Any]:
    return {"item_id": item_id, "item": item, "user": user, "importance": importance}


# the fixed path first: declared after /requests/{request_id}, it would never be reached
@app.get("/requests/current")
async def read_current_request() -> dict[str, str]:
    return {"request": "current item"}


@app.get("/requests/type/{request_type}")
async def read_request_type(request_type: RequestType) -> dict[str, str]:
    return {"request_type": request_type.value}


@app.get("/requests/{request_id}")
async def read_request(request_id: str) -> dict[str, str]:
    return {"request": request_id}


@app.get("/query_params")
async def query_params(page: int = 0, skip: int = 0) -> dict[str, int]:
    return {"page": page, "skip": skip}


@app.get("/query_params_typed")
async def query_params_typed(req: Annotated[str, Query(min_length=5, max_length=15)]) -> dict[str, str]:
    return {"req": req}


@app.get("/items_validated/{request_id}")
async def items_validated(request_id: Annotated[int, Path(ge=10, lt=15)]) -> dict[str, int]:
    return {"request_id": request_id}


@app.post("/form")
async def login_form(username: Annotated[str, Form()], password: Annotated[str, Form()]) -> dict[str, str]:
    return {"username": username}  # never the password


@app.post("/files/")
async def upload_file(file: Annotated[UploadFile, File()]) -> dict[str, Any]:
    size = 0
    while chunk := await file.read(1 << 16):  # streamed: no whole upload in memory
        size += len(chunk)
    return {"file_size": size, "filename": file.filename}


@app.get("/common/")
async def common(commons: Annotated[dict[str, Any], Depends(common_parameters)]) -> dict[str, Any]:
    return commons


@app.get("/query_or_cookie")
async def query_or_cookie(q_or_cookie: Annotated[str | None, Depends(query_or_cookie_extractor)]) -> dict[str, Any]:
    return {"q_or_cookie": q_or_cookie}


@app.get("/protected/", dependencies=[Depends(verify_token), Depends(verify_key)])
async def protected() -> list[dict[str, str]]:
    return [{"item": "Foo"}, {"item": "Bar"}]


@app.get("/users/me")
async def read_current_user(username: Annotated[str, Depends(current_username)]) -> dict[str, str]:
    return {"username": username}
