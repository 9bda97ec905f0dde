"""The whole run for one submission: submission → build → services → run → checks → score → report.

`grade()` is the Python API behind `grader grade`. A student's fault (unusable archive, failed
build, crashed app, failed checks) is a graded Result; a grader fault becomes a Result with status
NOT_GRADED and no score, and the CLI exits non-zero.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

from docker import DockerClient

from grader import assignment as assignments
from grader import build, engine, firewall, local, reference, report, run, services, submission
from grader.assignment import Assignment
from grader.causes import root_causes
from grader.checks import Context, run_checks
from grader.core import (
    GraderFault,
    MigrateRun,
    Outcome,
    Result,
    Status,
    SubmissionRejected,
    scrub,
)
from grader.score import categories, score_items

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def _rebase(outcomes: list[Outcome], grader_url: str, public_url: str) -> None:
    """Show requests against the address a student uses (`docker run -p 8000:8000`), not the
    grader's random host port, so a curl from the report works as it is."""
    for o in outcomes:
        o.message = o.message.replace(grader_url, public_url)
        for ex in (o.exchange, o.reference):
            if ex is not None and ex.url.startswith(grader_url):
                ex.url = public_url + ex.url[len(grader_url) :]


def _migrate_alone(
    client: DockerClient,
    spec: Assignment,
    svc: services.Services,
    image: str,
    labels: dict[str, str],
    pool: ThreadPoolExecutor,
    log: Log,
) -> Future[tuple[str, MigrateRun]] | None:
    """Run the runtime's migrate command alone on an empty database, beside the app's start:
    (the database as the grader reaches it, what the command did)."""
    command = spec.runtime.migrate
    if not command or "postgres_url" not in svc.values:
        return None

    def migrate() -> tuple[str, MigrateRun]:
        app_url, grader_url = svc.create_database("migrated")
        env = run.expand_env(spec.runtime, {**svc.values, "postgres_url": app_url})
        code, output = run.run_once(
            client, image, command=command, env=env, network=svc.network.name, labels=labels
        )
        log(f"migrate command alone exited with {code}")
        return grader_url, MigrateRun(command=list(command), exit_code=code, log=output)

    return pool.submit(migrate)


def _docker_up(
    spec: Assignment,
    root: Path,
    ctx: Context,
    result: Result,
    stack: ExitStack,
    pool: ThreadPoolExecutor,
    *,
    run_id: str,
    postgres_image: str,
    build_timeout: float,
    no_cache: bool,
    isolate: bool,
    shield_host: bool,
    watch: engine.Watch,
    log: Log,
) -> Callable[[], str] | None:
    """Build the image, start its services and the app in Docker. Returns the app's log reader."""
    timings = result.timings
    client = engine.connect()
    engine.reap_quietly(client)  # what graders that died (killed, crashed) left behind
    # last: whatever the steps below left behind, and the submission's image
    stack.callback(engine.cleanup, client, run_id)
    labels = engine.labels(run_id)
    watch.start(client, run_id)
    stack.callback(watch.close)
    # one image per run: a concurrent grade of the same submission removes only its own
    tag = f"{engine.SUBMISSION_IMAGE}:{submission.tree_hash(root)[:16]}-{run_id}"
    engine.require_disk(client)
    if shield_host:
        firewall.require()  # before the build: its RUN steps must not reach the host either
    log("building the image")
    built = build.build_image(
        client, root, tag=tag, labels=labels, timeout=build_timeout, no_cache=no_cache
    )
    timings["build"] = round(built.seconds, 2)
    result.build_log = engine.tail(built.log)
    ctx.built, ctx.build_reason = built.ok, built.reason
    if not built.ok:
        result.status, result.reason = Status.BUILD_FAILED, built.reason
        return None
    log("starting services")
    t = time.monotonic()
    svc = services.start(
        client, spec, labels=labels, postgres_image=postgres_image, internal=isolate
    )
    stack.callback(svc.stop)
    stack.callback(pool.shutdown, wait=True, cancel_futures=True)  # before the services stop
    timings["database_ready"] = round(time.monotonic() - t, 2)
    if svc.network.id is not None:
        watch.network(svc.network.id, svc.network.name)
    if svc.postgres is not None:
        watch.container(svc.postgres.get_wrapped_container(), "Postgres")
    env = run.expand_env(spec.runtime, svc.values)
    migrated = _migrate_alone(client, spec, svc, tag, labels, pool, log)
    log("starting the app")
    started = run.start_app(
        client,
        tag,
        runtime=spec.runtime,
        env=env,
        network=svc.network.name,
        labels=labels,
        publish=not isolate,
    )
    timings["app_ready"] = round(started.seconds, 2)
    if started.app is not None:
        stack.callback(started.app.stop)
        watch.container(started.app.container, "the app")
    if started.reason:
        watch.verify()  # removed or killed from outside while starting: not the student's doing
        result.status, result.reason = Status.START_FAILED, started.reason
        ctx.start_reason = started.reason
    if started.app is not None and (not started.reason or started.answered):
        # healthy, or answering HTTP but never 2xx on the health path: one missing route costs its
        # own points (the start item's), not every item's
        ctx.started = not started.reason
        if started.answered:
            result.answered_unhealthy = True
            result.reason += "; the other checks ran anyway"
        ctx.target = started.app.target(env, svc.grader_database_url)
        ctx.target.source = root  # tests may read the student's files
        ctx.target.restart = _watched_restart(watch, started.app, ctx.target.restart)
    if migrated is not None:  # also when the app did not start: its log may say why
        migrated_url, result.migrate = migrated.result()
        if ctx.target is not None:
            ctx.target.databases["migrated"] = migrated_url
    return started.app.logs if started.app is not None else None


