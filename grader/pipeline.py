"""The whole run for one submission: submission → build → services → run → checks → score → report.

`grade()` is the Python API behind `grader grade`. A student's fault (unusable archive, failed
build, crashed app, failed checks) is a graded Result; a grader fault becomes a Result with status
NOT_GRADED and no score, and the CLI exits non-zero.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

from grader import assignment as assignments
from grader import config, engine, late, output, reference, runtimes, services, submission
from grader.causes import root_causes
from grader.checks import Context, run_checks, wants_twin, warm_up
from grader.core import GraderFault, Outcome, Result, Status, SubmissionRejected, scrub
from grader.runtimes import RuntimeName
from grader.score import categories, score_items

logger = logging.getLogger(__name__)


# the app log's part from the instance the checks that run beside the others talked to
_SECOND = "\n\n--- the app's second instance (fuzzing, on a database of its own) ---\n"


def _rebase(outcomes: list[Outcome], grader_url: str, public_url: str) -> None:
    """Show requests against the address a student uses (`docker run -p 8000:8000`), not the
    grader's random host port, so a curl from the report works as it is."""
    for o in outcomes:
        o.message = o.message.replace(grader_url, public_url)
        for ex in (o.exchange, o.reference):
            if ex is not None and ex.url.startswith(grader_url):
                ex.url = public_url + ex.url[len(grader_url) :]


