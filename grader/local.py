"""Local mode: the submission runs as processes instead of containers, for machines without a
Docker engine (a student's laptop, Gradescope's autograder container).

- its dependencies go into a virtual environment made from its `requirements.txt`, cached by the
  file's hash (and the Python version), so a second run installs nothing;
- its database is a throwaway PostgreSQL cluster of the machine's binaries (`localpg`), or fresh
  databases on a server the user names (`--database-url`), dropped afterwards;
- the app is started with the assignment's `runtime.local_command` on a free port of 127.0.0.1,
  with the same env contract as in a container, and stopped with its whole process group.

There is no sandbox here: local mode is for code its owner runs (self-check) or for machines that
are themselves throwaway (Gradescope). Untrusted batches are graded in Docker.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO

from grader.assignment import Runtime
from grader.core import CACHE_DIR, GraderFault, Target, free_port, with_database
from grader.run import wait_healthy

MIGRATE = [sys.executable, "-m", "alembic", "upgrade", "head"]
SERVE = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", "{port}"]
VENVS = CACHE_DIR / "venvs"
# what the app inherits from the grader's environment (the rest is the assignment's env contract)
PASSED_ENV = ("HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE",
              "PIP_CERT", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "HTTP_PROXY", "HTTPS_PROXY",
              "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")


class LocalAppError(Exception):
    """The app could not be installed, migrated or started; the message says why (a log tail)."""


def venv_for(app_dir: Path, *, timeout: float = 600.0, log: Callable[[str], None] = print) -> Path:
    """A virtual environment with the app's requirements, made once per requirements file."""
    requirements = app_dir / "requirements.txt"
    if not requirements.is_file():
        raise LocalAppError("there is no requirements.txt at the root of the submission: local mode "
                            "installs the app's dependencies from it")
    digest = hashlib.sha256(sys.version.encode() + requirements.read_bytes()).hexdigest()[:16]
    venv = VENVS / digest
    VENVS.mkdir(parents=True, exist_ok=True)
    with (VENVS / f"{digest}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two grades with the same requirements build it once
        if (venv / ".complete").exists():
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        log("installing requirements.txt into a virtual environment (cached by its hash)")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        try:
            done = subprocess.run(
                [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
                 "-q", "-r", str(requirements)],
                cwd=app_dir, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            shutil.rmtree(venv, ignore_errors=True)
            raise LocalAppError(f"pip install -r requirements.txt took longer than {timeout:.0f} s") from None
        if done.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            raise LocalAppError("pip install -r requirements.txt failed:\n"
                                + (done.stdout + done.stderr).strip()[-3000:])
        (venv / ".complete").touch()
    return venv


class LocalApp:
    """One app process: migrate, serve on a free port, wait for health, restart on the same port."""

    def __init__(self, app_dir: Path, env: dict[str, str], log_path: Path, *,
                 serve: list[str] = SERVE, health_path: str = "/health", deadline: float = 60.0,
                 venv: Path | None = None) -> None:
        self.app_dir, self.env, self.log_path, self.venv = app_dir, env, log_path, venv
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.serve = [part.replace("{port}", str(self.port)) for part in serve]
        self.health_path, self.deadline = health_path, deadline
        self._log: IO[bytes] | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    def for_runtime(cls, app_dir: Path, env: dict[str, str], log_path: Path, runtime: Runtime,
                    venv: Path) -> LocalApp:
        """Served as the assignment's runtime contract says, in local mode."""
        return cls(app_dir, env, log_path, serve=runtime.local_command, health_path=runtime.health_path,
                   deadline=runtime.start_deadline, venv=venv)

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k in PASSED_ENV}
        path = os.environ.get("PATH", os.defpath)
        if self.venv is not None:  # `uvicorn`, `alembic`, `gunicorn` are the venv's
            env["VIRTUAL_ENV"] = str(self.venv)
            path = f"{self.venv / 'bin'}{os.pathsep}{path}"
        return {**env, "PATH": path, "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1", **self.env}

    def migrate(self, command: list[str] = MIGRATE) -> None:
        try:
            done = subprocess.run(command, cwd=self.app_dir, env=self._env(), capture_output=True,
                                  text=True, timeout=120, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise LocalAppError(f"`{' '.join(command)}` could not run: {exc}") from None
        if done.returncode != 0:
            raise LocalAppError(f"`{' '.join(command)}` failed (exit {done.returncode}):\n"
                                + (done.stdout + done.stderr).strip()[-3000:])

    def start(self) -> None:
        self._log = self.log_path.open("ab")
        try:
            # its own session: stop() ends the whole process group (gunicorn's workers too)
            self.process = subprocess.Popen(self.serve, cwd=self.app_dir, env=self._env(), stdout=self._log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            raise LocalAppError(f"`{' '.join(self.serve)}` could not run: {exc}") from None
        reason = wait_healthy(self.base_url + self.health_path, self.deadline, alive=self._alive)
        if reason:
            raise LocalAppError(f"{reason}\n{self.log_tail()}")

    def _alive(self) -> str | None:
        assert self.process is not None
        code = self.process.poll()
        return None if code is None else f"the app exited with code {code} before answering"

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, sig)
                try:
                    process.wait(timeout=10)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def target(self, database_url: str | None) -> Target:
        return Target(base_url=self.base_url, env=dict(self.env), database_url=database_url,
                      restart=self.restart)

    def log_tail(self, limit: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""


class LocalServices:
    """The local counterpart of `services.Services`: `${...}` values and fresh databases, on a
    throwaway cluster or on the server of `database_url`. On the cluster each database has an
    owner role of its own, as in Docker (so an app that needs more rights fails here too); on
    `database_url`'s server everything runs as the account that URL names."""

    def __init__(self, *, values: dict[str, str], postgres: bool, database_url: str | None = None) -> None:
        from grader import localpg

        self.values = dict(values)
        self.grader_database_url: str | None = None
        self._cluster: localpg.LocalPostgres | None = None
        self._server = _plain(database_url) if database_url else None
        self._created: list[str] = []
        self._prefix = f"grader_{uuid.uuid4().hex[:8]}"
        if not postgres:
            return
        if self._server is None:
            self._cluster = localpg.LocalPostgres()
        url, _ = self.create_database("app")
        self.values["postgres_url"] = self.grader_database_url = url

    def create_database(self, name: str) -> tuple[str, str]:
        """A new empty database: (URL for apps, URL for the grader) — the same URL here."""
        if self._cluster is not None:
            from grader.services import own_database

            role, password = own_database(self._cluster.url, name)
            url = f"postgresql://{role}:{password}@127.0.0.1:{self._cluster.port}/{name}"
            return url, url
        import psycopg

        assert self._server is not None
        db = f"{self._prefix}_{name}"
        try:
            with psycopg.connect(self._server, autocommit=True, connect_timeout=10) as conn:
                conn.execute(f'CREATE DATABASE "{db}"')
        except psycopg.Error as exc:
            raise GraderFault(f"cannot create a database on --database-url ({exc}); the grader needs "
                              "a user allowed to CREATE DATABASE, and drops what it creates") from exc
        self._created.append(db)
        url = with_database(self._server, db)
        return url, url

    def stop(self) -> None:
        if self._cluster is not None:
            self._cluster.stop()
        if self._created:
            import psycopg

            assert self._server is not None
            with contextlib.suppress(psycopg.Error), \
                    psycopg.connect(self._server, autocommit=True, connect_timeout=10) as conn:
                for db in self._created:
                    conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def _plain(url: str) -> str:
    """postgresql+asyncpg://… → postgresql://… (the grader connects with psycopg)."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.startswith("postgres"):
        raise GraderFault(f"--database-url must be a postgresql:// URL, not {url!r}")
    return f"postgresql://{rest}"
