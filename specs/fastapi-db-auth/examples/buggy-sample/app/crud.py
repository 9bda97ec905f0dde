"""Small database helpers. Every list is ordered by id ascending."""

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Item, User

MAX_ID = 2**31 - 1  # ids are PostgreSQL `integer`
MAX_OFFSET = 2**31  # no table can have more rows than ids; keeps OFFSET inside bigint


class EmailTaken(Exception):
    pass


def _valid_id(value: int) -> bool:
    return 1 <= value <= MAX_ID


async def get_user(session: AsyncSession, user_id: int) -> User | None:
    if not _valid_id(user_id):
        return None
    return await session.get(User, user_id)


async def get_user_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == email))


async def list_users(session: AsyncSession, skip: int, limit: int) -> Sequence[User]:
    query = select(User).order_by(User.id).offset(min(skip, MAX_OFFSET)).limit(limit)
    return (await session.scalars(query)).all()


async def create_user(session: AsyncSession, email: str, hashed_password: str) -> User:
    user = User(email=email, hashed_password=hashed_password, is_active=True)
    session.add(user)
    try:
        await session.commit()
    except IntegrityError as exc:  # lost a race against a concurrent registration
        await session.rollback()
        raise EmailTaken(email) from exc
    return user


async def get_item(session: AsyncSession, item_id: int) -> Item | None:
    if not _valid_id(item_id):
        return None
    return await session.get(Item, item_id)


async def list_items(
    session: AsyncSession, skip: int, limit: int, owner_id: int | None = None
) -> Sequence[Item]:
    query = select(Item)
    if owner_id is not None:
        query = query.where(Item.owner_id == owner_id)
    query = query.order_by(Item.id).offset(min(skip, MAX_OFFSET)).limit(limit)
    return (await session.scalars(query)).all()


async def create_item(
    session: AsyncSession, owner_id: int, title: str, description: str | None
) -> Item:
    item = Item(title=title, description=description, owner_id=owner_id)
    session.add(item)
    await session.commit()
    return item


async def update_item(session: AsyncSession, item: Item, changes: dict[str, object]) -> Item:
    for field, value in changes.items():
        setattr(item, field, value)
    await session.commit()
    return item


async def delete_item(session: AsyncSession, item: Item) -> None:
    await session.delete(item)
    await session.commit()
