"""The database the grader owns: migrations, schema, password hashing, persistence.

Evidence a student cannot fake: a stored password hash is verified for real with its scheme's
library (argon2-cffi, bcrypt) against the password the user registered with, and its costs are
checked; the revision recorded in alembic_version must be a head of the submission's own migration
scripts (read from its files with `ast`, never imported), and the scripts up to it must do
something: a hand-inserted row beside `create_all` is not a migration.
"""

import ast
import base64
import configparser
import hashlib
import os
import re
from pathlib import Path
from typing import NamedTuple

import argon2
import bcrypt
import psycopg
import pytest

from grader.testing import Mismatch, expect_status

MIGRATIONS = pytest.mark.rubric("db-migrations")
SCHEMA = pytest.mark.rubric("db-schema")
PASSWORDS = pytest.mark.rubric("db-passwords")
PERSISTENCE = pytest.mark.rubric("db-persistence")


def _query(db_url, sql, params=()):
    # a startup option: the student's role cannot lift it with ALTER ROLE … SET, so a view or
    # function that sleeps cannot hold the grade
    with psycopg.connect(
        db_url, connect_timeout=10, autocommit=True, options="-c statement_timeout=10000"
    ) as conn:
        return conn.execute(sql, params).fetchall()


def _columns(db_url, table):
    rows = _query(
        db_url,
        """
        SELECT column_name FROM information_schema.columns
        WHERE table_name = %s AND table_schema NOT IN ('pg_catalog', 'information_schema')
    """,
        (table,),
    )
    return {r[0] for r in rows}


def _stored_hash(db_url, email):
    try:
        rows = _query(db_url, "SELECT hashed_password FROM users WHERE email = %s", (email,))
    except psycopg.Error as exc:
        raise Mismatch(
            "SELECT hashed_password FROM users",
            expected="a users.hashed_password column",
            actual=str(exc).strip(),
        ) from None
    if len(rows) != 1:
        raise Mismatch(
            "users row for the new e-mail", expected="exactly one row", actual=f"{len(rows)} rows"
        )
    return rows[0][0]


# migration scripts (read as text, never imported or run) ------------------------------------------
SKIPPED_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__"}
MAX_DEPTH = 6  # alembic.ini lives at the top of the app, at most a few folders down


class Script(NamedTuple):
    file: str  # relative to the submission
    down: tuple[str, ...]  # the revisions it follows (several for a merge)
    does_something: bool  # upgrade() has a statement besides `pass`, `...` and a docstring


def _inside(root, path):
    """A file or folder of the submission itself: not a link, nothing resolving outside it."""
    try:
        return not path.is_symlink() and path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):
        return False


def _ini_version_dirs(ini):
    """The folders an alembic.ini names: script_location/versions and version_locations."""
    parser = configparser.ConfigParser(defaults={"here": str(ini.parent)})
    try:
        parser.read_string(ini.read_text(encoding="utf-8", errors="replace"))
        script_location = parser.get("alembic", "script_location", fallback="")
        version_locations = parser.get("alembic", "version_locations", fallback="")
    except (configparser.Error, OSError, ValueError):
        return []
    dirs = [ini.parent / script_location / "versions"] if script_location else []
    # alembic separates them by path_separator (os, space, newline, ";", ":" or ",")
    return dirs + [ini.parent / d for d in re.split(r"[\s,;:]+", version_locations) if d]


def _version_dirs(root):
    """Where alembic finds the submission's scripts: the folders its alembic.ini files name, and any
    `versions` folder beside an env.py (alembic configured in pyproject.toml, or no ini at all)."""
    found = []
    for folder, dirs, files in os.walk(root):  # links to folders are listed, never entered
        here = Path(folder)
        deep = len(here.relative_to(root).parts) >= MAX_DEPTH
        dirs[:] = [] if deep else [d for d in dirs if d not in SKIPPED_DIRS]
        if "env.py" in files and (here / "versions").is_dir():
            found.append(here / "versions")
        if "alembic.ini" in files and _inside(root, here / "alembic.ini"):
            found += _ini_version_dirs(here / "alembic.ini")
    unique = {d.resolve(): d for d in found if _inside(root, d) and d.is_dir()}
    return list(unique.values())


