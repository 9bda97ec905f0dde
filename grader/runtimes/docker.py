"""The Docker runtime: the submission's image, built and run in the grader's sandbox beside a
fresh Postgres on a network of its own (grader.build, grader.services, grader.run), followed by
an engine `Watch` that notices a sandbox lost mid-grade."""

from __future__ import annotations

import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path

from docker import DockerClient

from grader import build, engine, firewall, run, services, submission
from grader.assignment import Assignment
from grader.core import MigrateRun
from grader.runtimes.base import Runtime, Started

logger = logging.getLogger(__name__)


class DockerRuntime(Runtime):
    """`run_id`: the label of everything it creates. `isolate`: the app's network has no route out
    and the grader talks to containers by IP; without it, ports are published on 127.0.0.1.
    `shield_host`: refuse to build or run unless grader.firewall keeps the run's networks away
    from this host's services. `reference`: the assignment's reference solution — its image kept
    as a cache (tagged by its tree), no migrate command alone, no watch."""

    name = "docker"

    def __init__(
        self,
        *,
        run_id: str | None = None,
        postgres_image: str = services.DEFAULT_POSTGRES_IMAGE,
        build_timeout: float = 600.0,
        no_cache: bool = False,
        isolate: bool = True,
        shield_host: bool = True,
        reference: bool = False,
    ) -> None:
        super().__init__()
        self.run_id = run_id or (
            f"ref{uuid.uuid4().hex[:9]}" if reference else uuid.uuid4().hex[:12]
        )
        self.postgres_image, self.build_timeout, self.no_cache = (
            postgres_image,
            build_timeout,
            no_cache,
        )
        self.isolate, self.shield_host, self.reference = isolate, shield_host, reference
        self.watch = engine.Watch()  # follows the sandbox once there is one
        self._restart: Callable[[], None] | None = None
        self._app: run.App | None = None

    def up(self, root: Path, assignment: Assignment, *, twin: bool = False) -> Started:
        """Build the image (its services start beside the build) and start the app."""
        out = self.started = Started(built=False)
        timings = out.timings
        client = engine.connect()
        if not self.reference:
            engine.reap_quietly(client)  # what graders that died (killed, crashed) left behind
        # last: whatever the steps below left behind, and the submission's image
        self.stack.callback(engine.cleanup, client, self.run_id)
        labels = engine.labels(self.run_id)
        if not self.reference:
            self.watch.start(client, self.run_id)
            self.stack.callback(self.watch.close)
            engine.require_disk(client)
            if self.shield_host:
                firewall.require()  # before the build: its RUN steps must not reach the host either
        # The services need nothing of the image: they start beside the build (a batch's spare
        # is taken over instead). Whatever the build does, they are stopped on the way out.
        logger.info("starting services beside the build")
        beside = ThreadPoolExecutor(max_workers=1, thread_name_prefix="services")
        pending = beside.submit(self._services, client, assignment, labels)
        self.stack.callback(_stop_services, pending)
        beside.shutdown(wait=False)
        if self.reference:
            # no run labels: the same tree gives the same image, kept as a cache (a label per run
            # made a new image each time and left the last one dangling)
            tag = f"api-grader-ref:{submission.tree_hash(root)[:16]}"
            built = build.build_image(client, root, tag=tag, labels={})
        else:
            # one image per run: a concurrent grade of the same submission removes only its own
            tag = f"{engine.SUBMISSION_IMAGE}:{submission.tree_hash(root)[:16]}-{self.run_id}"
            logger.info("building the image")
            built = build.build_image(
                client,
                root,
                tag=tag,
                labels=labels,
                timeout=self.build_timeout,
                no_cache=self.no_cache,
            )
            timings["build"] = round(built.seconds, 2)
        out.build_log = engine.tail(built.log)
        out.built, out.build_reason = built.ok, built.reason
        if not built.ok:  # the student's, even if Postgres failed too (stopped on the way out)
            out.reason = built.reason
            return out
        t = time.monotonic()
        svc, started_in = pending.result()  # a Postgres that did not start: a GraderFault
        # what the grade waited for after the build; the services' own start time beside it
        timings["database_ready"] = round(time.monotonic() - t, 2)
        timings["services_start"] = round(started_in, 2)
        pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="beside")
        self.stack.callback(pool.shutdown, wait=True, cancel_futures=True)  # before services stop
        if svc.network.id is not None:
            self.watch.network(svc.network.id, svc.network.name)
        if svc.postgres is not None:
            self.watch.container(svc.postgres.get_wrapped_container(), "Postgres")
        env = run.expand_env(assignment.runtime, svc.values)
        migrated = (
            None if self.reference else _migrate_alone(client, assignment, svc, tag, labels, pool)
        )
        launch = functools.partial(
            run.start_app,
            client,
            tag,
            runtime=assignment.runtime,
            network=svc.network.name,
            labels=labels,
            publish=not self.isolate,
        )
        second = (
            _start_twin(functools.partial(launch, limits=BESIDE), assignment, svc, pool)
            if twin and not self.reference
            else None
        )
        logger.info("starting the app")
        started = launch(env=env)
        timings["app_ready"] = round(started.seconds, 2)
        app = self._app = started.app
        if app is not None:
            self.stack.callback(app.stop)
            self.watch.container(app.container, "the app")
            out.logs = app.logs
        if started.reason:
            self.watch.verify()  # removed or killed from outside while starting: not the student's
            out.reason = out.start_reason = started.reason
            out.start_log = started.log
        if app is not None and (not started.reason or started.answered):
            # healthy, or answering HTTP but never 2xx on the health path: one missing route costs
            # its own points (the start item's), not every item's
            out.started = not started.reason
            out.answered_unhealthy = started.answered
            out.target = app.target(env, svc.grader_database_url)
            if not self.reference:
                out.target.source = root  # tests may read the student's files
            # the checks restart the app and list its processes through its runtime
            self._restart = out.target.restart
            out.target.restart, out.target.processes = self.restart, self.processes
        if second is not None:
            self._twin(second, out, seconds=started.seconds)
        if migrated is not None:  # also when the app did not start: its log may say why
            migrated_url, out.migrate = migrated.result()
            if out.target is not None:
                out.target.databases["migrated"] = migrated_url
        return out

    def _twin(self, second: _Twin, out: Started, *, seconds: float) -> None:
        """The second instance, once the first is up: healthy in time, it is `out.twin`; else it
        is stopped, and the checks meant for it run on the first instance after the others."""
        try:
            started, database_url = second.future.result(timeout=max(TWIN_GRACE, 2 * seconds))
        except FutureTimeout:
            second.cancel.set()
            started, database_url = second.future.result()
        if started.app is None:
            return
        self.stack.callback(started.app.stop)
        if out.target is None or started.reason:
            logger.info("the second instance is not used: %s", started.reason or "no first")
            started.app.stop()
            return
        self.watch.container(started.app.container, "the app's second instance")
        out.twin = started.app.target(second.env, database_url)
        # its checks neither restart it nor look at its processes: the watch would count a
        # restart of it as a sandbox lost
        out.twin.restart = out.twin.processes = None
        out.twin_logs = started.app.logs

    def _services(
        self, client: DockerClient, assignment: Assignment, labels: dict[str, str]
    ) -> tuple[services.Services, float]:
        """The run's services, and the seconds they took: a batch's spare for this run if there
        is one, else started now."""
        t = time.monotonic()
        svc = None
        if not self.reference:
            svc = services.adopt(
                client,
                assignment,
                self.run_id,
                postgres_image=self.postgres_image,
                internal=self.isolate,
            )
        if svc is None:
            svc = services.start(
                client,
                assignment,
                labels=labels,
                postgres_image=self.postgres_image,
                internal=self.isolate,
            )
        return svc, time.monotonic() - t

    def restart(self) -> None:
        """The app's restart, told to the watch: the grader's own restart is no loss of the
        sandbox, and a failed one is checked at once (a vanished container is not the student's
        failure)."""
        assert self._restart is not None and self._app is not None
        self.watch.restarting(self._app.container)
        try:
            self._restart()
        finally:
            self.watch.restarted(self._app.container)

    def processes(self) -> list[str]:
        assert self._app is not None
        return self._app.processes()

    def verify(self) -> None:
        self.watch.verify()


