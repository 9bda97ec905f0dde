"""Local mode: the submission runs as processes instead of containers, for machines without a
Docker engine (a student's laptop, Gradescope's autograder container).

- its dependencies go into a virtual environment made from its `requirements.txt`, cached by the
  file's hash (and the Python version), so a second run installs nothing;
- its database is a throwaway PostgreSQL cluster of the machine's binaries (`localpg`), or fresh
  databases on a server the user names (`--database-url`), dropped afterwards;
- the app is started as its image would start it: the Dockerfile's CMD/ENTRYPOINT (grader.dockerfile)
  when that is a plain uvicorn / gunicorn / `fastapi run` command — the commands chained before it
  (`alembic upgrade head && …`) included —, from the virtual environment, in the folder its WORKDIR
  holds, on a free port of 127.0.0.1; else the assignment's `runtime.local_command` when the module
  it names exists; else a start failure that says what to change. The same env contract as in a
  container; stopped with its whole process group.

Programs resolve in the virtual environment only, by name (never the grader's own `alembic` or
`uvicorn`, never a file a path in the Dockerfile names, such as the submission's own `./uvicorn`):
one missing from requirements.txt fails as it would in the image; a path or a shell whose name is no
program of the venv is refused with the reason. The server's options whose values are paths
(`--app-dir`, `--chdir`, `--env-file`, `-c` …) must name files inside the submission.

There is no sandbox here: local mode is for code its owner runs (self-check) or for machines that
are themselves throwaway (Gradescope). Untrusted batches are graded in Docker.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.machinery
import logging
import os
import posixpath
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from grader import dockerfile
from grader.assignment import Runtime
from grader.core import CACHE_DIR, GraderFault, Target, free_port, with_database
from grader.run import wait_health, with_log_line

MIGRATE = [sys.executable, "-m", "alembic", "upgrade", "head"]
SERVE = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", "{port}"]
VENVS = CACHE_DIR / "venvs"
logger = logging.getLogger(__name__)
# what the app inherits from the grader's environment (the rest is the assignment's env contract)
PASSED_ENV = (
    "HOME",
    "LANG",
    "LC_ALL",
    "TMPDIR",
    "TZ",
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "PIP_CERT",
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
)
# programs an image has without requirements.txt that run no other program (a shell or `env` would
# run what it is given, a file of the submission); everything else must come from the venv
SYSTEM = {"echo", "sleep", "true"}
CHANGE = 'write the commands it runs into the CMD (`sh -c "alembic upgrade head && uvicorn …"`)'
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
Step = tuple[list[str], Path]  # a command and the folder it runs in


class LocalAppError(Exception):
    """The app could not be installed, migrated or started. `reason`: one line that says why;
    `log`: the output behind it; `answered`: it runs and answers HTTP, but never passed its health
    check (the checks may run anyway)."""

    def __init__(self, reason: str, log: str = "", *, answered: bool = False) -> None:
        super().__init__(f"{reason}\n{log}".rstrip())
        self.reason, self.log, self.answered = reason, log, answered


def venv_for(app_dir: Path, *, timeout: float = 600.0) -> Path:
    """A virtual environment with the app's requirements, made once per requirements file."""
    requirements = app_dir / "requirements.txt"
    if not requirements.is_file():
        raise LocalAppError(
            "there is no requirements.txt at the root of the submission: local mode "
            "installs the app's dependencies from it (pip install -r requirements.txt "
            "into a virtual environment), so add one listing what the app imports"
        )
    digest = hashlib.sha256(sys.version.encode() + requirements.read_bytes()).hexdigest()[:16]
    venv = VENVS / digest
    VENVS.mkdir(parents=True, exist_ok=True)
    with (VENVS / f"{digest}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two grades with the same requirements build it once
        if (venv / ".complete").exists():
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        logger.info("installing requirements.txt into a virtual environment (cached by its hash)")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        try:
            done = subprocess.run(
                [
                    str(venv / "bin" / "python"),
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "-q",
                    "-r",
                    str(requirements),
                ],
                cwd=app_dir,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            shutil.rmtree(venv, ignore_errors=True)
            raise LocalAppError(
                f"pip install -r requirements.txt took longer than {timeout:.0f} s"
            ) from None
        if done.returncode != 0:
            from grader.build import error_line

            shutil.rmtree(venv, ignore_errors=True)
            output = (done.stdout + done.stderr).strip()[-3000:]
            raise LocalAppError(
                f"pip install -r requirements.txt failed: {error_line(output)}", output
            )
        (venv / ".complete").touch()
    return venv


@dataclass(frozen=True)
class Plan:
    """How local mode starts an app: `steps` first (each must succeed), the server last."""

    serve: list[str]  # "{host}" and "{port}": where local mode has it listen
    cwd: Path
    steps: list[Step] = field(default_factory=list)
    # command lists run before the server's (a `;` chain): a failure ends its list only
    before: list[list[Step]] = field(default_factory=list)
    source: str = ""  # where the command comes from, for the report
    note: str = ""  # why not the Dockerfile's command, when it is the assignment's


def plan_for(root: Path, runtime: Runtime) -> Plan:
    """Start the app as its Dockerfile's CMD would, or the assignment's `local_command` when that
    is not a plain server command and the module it names exists; else LocalAppError saying what
    to change."""
    image = _image(root)
    try:
        if image is None:
            raise dockerfile.Unsupported("there is no Dockerfile")
        launch = dockerfile.launch(image, env_keys=runtime.env)
    except dockerfile.Unsupported as exc:
        return _fallback(root, runtime, image, str(exc))
    if launch.listens is not None:
        _reachable(launch.listens, runtime.port, image.text)
    cwd = _folder(root, image, launch.serve.workdir)
    serve = list(launch.serve.argv)
    for at in launch.serve.paths:
        parts = serve[at].split(",") if serve[at - 1] in dockerfile.LISTS else [serve[at]]
        serve[at] = ",".join(_inside(root, image, cwd, part, image.text) for part in parts)
    _not_shadowed(serve, cwd)
    return Plan(
        serve=serve,
        cwd=cwd,
        steps=[(c.argv, _folder(root, image, c.workdir)) for c in launch.steps],
        before=[
            [(c.argv, _folder(root, image, c.workdir)) for c in group] for group in launch.before
        ],
        source=f"the Dockerfile's command `{image.text}`",
    )


def workdir_for(root: Path) -> Path:
    """The folder of the submission the image's WORKDIR holds (where its commands run); the
    submission's root when the Dockerfile does not say."""
    image = _image(root)
    return root if image is None else _folder(root, image, image.workdir)


def _image(root: Path) -> dockerfile.Image | None:
    try:
        return dockerfile.parse((root / "Dockerfile").read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None


def _folder(root: Path, image: dockerfile.Image, path: str) -> Path:
    return image.source(root, path) or root


def _inside(root: Path, image: dockerfile.Image, cwd: Path, value: str, command: str) -> str:
    """The file of the submission that a server option's path names, its symlinks resolved: a
    relative path from `cwd`, an absolute one where the image's COPY put that part of the
    submission. LocalAppError when it is outside the submission."""
    path: Path | None = cwd / value
    if posixpath.isabs(value):
        container = posixpath.normpath(value)
        folder = image.source(root, posixpath.dirname(container))
        path = image.source(root, container) or (
            folder / posixpath.basename(container) if folder is not None else None
        )
    if path is None or not path.resolve().is_relative_to(root.resolve()):
        raise LocalAppError(
            f"the Dockerfile's command `{command}` gives the path `{value}`, outside the "
            "submission: local mode lets the server use the submission's files only, so name a "
            "file or folder inside it (relative to the WORKDIR, or where a COPY puts it)"
        )
    return str(path.resolve())


def _not_shadowed(serve: list[str], cwd: Path) -> None:
    """`python -m uvicorn` imports the module from the folder it runs in first: a file of the
    submission named like the server would run instead of the installed server."""
    if not (dockerfile.PYTHON.match(serve[0]) and serve[1:2] == ["-m"]):
        return
    name = serve[2].split(".")[0]
    suffixes = importlib.machinery.all_suffixes()
    if any(
        (cwd / (name + s)).is_file() or (cwd / name / f"__init__{s}").is_file() for s in suffixes
    ):
        raise LocalAppError(
            f"`{shlex.join(serve[:3])}` would run the submission's own `{name}` (a module of that "
            f"name next to the app), not the installed {name}: rename it, or start `{name} …`"
        )


def _reachable(listens: tuple[str, int], port: int, command: str) -> None:
    """Fail as the container would when the command listens where the grader cannot reach it."""
    host, bound = listens
    if host in LOCAL_HOSTS:
        raise LocalAppError(
            f"the Dockerfile's command `{command}` listens on {host}:{bound}, inside the container "
            f"only: the grader reaches the app on port {port} of the container's address, so listen "
            f"on 0.0.0.0 (uvicorn --host 0.0.0.0 --port {port}, gunicorn --bind 0.0.0.0:{port})"
        )
    if bound != port:
        raise LocalAppError(
            f"the Dockerfile's command `{command}` listens on port {bound}, but the app must listen "
            f"on port {port} (--port {port}, or --bind 0.0.0.0:{port} for gunicorn)"
        )


def _fallback(root: Path, runtime: Runtime, image: dockerfile.Image | None, why: str) -> Plan:
    command = shlex.join(
        part.replace("{port}", str(runtime.port)) for part in runtime.local_command
    )
    module = next(
        (
            m.group(1)
            for arg in runtime.local_command
            if (m := re.fullmatch(r"([\w.]+):[\w.]+", arg))
        ),
        None,
    )
    # the Dockerfile's words, or why there are none ("there is no Dockerfile", "… has no CMD")
    yours = f"`{image.text}` ({why})" if image is not None and image.text else why
    if module is None or _has_module(root, module):
        steps = [(list(runtime.migrate), root)] if runtime.migrate else []
        why_not = f"local mode does not run the Dockerfile's command {yours}"
        note = (
            f"{why_not if image is not None and image.text else why}: the app was started with "
            f"the assignment's `{command}` instead"
        )
        return Plan(
            serve=list(runtime.local_command),
            cwd=root,
            steps=steps,
            source=f"the assignment's local command `{command}`",
            note=note,
        )
    raise LocalAppError(
        f"local mode runs the Dockerfile's CMD when it is a plain uvicorn/gunicorn/fastapi command; "
        f"{'yours is ' if image is not None and image.text else ''}{yours}, and the assignment's `{command}` finds no module {module}: make the CMD "
        f"e.g. `uvicorn <module>:app --host 0.0.0.0 --port {runtime.port}`, run from the WORKDIR "
        f"that holds <module>"
    )


def _has_module(root: Path, module: str) -> bool:
    path = root.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


class Missing(Exception):
    """A program the app's virtual environment does not have."""


class Refused(Exception):
    """A command local mode does not run: it would run a file of the submission (a path or a
    shell script) instead of a program of the virtual environment. The message says what to do."""


def resolve(argv: Sequence[str], venv: Path | None) -> list[str]:
    """`argv` with its program from the virtual environment, by name only: `python` (any version)
    is the venv's, `uvicorn`, `./uvicorn` or `/usr/local/bin/alembic` the venv's script of that
    name, `echo` the system's. Never a file a path names: a path whose name is no program of the
    venv, or a shell (it would run a script), raises Refused; any other program missing from the
    venv raises Missing (the image would not have it either). No venv: as given (the grader's
    own commands)."""
    if venv is None:
        return list(argv)
    program = argv[0]
    name = posixpath.basename(program)
    if dockerfile.PYTHON.match(name):
        return [str(venv / "bin" / "python"), *argv[1:]]
    if name not in {"", ".", ".."} and (venv / "bin" / name).is_file():
        return [str(venv / "bin" / name), *argv[1:]]
    if name in SYSTEM:
        folders = os.pathsep.join(d for d in os.get_exec_path() if os.path.isabs(d))
        found = shutil.which(name, path=folders)  # never a relative PATH entry (the app's folder)
        if found:
            return [found, *argv[1:]]
    if name in dockerfile.SHELLS:
        raise Refused(
            f"`{shlex.join(argv)}` runs a shell, which runs a script of the submission: local mode "
            f"runs programs of the app's virtual environment only; {CHANGE}"
        )
    if "/" in program:
        raise Refused(
            f"`{shlex.join(argv)}` does not run: `{program}` is a file, and local mode runs the "
            "programs of the app's virtual environment by name only (from requirements.txt), never "
            f"a file of the submission; the venv has no `{name}`, so {CHANGE}"
        )
    raise Missing(name)


def environ(env: dict[str, str], venv: Path | None) -> dict[str, str]:
    """What a process of the app gets: a few of the grader's variables, the venv first on PATH, the
    assignment's env contract."""
    base = {k: v for k, v in os.environ.items() if k in PASSED_ENV}
    path = os.environ.get("PATH", os.defpath)
    if venv is not None:
        base["VIRTUAL_ENV"] = str(venv)
        path = f"{venv / 'bin'}{os.pathsep}{path}"
    return {**base, "PATH": path, "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1", **env}


def run_once(
    command: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    venv: Path | None,
    out: IO[bytes],
    timeout: float,
) -> int | None:
    """Run `command` to its end, its output to `out`: its exit code, None when cut at `timeout`
    seconds (its whole process group), 127 when its program is missing (as a shell says)."""
    try:
        argv = resolve(command, venv)
    except Missing as exc:
        out.write(
            f"{exc}: not found in the app's virtual environment (made from requirements.txt)\n".encode()
        )
        out.flush()
        return 127
    except Refused as exc:
        out.write(f"{exc}\n".encode())
        out.flush()
        return 126
    try:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=environ(env, venv),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        out.write(f"{command[0]}: {exc.strerror}\n".encode())
        out.flush()
        return 127
    try:
        return process.wait(timeout=max(timeout, 0.1))
    except subprocess.TimeoutExpired:
        _kill(process)
        return None


def _kill(process: subprocess.Popen[bytes]) -> None:
    """End `process` and its whole group (gunicorn's workers, a reloader's child)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


class LocalApp:
    """One app process: its start commands, serve on a free port, wait for health, restart on the
    same port."""

    def __init__(
        self,
        app_dir: Path,
        env: dict[str, str],
        log_path: Path,
        *,
        serve: list[str] = SERVE,
        health_path: str = "/health",
        deadline: float = 60.0,
        venv: Path | None = None,
        steps: Sequence[Step] = (),
        before: Sequence[Sequence[Step]] = (),
        cwd: Path | None = None,
    ) -> None:
        self.app_dir, self.env, self.log_path, self.venv = app_dir, env, log_path, venv
        self.cwd = cwd or app_dir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.serve = [
            part.replace("{host}", "127.0.0.1").replace("{port}", str(self.port)) for part in serve
        ]
        self.steps, self.before = list(steps), [list(group) for group in before]
        self.health_path, self.deadline = health_path, deadline
        self.healthy = True  # False: it answered HTTP but never passed its health check
        self._log: IO[bytes] | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    def for_runtime(
        cls,
        app_dir: Path,
        env: dict[str, str],
        log_path: Path,
        runtime: Runtime,
        venv: Path,
        plan: Plan | None = None,
    ) -> LocalApp:
        """Started as its image would start it (`plan_for`), with the runtime contract's health
        check and deadline."""
        plan = plan or plan_for(app_dir, runtime)
        return cls(
            app_dir,
            env,
            log_path,
            serve=plan.serve,
            health_path=runtime.health_path,
            deadline=runtime.start_deadline,
            venv=venv,
            steps=plan.steps,
            before=plan.before,
            cwd=plan.cwd,
        )

    def migrate(self, command: list[str] = MIGRATE) -> None:
        """Run `command` (the migrations) to its end; LocalAppError when it fails."""
        with self.log_path.open("ab") as out:
            code = run_once(
                command, cwd=self.cwd, env=self.env, venv=self.venv, out=out, timeout=120
            )
        if code != 0:
            what = "did not end within 120 s" if code is None else f"failed (exit {code})"
            raise LocalAppError(f"`{shlex.join(command)}` {what}", self.log_tail(3000))

    def start(self) -> None:
        """Its start commands, then the server; returns once it is healthy. LocalAppError when it
        is not: `answered` when it runs and answers HTTP all the same (it keeps running)."""
        programs = [argv for group in self.before for argv, _ in group]
        for argv in [*programs, *(argv for argv, _ in self.steps), self.serve]:
            try:  # before anything runs: none of them runs a file of the submission
                resolve(argv, self.venv)
            except Refused as exc:
                raise LocalAppError(str(exc)) from None
            except Missing:
                pass  # it fails in its turn, as in the image
        self._log = self.log_path.open("ab")
        end = time.monotonic() + self.deadline
        for group in self.before:  # `a; b; server`: a failure ends its own list only
            for argv, cwd in group:
                if (
                    run_once(
                        argv,
                        cwd=cwd,
                        env=self.env,
                        venv=self.venv,
                        out=self._log,
                        timeout=end - time.monotonic(),
                    )
                    != 0
                ):
                    break
        for argv, cwd in self.steps:
            code = run_once(
                argv,
                cwd=cwd,
                env=self.env,
                venv=self.venv,
                out=self._log,
                timeout=end - time.monotonic(),
            )
            if code is None:
                raise LocalAppError(
                    f"not healthy within {self.deadline:g} s: `{shlex.join(argv)}` "
                    "was still running",
                    self.log_tail(),
                )
            if code:
                reason = with_log_line(
                    f"`{shlex.join(argv)}` exited with code {code} before the app started",
                    self._full_log(),
                )
                raise LocalAppError(reason, self.log_tail())
        try:
            # its own session: stop() ends the whole process group (gunicorn's workers too)
            self.process = subprocess.Popen(
                resolve(self.serve, self.venv),
                cwd=self.cwd,
                env=environ(self.env, self.venv),
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except Missing as exc:
            raise LocalAppError(
                f"`{exc}` is not installed in the app's virtual environment: add it "
                "to requirements.txt"
            ) from None
        except OSError as exc:
            raise LocalAppError(f"`{shlex.join(self.serve)}` could not run: {exc}") from None
        # the whole start has the deadline, as a container's (its CMD runs the steps too)
        left = (
            round(max(end - time.monotonic(), 0.0), 1)
            if self.steps or self.before
            else self.deadline
        )
        health = wait_health(
            self.base_url + self.health_path, left, alive=self._alive, any_answer=not self.healthy
        )
        if health.reason:
            answered = health.status is not None and not health.stopped
            self.healthy = not answered
            raise LocalAppError(
                with_log_line(health.reason, self._full_log(), answered=answered),
                self.log_tail(),
                answered=answered,
            )

    def _alive(self) -> str | None:
        assert self.process is not None
        code = self.process.poll()
        return None if code is None else f"the app exited with code {code} before answering"

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            _kill(process)
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> None:
        self.stop()
        try:
            self.start()
        except LocalAppError as exc:
            raise AssertionError(f"after a restart: {exc.reason}") from None

    def target(self, database_url: str | None) -> Target:
        return Target(
            base_url=self.base_url,
            env=dict(self.env),
            database_url=database_url,
            restart=self.restart,
        )

    def log_tail(self, limit: int = 4000) -> str:
        return self._full_log()[-limit:]

    def _full_log(self, limit: int = 200_000) -> str:
        """The end of the log, long enough for a traceback's first line (with_log_line)."""
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""


class LocalServices:
    """The local counterpart of `services.Services`: `${...}` values and fresh databases, on a
    throwaway cluster or on the server of `database_url`. On the cluster each database has an
    owner role of its own, as in Docker (so an app that needs more rights fails here too); on
    `database_url`'s server everything runs as the account that URL names."""

    def __init__(
        self, *, values: dict[str, str], postgres: bool, database_url: str | None = None
    ) -> None:
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
            raise GraderFault(
                f"cannot create a database on --database-url ({exc}); the grader needs "
                "a user allowed to CREATE DATABASE, and drops what it creates"
            ) from exc
        self._created.append(db)
        url = with_database(self._server, db)
        return url, url

    def stop(self) -> None:
        if self._cluster is not None:
            self._cluster.stop()
        if self._created:
            import psycopg

            assert self._server is not None
            with (
                contextlib.suppress(psycopg.Error),
                psycopg.connect(self._server, autocommit=True, connect_timeout=10) as conn,
            ):
                for db in self._created:
                    conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def _plain(url: str) -> str:
    """postgresql+asyncpg://… → postgresql://… (the grader connects with psycopg)."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.startswith("postgres"):
        raise GraderFault(f"--database-url must be a postgresql:// URL, not {url!r}")
    return f"postgresql://{rest}"
