from fastapi import APIRouter, status

from app.deps import SessionDep
from app.todo import not_implemented

router = APIRouter(prefix="/users", tags=["users"])

# TODO for every route: the request body / query parameters, `response_model=...`,
# and `responses=...` declaring each error status code (see app/responses.py).


@router.post("/", status_code=status.HTTP_201_CREATED)
async def create_user(session: SessionDep) -> None:
    # TODO: body UserCreate -> 201 UserOut; 400 {"detail": "Email already registered"}
    not_implemented()


@router.get("/")
async def read_users(session: SessionDep) -> None:
    # TODO: query `skip` (>= 0, default 0) and `limit` (1..100, default 100) -> 200 [UserOut]
    not_implemented()


# The fixed /users/me... paths must be declared before /users/{user_id}.
@router.get("/me")
async def read_me() -> None:
    # TODO: Bearer token -> 200 UserOut (the caller)
    not_implemented()


@router.get("/me/basic")
async def read_me_basic() -> None:
    # TODO: HTTP Basic (e-mail:password) -> 200 UserOut (the caller)
    not_implemented()


@router.get("/me/items/")
async def read_my_items(session: SessionDep) -> None:
    # TODO: Bearer token -> 200 [ItemOut], the caller's items
    not_implemented()


@router.get("/{user_id}")
async def read_user(user_id: int, session: SessionDep) -> None:
    # TODO: 200 UserOut; 404 {"detail": "User not found"}
    not_implemented()


@router.post("/{user_id}/items/", status_code=status.HTTP_201_CREATED)
async def create_item_for_user(user_id: int, session: SessionDep) -> None:
    # TODO: Bearer token, body ItemCreate -> 201 ItemOut with owner_id = user_id;
    #       404 {"detail": "User not found"}; 403 {"detail": "Not enough permissions"}
    not_implemented()
