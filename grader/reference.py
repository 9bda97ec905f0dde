"""The reference solution's answers to the contract suite, recorded alone and cached.

The differential check compares a submission's answers with the reference's. Those answers are
recorded in a run of their own — its own network and Postgres in Docker, its own throwaway
cluster in local mode — before any student's app starts, and never beside one: a submission
could otherwise reach the reference or its database and poison "the reference's answer" for every
later grade. The traces are cached on disk per assignment version, reference tree and seed (a
file lock makes concurrent grades record them once), so most grades never start the reference.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import fields
from pathlib import Path
from typing import Any

from grader import build, engine, run, services, submission
from grader.assignment import Assignment
from grader.checks.contract import run_suite
from grader.checks.differential import mask, secrets_of
from grader.core import CACHE_DIR, Exchange, GraderFault, Target
from grader.local import LocalApp, LocalAppError, LocalServices, venv_for

CACHE = CACHE_DIR / "reference"
Traces = dict[str, list[Exchange]]
Log = Callable[[str], None]


def needed(spec: Assignment) -> bool:
    """Whether a rubric item compares with the reference."""
    return spec.reference_dir is not None and any(i.check == "differential" for i in spec.items)


def key(spec: Assignment, seed: int) -> str:
    assert spec.reference_dir is not None
    return f"{spec.id}-{spec.fingerprint}-{submission.tree_hash(spec.reference_dir)[:12]}-s{seed}"


def load_traces(cache_key: str) -> Traces | None:
    path = CACHE / f"{cache_key}.json"
    try:
        raw: dict[str, list[dict[str, Any]]] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    names = {f.name for f in fields(Exchange)}
    return {
        test: [Exchange(**{k: v for k, v in e.items() if k in names}) for e in exchanges]
        for test, exchanges in raw.items()
    }


def save_traces(cache_key: str, traces: Traces) -> None:
    from grader.report import write_atomic

    data = {test: [e.to_dict() for e in exchanges] for test, exchanges in traces.items()}
    write_atomic(CACHE / f"{cache_key}.json", json.dumps(data))


def traces(
    spec: Assignment,
    seed: int,
    *,
    runtime: str = "docker",
    postgres_image: str = services.DEFAULT_POSTGRES_IMAGE,
    isolate: bool = True,
    database_url: str | None = None,
    log: Log = print,
) -> Traces:
    """The reference's traces for `spec` and `seed`: from the cache, or recorded now, alone."""
    cache_key = key(spec, seed)
    with _locked(CACHE / f"{cache_key}.lock"):  # a second grader waits, then reads the cache
        cached = load_traces(cache_key)
        if cached is not None:
            return cached
        log("recording the reference solution's answers (first grade of this assignment version)")
        begin = time.monotonic()
        with ExitStack() as stack:
            if runtime == "docker":
                target = _up_docker(spec, stack, postgres_image=postgres_image, isolate=isolate)
            else:
                target = _up_local(spec, stack, database_url=database_url, log=log)
            suite = run_suite(spec.tests_dir, target)
        failing = [o.name for o in suite.outcomes if not o.passed]
        if failing:  # the spec and its model solution disagree: not the student's problem
            raise GraderFault(
                f"the reference solution fails {len(failing)} contract test(s), "
                f"e.g. {failing[:3]}; fix the assignment before grading"
            )
        recorded = mask(suite.traces, secrets_of(spec.runtime, target.env))
        save_traces(cache_key, recorded)
        log(f"reference recorded in {time.monotonic() - begin:.1f} s")
        return recorded


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _up_docker(spec: Assignment, stack: ExitStack, *, postgres_image: str, isolate: bool) -> Target:
    """The reference on a network and Postgres of its own, removed when `stack` closes."""
    assert spec.reference_dir is not None
    client = engine.connect()
    run_id = f"ref{uuid.uuid4().hex[:9]}"
    stack.callback(engine.cleanup, client, run_id)
    labels = engine.labels(run_id)
    tag = f"api-grader-ref:{submission.tree_hash(spec.reference_dir)[:16]}"
    # no run labels: the same tree gives the same image, kept as a cache (a label per run made a
    # new image each time and left the last one dangling)
    built = build.build_image(client, spec.reference_dir, tag=tag, labels={})
    if not built.ok:
        raise GraderFault(f"the reference solution did not build: {built.reason}")
    svc = services.start(
        client, spec, labels=labels, postgres_image=postgres_image, internal=isolate
    )
    stack.callback(svc.stop)
    env = run.expand_env(spec.runtime, svc.values)
    started = run.start_app(
        client,
        tag,
        runtime=spec.runtime,
        env=env,
        network=svc.network.name,
        labels=labels,
        publish=not isolate,
    )
    if started.app is not None:
        stack.callback(started.app.stop)
    if started.app is None or started.reason:
        raise GraderFault(
            f"the reference solution did not start: {started.reason}\n{started.log[-1500:]}"
        )
    return started.app.target(env, svc.grader_database_url)


def _up_local(spec: Assignment, stack: ExitStack, *, database_url: str | None, log: Log) -> Target:
    """Local mode: the reference as a process in its own virtual environment and cluster."""
    assert spec.reference_dir is not None
    svc = LocalServices(
        values=spec.runtime.randoms(), postgres=spec.services.postgres, database_url=database_url
    )
    stack.callback(svc.stop)
    env = run.expand_env(spec.runtime, svc.values)
    try:
        venv = venv_for(spec.reference_dir, log=log)
        log_path = (
            Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="grader-ref-")))
            / "reference.log"
        )
        app = LocalApp.for_runtime(spec.reference_dir, env, log_path, spec.runtime, venv)
        stack.callback(app.stop)
        if spec.runtime.migrate:
            app.migrate(spec.runtime.migrate)
        app.start()
    except LocalAppError as exc:
        raise GraderFault(f"the reference solution did not start: {exc}") from exc
    return app.target(svc.grader_database_url)