def grade(
    *,
    submission_path: str | Path,
    assignment: str | Path,
    out: Path | None = None,
    seed: int = 0,
    ref: str | None = None,
    runtime: RuntimeName = "docker",
    database_url: str | None = None,
    visible_only: bool = False,
    postgres_image: str = services.DEFAULT_POSTGRES_IMAGE,
    build_timeout: float = 600.0,
    no_cache: bool = False,
    isolate: bool = True,
    run_id: str | None = None,
    deadline: float = 300.0,
    shield_host: bool = True,
    submitted_at: datetime | None = None,
    due: datetime | None = None,
    times_from: late.Given = "command line",
) -> Result:
    """Grade one submission.

    `runtime`: "docker", "local" (processes, no Docker engine: see grader.local), "inprocess" (the
    app imported and served in this process: the grader's own tests) or "auto" (Docker when an
    engine answers, else local, with a notice); see grader.runtimes. `visible_only`: grade only the rubric's
    visible items (a student's self-check); the others are counted in `Result.hidden`.
    `isolate`: the app's network has no route out and the grader talks to containers by IP (Linux
    engines); without it, ports are published on 127.0.0.1. `database_url`: local mode only, a
    Postgres server to create the run's databases on instead of a throwaway cluster. `run_id`:
    the label of everything the run creates (default: a new random one). `deadline`: seconds all
    the checks' requests to the app may take together (the build and the start have their own
    limits); past it, later requests fail at once and the result names why. `shield_host`: refuse
    to run the submission in Docker unless the firewall keeping its networks away from this host's
    services is in place (grader.firewall); off for a student's self-check of their own code.
    `submitted_at`: when the work came in (an upload time; default: a git source's commit date);
    `due`: the student's own deadline (an extension) instead of the assignment's; `times_from`:
    where both came from, for the report. They count only under the assignment's late policy
    (grader.late): the score is then the items' points minus its penalty, a line of its own."""
    config.configure()
    spec = assignments.load(assignment)
    late.check(spec, due=due)
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
    warming = warm_up(items)
    result.run_id = run_id
    timings = result.timings
    begin = time.monotonic()
    app_runtime: runtimes.Runtime | None = None
    when, source = submitted_at, str(times_from)  # when the work came in, and who says so
    try:
        with ExitStack() as stack:
            # first in, last out: the app stops before its folder goes
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="grader-")))
            name = runtimes.choose(runtime)
            app_runtime = stack.enter_context(
                runtimes.create(
                    name,
                    run_id=run_id,
                    postgres_image=postgres_image,
                    build_timeout=build_timeout,
                    no_cache=no_cache,
                    isolate=isolate,
                    shield_host=shield_host,
                    database_url=database_url,
                )
            )
            result.runtime = name
            ctx = Context(assignment=spec, seed=seed, runtime=name, built=None)
            try:
                logger.info("reading the submission")
                prepared = submission.prepare_source(
                    submission_path, workdir=work / "submission", ref=ref
                )
                root: Path | None = prepared.root
                if when is None and prepared.committed_at:
                    # a hand-made commit object may carry any zone (+99:99): no time, not a crash
                    with contextlib.suppress(ValueError):
                        when, source = late.parse_time(prepared.committed_at), late.COMMIT_DATE
            except SubmissionRejected as exc:
                result.status, result.reason = Status.REJECTED, str(exc)
                ctx.build_reason = ctx.start_reason = f"the submission was refused: {exc}"
                ctx.built = False
                root = None
            if root is not None and reference.needed(spec, items):
                # alone, before the submission's app starts: nothing of the student's can reach it
                t = time.monotonic()
                ctx.reference_traces = reference.traces(
                    spec,
                    seed,
                    runtime=name,
                    postgres_image=postgres_image,
                    isolate=isolate,
                    database_url=database_url,
                )
                timings["reference"] = round(time.monotonic() - t, 2)
            logs, up = None, None
            if root is not None:
                up = app_runtime.up(root, spec, twin=wants_twin(spec, items))
                timings.update(up.timings)
                logs = up.logs
                _record(up, ctx, result)
            logger.info("running checks")
            t = time.monotonic()
            warming.join()  # its imports done: none is half-loaded when a check imports it
            apps = [t for t in (ctx.target, ctx.twin) if t is not None]
            for app in apps:
                app.guard.start_deadline(deadline)
            outcomes = run_checks(ctx, items, timings)
            timings["checks"] = round(time.monotonic() - t, 2)
            app_runtime.verify()  # a sandbox lost mid-grade: the checks saw something else
            stopped = next((app.guard.stopped for app in apps if app.guard.stopped), "")
            if stopped:  # the app's doing: still graded
                result.reason = result.reason or f"Requests to the app stopped: {stopped}."
            if logs is not None:
                result.app_log = engine.tail(logs())
            if up is not None and up.twin_logs is not None:
                result.app_log += _SECOND + engine.tail(up.twin_logs())
            for app in apps:
                _rebase(outcomes, app.base_url, f"http://localhost:{spec.runtime.port}")
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
        if app_runtime is not None and app_runtime.started is not None:  # as far as it came
            timings.update(app_runtime.started.timings)
            result.build_log = result.build_log or app_runtime.started.build_log
        result.reason = (
            str(exc)
            if isinstance(exc, GraderFault)
            else (f"the Docker engine failed during the grade ({engine.failure(exc)}); grade again")
        )
    # a self-check is no submission; a grade not finished has no score to take a penalty from
    if spec.late is not None and not visible_only and result.status is not Status.NOT_GRADED:
        result.late = late.assess(
            spec.late,
            max_score=result.max_score,
            points=result.score,
            submitted_at=when,
            source=source,
            due=due,
        )
        result.score = late.final_score(result.score, result.late)
    timings["total"] = round(time.monotonic() - begin, 2)
    scrub(result)  # what apps answered, made writable by every output format
    if out is not None:
        output.write(result, out)
    return result


def _record(up: runtimes.Started, ctx: Context, result: Result) -> None:
    """What the runtime brought up, into the checks' context and the result."""
    ctx.built, ctx.build_reason = up.built, up.build_reason
    ctx.started, ctx.start_reason, ctx.served = up.started, up.start_reason, up.served
    ctx.target, ctx.twin = up.target, up.twin
    result.build_log, result.migrate = up.build_log, up.migrate
    if up.built is False:
        result.status, result.reason = Status.BUILD_FAILED, up.reason
    elif up.reason:
        result.status, result.reason = Status.START_FAILED, up.reason
        if up.answered_unhealthy:  # one missing route costs its own points, not every item's
            result.answered_unhealthy = True
            result.reason += "; the other checks ran anyway"
