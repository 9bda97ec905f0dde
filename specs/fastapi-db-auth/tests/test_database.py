"""The database the grader owns: migrations, schema, password hashing, persistence."""

import hashlib

import psycopg
import pytest

from grader.testing import Mismatch, expect_status

MIGRATIONS = pytest.mark.rubric("db-migrations")
SCHEMA = pytest.mark.rubric("db-schema")
PASSWORDS = pytest.mark.rubric("db-passwords")
PERSISTENCE = pytest.mark.rubric("db-persistence")


def _query(db_url, sql, params=()):
    with psycopg.connect(db_url, connect_timeout=10, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def _columns(db_url, table):
    rows = _query(db_url, """
        SELECT column_name FROM information_schema.columns
        WHERE table_name = %s AND table_schema NOT IN ('pg_catalog', 'information_schema')
    """, (table,))
    return {r[0] for r in rows}


def _stored_hash(db_url, email):
    try:
        rows = _query(db_url, "SELECT hashed_password FROM users WHERE email = %s", (email,))
    except psycopg.Error as exc:
        raise Mismatch("SELECT hashed_password FROM users", expected="a users.hashed_password column",
                       actual=str(exc).strip()) from None
    if len(rows) != 1:
        raise Mismatch("users row for the new e-mail", expected="exactly one row", actual=f"{len(rows)} rows")
    return rows[0][0]


# migrations -----------------------------------------------------------------------------------------
@MIGRATIONS
def test_alembic_version_has_a_row(db_url):
    """The schema must come from Alembic migrations applied at start: alembic_version holds the current revision."""
    try:
        rows = _query(db_url, "SELECT version_num FROM alembic_version")
    except psycopg.Error as exc:
        raise Mismatch("table alembic_version", expected="present (run `alembic upgrade head` on start)",
                       actual=str(exc).strip()) from None
    if not rows or not rows[0][0]:
        raise Mismatch("alembic_version rows", expected="one row with the head revision", actual=rows)


@MIGRATIONS
def test_migrations_alone_create_the_schema(databases):
    """`alembic upgrade head` alone, on an empty database, must create the tables users and items (the schema comes from migrations, never from create_all at start)."""
    url = databases.get("migrated")
    if url is None:
        pytest.skip("this runtime does not run the migrations alone")
    rows = _query(url, """
        SELECT table_name FROM information_schema.tables
        WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
    """)
    missing = {"users", "items", "alembic_version"} - {r[0] for r in rows}
    if missing:
        raise Mismatch("tables after `alembic upgrade head` alone",
                       expected="users, items and alembic_version", actual=f"missing {sorted(missing)}")


# schema ---------------------------------------------------------------------------------------------
@SCHEMA
def test_users_table_columns(db_url):
    """Table users must have the columns id, email, hashed_password and is_active."""
    missing = {"id", "email", "hashed_password", "is_active"} - _columns(db_url, "users")
    if missing:
        raise Mismatch("table users", expected="columns id, email, hashed_password, is_active",
                       actual=f"missing {sorted(missing)}")


@SCHEMA
def test_items_table_columns(db_url):
    """Table items must have the columns id, title, description and owner_id."""
    missing = {"id", "title", "description", "owner_id"} - _columns(db_url, "items")
    if missing:
        raise Mismatch("table items", expected="columns id, title, description, owner_id",
                       actual=f"missing {sorted(missing)}")


@SCHEMA
def test_items_owner_id_is_a_foreign_key_to_users(db_url):
    """items.owner_id must be a foreign key to users.id."""
    rows = _query(db_url, """
        SELECT a.attname, fa.attname
        FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
        JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = ANY (c.confkey)
        WHERE c.contype = 'f' AND c.conrelid = to_regclass('items') AND c.confrelid = to_regclass('users')
    """)
    if ("owner_id", "id") not in rows:
        raise Mismatch("foreign keys of items", expected="items.owner_id -> users.id", actual=rows or "none")


@SCHEMA
def test_users_email_is_unique(db_url):
    """users.email must be unique in the database (a unique constraint or unique index)."""
    rows = _query(db_url, """
        SELECT i.indexrelid::regclass::text
        FROM pg_index i
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
        WHERE i.indrelid = to_regclass('users') AND i.indisunique AND i.indnatts = 1
          AND a.attname = 'email'
    """)
    if not rows:
        raise Mismatch("indexes of users", expected="a unique index or constraint on email", actual="none")


# passwords ------------------------------------------------------------------------------------------
@PASSWORDS
def test_password_is_not_stored_in_plaintext_or_as_a_bare_digest(api, db_url):
    """The stored password must be a salted hash: not the password itself, nor its plain md5/sha1/sha256/sha512 hex."""
    password = "Plain-Text-Pass-77"
    user = api.register(password, login=False)
    stored = _stored_hash(db_url, user.email)
    if not isinstance(stored, str) or not stored:
        raise Mismatch("users.hashed_password", expected="a hash string", actual=repr(stored))
    if password in stored:
        raise Mismatch("users.hashed_password", expected="a hash, not the password", actual=stored)
    for name in ("md5", "sha1", "sha256", "sha512"):
        digest = hashlib.new(name, password.encode()).hexdigest()
        if digest in stored.lower():
            raise Mismatch("users.hashed_password", expected="a salted slow hash (argon2 or bcrypt)",
                           actual=f"the unsalted {name} hex digest of the password")


@PASSWORDS
def test_same_password_gives_different_hashes(api, db_url):
    """Two users with the same password must have different stored hashes (a random salt per user)."""
    a = api.register("Same-Password-99", login=False)
    b = api.register("Same-Password-99", login=False)
    ha, hb = _stored_hash(db_url, a.email), _stored_hash(db_url, b.email)
    if ha == hb:
        raise Mismatch("users.hashed_password of two users with the same password",
                       expected="different hashes (salted)", actual=f"both {ha}")


@PASSWORDS
def test_hash_is_argon2_or_bcrypt(api, db_url):
    """The stored hash must be argon2 ($argon2...) or bcrypt ($2a$/$2b$/$2y$)."""
    user = api.shared("owner", login=False)
    stored = _stored_hash(db_url, user.email)
    if not str(stored).startswith(("$argon2id$", "$argon2i$", "$argon2d$", "$2a$", "$2b$", "$2y$")):
        raise Mismatch("users.hashed_password", expected="an argon2 or bcrypt hash ($argon2id$... or $2b$...)",
                       actual=str(stored)[:80])


# persistence ----------------------------------------------------------------------------------------
@PERSISTENCE
def test_data_and_tokens_survive_a_restart(api, target, client_factory):
    """Users, items and issued tokens must still work after the app restarts (data lives in Postgres, the key in SECRET_KEY)."""
    if target.restart is None:
        pytest.skip("this run cannot restart the app")
    user = api.shared("owner")
    item = api.create_item(user, title="Persistent", description="survives")
    api.restart()
    with client_factory() as client:
        r = client.get(f"/users/{user.id}")
        expect_status(r, 200)
        api.expect_user_out(r, email=user.email, user_id=user.id)
        r = client.get(f"/items/{item['id']}")
        expect_status(r, 200)
        api.expect_item_out(r, **item)
        r = client.get("/users/me", headers=user.headers)
        expect_status(r, 200)
        api.expect_user_out(r, email=user.email)
        r = client.post("/token", data={"username": user.email, "password": user.password})
        expect_status(r, 200)