def _watched_restart(
    watch: engine.Watch, app: run.App, restart: Callable[[], None] | None
) -> Callable[[], None]:
    """The app's restart, told to the watch: the grader's own restart is no loss of the sandbox,
    and a failed one is checked at once (a vanished container is not the student's failure)."""
    assert restart is not None

    def watched() -> None:
        watch.restarting(app.container)
        try:
            restart()
        finally:
            watch.restarted(app.container)

    return watched


def _local_up(
    spec: Assignment,
    root: Path,
    ctx: Context,
    result: Result,
    stack: ExitStack,
    *,
    workdir: Path,
    database_url: str | None,
    build_timeout: float,
    log: Log,
) -> Callable[[], str] | None:
    """Local mode: a cached virtual environment instead of the image, processes instead of
    containers, a throwaway cluster (or `database_url`'s server) instead of a Postgres container.
    Failures cost what they cost in Docker: the migrate command alone failing costs the items that
    read its database, an app that answers HTTP but not its health check is checked all the same."""
    timings = result.timings
    t = time.monotonic()
    try:
        venv = local.venv_for(root, timeout=build_timeout, log=log)
    except local.LocalAppError as exc:
        timings["install"] = round(time.monotonic() - t, 2)
        # no image here: the app cannot start without its dependencies (never "did not build")
        result.status, result.reason = Status.START_FAILED, exc.reason
        result.build_log = exc.log
        ctx.start_reason = f"the app's dependencies could not be installed: {exc.reason}"
        return None
    timings["install"] = round(time.monotonic() - t, 2)
    log("starting services")
    t = time.monotonic()
    svc = local.LocalServices(
        values=spec.runtime.randoms(), postgres=spec.services.postgres, database_url=database_url
    )
    stack.callback(svc.stop)
    timings["database_ready"] = round(time.monotonic() - t, 2)
    env = run.expand_env(spec.runtime, svc.values)
    migrated_url = _local_migrate_alone(spec, root, svc, venv, result, workdir=workdir, log=log)
    log("starting the app")
    t = time.monotonic()
    app: local.LocalApp | None = None
    try:
        plan = local.plan_for(root, spec.runtime)
        if plan.note:
            log(plan.note)
        ctx.served = "; ".join(part for part in (plan.source, plan.note) if part)
        app = local.LocalApp.for_runtime(
            root, env, workdir / "app.log", spec.runtime, venv, plan=plan
        )
        stack.callback(app.stop)
        app.start()
    except local.LocalAppError as exc:
        result.status, result.reason = Status.START_FAILED, exc.reason
        ctx.start_reason = exc.reason
        if exc.answered:  # as in Docker: one missing route costs its own points, not every item's
            result.answered_unhealthy = True
            result.reason += "; the other checks ran anyway"
    else:
        ctx.started = True
    if app is not None and (ctx.started or result.answered_unhealthy):
        ctx.target = app.target(svc.grader_database_url)
        ctx.target.source = root  # tests may read the student's files
        if migrated_url is not None:
            ctx.target.databases["migrated"] = migrated_url
    timings["app_ready"] = round(time.monotonic() - t, 2)
    return app.log_tail if app is not None else None


