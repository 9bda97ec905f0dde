from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from starlette.concurrency import run_in_threadpool

from app import crud
from app.deps import BasicUser, CurrentUser, SessionDep
from app.models import Item, User
from app.responses import errors
from app.schemas import ItemCreate, ItemOut, UserCreate, UserOut
from app.security import hash_password

router = APIRouter(prefix="/users", tags=["users"])

Skip = Annotated[int, Query(ge=0)]
Limit = Annotated[int, Query(ge=1, le=100)]


@router.post("/", response_model=UserOut, responses=errors(400))
async def create_user(payload: UserCreate, session: SessionDep) -> User:
    email_taken = HTTPException(status.HTTP_400_BAD_REQUEST, "Email already registered")
    if await crud.get_user_by_email(session, payload.email) is not None:
        raise email_taken
    hashed = await run_in_threadpool(hash_password, payload.password)
    try:
        return await crud.create_user(session, payload.email, hashed)
    except crud.EmailTaken:
        raise email_taken from None


@router.get("/", response_model=list[UserOut])
async def read_users(session: SessionDep, skip: Skip = 0, limit: Limit = 100) -> list[User]:
    return list(await crud.list_users(session, skip, limit))


# The fixed /users/me… paths come before /users/{user_id}.
@router.get("/me", response_model=UserOut, responses=errors(401))
async def read_me(user: CurrentUser) -> User:
    return user


@router.get("/me/basic", response_model=UserOut, responses=errors(401))
async def read_me_basic(user: BasicUser) -> User:
    return user


@router.get("/me/items/", response_model=list[ItemOut], responses=errors(401))
async def read_my_items(user: CurrentUser, session: SessionDep) -> list[Item]:
    return list(await crud.list_items(session, skip=0, limit=crud.MAX_ID, owner_id=user.id))


@router.get("/{user_id}", response_model=UserOut, responses=errors(404))
async def read_user(user_id: int, session: SessionDep) -> User:
    user = await crud.get_user(session, user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "User not found")
    return user


@router.post(
    "/{user_id}/items/",
    response_model=ItemOut,
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 404),
)
async def create_item_for_user(
    current_user: CurrentUser, user_id: int, payload: ItemCreate, session: SessionDep
) -> Item:
    if await crud.get_user(session, user_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "User not found")
    if user_id != current_user.id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Not enough permissions")
    return await crud.create_item(session, user_id, payload.title, payload.description)
