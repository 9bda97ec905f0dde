"""ORM models (SQLAlchemy 2.0: `DeclarativeBase`, `Mapped[...]`, `mapped_column`).

The tables are created by Alembic migrations only — never call `Base.metadata.create_all`.
"""

from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


# TODO: model `User`, table "users":
#   id (integer primary key), email (unique), hashed_password, is_active (true by default)
#
# TODO: model `Item`, table "items":
#   id (integer primary key), title (1..200 characters), description (optional text),
#   owner_id (foreign key to users.id)
#
# Then write the migration: fill alembic/versions/0001_create_users_and_items.py
# (or run `alembic revision --autogenerate` against an empty database and review the result).
