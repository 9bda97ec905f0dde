from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from app import crud
from app.deps import CurrentUser, SessionDep
from app.models import Item, User
from app.responses import errors
from app.schemas import ItemOut, ItemUpdate

router = APIRouter(prefix="/items", tags=["items"])

Skip = Annotated[int, Query(ge=0)]
Limit = Annotated[int, Query(ge=1, le=100)]


async def get_owned_item(session: AsyncSession, item_id: int, user: User) -> Item:
    item = await crud.get_item(session, item_id)
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Item not found")
    if item.owner_id != user.id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Not enough permissions")
    return item


@router.get("/", response_model=list[ItemOut])
async def read_items(session: SessionDep, skip: Skip = 0, limit: Limit = 100) -> list[Item]:
    return list(await crud.list_items(session, skip, limit))


@router.get("/{item_id}", response_model=ItemOut, responses=errors(404))
async def read_item(item_id: int, session: SessionDep) -> Item:
    item = await crud.get_item(session, item_id)
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Item not found")
    return item


@router.patch("/{item_id}", response_model=ItemOut, responses=errors(400, 401, 403, 404))
async def update_item(
    current_user: CurrentUser, item_id: int, payload: ItemUpdate, session: SessionDep
) -> Item:
    item = await get_owned_item(session, item_id, current_user)
    return await crud.update_item(session, item, payload.model_dump(exclude_unset=True))


@router.delete(
    "/{item_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=errors(401, 403, 404),
)
async def delete_item(current_user: CurrentUser, item_id: int, session: SessionDep) -> Response:
    item = await crud.get_item(session, item_id)  # forgot to check who owns it
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Item not found")
    await crud.delete_item(session, item)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
