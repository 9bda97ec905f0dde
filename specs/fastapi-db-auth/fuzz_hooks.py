"""Schemathesis hooks for `fastapi-db-auth`: authenticate the fuzzer through the contract's own endpoints.

A fixed user is registered once per run with `POST /users/` (`fuzz-<seed>@example.com`), then
- operations secured by `OAuth2PasswordBearer` get `Authorization: Bearer <token>` from `POST /token`;
- operations secured by `HTTPBasic` get `Authorization: Basic base64(email:password)`;
- operations without security are left alone.
Schemathesis caches what `get` returns (see `refresh_interval`), so registration and login happen once.

The grader executes this file under a fresh module name for every run and calls `configure()`; the
providers it registers are moved from Schemathesis's global registry onto that run's schema, so
batch grading never stacks providers. It also works with the CLI as it is:

    FUZZ_SEED=1 SCHEMATHESIS_HOOKS=specs/fastapi-db-auth/fuzz_hooks.py \
        schemathesis run specs/fastapi-db-auth/openapi.yaml --url http://localhost:8000
"""

from __future__ import annotations

import base64
import os
import threading
from typing import Any

import requests
import schemathesis

TIMEOUT = (5.0, 10.0)  # connect, read

_settings: dict[str, Any] = {
    "seed": int(os.environ.get("FUZZ_SEED", "0")),
    "base_url": None,
    "session": requests.Session,
}
_lock = threading.Lock()
_account: dict[str, str] = {}  # email, password, token (filled on first use)


def configure(*, base_url: str, seed: int, env: dict[str, str], session: Any = None) -> None:
    """Called by the grader after loading this file; `session` makes the sessions to send with
    (the grader's: bounded in time and size like every request it sends)."""
    _settings["base_url"] = base_url.rstrip("/")
    _settings["seed"] = seed
    _settings["session"] = session or requests.Session


def _base_url(case: Any) -> str:
    configured = _settings["base_url"]
    if configured:
        return str(configured)
    return str(case.operation.schema.get_base_url()).rstrip("/")


def _credentials() -> tuple[str, str]:
    seed = _settings["seed"]
    return f"fuzz-{seed}@example.com", f"fuzz-password-{seed}"


def _account_for(case: Any) -> dict[str, str]:
    """Register the fuzzing user (once) and log in; raise with the app's answer when that fails."""
    with _lock:
        if _account:
            return _account
        email, password = _credentials()
        base_url = _base_url(case)
        with _settings["session"]() as client:
            created = client.post(
                f"{base_url}/users/", json={"email": email, "password": password}, timeout=TIMEOUT
            )
            # 400: already registered (a rerun against the same database) - logging in settles it.
            if created.status_code not in (200, 201, 400, 409):
                raise RuntimeError(
                    f"POST /users/ answered {created.status_code} while registering the fuzzing user: "
                    f"{created.text[:300]}"
                )
            login = client.post(
                f"{base_url}/token", data={"username": email, "password": password}, timeout=TIMEOUT
            )
            if login.status_code != 200:
                raise RuntimeError(f"POST /token answered {login.status_code}: {login.text[:300]}")
            try:
                token = login.json()["access_token"]
            except (ValueError, KeyError, TypeError) as exc:
                raise RuntimeError(
                    f"POST /token answered no access_token: {login.text[:300]}"
                ) from exc
        _account.update(email=email, password=password, token=str(token))
        return _account


def _set_header(case: Any, value: str) -> None:
    case.headers = {**(case.headers or {}), "Authorization": value}


@schemathesis.auth().apply_to(schemathesis.openapi.require_security_scheme("OAuth2PasswordBearer"))
class BearerAuth:
    def get(self, case: Any, context: Any) -> str:
        return _account_for(case)["token"]

    def set(self, case: Any, data: str, context: Any) -> None:
        _set_header(case, f"Bearer {data}")


@schemathesis.auth().apply_to(schemathesis.openapi.require_security_scheme("HTTPBasic"))
class BasicAuth:
    def get(self, case: Any, context: Any) -> str:
        account = _account_for(case)
        return base64.b64encode(f"{account['email']}:{account['password']}".encode()).decode()

    def set(self, case: Any, data: str, context: Any) -> None:
        _set_header(case, f"Basic {data}")
