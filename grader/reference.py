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
import logging
import time
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

from grader import runtimes, services, submission
from grader.assignment import Assignment, Item
from grader.checks.contract import run_suite
from grader.checks.differential import mask, secrets_of
from grader.core import CACHE_DIR, Exchange, GraderFault

CACHE = CACHE_DIR / "reference"
Traces = dict[str, list[Exchange]]
logger = logging.getLogger(__name__)


def needed(spec: Assignment, items: list[Item] | None = None) -> bool:
    """Whether a rubric item (of `items`, default all) compares with the reference: only then are
    its answers at hand, also for the contract check's failures (a self-check whose differential
    item is hidden must not show the reference's answers through them)."""
    graded = spec.items if items is None else items
    return spec.reference_dir is not None and any(i.check == "differential" for i in graded)


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
    from grader.core import write_atomic

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
) -> Traces:
    """The reference's traces for `spec` and `seed`: from the cache, or recorded now, alone, on
    `runtime` ("docker", "local" or "inprocess"). GraderFault when the reference does not build,
    start or pass its own contract suite."""
    cache_key = key(spec, seed)
    with _locked(CACHE / f"{cache_key}.lock"):  # a second grader waits, then reads the cache
        cached = load_traces(cache_key)
        if cached is not None:
            return cached
        logger.info(
            "recording the reference solution's answers (first grade of this assignment version)"
        )
        begin = time.monotonic()
        assert spec.reference_dir is not None
        with runtimes.create(
            runtime,
            postgres_image=postgres_image,
            isolate=isolate,
            database_url=database_url,
            reference=True,
        ) as alone:
            up = alone.up(spec.reference_dir, spec)
            if up.built is False:
                raise GraderFault(f"the reference solution did not build: {up.build_reason}")
            if up.target is None or not up.started:
                log = (up.start_log or up.build_log)[-1500:]  # a failed install's, if that
                raise GraderFault(f"the reference solution did not start: {up.reason}\n{log}")
            target = up.target
            suite = run_suite(spec.tests_dir, target)
        failing = [o.name for o in suite.outcomes if not o.passed]
        if failing:  # the spec and its model solution disagree: not the student's problem
            raise GraderFault(
                f"the reference solution fails {len(failing)} contract test(s), "
                f"e.g. {failing[:3]}; fix the assignment before grading"
            )
        recorded = mask(suite.traces, secrets_of(spec.runtime, target.env))
        save_traces(cache_key, recorded)
        logger.info("reference recorded in %.1f s", time.monotonic() - begin)
        return recorded


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield
