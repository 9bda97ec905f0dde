"""The in-process runtime, for the grader's own tests: the app imported from the submission's
folder and served by uvicorn in a thread on 127.0.0.1, beside a throwaway Postgres (grader.localpg)
— no Docker, no virtual environment, the grader's own interpreter and packages.

The app's env contract is set in `os.environ` while it is imported and served (apps read it at
import) and restored by `down`. The app's top-level modules (`app`, …) are taken out of
`sys.modules` before the import and put back as they were after `down`, so two apps with the same
package names (a reference and a submission) never see each other's modules. Commands (the
image's steps before its server, the migrate command) run as processes with the grader's own
interpreter's programs. No sandbox at all: trusted code only."""

from __future__ import annotations

import importlib
import io
import logging
import os
import re
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from grader import local, run
from grader.assignment import Assignment
from grader.core import GraderFault, Target
from grader.runtimes.base import Runtime, Started
from grader.runtimes.local import migrate_alone

logger = logging.getLogger(__name__)
APP_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")  # module:attribute, as uvicorn takes it
PROGRAMS = Path(sys.prefix)  # the grader's own interpreter and its programs (alembic, …)


class InProcessRuntime(Runtime):
    """`database_url`: a Postgres server to create the run's databases on instead of a throwaway
    cluster. `reference`: the assignment's reference solution — migrated on its own database
    before it starts, no migrate command alone."""

    name = "inprocess"

    def __init__(self, *, database_url: str | None = None, reference: bool = False) -> None:
        super().__init__()
        self.database_url, self.reference = database_url, reference
        self.port = 0  # any free one at the first start; a restart listens on the same
        self._socket: socket.socket | None = None
        self._server: Any = None  # uvicorn.Server
        self._thread: threading.Thread | None = None
        self._log = io.StringIO()
        self._names: set[str] = set()  # the app's top-level module names
        self._cwd: Path | None = None
        self._ref = ""
        self._health = ""
        self._deadline = 60.0
        self._workdir = Path()
        self._healthy = True  # False: it answered HTTP but never passed its health check

    def up(self, root: Path, assignment: Assignment, *, twin: bool = False) -> Started:
        out = self.started = Started()
        timings = out.timings
        runtime = assignment.runtime
        logger.info("starting services")
        t = time.monotonic()
        svc = local.LocalServices(
            values=runtime.randoms(),
            postgres=assignment.services.postgres,
            database_url=self.database_url,
        )
        self.stack.callback(svc.stop)
        timings["database_ready"] = round(time.monotonic() - t, 2)
        env = run.expand_env(runtime, svc.values)
        self._workdir = Path(
            self.stack.enter_context(tempfile.TemporaryDirectory(prefix="grader-"))
        )
        migrated_url = None
        if not self.reference:
            migrated_url, out.migrate = migrate_alone(
                assignment, root, svc, PROGRAMS, self._workdir
            )
        logger.info("starting the app")
        t = time.monotonic()
        self._health, self._deadline = runtime.health_path, runtime.start_deadline
        out.logs = self._log.getvalue
        try:
            plan = local.plan_for(root, runtime)
            self._cwd = plan.cwd
            self._ref = _app_ref(plan.serve) or _app_ref(runtime.local_command)
            out.served = f"uvicorn in the grader's process, serving `{self._ref}`"
            self._environ(env)
            if self.reference and runtime.migrate:
                self._run(list(runtime.migrate), plan.cwd, env)
            for group in plan.before:  # `a; b; server`: a failure ends its own list only
                for argv, cwd in group:
                    if not self._run(argv, cwd, env, check=False):
                        break
            for argv, cwd in plan.steps:
                self._run(argv, cwd, env)
            self._serve()
        except local.LocalAppError as exc:
            out.reason = out.start_reason = exc.reason
            out.start_log = self._log.getvalue()
            out.answered_unhealthy = exc.answered  # as in Docker: checked all the same
        else:
            out.started = True
        if out.started or out.answered_unhealthy:
            out.target = Target(
                base_url=self.base_url(),
                env=dict(env),
                database_url=svc.grader_database_url,
                restart=self.restart,
                source=None if self.reference else root,  # tests may read the student's files
            )
            if migrated_url is not None:
                out.target.databases["migrated"] = migrated_url
        timings["app_ready"] = round(time.monotonic() - t, 2)
        return out

    def _environ(self, env: dict[str, str]) -> None:
        """The env contract in os.environ until `down`, then the grader's own again."""
        saved = {name: os.environ.get(name) for name in env}
        os.environ.update(env)

        def restore() -> None:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

        self.stack.callback(restore)

    def _run(self, argv: list[str], cwd: Path, env: dict[str, str], *, check: bool = True) -> bool:
        """One of the commands before the server, to its end: whether it succeeded; LocalAppError
        when it failed and `check`."""
        log = self._workdir / "step.log"
        with log.open("wb") as out:
            code = local.run_once(argv, cwd=cwd, env=env, venv=PROGRAMS, out=out, timeout=120)
        self._log.write(log.read_text(errors="replace"))
        log.unlink(missing_ok=True)
        if code != 0 and check:
            raise local.LocalAppError(f"`{' '.join(argv)}` exited with code {code}")
        return code == 0

    def _serve(self) -> None:
        """Import the app afresh and serve it until it is healthy; LocalAppError when not."""
        import uvicorn

        assert self._cwd is not None
        if not self._ref:
            raise local.LocalAppError("no `module:attribute` app in the start command")
        if not self._names:  # first start: what the app's folder may shadow, kept until `down`
            self._names = _top_level(self._cwd)
            saved = _take(self._names)
            sys.path.insert(0, str(self._cwd))
            handler = logging.StreamHandler(self._log)
            served = logging.getLogger("uvicorn")
            propagate = served.propagate
            served.addHandler(handler)
            served.propagate = False  # the app's log, not the grader's output
            self.stack.callback(_restore, self._names, saved, str(self._cwd), handler, propagate)
        module_name, _, attribute = self._ref.partition(":")
        try:
            app: Any = importlib.import_module(module_name)
            for part in attribute.split("."):
                app = getattr(app, part)
        except (Exception, SystemExit) as exc:  # the app's own import failing is its start failing
            raise local.LocalAppError(f"`{self._ref}` could not be imported: {exc!r}") from None
        config = uvicorn.Config(app, log_config=None, log_level="warning")
        self._server = server = uvicorn.Server(config)
        # listening before the thread starts: a port taken meanwhile is the grader's fault, never
        # a server that "stopped before answering"
        sockets = [self._listen()]
        self._thread = threading.Thread(
            target=lambda: server.run(sockets=sockets), name="inprocess-app", daemon=True
        )
        self._thread.start()
        self.stack.callback(self._stop)
        health = run.wait_health(
            self.base_url() + self._health,
            self._deadline,
            alive=self._alive,
            any_answer=not self._healthy,
        )
        if health.reason:
            # it answers HTTP, never 2xx on its health path: it keeps running, checked anyway
            answered = health.status is not None and not health.stopped
            self._healthy = not answered
            raise local.LocalAppError(health.reason, answered=answered)

    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _listen(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", self.port))
        except OSError as exc:
            sock.close()
            raise GraderFault(f"cannot listen on 127.0.0.1:{self.port} for the app: {exc}") from exc
        self.port = sock.getsockname()[1]
        self._socket = sock
        return sock

    def _alive(self) -> str | None:
        alive = self._thread is not None and self._thread.is_alive()
        return None if alive else "the app's server stopped before answering"

    def _stop(self) -> None:
        server, thread, self._server, self._thread = self._server, self._thread, None, None
        sock, self._socket = self._socket, None
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join(timeout=10)
            if thread.is_alive():  # it would still hold the port a restart needs
                raise GraderFault("the in-process app did not stop within 10 s")
        if sock is not None:
            sock.close()

    def restart(self) -> None:
        """A new process would import the app afresh: its modules go, its state with them."""
        self._stop()
        _take(self._names)
        try:
            self._serve()
        except local.LocalAppError as exc:
            raise AssertionError(f"after a restart: {exc.reason}") from None


def _app_ref(argv: list[str]) -> str:
    return next((arg for arg in argv if APP_REF.match(arg)), "")


def _top_level(folder: Path) -> set[str]:
    """The module names `folder` provides: its packages and modules."""
    return {
        p.stem if p.suffix == ".py" else p.name
        for p in folder.iterdir()
        if (p.suffix == ".py" and p.is_file()) or (p.is_dir() and any(p.glob("*.py")))
    }  # a folder of modules without __init__.py is a namespace package, imported all the same


def _take(names: set[str]) -> dict[str, ModuleType]:
    """Take the modules of `names` (and their submodules) out of sys.modules: they are returned."""
    taken = {k: v for k, v in sys.modules.items() if k.partition(".")[0] in names}
    for name in taken:
        del sys.modules[name]
    return taken


def _restore(
    names: set[str],
    saved: dict[str, ModuleType],
    folder: str,
    handler: logging.Handler,
    propagate: bool,
) -> None:
    _take(names)
    sys.modules.update(saved)
    if folder in sys.path:
        sys.path.remove(folder)
    served = logging.getLogger("uvicorn")
    served.removeHandler(handler)
    served.propagate = propagate
