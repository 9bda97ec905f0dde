"""The whole pipeline without Docker: `grade(runtime="inprocess")` — every built-in check (contract,
Schemathesis, differential against the reference recorded in-process), the score, the root causes
and every report file — on fastapi-basics, its reference and a copy with one bug. The grader's
unit-test layer: no Docker, no virtual environment, well under a minute."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from grader import reference
from grader.core import Result, Status
from grader.pipeline import grade

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "fastapi-basics"
REFERENCE = ROOT / "reference_solution" / ASSIGNMENT


@pytest.fixture(scope="module")
def fresh_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The reference's traces recorded now, in-process, not read from an earlier run's cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reference, "CACHE", tmp_path_factory.mktemp("reference-cache"))
        yield


def _grade(path: Path, out: Path) -> Result:
    return grade(submission_path=path, assignment=ASSIGNMENT, runtime="inprocess", out=out)


def _checked(result: Result) -> float:
    """The points of the items this runtime can check (a Dockerfile, a container's processes:
    not checked here)."""
    return sum(i.max_points for i in result.items if not all(o.skipped for o in i.outcomes))


def _environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}  # pytest's own


def _reports(out: Path) -> dict[str, Any]:
    """Every report file exists and parses."""
    assert (out / "report.html").read_text().lstrip().lower().startswith("<!doctype html")
    full: dict[str, Any] = json.loads((out / "full.json").read_text())
    gradescope = json.loads((out / "results.json").read_text())
    assert gradescope["score"] == full["score"]
    return full


def test_reference_scores_every_checkable_point(fresh_cache: None, tmp_path: Path) -> None:
    before = {name for name in sys.modules if name.partition(".")[0] == "app"}
    result = _grade(REFERENCE, tmp_path)
    assert result.status is Status.GRADED, result.reason
    assert result.runtime == "inprocess"
    assert {
        "reference",
        "app_ready",
        "check:contract",
        "check:schemathesis",
    } <= result.timings.keys()
    checks = {o.check for i in result.items for o in i.outcomes if not o.skipped}
    assert {"contract", "schemathesis", "differential", "concurrency"} <= checks
    failed = [(o.name, o.message) for i in result.items for o in i.outcomes if not o.passed]
    assert all(o.skipped for i in result.items for o in i.outcomes if not o.passed), failed
    assert result.score == _checked(result) > 70
    assert result.causes == []
    full = _reports(tmp_path)
    assert full["score"] == result.score
    # the app's modules and env are gone with it: the next app imports its own
    assert {name for name in sys.modules if name.partition(".")[0] == "app"} == before
    assert str(REFERENCE) not in sys.path


def test_a_bug_costs_its_item_only(fresh_cache: None, tmp_path: Path) -> None:
    buggy = tmp_path / "buggy"
    shutil.copytree(REFERENCE, buggy)
    main = buggy / "app" / "main.py"
    source = main.read_text()
    echo = 'return {"page": page, "skip": skip}'
    assert echo in source
    main.write_text(source.replace(echo, 'return {"page": skip, "skip": page}'))
    env_before = _environ()

    result = _grade(buggy, tmp_path / "out")

    assert result.status is Status.GRADED, result.reason
    items = {i.id: i for i in result.items}
    assert items["query-params"].points < items["query-params"].max_points
    assert items["matches-reference"].points < items["matches-reference"].max_points
    full_marks = [i for i in result.items if i.id not in {"query-params", "matches-reference"}]
    assert all(i.points == i.max_points or i.not_checked for i in full_marks), [
        (i.id, i.points) for i in full_marks if i.points != i.max_points
    ]
    assert result.score < _checked(result)
    assert any("/query_params" in cause.title for cause in result.causes), result.causes
    full = _reports(tmp_path / "out")
    assert full["causes"]
    assert list((tmp_path / "out" / "reproduce").glob("*.py"))
    assert _environ() == env_before  # the app's env contract is gone with it