def _literal(tree, name):
    """The literal value of the module-level assignment `name = ...` / `name: T = ...`, or None."""
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            try:
                return ast.literal_eval(node.value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                return None
    return None


def _upgrade_does_something(tree):
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "upgrade":
            return any(
                not isinstance(s, ast.Pass)
                and not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
                for s in node.body
            )
    return False


def _scripts(root):
    """revision -> Script for every migration script of the submission."""
    scripts = {}
    for folder in _version_dirs(root):
        for path in sorted(folder.glob("*.py")):
            if not path.is_file() or not _inside(root, path):
                continue
            try:
                tree = ast.parse(path.read_bytes())
            except (SyntaxError, ValueError, RecursionError, MemoryError, OSError):
                continue  # alembic could not load it either
            revision, down = _literal(tree, "revision"), _literal(tree, "down_revision")
            if not isinstance(revision, str) or not revision:
                continue
            downs = (
                (down,)
                if isinstance(down, str)
                else tuple(d for d in down or () if isinstance(d, str))
            )
            scripts[revision] = Script(
                str(path.relative_to(root)), downs, _upgrade_does_something(tree)
            )
    return scripts


def _chain(scripts, revision):
    """The scripts `revision` stands on, itself included (what `upgrade head` ran to reach it)."""
    seen, todo = set(), [revision]
    while todo:
        rev = todo.pop()
        if rev in scripts and rev not in seen:
            seen.add(rev)
            todo += scripts[rev].down
    return [scripts[r] for r in seen]


def _expect_recorded_head(url, where, source):
    """alembic_version (in the database `where`) names a head of the submission's migration
    scripts, and the scripts up to it do something: a revision inserted by hand beside create_all,
    or an empty migration, is no evidence that migrations made the schema."""
    table = f"alembic_version {where}"
    try:
        recorded = [r[0] for r in _query(url, "SELECT version_num FROM alembic_version")]
    except psycopg.Error as exc:
        raise Mismatch(
            table, expected="present (run `alembic upgrade head` on start)", actual=str(exc).strip()
        ) from None
    if not recorded or not all(recorded):
        raise Mismatch(f"{table} rows", expected="one row with the head revision", actual=recorded)
    if source is None:
        pytest.skip(
            "the submission's files are not available: its migration scripts cannot be read"
        )
    scripts = _scripts(source)
    if not scripts:
        raise Mismatch(
            "the submission's migration scripts",
            expected='alembic/versions/*.py (alembic.ini\'s script_location) with revision = "..."',
            actual="no script found",
        )
    superseded = {d for s in scripts.values() for d in s.down}
    heads = ", ".join(sorted(set(scripts) - superseded)[:5])
    for revision in recorded:
        shown = repr(revision[:40])
        if revision not in scripts:
            raise Mismatch(
                table,
                expected=f"a revision of the submission's migration scripts (head: {heads})",
                actual=f"{shown}, which no script defines (a row inserted by hand?)",
            )
        if revision in superseded:
            raise Mismatch(
                table,
                expected=f"the head revision ({heads})",
                actual=f"{shown}, an older one (`alembic upgrade head` did not run to the end)",
            )
        chain = _chain(scripts, revision)
        if not any(s.does_something for s in chain):
            raise Mismatch(
                f"migration scripts up to {shown}",
                expected="an upgrade() that creates the schema",
                actual=f"upgrade() does nothing in {', '.join(sorted(s.file for s in chain))}",
            )


# migrations -----------------------------------------------------------------------------------------
@MIGRATIONS
def test_alembic_version_names_the_head_migration(db_url, target):
    """The schema must come from Alembic migrations applied at start: alembic_version holds the head revision of the submission's migration scripts, and they do create something."""
    _expect_recorded_head(db_url, "in the app's database", target.source)


@MIGRATIONS
def test_migrations_alone_create_the_schema(databases, target):
    """`alembic upgrade head` alone, on an empty database, must create the tables users and items and record the head revision of the submission's scripts (the schema comes from migrations, never from create_all at start)."""
    url = databases.get("migrated")
    if url is None:
        pytest.skip("this runtime does not run the migrations alone")
    rows = _query(
        url,
        """
        SELECT table_name FROM information_schema.tables
        WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
    """,
    )
    missing = {"users", "items", "alembic_version"} - {r[0] for r in rows}
    if missing:
        raise Mismatch(
            "tables after `alembic upgrade head` alone",
            expected="users, items and alembic_version",
            actual=f"missing {sorted(missing)}",
        )
    _expect_recorded_head(url, "after `alembic upgrade head` alone", target.source)


# schema ---------------------------------------------------------------------------------------------
@SCHEMA
def test_users_table_columns(db_url):
    """Table users must have the columns id, email, hashed_password and is_active."""
    missing = {"id", "email", "hashed_password", "is_active"} - _columns(db_url, "users")
    if missing:
        raise Mismatch(
            "table users",
            expected="columns id, email, hashed_password, is_active",
            actual=f"missing {sorted(missing)}",
        )


@SCHEMA
def test_items_table_columns(db_url):
    """Table items must have the columns id, title, description and owner_id."""
    missing = {"id", "title", "description", "owner_id"} - _columns(db_url, "items")
    if missing:
        raise Mismatch(
            "table items",
            expected="columns id, title, description, owner_id",
            actual=f"missing {sorted(missing)}",
        )


@SCHEMA
def test_items_owner_id_is_a_foreign_key_to_users(db_url):
    """items.owner_id must be a foreign key to users.id."""
    rows = _query(
        db_url,
        """
        SELECT a.attname, fa.attname
        FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
        JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = ANY (c.confkey)
        WHERE c.contype = 'f' AND c.conrelid = to_regclass('items') AND c.confrelid = to_regclass('users')
    """,
    )
    if ("owner_id", "id") not in rows:
        raise Mismatch(
            "foreign keys of items", expected="items.owner_id -> users.id", actual=rows or "none"
        )


@SCHEMA
def test_users_email_is_unique(db_url):
    """users.email must be unique in the database (a unique constraint or unique index)."""
    rows = _query(
        db_url,
        """
        SELECT i.indexrelid::regclass::text
        FROM pg_index i
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
        WHERE i.indrelid = to_regclass('users') AND i.indisunique AND i.indnatts = 1
          AND a.attname = 'email'
    """,
    )
    if not rows:
        raise Mismatch(
            "indexes of users", expected="a unique index or constraint on email", actual="none"
        )


# passwords ------------------------------------------------------------------------------------------
# The three tests are critical: a password stored weakly costs the whole item, not a third of it.
# Costs a stored hash must have, from OWASP's password storage cheat sheet: argon2 with at least
# 7 MiB of memory and 35 MiB x passes (its weakest recommended settings run from 7 MiB x 5 to
# 46 MiB x 1), bcrypt with at least 2^10 rounds. The defaults of pwdlib, argon2-cffi and passlib
# (argon2 64 MiB x 3, bcrypt 2^12) pass. Above the maximums the grader does not spend the memory,
# threads and time to verify (nor could the app have computed such a hash within its limits).
ARGON2_MIN_MEMORY_KIB = 7 * 1024
ARGON2_MIN_WORK_KIB = 35 * 1024
ARGON2_MAX = {"memory_cost": 256 * 1024, "time_cost": 10, "parallelism": 16}
BCRYPT_MIN_ROUNDS, BCRYPT_MAX_ROUNDS = 10, 16
BCRYPT_HASH = re.compile(r"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}")
# what a failure shows of a stored hash: its scheme and costs ($argon2id$v=19$m=65536,t=3,p=4$,
# $2b$12$), never the rest (a fake may hold an encoding of the password there)
SCHEME_AND_COSTS = re.compile(r"\$[^$]*\$(?:v=\d+\$)?[^$]*\$")


def _shown(stored):
    prefix = SCHEME_AND_COSTS.match(stored)
    return f"{prefix[0]}…" if prefix else f"{stored[:20]}…"


def _encodings(password):
    """Reversible encodings of `password` that a "hash" must not contain."""
    raw = password.encode()
    return {
        "the hex": raw.hex(),
        "the base64": base64.b64encode(raw).decode().rstrip("="),
        "the url-safe base64": base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }


def _expect_argon2(stored, password):
    where = "users.hashed_password (argon2)"
    try:
        params = argon2.extract_parameters(stored)
    except argon2.exceptions.InvalidHashError:
        raise Mismatch(
            where,
            expected="a well-formed argon2 hash: $argon2id$v=19$m=...,t=...,p=...$<salt>$<hash>",
            actual=_shown(stored),
        ) from None
    costs = f"m={params.memory_cost},t={params.time_cost},p={params.parallelism}"
    if any(getattr(params, name) > top for name, top in ARGON2_MAX.items()):
        raise Mismatch(
            where,
            expected="costs the grader verifies: m ≤ 262144 (256 MiB), t ≤ 10, p ≤ 16",
            actual=costs,
        )
    try:
        argon2.PasswordHasher().verify(stored, password)
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        raise Mismatch(
            where,
            expected="a hash of the password the user registered with (checked with argon2-cffi)",
            actual=f"{_shown(stored)} does not verify with that password",
        ) from None
    if (
        params.memory_cost < ARGON2_MIN_MEMORY_KIB
        or params.memory_cost * params.time_cost < ARGON2_MIN_WORK_KIB
    ):
        raise Mismatch(
            where,
            expected="costs of at least m=7168 (7 MiB) and m × t ≥ 35840 (pwdlib's defaults: m=65536,t=3)",
            actual=costs,
        )


def _bcrypt_inputs(password):
    """What bcrypt may have been given: the password, or the usual sha256 pre-hash that keeps long
    passwords within bcrypt's 72 bytes (its base64 or hex digest)."""
    digest = hashlib.sha256(password.encode()).digest()
    return password.encode(), base64.b64encode(digest), digest.hex().encode()


def _checkpw(secret, stored):
    try:
        return bcrypt.checkpw(secret, stored.encode())
    except ValueError:  # a malformed salt; bcrypt 5 also refuses secrets over 72 bytes
        return False


def _expect_bcrypt(stored, password):
    where = "users.hashed_password (bcrypt)"
    match = BCRYPT_HASH.fullmatch(stored)
    if match is None:
        raise Mismatch(
            where,
            expected="a well-formed bcrypt hash: $2b$<cost>$<53 characters>",
            actual=_shown(stored),
        )
    rounds = int(match[1])
    if rounds > BCRYPT_MAX_ROUNDS:
        raise Mismatch(
            where,
            expected=f"a cost the grader verifies: at most {BCRYPT_MAX_ROUNDS}",
            actual=rounds,
        )
    if not any(_checkpw(secret, stored) for secret in _bcrypt_inputs(password)):
        raise Mismatch(
            where,
            expected="a hash of the password the user registered with, or of its sha256 pre-hash "
            "(checked with bcrypt)",
            actual=f"{_shown(stored)} does not verify with that password",
        )
    if rounds < BCRYPT_MIN_ROUNDS:
        raise Mismatch(
            where,
            expected=f"a cost of at least {BCRYPT_MIN_ROUNDS} (passlib's and bcrypt's default: 12)",
            actual=rounds,
        )


@PASSWORDS
@pytest.mark.critical("passwords must never be stored in plaintext, an encoding or a bare digest")
def test_password_is_not_stored_in_plaintext_or_as_a_bare_digest(api, db_url):
    """The stored password must be a salted hash: not the password itself, nor its hex or base64, nor its plain md5/sha1/sha256/sha512 hex."""
    password = "Plain-Text-Pass-77"
    user = api.register(password, login=False)
    stored = _stored_hash(db_url, user.email)
    if not isinstance(stored, str) or not stored:
        raise Mismatch("users.hashed_password", expected="a hash string", actual=repr(stored))
    if password in stored:
        raise Mismatch("users.hashed_password", expected="a hash, not the password", actual=stored)
    for name, encoded in _encodings(password).items():
        if encoded.lower() in stored.lower():
            raise Mismatch(
                "users.hashed_password",
                expected="a hash, not an encoding of the password",
                actual=f"{name} of the password in {_shown(stored)}",
            )
    for name in ("md5", "sha1", "sha256", "sha512"):
        digest = hashlib.new(name, password.encode()).hexdigest()
        if digest in stored.lower():
            raise Mismatch(
                "users.hashed_password",
                expected="a salted slow hash (argon2 or bcrypt)",
                actual=f"the unsalted {name} hex digest of the password",
            )


@PASSWORDS
@pytest.mark.critical("password hashes must be salted (a random salt per user)")
def test_same_password_gives_different_hashes(api, db_url):
    """Two users with the same password must have different stored hashes (a random salt per user)."""
    a = api.register("Same-Password-99", login=False)
    b = api.register("Same-Password-99", login=False)
    ha, hb = _stored_hash(db_url, a.email), _stored_hash(db_url, b.email)
    if ha == hb:
        raise Mismatch(
            "users.hashed_password of two users with the same password",
            expected="different hashes (salted)",
            actual=f"both {ha}",
        )


@PASSWORDS
@pytest.mark.critical("passwords must be hashed with argon2 or bcrypt at sane costs")
def test_hash_is_a_real_argon2_or_bcrypt_hash(api, db_url):
    """The stored hash must be argon2 ($argon2...) or bcrypt ($2a$/$2b$/$2y$), verify with the user's password (checked with argon2-cffi or bcrypt), and cost at least argon2 m=7 MiB with m × t ≥ 35 MiB, or bcrypt 10."""
    user = api.shared("owner", login=False)
    stored = _stored_hash(db_url, user.email)
    if isinstance(stored, str) and stored.startswith(("$argon2id$", "$argon2i$", "$argon2d$")):
        _expect_argon2(stored, user.password)
    elif isinstance(stored, str) and stored.startswith(("$2a$", "$2b$", "$2y$")):
        _expect_bcrypt(stored, user.password)
    else:
        raise Mismatch(
            "users.hashed_password",
            expected="an argon2 or bcrypt hash ($argon2id$... or $2b$...)",
            actual=str(stored)[:80],
        )


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
