from fastapi import APIRouter, status

from app.deps import SessionDep
from app.todo import not_implemented

router = APIRouter(prefix="/items", tags=["items"])


@router.get("/")
async def read_items(session: SessionDep) -> None:
    # TODO: query `skip` (>= 0) and `limit` (1..100) -> 200 [ItemOut], all items
    not_implemented()


@router.get("/{item_id}")
async def read_item(item_id: int, session: SessionDep) -> None:
    # TODO: 200 ItemOut; 404 {"detail": "Item not found"}
    not_implemented()


@router.patch("/{item_id}")
async def update_item(item_id: int, session: SessionDep) -> None:
    # TODO: Bearer token (the owner), body ItemUpdate -> 200 ItemOut; `{}` changes nothing;
    #       404 {"detail": "Item not found"}; 403 {"detail": "Not enough permissions"}
    not_implemented()


@router.delete("/{item_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_item(item_id: int, session: SessionDep) -> None:
    # TODO: Bearer token (the owner) -> 204 with an empty body; 404; 403
    not_implemented()
