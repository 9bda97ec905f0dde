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
from pathlib import Path

from docker import DockerClient

from grader import assignment as assignments
from grader import build, engine, reference, report, run, services, submission
from grader.assignment import Assignment
from grader.checks import Context, run_checks
from grader.core import GraderFault, Outcome, Result, Status, SubmissionRejected
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
                ex.url = public_url + ex.url[len(grader_url):]


def _reference(client: DockerClient, spec: Assignment, svc: services.Services, ctx: Context,
               labels: dict[str, str], pool: ThreadPoolExecutor, publish: bool,
               log: Log) -> Future[tuple[run.App, dict[str, str], str | None]] | None:
    """Start the reference beside the submission when a check needs it and its traces are not
    cached. Its container carries the run's labels, so cleanup removes it with the rest."""
    if spec.reference_dir is None or not any(i.check == "differential" for i in spec.items):
        return None
    ctx.reference_key = reference.key(spec, ctx.seed)
    ctx.reference_traces = reference.load_traces(ctx.reference_key)
    if ctx.reference_traces is not None:
        return None
    log("starting the reference solution (first grade of this assignment version)")
    return pool.submit(reference.start, client, spec, svc, labels=labels, publish=publish)


def _migrate_alone(client: DockerClient, spec: Assignment, svc: services.Services, image: str,
                   labels: dict[str, str], pool: ThreadPoolExecutor, log: Log) -> Future[str] | None:
    """Run the runtime's migrate command alone on an empty database, beside the app's start."""
    command = spec.runtime.migrate
    if not command or "postgres_url" not in svc.values:
        return None

    def migrate() -> str:
        app_url, grader_url = svc.create_database("migrated")
        env = run.expand_env(spec.runtime, {**svc.values, "postgres_url": app_url})
        code, _ = run.run_once(client, image, command=command, env=env,
                                    network=svc.network.name, labels=labels)
        log(f"migrate command alone exited with {code}")
        return grader_url

    return pool.submit(migrate)


def grade(*, submission_path: str | Path, assignment: str | Path, out: Path | None = None,
          seed: int = 0, ref: str | None = None, postgres_image: str = services.DEFAULT_POSTGRES_IMAGE,
          build_timeout: float = 600.0, no_cache: bool = False, isolate: bool = True,
          log: Log = _quiet) -> Result:
    """Grade one submission. `isolate`: the app's network has no route out and the grader talks
    to containers by IP (Linux engines); without it, ports are published on 127.0.0.1."""
    spec = assignments.load(assignment)
    result = Result(assignment=spec.id, assignment_version=spec.fingerprint,
                    submission=str(submission_path), seed=seed, status=Status.GRADED,
                    max_score=spec.total)
    run_id = uuid.uuid4().hex[:12]
    labels = engine.labels(run_id)
    timings = result.timings
    begin = time.monotonic()
    ctx = Context(assignment=spec, seed=seed, runtime="docker", built=False)
    client = None
    svc: services.Services | None = None
    app: run.App | None = None
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="beside")
    try:
        with tempfile.TemporaryDirectory(prefix="grader-") as work:
            try:
                log("reading the submission")
                root = submission.prepare(submission_path, workdir=Path(work), ref=ref)
            except SubmissionRejected as exc:
                result.status, result.reason = Status.REJECTED, str(exc)
                ctx.build_reason = f"the submission was refused: {exc}"
                root = None
            if root is not None:
                client = engine.connect()
                tag = f"api-grader-sub:{submission.tree_hash(root)[:16]}"
                log("building the image")
                built = build.build_image(client, root, tag=tag, labels=labels, timeout=build_timeout,
                                          no_cache=no_cache)
                timings["build"] = round(built.seconds, 2)
                result.build_log = engine.tail(built.log)
                ctx.built, ctx.build_reason = built.ok, built.reason
                if not built.ok:
                    result.status, result.reason = Status.BUILD_FAILED, built.reason
        if ctx.built and client is not None:
            log("starting services")
            t = time.monotonic()
            svc = services.start(client, spec, labels=labels, postgres_image=postgres_image,
                                 internal=isolate)
            timings["database_ready"] = round(time.monotonic() - t, 2)
            env = run.expand_env(spec.runtime, svc.values)
            pending = _reference(client, spec, svc, ctx, labels, pool, not isolate, log)
            migrated = _migrate_alone(client, spec, svc, tag, labels, pool, log)
            log("starting the app")
            started = run.start_app(client, tag, runtime=spec.runtime, env=env,
                                    network=svc.network.name, labels=labels, publish=not isolate)
            timings["app_ready"] = round(started.seconds, 2)
            if pending is not None:
                ref_app, ref_env, ref_db = pending.result()
                ctx.reference = ref_app.target(ref_env, ref_db)
                timings["reference_ready"] = round(time.monotonic() - t, 2)
            app = started.app
            if started.reason:
                result.status, result.reason = Status.START_FAILED, started.reason
                ctx.start_reason = started.reason
            elif app is not None:
                ctx.started = True
                ctx.target = app.target(env, svc.grader_database_url)
                if migrated is not None:
                    ctx.target.databases["migrated"] = migrated.result()
        log("running checks")
        t = time.monotonic()
        outcomes = run_checks(ctx, spec.items, timings)
        timings["checks"] = round(time.monotonic() - t, 2)
        if app is not None:
            result.app_log = app.logs()
            _rebase(outcomes, app.base_url, f"http://localhost:{spec.runtime.port}")
        result.items = score_items(spec.items, outcomes)
        result.categories = categories(spec, result.items)
        result.score = round(sum(i.points for i in result.items), 2)
    except GraderFault as exc:
        result.status, result.reason = Status.NOT_GRADED, str(exc)
        result.score, result.items, result.categories = 0.0, [], []
    finally:
        t = time.monotonic()
        pool.shutdown(wait=True, cancel_futures=True)
        if app is not None:
            app.stop()
        if svc is not None:
            svc.stop()
        if client is not None:
            engine.cleanup(client, run_id)
        timings["cleanup"] = round(time.monotonic() - t, 2)
        timings["total"] = round(time.monotonic() - begin, 2)
    if out is not None:
        report.write(result, out)
    return result
