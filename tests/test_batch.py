"""`grader batch`: one result per submission, resumable after SIGKILL, nothing left running."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from docker import DockerClient
from mini_assignment import make_submission

from grader.batch import folder_names
from grader.engine import leftovers

pytestmark = pytest.mark.docker


def _class(root: Path) -> Path:
    root.mkdir()
    make_submission(root / "alice")
    make_submission(root / "bob", mode="wrong")
    make_submission(root / "carol", dockerfile_extra="RUN exit 3\n")
    make_submission(root / "dave", cmd='["sleep", "3600"]')  # never healthy: the slow one
    with zipfile.ZipFile(root / "eve.zip", "w") as zf:
        zf.writestr("Dockerfile", "FROM python:3.11-slim\n")
        zf.writestr("../escape.txt", "x")
    return root


def _own_cache(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An environment whose graders keep their leases in a folder of this test's: the leftovers
    of its runs are told apart from those of grades running beside it on the same engine."""
    cache = tmp_path / "cache"
    return {**os.environ, "API_GRADER_CACHE": str(cache)}, cache / "runs"


def _batch(source: Path, spec: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "grader.cli",
        "batch",
        str(source),
        "--assignment",
        str(spec),
        "--out",
        str(out),
        "--jobs",
        "2",
    ]


def _rows(out: Path) -> dict[str, dict[str, str]]:
    with (out / "grades.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len({r["student"] for r in rows}), "duplicate rows"
    return {r["student"]: r for r in rows}


def _journal(out: Path) -> list[dict[str, object]]:
    return [
        json.loads(line)
        for line in (out / "journal.jsonl").read_text().splitlines()
        if line.strip()
    ]


def test_batch_grades_everyone_once_and_resumes_after_sigkill(
    mini: Path, tmp_path: Path, docker_client: DockerClient
) -> None:
    source, out = _class(tmp_path / "class"), tmp_path / "out"
    env, leases = _own_cache(tmp_path)
    # started like a background job of a shell: SIGINT ignored, which its children inherit
    proc = subprocess.Popen(
        _batch(source, mini, out),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        env=env,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # kill it once some, not all, grades are in
        if (out / "journal.jsonl").exists() and len(_journal(out)) >= 2:
            break
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished_before = {e["student"]: e for e in _journal(out)}
    assert 2 <= len(finished_before) < 5
    # the killed batch's children got SIGTERM (parent-death signal) and removed their containers
    end = time.monotonic() + 60
    while leftovers(docker_client, lease_dir=leases) and time.monotonic() < end:
        time.sleep(0.5)
    assert not leftovers(docker_client, lease_dir=leases)

    done = subprocess.run(
        _batch(source, mini, out), capture_output=True, text=True, timeout=600, check=False, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    journal = _journal(out)
    students = [e["student"] for e in journal]
    assert sorted(students) == ["alice", "bob", "carol", "dave", "eve"], "one result per submission"
    for student, entry in finished_before.items():  # kept, not redone
        assert next(e for e in journal if e["student"] == student) == entry
    rows = _rows(out)
    assert rows["alice"]["score"] == "100" and rows["alice"]["status"] == "graded"
    assert rows["bob"]["score"] == "75"
    assert rows["carol"]["status"] == "build_failed" and rows["carol"]["score"] == "0"
    assert rows["dave"]["status"] == "start_failed"
    assert rows["eve"]["status"] == "rejected"
    for student in rows:
        assert (out / student / "report.html").is_file() and (
            out / student / "results.json"
        ).is_file()
    index = (out / "index.html").read_text()
    assert "<svg" in index and "alice/report.html" in index and "Pass rate per rubric item" in index

    again = subprocess.run(
        _batch(source, mini, out), capture_output=True, text=True, timeout=120, check=False, env=env
    )
    assert again.returncode == 0
    assert len(_journal(out)) == 5, "a finished batch regrades nothing"
    assert not leftovers(docker_client, lease_dir=leases)
    assert not leftovers(docker_client, runs={str(e["run_id"]) for e in _journal(out)})


def test_students_whose_names_make_the_same_folder_keep_their_own_reports(
    mini: Path, tmp_path: Path, docker_client: DockerClient
) -> None:
    make_submission(tmp_path / "subs" / "a")
    make_submission(tmp_path / "subs" / "b", mode="wrong")
    roster = tmp_path / "roster.csv"
    roster.write_text("student,path\nO'Brien,subs/a\nO Brien,subs/b\n")
    out = tmp_path / "out"
    done = subprocess.run(
        _batch(roster, mini, out), capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = _rows(out)
    assert rows["O'Brien"]["score"] == "100" and rows["O Brien"]["score"] == "75"
    assert rows["O'Brien"]["report"] != rows["O Brien"]["report"]
    for student, score in (("O'Brien", 100), ("O Brien", 75)):
        report = out / rows[student]["report"]
        assert json.loads(report.with_name("results.json").read_text())["score"] == score
        assert report.is_file()
    index = (out / "index.html").read_text()
    assert all(row["report"] in index for row in rows.values())
    assert not leftovers(docker_client, runs={str(e["run_id"]) for e in _journal(out)})


def test_folder_names_are_unique_per_student() -> None:
    names = [
        "alice",
        "O'Brien",
        "O Brien",
        "O_Brien",
        "Bob",
        "bob",
        "index.html",
        "../x",
        ".hidden",
        "",
    ]
    folders = folder_names(names)
    assert folders["alice"] == "alice", "a plain name stays readable"
    assert len({f.casefold() for f in folders.values()}) == len(names)
    for student, folder in folders.items():
        assert "/" not in folder and not folder.startswith(".") and folder not in {"", "index.html"}
        assert folder_names(names)[student] == folder, "the same folder on every run"


def test_roster_csv_and_grader_fault_is_not_a_zero(mini: Path, tmp_path: Path) -> None:
    make_submission(tmp_path / "subs" / "ann")
    roster = tmp_path / "roster.csv"
    roster.write_text("student,path\nann,subs/ann\n")
    env = {**os.environ, "DOCKER_HOST": "tcp://127.0.0.1:9"}  # no engine: a grader fault
    done = subprocess.run(
        _batch(roster, mini, tmp_path / "out"),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 2
    rows = _rows(tmp_path / "out")
    assert rows["ann"]["status"] == "not_graded" and rows["ann"]["score"] == ""
    assert "not graded" in done.stderr


@pytest.mark.parametrize("exit_code", [1, 2, -9])
def test_a_crashed_grade_never_scores_from_an_earlier_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exit_code: int
) -> None:
    """A child that crashes, faults or is killed leaves no result of its own: an earlier grade's
    results.json in the same folder (a previous version of the submission) must not be taken."""
    from grader import batch

    out = tmp_path / "alice"
    out.mkdir()
    (out / "results.json").write_text(
        json.dumps(
            {
                "score": 100,
                "tests": [{"max_score": 100}],
                "extra_data": {"status": "graded", "reason": ""},
            }
        )
    )
    child = tmp_path / "child.sh"
    child.write_text(
        f"#!/bin/sh\necho boom >&2\n{'kill -9 $$' if exit_code < 0 else f'exit {exit_code}'}\n"
    )
    child.chmod(0o755)
    monkeypatch.setattr(batch.sys, "executable", str(child))
    entry = batch._grade_one(batch.Submission("alice", str(tmp_path)), out, "mini", 0, 30, [], None)
    assert entry["status"] == "not_graded" and entry["score"] is None, entry
