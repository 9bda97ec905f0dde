"""The second assignment, `fastapi-basics`, graded end to end in Docker: the reference gets full
marks without any Postgres container, the starter repo scores above 0 and below half, and every
mutant of specs/fastapi-basics/mutants/ loses points in the category its bug belongs to."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT, benchmark_mutants
from docker import DockerClient

from grader import assignment as assignments
from grader.core import LABEL, Result, Status
from grader.pipeline import grade

ID = "fastapi-basics"
SPEC = assignments.load(ID)


mutants = benchmark_mutants()
ALL = mutants.load(ID)


def _created_images(client: DockerClient, since: float, run_id: str) -> list[str]:
    """Images of the containers one grading run created (other runs may share the engine)."""
    events = client.events(
        since=int(since),
        until=int(time.time()) + 1,
        decode=True,
        filters={"type": "container", "event": "create", "label": f"{LABEL}={run_id}"},
    )
    return [e.get("Actor", {}).get("Attributes", {}).get("image", "") for e in events]


def _lost(result: Result) -> dict[str, float]:
    return {
        c.id: round(c.max_points - c.points, 2)
        for c in result.categories
        if c.points < c.max_points
    }


def test_spec_files() -> None:
    from openapi_spec_validator import validate

    validate(yaml.safe_load(SPEC.spec_path.read_text()))
    assert SPEC.services.postgres is False and SPEC.total == 100
    assert {i.visibility for i in SPEC.items} == {"visible", "hidden"}
    contract_items = {i.id for i in SPEC.items if i.check == "contract"}
    marked = set()
    for path in SPEC.tests_dir.glob("test_*.py"):
        text = path.read_text()
        marked |= {item for item in contract_items if f'rubric("{item}")' in text}
    assert marked == contract_items, f"contract items without tests: {contract_items - marked}"


def test_reference_full_marks_without_postgres(docker_client: DockerClient, tmp_path: Path) -> None:
    since = time.time() - 1
    result = grade(submission_path=ROOT / "reference_solution" / ID, assignment=ID, out=tmp_path)
    assert result.status is Status.GRADED, result.reason
    failing = {i.id: [o.message for o in i.failures][:2] for i in result.items if not i.passed}
    assert result.score == 100, failing
    images = _created_images(docker_client, since, result.run_id)
    assert images, "no container creation seen: the check below would prove nothing"
    assert not [i for i in images if i.startswith("postgres")], images


def test_template_scores_above_zero_below_half(docker_client: DockerClient, tmp_path: Path) -> None:
    result = grade(submission_path=ROOT / "student_template" / ID, assignment=ID, out=tmp_path)
    assert result.status is Status.GRADED, result.reason
    assert 0 < result.score < 50, result.score
    passed = {i.id for i in result.items if i.passed}
    assert {"image-builds", "app-starts", "root"} <= passed
    assert "workers" not in passed  # a single uvicorn process


def test_enough_mutants() -> None:
    assert len([m for m in ALL if m.kind == "mutant"]) >= 10
    assert {m.category for m in ALL if m.kind == "mutant"} >= {
        "deploy",
        "path",
        "query",
        "bodies",
        "dependencies",
        "auth",
    }


@pytest.mark.parametrize("mutant", ALL, ids=[m.name for m in ALL])
def test_mutant(mutant: Any, docker_client: DockerClient, tmp_path: Path) -> None:
    app_dir = mutants.materialize(mutant, tmp_path / "submission")
    result = grade(submission_path=app_dir, assignment=ID)
    assert result.status is not Status.NOT_GRADED, result.reason
    lost = _lost(result)
    if mutant.kind == "variant":  # correct work, written differently: full marks
        assert result.score == 100, lost
    else:
        assert mutant.category in lost, f"{mutant.name} ({mutant.bug}) lost {lost or 'nothing'}"


def test_reference_in_local_mode(tmp_path: Path) -> None:
    """Without Docker: a virtual environment and one uvicorn process. What only the container shows
    (the image, its start, gunicorn's workers) is reported not checked; everything else passes."""
    result = grade(submission_path=ROOT / "reference_solution" / ID, assignment=ID, runtime="local")
    assert result.status is Status.GRADED, result.reason
    unchecked = {i.id for i in result.items if i.not_checked}
    assert unchecked == {"image-builds", "app-starts", "workers"}
    assert all(i.passed for i in result.items if i.id not in unchecked)
    assert result.score == 100 - sum(i.max_points for i in result.items if i.id in unchecked)
