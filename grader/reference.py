"""The reference solution as a second app beside the submission (for the differential check).

Its image is built once (Docker's cache keeps it); it gets its own database in the submission's
Postgres. What the contract suite saw from it is cached on disk per reference tree, assignment
version and seed, so most grades never start it at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

from docker import DockerClient

from grader import build, run, submission
from grader.assignment import Assignment
from grader.core import CACHE_DIR, Exchange, GraderFault
from grader.local import LocalApp, LocalAppError, LocalServices, venv_for
from grader.services import Services

CACHE = CACHE_DIR / "reference"


def key(spec: Assignment, seed: int) -> str:
    assert spec.reference_dir is not None
    return f"{spec.id}-{spec.fingerprint}-{submission.tree_hash(spec.reference_dir)[:12]}-s{seed}"


def load_traces(cache_key: str) -> dict[str, list[Exchange]] | None:
    path = CACHE / f"{cache_key}.json"
    try:
        raw: dict[str, list[dict[str, Any]]] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    names = {f.name for f in fields(Exchange)}
    return {test: [Exchange(**{k: v for k, v in e.items() if k in names}) for e in exchanges]
            for test, exchanges in raw.items()}


def save_traces(cache_key: str, traces: dict[str, list[Exchange]]) -> None:
    from grader.report import write_atomic

    data = {test: [e.to_dict() for e in exchanges] for test, exchanges in traces.items()}
    write_atomic(CACHE / f"{cache_key}.json", json.dumps(data))


def start(client: DockerClient, spec: Assignment, svc: Services, *, labels: dict[str, str],
          publish: bool = False) -> tuple[run.App, dict[str, str], str | None]:
    """Build and start the reference on the submission's network, with its own database."""
    assert spec.reference_dir is not None
    tag = f"api-grader-ref:{submission.tree_hash(spec.reference_dir)[:16]}"
    built = build.build_image(client, spec.reference_dir, tag=tag, labels=labels)
    if not built.ok:
        raise GraderFault(f"the reference solution did not build: {built.reason}")
    values = dict(svc.values)
    grader_db = None
    if "postgres_url" in values:
        values["postgres_url"], grader_db = svc.create_database("reference")
    env = run.expand_env(spec.runtime, values)
    started = run.start_app(client, tag, runtime=spec.runtime, env=env, network=svc.network.name,
                            labels=labels, publish=publish)
    if started.app is None or started.reason:
        if started.app is not None:
            started.app.stop()
        raise GraderFault(f"the reference solution did not start: {started.reason}\n{started.log[-1500:]}")
    return started.app, env, grader_db


def start_local(spec: Assignment, svc: LocalServices, *, workdir: Path,
                log: Callable[[str], None]) -> tuple[LocalApp, str | None]:
    """Local mode: the reference as a process in its own virtual environment, with its own database."""
    assert spec.reference_dir is not None
    values = dict(svc.values)
    grader_db = None
    if "postgres_url" in values:
        values["postgres_url"], grader_db = svc.create_database("reference")
    env = run.expand_env(spec.runtime, values)
    try:
        venv = venv_for(spec.reference_dir, log=log)
        app = LocalApp.for_runtime(spec.reference_dir, env, workdir / "reference.log", spec.runtime, venv)
        if spec.runtime.migrate:
            app.migrate(spec.runtime.migrate)
        app.start()
    except LocalAppError as exc:
        raise GraderFault(f"the reference solution did not start: {exc}") from exc
    return app, grader_db
