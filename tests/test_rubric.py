"""A rubric is checked when its assignment loads, before anything is built: every item's check
exists, its options are the ones the check declares (names and types), and rules across items hold
(a Schemathesis check scores one item; an item that needs what another check finds has that check's
item beside it). A broken one fails `grader grade` at once, naming the file, the item and the field.
Then the checks run a provider before the checks that take its value."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT

from grader import assignment as assignments
from grader.checks import Context, run_checks
from grader.checks.builtin import ConcurrencyOptions, ProcessesOptions, SchemathesisOptions
from grader.core import GraderFault

BASE = ROOT / "specs" / "fastapi-basics" / "assignment.yaml"
Rubric = dict[str, Any]


def _item(rubric: Rubric, item_id: str) -> dict[str, Any]:
    return next(i for i in rubric["items"] if i["id"] == item_id)


def _set(item_id: str, **fields: Any) -> Callable[[Rubric], None]:
    return lambda rubric: _item(rubric, item_id).update(fields)


def _options(item_id: str, **options: Any) -> Callable[[Rubric], None]:
    return lambda rubric: _item(rubric, item_id)["options"].update(options)


def _drop(check: str) -> Callable[[Rubric], None]:
    def edit(rubric: Rubric) -> None:
        rubric["items"] = [i for i in rubric["items"] if i["check"] != check]
        rubric["total"] = sum(i["points"] for i in rubric["items"])

    return edit


def _hide(check: str) -> Callable[[Rubric], None]:
    def edit(rubric: Rubric) -> None:
        for item in rubric["items"]:
            if item["check"] == check:
                item["visibility"] = "hidden"

    return edit


def _write(folder: Path, edit: Callable[[Rubric], None]) -> Path:
    rubric = yaml.safe_load(BASE.read_text(encoding="utf-8"))
    edit(rubric)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "assignment.yaml").write_text(yaml.safe_dump(rubric), encoding="utf-8")
    return folder


BROKEN: dict[str, tuple[Callable[[Rubric], None], list[str]]] = {
    "unknown check": (
        _set("concurrent-requests", check="concurrancy"),
        ["item 'concurrent-requests'", "unknown check 'concurrancy'", "known: build, concurrency"],
    ),
    "unknown option": (
        _options("concurrent-requests", requets=5),
        [
            "item 'concurrent-requests'",
            "option 'requets'",
            "Extra inputs are not permitted",
            "takes: path, requests, timeout",
        ],
    ),
    "wrong type": (
        _options("concurrent-requests", requests="many"),
        ["item 'concurrent-requests'", "option 'requests'", "valid integer"],
    ),
    "out of range": (
        _options("concurrent-requests", requests=0),
        ["option 'requests'", "greater than or equal to 1"],
    ),
    "missing option": (
        lambda rubric: _item(rubric, "workers")["options"].pop("match"),
        ["item 'workers'", "option 'match'", "Field required"],
    ),
    "bad regex": (
        _options("workers", match="gunicorn("),
        ["item 'workers'", "option 'match'", "not a regular expression"],
    ),
    "options for a check that takes none": (
        _set("root", options={"path": "/"}),
        ["item 'root'", "option 'path'", "the contract check takes: no options"],
    ),
    "unknown schemathesis check": (
        _options("fuzz-no-server-errors", checks=["not_a_server_eror"]),
        ["item 'fuzz-no-server-errors'", "option 'checks.0'", "'not_a_server_error'"],
    ),
    "schemathesis check in two items": (
        _options("fuzz-conformance", checks=["status_code_conformance", "not_a_server_error"]),
        [
            "check 'not_a_server_error' is in two rubric items: "
            "fuzz-no-server-errors, fuzz-conformance"
        ],
    ),
    "no contract item": (
        _drop("contract"),
        [
            "item 'matches-reference': the differential check needs what the contract check "
            "finds: the rubric needs a contract item",
            "item 'fuzz-no-server-errors': the schemathesis check needs",
        ],
    ),
    "alone names a check that runs with the others": (
        lambda rubric: rubric.update(alone=["contract"]),
        ["alone: 'contract' is not a check that runs beside the others; those are: schemathesis"],
    ),
    "no visible contract item": (
        _hide("contract"),
        ["item 'matches-reference'", "the rubric's visible part needs a contract item"],
    ),
}


@pytest.mark.parametrize("case", BROKEN, ids=str)
def test_a_broken_rubric_fails_at_load_naming_file_item_and_field(
    case: str, tmp_path: Path
) -> None:
    edit, said = BROKEN[case]
    folder = _write(tmp_path / "spec", edit)
    with pytest.raises(GraderFault) as caught:
        assignments.load(folder)
    message = str(caught.value)
    assert str(folder / "assignment.yaml") in message
    for part in said:
        assert part in message, message


def test_every_problem_is_named_at_once(tmp_path: Path) -> None:
    def two(rubric: Rubric) -> None:
        _options("concurrent-requests", requets=5)(rubric)
        _set("workers", check="proceses")(rubric)

    with pytest.raises(GraderFault) as caught:
        assignments.load(_write(tmp_path / "spec", two))
    assert "option 'requets'" in str(caught.value)
    assert "unknown check 'proceses'" in str(caught.value)


def test_checks_read_typed_options_with_their_defaults() -> None:
    basics = assignments.load("fastapi-basics")
    concurrency = ConcurrencyOptions.of(basics.item("concurrent-requests"))
    assert (concurrency.path, concurrency.requests, concurrency.timeout) == ("/", 20, 10.0)
    workers = ProcessesOptions.of(basics.item("workers"))
    assert workers.min == 3 and workers.describe and workers.match.startswith("^")
    assert ProcessesOptions.model_validate({"match": "x"}).min == 2
    assert SchemathesisOptions.of(basics.item("fuzz-no-server-errors")).checks == [
        "not_a_server_error"
    ]
    assert ConcurrencyOptions().path is None  # the health path, read at run time


def test_loading_a_rubric_imports_nothing_heavy() -> None:
    """The checks' registry validates a rubric without pytest, Schemathesis or HTTP clients."""
    code = (
        "import sys\nfrom grader import assignment\nassignment.load('fastapi-db-auth')\n"
        "print(sorted(m for m in ('pytest', 'schemathesis', 'httpx', 'requests', 'jsonschema',"
        " 'docker', 'grader.pipeline') if m in sys.modules))"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert shown.stdout.strip() == "[]", shown.stdout


@pytest.mark.parametrize("case", ["unknown check", "unknown option", "wrong type"])
def test_grader_grade_refuses_a_broken_rubric_in_a_moment(case: str, tmp_path: Path) -> None:
    """Before any build, before the engine is even asked (DOCKER_HOST leads nowhere): exit 2 with
    the file, the item and the field. The child's CPU time shows how little it did (its wall time
    on a shared machine measures the neighbours too: it is bounded loosely)."""
    folder = _write(tmp_path / "spec", BROKEN[case][0])
    submission = tmp_path / "submission"
    submission.mkdir()
    (submission / "Dockerfile").write_text("FROM python:3.11-slim\n")
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock", "COLUMNS": "400"}
    command = [sys.executable, "-m", "grader.cli", "grade", str(submission)]
    command += ["--assignment", str(folder), "--out", str(tmp_path / "out")]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    begin = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    wall = time.monotonic() - begin
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert done.returncode == 2, done.stderr
    said = " ".join(done.stderr.split())
    assert str(folder / "assignment.yaml") in said, said
    for part in BROKEN[case][1]:
        assert part in said, said
    assert "Docker" not in said and not (tmp_path / "out").exists()
    assert cpu < 1.0, f"{cpu:.2f} s of CPU"
    assert wall < 5.0, f"{wall:.2f} s"


def test_run_checks_refuses_items_that_cannot_be_graded_before_running_any() -> None:
    """The same rules for items handed to run_checks directly (not from a loaded file)."""
    basics = assignments.load("fastapi-basics")
    items = [basics.item("matches-reference"), basics.item("image-builds")]
    ctx = Context(assignment=basics, seed=0, runtime="docker", built=True)
    with pytest.raises(GraderFault, match="the rubric needs a contract item"):
        run_checks(ctx, items)


def test_without_an_app_every_check_that_needs_one_is_not_run() -> None:
    basics = assignments.load("fastapi-basics")
    ctx = Context(
        assignment=basics, seed=0, runtime="docker", built=False, build_reason="no Dockerfile"
    )
    timings: dict[str, float] = {}
    outcomes = run_checks(ctx, basics.items, timings)
    assert {o.item for o in outcomes} == {i.id for i in basics.items}
    assert all(o.not_run and o.message == "Not checked: no Dockerfile" for o in outcomes[1:])
    assert outcomes[0].check == "build" and not outcomes[0].passed
    assert set(timings) == {"check:build", "check:start"}