def _local_migrate_alone(
    spec: Assignment,
    root: Path,
    svc: local.LocalServices,
    venv: Path,
    result: Result,
    *,
    workdir: Path,
    log: Log,
) -> str | None:
    """As `_migrate_alone` in Docker: the runtime's migrate command alone on an empty database, in
    the folder the image's WORKDIR holds. Its result goes to `result.migrate`, never into the
    start: a failure (a missing `alembic` included) costs the items that read that database."""
    command = spec.runtime.migrate
    if not command or "postgres_url" not in svc.values:
        return None
    url, grader_url = svc.create_database("migrated")
    env = run.expand_env(spec.runtime, {**svc.values, "postgres_url": url})
    path = workdir / "migrate.log"
    with path.open("wb") as out:
        code = local.run_once(
            command, cwd=local.workdir_for(root), env=env, venv=venv, out=out, timeout=120
        )
    log(f"migrate command alone exited with {code}")
    result.migrate = MigrateRun(
        command=list(command), exit_code=code, log=engine.tail(path.read_text(errors="replace"))
    )
    return grader_url


def grade(
    *,
    submission_path: str | Path,
    assignment: str | Path,
    out: Path | None = None,
    seed: int = 0,
    ref: str | None = None,
    runtime: str = "docker",
    database_url: str | None = None,
    visible_only: bool = False,
    postgres_image: str = services.DEFAULT_POSTGRES_IMAGE,
    build_timeout: float = 600.0,
    no_cache: bool = False,
    isolate: bool = True,
    run_id: str | None = None,
    deadline: float = 300.0,
    shield_host: bool = True,
    log: Log = _quiet,
) -> Result:
    """Grade one submission.

    `runtime`: "docker", "local" (processes, no Docker engine: see grader.local) or "auto" (Docker
    when an engine answers, else local, with a notice). `visible_only`: grade only the rubric's
    visible items (a student's self-check); the others are counted in `Result.hidden`.
    `isolate`: the app's network has no route out and the grader talks to containers by IP (Linux
    engines); without it, ports are published on 127.0.0.1. `database_url`: local mode only, a
    Postgres server to create the run's databases on instead of a throwaway cluster. `run_id`:
    the label of everything the run creates (default: a new random one). `deadline`: seconds all
    the checks' requests to the app may take together (the build and the start have their own
    limits); past it, later requests fail at once and the result names why. `shield_host`: refuse
    to run the submission in Docker unless the firewall keeping its networks away from this host's
    services is in place (grader.firewall); off for a student's self-check of their own code."""
    spec = assignments.load(assignment)
    items = [i for i in spec.items if i.visibility == "visible"] if visible_only else spec.items
    hidden = [i for i in spec.items if i not in items]
    result = Result(
        assignment=spec.id,
        assignment_version=spec.fingerprint,
        submission=str(submission_path),
        seed=seed,
        status=Status.GRADED,
        max_score=round(sum(i.points for i in items), 2),
        hidden=len(hidden),
        hidden_points=round(sum(i.points for i in hidden), 2),
    )
    run_id = run_id or uuid.uuid4().hex[:12]
    result.run_id = run_id
    watch = engine.Watch()  # follows the Docker sandbox once there is one
    timings = result.timings
    begin = time.monotonic()
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="beside")
    try:
        with ExitStack() as stack:
            if runtime == "auto":
                runtime = _choose_runtime(log)
            if runtime not in {"docker", "local"}:
                raise GraderFault(f"unknown runtime {runtime!r}: docker, local or auto")
            result.runtime = runtime
            ctx = Context(
                assignment=spec,
                seed=seed,
                runtime=runtime,
                built=False if runtime == "docker" else None,
            )
            stack.callback(pool.shutdown, wait=True, cancel_futures=True)
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="grader-")))
            try:
                log("reading the submission")
                root: Path | None = submission.prepare(
                    submission_path, workdir=work / "submission", ref=ref
                )
            except SubmissionRejected as exc:
                result.status, result.reason = Status.REJECTED, str(exc)
                ctx.build_reason = ctx.start_reason = f"the submission was refused: {exc}"
                ctx.built = False
                root = None
            if root is not None and reference.needed(spec):
                # alone, before the submission's app starts: nothing of the student's can reach it
                t = time.monotonic()
                ctx.reference_traces = reference.traces(
                    spec,
                    seed,
                    runtime=runtime,
                    postgres_image=postgres_image,
                    isolate=isolate,
                    database_url=database_url,
                    log=log,
                )
                timings["reference"] = round(time.monotonic() - t, 2)
            logs = None
            if root is not None and runtime == "docker":
                logs = _docker_up(
                    spec,
                    root,
                    ctx,
                    result,
                    stack,
                    pool,
                    run_id=run_id,
                    postgres_image=postgres_image,
                    build_timeout=build_timeout,
                    no_cache=no_cache,
                    isolate=isolate,
                    shield_host=shield_host,
                    watch=watch,
                    log=log,
                )
            elif root is not None:
                logs = _local_up(
                    spec,
                    root,
                    ctx,
                    result,
                    stack,
                    workdir=work,
                    database_url=database_url,
                    build_timeout=build_timeout,
                    log=log,
                )
            log("running checks")
            t = time.monotonic()
            if ctx.target is not None:
                ctx.target.guard.start_deadline(deadline)
            outcomes = run_checks(ctx, items, timings)
            timings["checks"] = round(time.monotonic() - t, 2)
            watch.verify()  # a sandbox lost mid-grade: the checks saw something else, no score
            if ctx.target is not None and ctx.target.guard.stopped:  # the app's doing: still graded
                result.reason = (
                    result.reason or f"Requests to the app stopped: {ctx.target.guard.stopped}."
                )
            if logs is not None:
                result.app_log = engine.tail(logs())
            if ctx.target is not None:
                _rebase(outcomes, ctx.target.base_url, f"http://localhost:{spec.runtime.port}")
            result.items = score_items(items, outcomes)
            result.categories = categories(spec, result.items)
            result.score = round(sum(i.points for i in result.items), 2)
            result.causes = root_causes(spec, result.items)
            t = time.monotonic()
        timings["cleanup"] = round(time.monotonic() - t, 2)
    except (GraderFault, *engine.ENGINE_ERRORS) as exc:  # an engine that stops or restarts too
        result.status, result.score, result.items, result.categories = (
            Status.NOT_GRADED,
            0.0,
            [],
            [],
        )
        result.causes = []
        result.reason = (
            str(exc)
            if isinstance(exc, GraderFault)
            else (f"the Docker engine failed during the grade ({engine.failure(exc)}); grade again")
        )
    timings["total"] = round(time.monotonic() - begin, 2)
    scrub(result)  # what apps answered, made writable by every output format
    if out is not None:
        report.write(result, out)
    return result


def _choose_runtime(log: Log) -> str:
    try:
        engine.connect(timeout=10)
    except GraderFault:
        log("no Docker engine answers: grading in local mode (the Dockerfile is not checked)")
        return "local"
    return "docker"
