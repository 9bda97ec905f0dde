"""Helpers of the fastapi-db-auth contract suite.

The grader's plugin (grader.checks.contract) provides `target`, `client`, `client_factory` and
`db_url`. This file adds `api`: a small helper bound to the test's recorded client that registers
users with deterministic, unique e-mails (the test's name plus a counter of its own: reproducible
runs, no randomness, and a test that stops early never shifts another test's e-mails), logs them in
and creates items. Each of these helpers is a `grader.testing.step` ("register a user", "log in",
"create an item"): when it fails, a test that needs it is "not checked: could not log in (POST
/token answered 404)" — it costs its share, grouped under that root cause — rather than failing
on what it checks. Tests whose subject is registering or logging in send that request themselves.

E-mails look like `<test-name>-<n>@example.com`. When the suite runs again on a database that
already holds users (the same app graded twice), a run tag `.r<number of users already there>` is
added, so the e-mails stay deterministic for a given database state yet never collide.

Registering and logging in cost a slow password hash each (argon2/bcrypt, ~0.3 s), so only tests
about registration or login make fresh users. The others take run-scoped shared users:
`api.shared("owner")` (an item owner / "some authenticated user"), `api.shared("other")` (a second
user: intruder, other owner) and `api.itemless()` (a user whose own item list is [] when the test
starts). The shared users are registered together (e-mails `shared-<name>@example.com`) by the
first test that needs one, and each is logged in once per run and app by the first test that needs
its token, so every test still runs alone (`-k name`). Nobody asserts
"owner"'s or "other"'s own item list; tests that need an exact list use `api.itemless()`, which
checks the list and registers a replacement when it is not empty (a broken app cannot leak one
test's items into another), and leave it empty again when they pass. After `api.restart()` every
shared user is checked again (its token, then its row) before its next use.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import time
from dataclasses import dataclass, replace
from typing import Any

import httpx
import jwt
import pytest

from grader import appclient
from grader.testing import Mismatch, expect_equal, expect_json, expect_status, step

PASSWORD = "correct-horse-42"
MAX_PAGES = 200  # paging through a list stops here (100 rows a page)

_run_tag: str | None = None
# run-scoped shared users, keyed by name; reset by `_fresh_run` (one run = one app). Not keyed by
# the app's URL: a restart may move the app to another address, and the users stay the same.
_shared: dict[str, User] = {}
_replacements: dict[str, int] = {}  # how often a shared user was replaced (its e-mail suffix)
_checked: dict[str, int] = {}  # the app generation a shared user was last checked in
_generation = 0  # bumped by `api.restart()`
# the shared users, registered together in this order by the first test that needs one: a test
# that stops early (a failed step) never changes which test registers them, nor their order in
# GET /users/ (the differential check compares both with the reference's)
SHARED_ORDER = ("owner", "other", "itemless")


@pytest.fixture(scope="session", autouse=True)
def _fresh_run() -> None:
    """Every run starts without shared users (and counts the users already there again)."""
    global _run_tag, _generation
    _run_tag = None
    _shared.clear()
    _replacements.clear()
    _checked.clear()
    _generation = 0


def _count_users(target: Any) -> int:
    """How many users the app lists (0 when it cannot say). Not recorded: not part of any test;
    bounded like every request to the app (the app's guard: time, body size, breaker)."""
    total = 0
    try:
        with appclient.client(
            target.guard,
            target.local_address,
            base_url=target.base_url,
            timeout=httpx.Timeout(10.0, connect=5.0),
        ) as c:
            for page in range(MAX_PAGES):
                r = c.get("/users/", params={"skip": page * 100, "limit": 100})
                rows = r.json() if r.status_code == 200 else []
                if not isinstance(rows, list):
                    return total
                total += len(rows)
                if len(rows) < 100:
                    break
    except (httpx.HTTPError, ValueError):
        pass
    return total


@dataclass
class User:
    id: int
    email: str
    password: str
    token: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(username: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def expect_challenge(response: httpx.Response, scheme: str) -> None:
    """`WWW-Authenticate` names `scheme` (parameters after it, like realm="...", are allowed)."""
    value = response.headers.get("www-authenticate")
    first = value.split(None, 1)[0] if value and value.strip() else ""
    if first.lower() != scheme.lower():
        raise Mismatch(
            f"{response.request.method} {response.request.url.path} header WWW-Authenticate",
            expected=scheme,
            actual=value if value is not None else "header missing",
        )


def expect_detail(response: httpx.Response, detail: Any = None) -> Any:
    """A JSON error body `{"detail": ...}` (and, when given, that exact detail)."""
    body = expect_json(response)
    where = f"{response.request.method} {response.request.url.path} body"
    if not isinstance(body, dict) or "detail" not in body:
        raise Mismatch(where, expected='a JSON object {"detail": ...}', actual=body)
    if detail is not None:
        expect_equal(body, {**body, "detail": detail}, where)
    return body["detail"]


FORBIDDEN_KEYS = {"password", "hashed_password"}


def _secret_keys(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if str(key).lower() in FORBIDDEN_KEYS:
                found.add(str(key))
            found |= _secret_keys(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= _secret_keys(inner)
    return found


def expect_no_secrets(response: httpx.Response) -> None:
    """No `password`/`hashed_password` property anywhere in the body."""
    try:
        body = response.json()
    except ValueError:
        return
    keys = _secret_keys(body)
    if keys:
        raise Mismatch(
            f"{response.request.method} {response.request.url.path} body",
            expected="no password or hashed_password property",
            actual=f"properties {sorted(keys)} in {json.dumps(body)[:300]}",
        )


def expect_refused(response: httpx.Response, case: str = "") -> None:
    """The request was not let in: any answer but a success (the exact 401 and its header are
    checked by other tests; a critical test fails only on the hole itself)."""
    if 200 <= response.status_code < 300:
        where = f"{response.request.method} {response.request.url.path}" + (
            f" with {case}" if case else ""
        )
        raise Mismatch(
            where,
            expected="refused (401)",
            actual=f"let in: status {response.status_code}, body {response.text[:200]!r}",
        )


def expect_user_out(
    response: httpx.Response,
    *,
    email: str | None = None,
    user_id: int | None = None,
    secrets: bool = True,
) -> dict[str, Any]:
    body = expect_json(response)
    where = f"{response.request.method} {response.request.url.path} body"
    if not isinstance(body, dict):
        raise Mismatch(where, expected="a UserOut object {id, email, is_active}", actual=body)
    for key, kind in (("id", int), ("email", str), ("is_active", bool)):
        value = body.get(key)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise Mismatch(f"{where}: {key}", expected=f"{kind.__name__} (UserOut)", actual=body)
    if email is not None:
        expect_equal(body["email"], email, f"{where}: email")
    if user_id is not None:
        expect_equal(body["id"], user_id, f"{where}: id")
    if secrets:
        expect_no_secrets(response)
    return body


def expect_item_out(response: httpx.Response, **fields: Any) -> dict[str, Any]:
    body = expect_json(response)
    where = f"{response.request.method} {response.request.url.path} body"
    if not isinstance(body, dict):
        raise Mismatch(
            where, expected="an ItemOut object {id, title, description, owner_id}", actual=body
        )
    for key in ("id", "title", "description", "owner_id"):
        if key not in body:
            raise Mismatch(f"{where}: {key}", expected=f"property {key!r} (ItemOut)", actual=body)
    for key in ("id", "owner_id"):
        if not isinstance(body[key], int) or isinstance(body[key], bool):
            raise Mismatch(f"{where}: {key}", expected="an integer", actual=body)
    if not isinstance(body["title"], str):
        raise Mismatch(f"{where}: title", expected="a string", actual=body)
    if body["description"] is not None and not isinstance(body["description"], str):
        raise Mismatch(f"{where}: description", expected="a string or null", actual=body)
    for key, value in fields.items():
        expect_equal(body[key], value, f"{where}: {key}")
    return body


def expect_ids_ascending(rows: list[Any], what: str) -> list[int]:
    ids = [r.get("id") if isinstance(r, dict) else None for r in rows]
    if any(not isinstance(i, int) for i in ids):
        raise Mismatch(what, expected="a list of objects with integer ids", actual=rows[:5])
    for a, b in itertools.pairwise(ids):
        if not a < b:
            raise Mismatch(
                what, expected="ids in ascending order", actual=f"... {a}, {b} ... in {ids[:20]}"
            )
    return ids


class Api:
    """Assignment-specific steps, all through the test's recorded client.

    Test modules cannot import this conftest (the grader imports tests with importlib), so the
    expectations above are reachable as `api.<name>` too.
    """

    bearer = staticmethod(bearer)
    basic = staticmethod(basic)
    expect_challenge = staticmethod(expect_challenge)
    expect_detail = staticmethod(expect_detail)
    expect_no_secrets = staticmethod(expect_no_secrets)
    expect_refused = staticmethod(expect_refused)
    step = staticmethod(step)
    expect_user_out = staticmethod(expect_user_out)
    expect_item_out = staticmethod(expect_item_out)
    expect_ids_ascending = staticmethod(expect_ids_ascending)
    PASSWORD = PASSWORD

    def __init__(self, client: httpx.Client, request: pytest.FixtureRequest, target: Any) -> None:
        self.client = client
        self.target = target
        name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-") or "t"
        if len(name) > 36:  # parametrized tests share a long prefix: a digest keeps them apart
            name = f"{name[:29]}-{hashlib.sha256(name.encode()).hexdigest()[:6]}"
        self._name = name
        self._emails = itertools.count(1)

    # users --------------------------------------------------------------------------------------
    def email(self, local: str | None = None) -> str:
        """A new deterministic e-mail (`local` instead of `<test-name>-<n>` when given)."""
        global _run_tag
        if _run_tag is None:
            existing = _count_users(self.target)
            _run_tag = f".r{existing}" if existing else ""
        return f"{local or f'{self._name}-{next(self._emails)}'}{_run_tag}@example.com"

    @step("register a user")
    def register(
        self, password: str = PASSWORD, *, login: bool = True, local: str | None = None
    ) -> User:
        """A new user (201 expected) and, unless `login=False`, its bearer token."""
        for attempt in range(5):
            email = self.email(f"{local}{f'-{attempt}' if attempt else ''}" if local else None)
            r = self.client.post("/users/", json={"email": email, "password": password})
            if r.status_code == 400 and "already" in r.text.lower():
                continue  # the e-mail exists after all (the database was reused): take the next one
            # a prerequisite: any success will do (201 itself is checked by the users tests, so a
            # wrong success code costs points once, not in every test that needs a user)
            expect_status(r, 200, 201)
            # a leaked hash is test_no_password_in_any_user_response's (critical) business: here
            # it would fail every test that needs a user, and zero their items too
            body = expect_user_out(r, email=email, secrets=False)
            user = User(id=body["id"], email=email, password=password)
            if login:
                user.token = self.login(email, password)
            return user
        raise Mismatch(
            "POST /users/", expected="a fresh e-mail to be accepted", actual="400 five times"
        )

    def shared(self, name: str, *, login: bool = True) -> User:
        """The run's shared user `name` (registered once per run and app), logged in unless `login=False`.

        For tests that need "some user" or "some item owner", not a pristine one: never assert the
        shared user's own item list (use `itemless()`), never change its e-mail or password.
        """
        key = name
        user = _shared.get(key)
        if user is not None and _checked.get(key) != _generation:
            user = self._still_usable(user)
            if user is None:
                del _shared[key]
                _replacements[key] = _replacements.get(key, 0) + 1
        if user is None:
            for each in SHARED_ORDER if key in SHARED_ORDER else (key,):
                if each not in _shared:
                    n = _replacements.get(each, 0)
                    _shared[each] = self.register(
                        login=False, local=f"shared-{each}{f'-v{n}' if n else ''}"
                    )
                    _checked[each] = _generation
            user = _shared[key]
        _checked[key] = _generation
        if login and not user.token:
            user.token = self.login(user.email, user.password)
        return replace(user)  # a copy: the cached user stays as it is

    def itemless(self, name: str = "itemless") -> User:
        """A shared user (with a token) whose GET /users/me/items/ is [] right now.

        A test that adds items to it must delete them again once it passed; when the list is not
        empty (a failed test, a broken app), the shared user is replaced by a new one.
        """
        user = self.shared(name)
        r = self.client.get("/users/me/items/", headers=user.headers)
        try:
            empty = r.status_code == 200 and r.json() == []
        except ValueError:
            empty = False
        if empty:
            return user
        key = name
        _shared.pop(key, None)
        _replacements[key] = _replacements.get(key, 0) + 1
        return self.shared(name)

    def _still_usable(self, user: User) -> User | None:
        """After a restart: keep the token if the app still takes it, the user if its row is there."""
        if user.token:
            if self.client.get("/users/me", headers=user.headers).status_code == 200:
                return user
            user.token = ""  # log in again on the next use
        if self.client.get(f"/users/{user.id}").status_code == 200:
            return user
        return None

    def restart(self) -> None:
        """Restart the app (`target.restart`); shared users are checked again before their next use."""
        global _generation
        self.target.restart()
        _generation += 1

    @step("log in")
    def login(self, email: str, password: str) -> str:
        r = self.client.post("/token", data={"username": email, "password": password})
        expect_status(r, 200)
        body = expect_json(r)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise Mismatch(
                "POST /token body", expected='{"access_token": "<jwt>", ...}', actual=body
            )
        return token

    # items --------------------------------------------------------------------------------------
    @step("create an item")
    def create_item(
        self, user: User, title: str = "A title", description: str | None = None
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"title": title}
        if description is not None:
            payload["description"] = description
        r = self.client.post(f"/users/{user.id}/items/", json=payload, headers=user.headers)
        expect_status(r, 200, 201)  # prerequisite: 201 itself is checked by the items tests
        return expect_item_out(r, title=title, owner_id=user.id)

    # lists --------------------------------------------------------------------------------------
    def all_rows(self, path: str) -> list[dict[str, Any]]:
        """Every row of a paginated list, page by page (limit=100)."""
        rows: list[dict[str, Any]] = []
        for page in range(MAX_PAGES):
            r = self.client.get(path, params={"skip": page * 100, "limit": 100})
            expect_status(r, 200)
            body = expect_json(r)
            if not isinstance(body, list):
                raise Mismatch(f"GET {path} body", expected="a JSON list", actual=body)
            if len(body) > 100:
                raise Mismatch(
                    f"GET {path}?limit=100", expected="at most 100 rows", actual=f"{len(body)} rows"
                )
            rows += body
            if len(body) < 100:
                break
        return rows

    # tokens -------------------------------------------------------------------------------------
    @property
    def secret(self) -> str:
        return self.target.env["SECRET_KEY"]

    @property
    def expire_minutes(self) -> int:
        return int(self.target.env.get("ACCESS_TOKEN_EXPIRE_MINUTES") or 30)

    def forge(self, claims: dict[str, Any], *, key: str | None = None, alg: str = "HS256") -> str:
        return jwt.encode(claims, key if key is not None else self.secret, algorithm=alg)

    @staticmethod
    def forge_alg_none(claims: dict[str, Any]) -> str:
        def part(obj: dict[str, Any]) -> str:
            raw = json.dumps(obj, separators=(",", ":")).encode()
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

        return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."

    @staticmethod
    def future(seconds: int = 600) -> int:
        return int(time.time()) + seconds


@pytest.fixture
def api(client: httpx.Client, request: pytest.FixtureRequest, target: Any) -> Api:
    return Api(client, request, target)


@pytest.fixture
def missing_id() -> int:
    """An id no row has (well inside Postgres' integer range)."""
    return 2_000_000_000
