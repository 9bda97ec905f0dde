"""Lesson 1 service. Every route but GET / answers 501 until you implement it: search for TODO.
The full statement (every route, parameter and status code) is the assignment's README."""

from typing import Any

from fastapi import FastAPI

from app.todo import not_implemented

app = FastAPI(title="FastAPI basics")


@app.get("/")
async def root() -> dict[str, str]:
    return {"message": "Hello World"}


# TODO: an int path parameter: {"item_id": 5}; "abc" answers 422.
@app.get("/items/{item_id}")
async def read_item() -> Any:
    not_implemented()


# TODO: GET /requests/current answers {"request": "current item"} and must win over
# GET /requests/{request_id}, which echoes the id as given: {"request": "alpha-14"}.
# TODO: GET /requests/type/{request_type}: an Enum of service and new_feature.
@app.get("/requests/{request_id}")
async def read_request() -> Any:
    not_implemented()


# TODO: page and skip: optional ints, 0 by default.
@app.get("/query_params")
async def query_params() -> Any:
    not_implemented()


# TODO: req: a required query parameter of 5 to 15 characters (Query(min_length=…, max_length=…)).
@app.get("/query_params_typed")
async def query_params_typed() -> Any:
    not_implemented()


# TODO: 10 <= request_id < 15 (Path(ge=…, lt=…)).
@app.get("/items_validated/{request_id}")
async def items_validated() -> Any:
    not_implemented()


# TODO: form fields username and password; answer {"username": …} — never the password.
@app.post("/form")
async def login_form() -> Any:
    not_implemented()


# TODO: a multipart field `file`: answer its size in bytes and its filename (UploadFile).
@app.post("/files/")
async def upload_file() -> Any:
    not_implemented()


# TODO: the Item model (app/models.py); POST /items/ answers {"item": item}, defaults filled.
# GET /items/ answers the two fixed items through response_model=list[Item];
# PUT /items/{item_id} takes {"item": Item, "user": User, "importance": int} in one body.
@app.post("/items/")
async def create_item() -> Any:
    not_implemented()


# TODO: q, skip, limit from a shared dependency: Depends(common_parameters).
@app.get("/common/")
async def common() -> Any:
    not_implemented()


# TODO: a nested dependency: the query q, else the cookie last_query (an empty q counts as absent).
@app.get("/query_or_cookie")
async def query_or_cookie() -> Any:
    not_implemented()


# TODO: X-Token and X-Key headers checked by two dependencies against the settings (app/config.py).
@app.get("/protected/")
async def protected() -> Any:
    not_implemented()


# TODO: HTTP Basic against BASIC_USERNAME / BASIC_PASSWORD, compared with secrets.compare_digest.
@app.get("/users/me")
async def read_current_user() -> Any:
    not_implemented()
