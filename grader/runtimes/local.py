"""The local runtime (no Docker: students' laptops, Gradescope): a cached virtual environment
instead of the image, processes instead of containers, a throwaway cluster (or `database_url`'s
server) instead of a Postgres container — the machinery is grader.local's.

Failures cost what they cost in Docker: the migrate command alone failing costs the items that
read its database, an app that answers HTTP but not its health check is checked all the same."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

from grader import engine, local, run
from grader.assignment import Assignment
from grader.core import MigrateRun
from grader.runtimes.base import Runtime, Started

logger = logging.getLogger(__name__)


class LocalRuntime(Runtime):
    """`database_url`: a Postgres server to create the run's databases on instead of a throwaway
    cluster. `reference`: the assignment's reference solution — migrated on its own database
    before it starts, no migrate command alone."""

    name = "local"

    def __init__(
        self,
        *,
        database_url: str | None = None,
        build_timeout: float = 600.0,
        reference: bool = False,
    ) -> None:
        super().__init__()
        self.database_url, self.build_timeout, self.reference = (
            database_url,
            build_timeout,
            reference,
        )
        self._app: local.LocalApp | None = None

    def up(self, root: Path, assignment: Assignment, *, twin: bool = False) -> Started:
        out = self.started = Started()
        timings = out.timings
        workdir = Path(self.stack.enter_context(tempfile.TemporaryDirectory(prefix="grader-")))
        t = time.monotonic()
        try:
            venv = local.venv_for(root, timeout=self.build_timeout)
        except local.LocalAppError as exc:
            timings["install"] = round(time.monotonic() - t, 2)
            # no image here: the app cannot start without its dependencies (never "did not build")
            out.reason, out.build_log = exc.reason, exc.log
            out.start_reason = f"the app's dependencies could not be installed: {exc.reason}"
            return out
        timings["install"] = round(time.monotonic() - t, 2)
        logger.info("starting services")
        t = time.monotonic()
        svc = local.LocalServices(
            values=assignment.runtime.randoms(),
            postgres=assignment.services.postgres,
            database_url=self.database_url,
        )
        self.stack.callback(svc.stop)
        timings["database_ready"] = round(time.monotonic() - t, 2)
        env = run.expand_env(assignment.runtime, svc.values)
        migrated_url = None
        if not self.reference:
            migrated_url, out.migrate = migrate_alone(assignment, root, svc, venv, workdir)
        logger.info("starting the app")
        t = time.monotonic()
        try:
            plan = local.plan_for(root, assignment.runtime)
            if plan.note:
                logger.info(plan.note)
            out.served = "; ".join(part for part in (plan.source, plan.note) if part)
            app = self._app = local.LocalApp.for_runtime(
                root, env, workdir / "app.log", assignment.runtime, venv, plan=plan
            )
            self.stack.callback(app.stop)
            out.logs = app.log_tail
            if self.reference and assignment.runtime.migrate:
                app.migrate(assignment.runtime.migrate)
            app.start()
        except local.LocalAppError as exc:
            out.reason = out.start_reason = exc.reason
            out.start_log = exc.log
            # as in Docker: one missing route costs its own points, not every item's
            out.answered_unhealthy = exc.answered
        else:
            out.started = True
        if self._app is not None and (out.started or out.answered_unhealthy):
            out.target = self._app.target(svc.grader_database_url)
            out.target.restart = self.restart  # the checks restart the app through its runtime
            if not self.reference:
                out.target.source = root  # tests may read the student's files
            if migrated_url is not None:
                out.target.databases["migrated"] = migrated_url
        timings["app_ready"] = round(time.monotonic() - t, 2)
        return out

    def restart(self) -> None:
        assert self._app is not None
        self._app.restart()


def migrate_alone(
    spec: Assignment, root: Path, svc: local.LocalServices, venv: Path, workdir: Path
) -> tuple[str | None, MigrateRun | None]:
    """As in Docker: the runtime's migrate command alone on an empty database, in the folder the
    image's WORKDIR holds. Its result is reported, never part of the start: a failure (a missing
    `alembic` included) costs the items that read that database."""
    command = spec.runtime.migrate
    if not command or "postgres_url" not in svc.values:
        return None, None
    url, grader_url = svc.create_database("migrated")
    env = run.expand_env(spec.runtime, {**svc.values, "postgres_url": url})
    path = workdir / "migrate.log"
    with path.open("wb") as out:
        code = local.run_once(
            command, cwd=local.workdir_for(root), env=env, venv=venv, out=out, timeout=120
        )
    logger.info("migrate command alone exited with %s", code)
    migrated = MigrateRun(
        command=list(command), exit_code=code, log=engine.tail(path.read_text(errors="replace"))
    )
    return grader_url, migrated
