"""The runtime seam (grader.runtimes) without Docker: the in-process runtime reports a student's
failure in `Started` (never by raising), restarts its app afresh, and leaves the grader's process
as it found it (modules, sys.path, env)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import httpx
import pytest

from grader import runtimes
from grader.assignment import load
from grader.core import GraderFault

ROOT = Path(__file__).resolve().parents[1]
SPEC = load("fastapi-basics")


def _app_modules() -> dict[str, object]:
    return {k: v for k, v in sys.modules.items() if k.partition(".")[0] == "app"}


def test_an_app_that_fails_to_import_is_a_start_failure(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "main.py").write_text("raise RuntimeError('no SECRET')\n")
    with runtimes.create("inprocess") as runtime:
        started = runtime.up(tmp_path, SPEC)
    assert started.target is None and not started.started and started.built is None
    assert "could not be imported" in started.reason and "no SECRET" in started.reason
    assert started.start_reason == started.reason


def test_restart_reimports_and_down_restores_the_process(tmp_path: Path) -> None:
    app = tmp_path / "app-copy"
    shutil.copytree(ROOT / "reference_solution" / SPEC.id, app)
    modules, path, env = _app_modules(), list(sys.path), dict(os.environ)
    with runtimes.create("inprocess") as runtime:
        started = runtime.up(app, SPEC)
        assert started.started and started.target is not None, started.reason
        first = sys.modules["app.main"]
        assert first.__file__ is not None and first.__file__.startswith(str(app))
        assert started.target.restart is not None
        started.target.restart()
        assert sys.modules["app.main"] is not first  # a new process would import it afresh
        assert httpx.get(started.target.base_url + "/").status_code == 200
        assert runtime.processes() is None  # no container to list
    assert _app_modules() == modules and sys.path == path
    assert {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"} == {
        k: v for k, v in env.items() if k != "PYTEST_CURRENT_TEST"
    }
    with pytest.raises(httpx.ConnectError):
        httpx.get(started.target.base_url + "/")


def test_unknown_runtime_is_the_graders_fault() -> None:
    with pytest.raises(GraderFault, match="unknown runtime"):
        runtimes.create("vm")
    assert runtimes.choose("inprocess") == "inprocess"


@pytest.mark.postgres
def test_in_process_beside_its_own_postgres(tmp_path: Path) -> None:
    """The database path without Docker: a throwaway cluster, the migrate command run alone on a
    database of its own, and the app storing what it is sent where the grader reads it."""
    import psycopg

    spec = load("fastapi-db-auth")
    app = tmp_path / "app-copy"
    shutil.copytree(ROOT / "reference_solution" / spec.id, app)
    with runtimes.create("inprocess") as runtime:
        started = runtime.up(app, spec)
        assert started.started and started.target is not None, started.reason
        assert started.migrate is not None and started.migrate.exit_code == 0, started.migrate
        target = started.target
        user = {"email": "in-process@example.com", "password": "a-long-password"}
        assert httpx.post(target.base_url + "/users/", json=user).status_code == 201
        assert target.database_url is not None
        with psycopg.connect(target.database_url) as db:
            rows = db.execute("SELECT email FROM users").fetchall()
        assert rows == [("in-process@example.com",)]
        with psycopg.connect(target.databases["migrated"]) as db:  # what the migrations made
            assert db.execute("SELECT count(*) FROM users").fetchone() == (0,)
