from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from app import crud
from app.deps import DB, BasicUser, CurrentUser
from app.models import Item, User
from app.responses import errors
from app.schemas import ItemCreate, ItemOut, UserCreate, UserOut
from app.security import hash_password

router = APIRouter(prefix="/users", tags=["users"])

EMAIL_TAKEN = "Email already registered"


@router.post("/", response_model=UserOut, status_code=status.HTTP_201_CREATED, responses=errors(400))
def create_user(payload: UserCreate, db: DB) -> User:
    if crud.user_by_email(db, payload.email):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, EMAIL_TAKEN)
    try:
        return crud.add_user(db, payload.email, hash_password(payload.password))
    except crud.EmailTaken:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, EMAIL_TAKEN) from None


@router.get("/", response_model=list[UserOut])
def read_users(
    db: DB,
    skip: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 100,
) -> list[User]:
    return crud.users_page(db, skip, limit)


@router.get("/me", response_model=UserOut, responses=errors(401))
def read_me(user: CurrentUser) -> User:
    return user


@router.get("/me/basic", response_model=UserOut, responses=errors(401))
def read_me_basic(user: BasicUser) -> User:
    return user


@router.get("/me/items/", response_model=list[ItemOut], responses=errors(401))
def read_my_items(user: CurrentUser, db: DB) -> list[Item]:
    return crud.items_page(db, 0, crud.INT4_MAX, owner_id=user.id)


@router.get("/{user_id}", response_model=UserOut, responses=errors(404))
def read_user(user_id: int, db: DB) -> User:
    user = crud.user_by_id(db, user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "User not found")
    return user


@router.post(
    "/{user_id}/items/",
    response_model=ItemOut,
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 404),
)
def create_item_for_user(user_id: int, payload: ItemCreate, user: CurrentUser, db: DB) -> Item:
    if crud.user_by_id(db, user_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "User not found")
    if user.id != user_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Not enough permissions")
    return crud.add_item(db, user_id, payload.title, payload.description)
