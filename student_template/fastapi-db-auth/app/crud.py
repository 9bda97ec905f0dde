"""Database helpers (async SQLAlchemy: `await session.scalars(select(...))`, `session.add`, ...).

TODO: get a user by id / by e-mail, list users, create a user; get, list, create, update and
delete items. Lists are ordered by id ascending and honour `skip` and `limit`.
"""