# what runs beside the app (its twin, the migrations alone) yields the CPU to it: the first
# instance's start and its checks are every grade's critical path; on an idle core it costs nothing
BESIDE = run.Limits(weight=256)
TWIN_GRACE = 10.0  # seconds the second instance may lag behind the first (at least)


@dataclass
class _Twin:
    future: Future[tuple[run.Started, str | None]]
    env: dict[str, str]  # its env: the first's, but for its own database
    cancel: threading.Event


def _start_twin(
    launch: Callable[..., run.Started],
    spec: Assignment,
    svc: services.Services,
    pool: ThreadPoolExecutor,
) -> _Twin:
    """A second instance of the app (`launch(env=, cancel=)` starts one as the first was), beside
    the first on a database of its own (an empty one, like the first's): (its start, its database
    as the grader reaches it)."""
    env, grader_url = _own_database(spec, svc, "twin")
    cancel = threading.Event()

    def start() -> tuple[run.Started, str | None]:
        return launch(env=env, cancel=cancel), grader_url

    return _Twin(pool.submit(start), env, cancel)


def _stop_services(pending: Future[tuple[services.Services, float]]) -> None:
    """Once they are up (or failed: then they stopped themselves), stop the run's services."""
    try:
        svc, _ = pending.result()
    except Exception:  # a fault raised already, or hidden by a failed build: it stopped itself
        return
    svc.stop()


def _own_database(
    spec: Assignment, svc: services.Services, name: str
) -> tuple[dict[str, str], str | None]:
    """The app's env with `${postgres_url}` naming a new empty database `name` of its own (the
    first instance's env when there is no server): (env, that database as the grader reaches it)."""
    values, grader_url = dict(svc.values), None
    if "postgres_url" in values:
        values["postgres_url"], grader_url = svc.create_database(name)
    return run.expand_env(spec.runtime, values), grader_url


def _migrate_alone(
    client: DockerClient,
    spec: Assignment,
    svc: services.Services,
    image: str,
    labels: dict[str, str],
    pool: ThreadPoolExecutor,
) -> Future[tuple[str, MigrateRun]] | None:
    """Run the runtime's migrate command alone on an empty database, beside the app's start:
    (the database as the grader reaches it, what the command did)."""
    command = spec.runtime.migrate
    if not command or "postgres_url" not in svc.values:
        return None

    def migrate() -> tuple[str, MigrateRun]:
        env, grader_url = _own_database(spec, svc, "migrated")
        assert grader_url is not None  # a server is there: `postgres_url` is
        code, output = run.run_once(
            client,
            image,
            command=command,
            env=env,
            network=svc.network.name,
            labels=labels,
            limits=BESIDE,
        )
        logger.info("migrate command alone exited with %s", code)
        return grader_url, MigrateRun(command=list(command), exit_code=code, log=output)

    return pool.submit(migrate)
