"""Database helpers (sync). Lists are ordered by id ascending."""

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.models import Item, User

INT4_MAX = 2147483647  # ids are PostgreSQL integers


class EmailTaken(Exception):
    pass


def _page(skip: int, limit: int) -> tuple[int, int]:
    # OFFSET/LIMIT are bigint in Postgres: no table is larger than INT4_MAX rows anyway.
    return min(skip, INT4_MAX + 1), min(limit, INT4_MAX)


def user_by_id(db: Session, user_id: int) -> User | None:
    return db.get(User, user_id) if 0 < user_id <= INT4_MAX else None


def user_by_email(db: Session, email: str) -> User | None:
    return db.execute(select(User).filter_by(email=email)).scalar_one_or_none()


def users_page(db: Session, skip: int, limit: int) -> list[User]:
    offset, limit = _page(skip, limit)
    return list(db.scalars(select(User).order_by(User.id.asc()).offset(offset).limit(limit)))


def add_user(db: Session, email: str, hashed_password: str) -> User:
    user = User(email=email, hashed_password=hashed_password, is_active=True)
    db.add(user)
    try:
        db.commit()
    except IntegrityError as exc:
        db.rollback()
        raise EmailTaken(email) from exc
    db.refresh(user)
    return user


def item_by_id(db: Session, item_id: int) -> Item | None:
    return db.get(Item, item_id) if 0 < item_id <= INT4_MAX else None


def items_page(db: Session, skip: int, limit: int, owner_id: int | None = None) -> list[Item]:
    offset, limit = _page(skip, limit)
    stmt = select(Item)
    if owner_id is not None:
        stmt = stmt.where(Item.owner_id == owner_id)
    return list(db.scalars(stmt.order_by(Item.id.asc()).offset(offset).limit(limit)))


def add_item(db: Session, owner_id: int, title: str, description: str | None) -> Item:
    item = Item(owner_id=owner_id, title=title, description=description)
    db.add(item)
    db.commit()
    db.refresh(item)
    return item


def save(db: Session, item: Item) -> Item:
    db.commit()
    db.refresh(item)
    return item


def remove(db: Session, item: Item) -> None:
    db.delete(item)
    db.commit()
