from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status

from app import crud
from app.deps import DB, CurrentUser
from app.models import Item
from app.responses import errors
from app.schemas import ItemOut, ItemUpdate

router = APIRouter(prefix="/items", tags=["items"])


def _item_or_404(db: DB, item_id: int) -> Item:
    item = crud.item_by_id(db, item_id)
    if not item:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Item not found")
    return item


def _owned(db: DB, item_id: int, user_id: int) -> Item:
    item = _item_or_404(db, item_id)
    if item.owner_id != user_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Not enough permissions")
    return item


@router.get("/", response_model=list[ItemOut])
def read_items(
    db: DB,
    skip: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 100,
) -> list[Item]:
    return crud.items_page(db, skip, limit)


@router.get("/{item_id}", response_model=ItemOut, responses=errors(404))
def read_item(item_id: int, db: DB) -> Item:
    return _item_or_404(db, item_id)


@router.patch("/{item_id}", response_model=ItemOut, responses=errors(400, 401, 403, 404))
def update_item(item_id: int, payload: ItemUpdate, user: CurrentUser, db: DB) -> Item:
    item = _owned(db, item_id, user.id)
    for name in payload.model_fields_set:
        setattr(item, name, getattr(payload, name))
    return crud.save(db, item)


@router.delete(
    "/{item_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=errors(401, 403, 404),
)
def delete_item(item_id: int, user: CurrentUser, db: DB) -> Response:
    crud.remove(db, _owned(db, item_id, user.id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
