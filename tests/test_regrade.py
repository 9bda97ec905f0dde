"""Regrades that show what changed: after the assignment changes, `grader batch` refuses to mix old
and new grades, `--regrade` redoes the stale ones and changes.csv and index.html say whose grade
moved, old → new, and which rubric items moved; the earlier grades stay in the journal and the
earlier full.json beside each report.

Most tests run `run_batch` itself with its `grader grade` child replaced by an in-process grader
that writes real results (grader.output) from the assignment's own rubric; one test runs the real
CLI on Docker with the mini assignment.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from docker import DockerClient
from mini_assignment import make_submission, write_mini

from grader import assignment as assignments
from grader import batch, gradebook, output, regrade
from grader.batch import Journal, folder_names, run_batch, write_summaries
from grader.core import CategoryScore, ItemScore, Outcome, Result, Status
from grader.engine import leftovers
from grader.output import full

HOSTILE = "<script>alert(1)</script>"
CYRILLIC = 'Иванов, "Ваня"'


def _reweigh(spec: Path, builds: int, hello: int) -> None:
    """Change the rubric's points (the assignment's fingerprint changes with it)."""
    path = spec / "assignment.yaml"
    text = path.read_text()
    changed = text.replace("category: deploy, points: 20", f"category: deploy, points: {builds}")
    changed = changed.replace("category: api, points: 50", f"category: api, points: {hello}")
    assert changed.count("points:") == text.count("points:") and changed != text
    path.write_text(changed)


def _result(spec: assignments.Assignment, source: str, failing: set[str]) -> Result:
    """What the grader gives a submission failing the `failing` rubric items."""
    result = Result(
        assignment=spec.id,
        assignment_version=spec.fingerprint,
        submission=source,
        seed=0,
        status=Status.GRADED,
        max_score=spec.total,
    )
    for item in spec.items:
        points = 0.0 if item.id in failing else item.points
        outcome = Outcome(check=item.check, name=item.id, item=item.id, passed=points > 0)
        result.items.append(
            ItemScore(item.id, item.title, item.category, points, item.points, "visible", [outcome])
        )
    for cat in spec.categories:
        mine = [i for i in result.items if i.category == cat.id]
        result.categories.append(
            CategoryScore(
                cat.id, cat.title, sum(i.points for i in mine), sum(i.max_points for i in mine)
            )
        )
    result.score = sum(i.points for i in result.items)
    return result


class FakeGrader:
    """`batch._grade_one` without a child or Docker: the result the real one reads back, written
    by the real writers. `failing`: the items each student fails; `faulty`: students whose grade
    is a grader fault (no result)."""

    def __init__(self, failing: dict[str, set[str]]) -> None:
        self.failing = failing
        self.faulty: set[str] = set()
        self.crash: set[str] = set()  # the batch dies while grading them…
        self.crash_after = 0  # …once the journal holds this many lines (the others' grades)
        self.graded: list[str] = []

    def __call__(
        self, sub: batch.Submission, out: Path, spec_dir: str, *_: Any, **__: Any
    ) -> dict[str, Any]:
        self.graded.append(sub.student)
        if sub.student in self.crash:
            journal, end = out.parent / "journal.jsonl", time.monotonic() + 30
            while len(journal.read_text().splitlines()) < self.crash_after:
                assert time.monotonic() < end, "the other grades never landed"
                time.sleep(0.05)
            raise RuntimeError("the batch was killed")
        (out / full.NAME).unlink(missing_ok=True)
        if sub.student in self.faulty:
            return {
                "status": "not_graded",
                "reason": "the Docker engine did not answer",
                "score": None,
                "max_score": None,
                "seconds": 1.0,
                "run_id": "x",
            }
        result = _result(assignments.load(spec_dir), sub.source, self.failing[sub.student])
        output.write(result, out)
        return {
            "status": "graded",
            "reason": "",
            "score": result.score,
            "max_score": result.max_score,
            "seconds": 1.0,
            "run_id": "x",
        }


def _lines(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "journal.jsonl").read_text().splitlines()]


def _changes(out: Path) -> dict[str, dict[str, str]]:
    with (out / "changes.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len({r["student"] for r in rows})
    return {r["student"]: r for r in rows}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeGrader:
    grader = FakeGrader({"alice": set(), "bob": {"hello"}, "carol": {"starts"}, "dave": set()})
    monkeypatch.setattr(batch, "_grade_one", grader)
    monkeypatch.setattr(batch, "_engine", lambda: None)
    return grader


def _class(root: Path, students: list[str]) -> Path:
    for student in students:
        (root / student).mkdir(parents=True)
        (root / student / "app.py").write_text(f"# {student}\n")
    return root


def test_regrade_lists_exactly_the_students_whose_grade_moved(
    tmp_path: Path, fake: FakeGrader
) -> None:
    spec = write_mini(tmp_path / "spec")
    source, out = _class(tmp_path / "class", ["alice", "bob", "carol", "dave"]), tmp_path / "out"
    run_batch(source=source, assignment=str(spec), out=out)
    before = _lines(out)
    v1 = regrade.fingerprint(before[0])
    assert {e["student"]: e["score"] for e in before} == {
        "alice": 100,
        "bob": 50,
        "carol": 70,
        "dave": 100,
    }
    assert not (out / "changes.csv").exists(), "nothing regraded yet"
    old_bob = (out / "bob" / full.NAME).read_text()

    _reweigh(spec, builds=10, hello=60)  # builds 20 → 10, hello 50 → 60
    fake.graded.clear()
    with pytest.raises(regrade.StaleGrades) as refused:
        run_batch(source=source, assignment=str(spec), out=out)
    assert refused.value.stale == ["alice", "bob", "carol", "dave"]
    assert "4 of 4 grades were made with an earlier version" in str(refused.value)
    assert fake.graded == [] and _lines(out) == before, "nothing graded, nothing rewritten"
    index = (out / "index.html").read_text()
    assert "4 grades were made with an earlier version" in index
    assert index.count("(stale)") == 4

    fake.faulty = {"dave"}  # graded → not graded: a status change
    latest = run_batch(source=source, assignment=str(spec), out=out, regrade=True)
    v2 = regrade.fingerprint(latest["alice"])
    assert v2 != v1
    assert sorted(fake.graded) == ["alice", "bob", "carol", "dave", "dave"], "dave retried once"
    lines = _lines(out)
    assert lines[: len(before)] == before, "the earlier grades stay in the journal"
    assert {e["student"] for e in lines[len(before) :]} == {"alice", "bob", "carol", "dave"}
    assert latest["bob"]["items"] == {"builds": 10, "starts": 30, "hello": 0}

    rows = _changes(out)
    # alice (100 → 100) and carol (70 → 70: she fails `starts`, which kept its points) are absent
    assert set(rows) == {"bob", "dave"}
    bob = rows["bob"]
    assert (bob["old_score"], bob["new_score"], bob["change"]) == ("50", "40", "-10")
    assert bob["items"] == "builds 20 → 10", "hello was 0 and stays 0: not moved"
    assert (bob["old_status"], bob["new_status"]) == ("graded", "graded")
    assert (bob["old_version"], bob["new_version"], bob["resubmitted"]) == (v1, v2, "")
    dave = rows["dave"]
    assert (dave["old_score"], dave["new_score"], dave["change"]) == ("100", "", "")
    assert (dave["old_status"], dave["new_status"]) == ("graded", "not_graded")
    # the earlier grade's whole result is kept beside the new one
    assert (out / "bob" / f"full-{v1}.json").read_text() == old_bob
    assert full.read(out / "bob" / full.NAME).assignment_version == v2

    index = (out / "index.html").read_text()
    assert "Changes since the previous version of the assignment" in index
    assert "4 students regraded, 2 with a different grade" in index
    assert "50 → 40" in index and "builds 20 → 10" in index
    assert "(stale)" not in index

    # resumed or run again: the current grades are not redone (dave's fault is, as always)
    fake.graded.clear()
    fake.faulty = set()
    run_batch(source=source, assignment=str(spec), out=out, regrade=True)
    assert fake.graded == ["dave"]
    rows = _changes(out)
    assert set(rows) == {"bob"}, "dave 100 → 100: his grade did not move after all"


def test_a_resubmission_after_a_regrade_is_graded_without_regrade(
    tmp_path: Path, fake: FakeGrader
) -> None:
    spec = write_mini(tmp_path / "spec")
    source, out = _class(tmp_path / "class", ["alice", "bob"]), tmp_path / "out"
    run_batch(source=source, assignment=str(spec), out=out)
    _reweigh(spec, builds=10, hello=60)
    run_batch(source=source, assignment=str(spec), out=out, regrade=True)
    (source / "bob" / "app.py").write_text("# fixed\n")
    fake.failing["bob"] = set()
    fake.graded.clear()
    latest = run_batch(source=source, assignment=str(spec), out=out)  # nothing stale: no refusal
    assert fake.graded == ["bob"] and latest["bob"]["score"] == 100
    bob = _changes(out)["bob"]
    assert (bob["old_score"], bob["new_score"], bob["resubmitted"]) == ("50", "100", "yes")
    assert bob["items"] == "builds 20 → 10; hello 0 → 60"


def test_an_interrupted_regrade_is_never_mixed_silently(tmp_path: Path, fake: FakeGrader) -> None:
    """Killed halfway through a regrade: a batch without --regrade still refuses (the rest are
    stale), `grader export` warns that the grades come from two versions, and --regrade
    resumes with the stale ones only."""
    spec = write_mini(tmp_path / "spec")
    source, out = _class(tmp_path / "class", ["alice", "bob"]), tmp_path / "out"
    run_batch(source=source, assignment=str(spec), out=out, jobs=1)
    _reweigh(spec, builds=10, hello=60)
    fake.crash, fake.crash_after = {"bob"}, 3  # after alice's regrade
    with pytest.raises(RuntimeError):
        run_batch(source=source, assignment=str(spec), out=out, jobs=1, regrade=True)
    fake.crash = set()
    with pytest.raises(regrade.StaleGrades, match="1 of 2 grades"):
        run_batch(source=source, assignment=str(spec), out=out, jobs=1)
    index = (out / "index.html").read_text()
    assert "1 grade was made with an earlier version" in index and index.count("(stale)") == 1
    warnings: list[str] = []
    gradebook.export(
        out_dir=out, format=gradebook.Format.csv, out=tmp_path / "g.csv", warn=warnings.append
    )
    assert any("2 versions of the assignment" in w for w in warnings), warnings
    fake.graded.clear()
    run_batch(source=source, assignment=str(spec), out=out, jobs=1, regrade=True)
    assert fake.graded == ["bob"]
    assert set(_changes(out)) == {"bob"}
    warnings.clear()
    gradebook.export(
        out_dir=out, format=gradebook.Format.csv, out=tmp_path / "g.csv", warn=warnings.append
    )
    assert not any("versions of the assignment" in w for w in warnings), warnings


def test_reverting_the_assignment_is_a_change_too(tmp_path: Path, fake: FakeGrader) -> None:
    """Back to the first version: its grades are in the journal already, yet the latest grades
    (the journal's last lines) are the second version's, so they are stale and regraded."""
    spec = write_mini(tmp_path / "spec")
    source, out = _class(tmp_path / "class", ["alice", "bob"]), tmp_path / "out"
    first = (spec / "assignment.yaml").read_text()
    run_batch(source=source, assignment=str(spec), out=out)
    _reweigh(spec, builds=10, hello=60)
    run_batch(source=source, assignment=str(spec), out=out, regrade=True)
    (spec / "assignment.yaml").write_text(first)
    with pytest.raises(regrade.StaleGrades, match="2 of 2 grades"):
        run_batch(source=source, assignment=str(spec), out=out)
    fake.graded.clear()
    latest = run_batch(source=source, assignment=str(spec), out=out, regrade=True)
    assert sorted(fake.graded) == ["alice", "bob"] and latest["bob"]["score"] == 50
    bob = _changes(out)["bob"]
    assert (bob["old_score"], bob["new_score"], bob["items"]) == ("40", "50", "builds 10 → 20")


def _entry(student: str, folder: str, result: Result, n: int) -> dict[str, Any]:
    """A journal line as a batch before this feature wrote it: no points per item."""
    return {
        "key": f"{student}|hash{n}|{result.assignment_version}|0",
        "student": student,
        "source": f"/submissions/{n}",
        "report": f"{folder}/report.html",
        "status": str(result.status),
        "reason": result.reason,
        "score": result.score,
        "max_score": result.max_score,
        "seconds": 1.0,
        "run_id": f"run{n}",
    }


def test_hostile_names_are_escaped_and_old_journal_lines_use_the_kept_result(
    tmp_path: Path,
) -> None:
    """Journal lines without `items` (written before lines kept them): the points per item come
    from the kept full-<version>.json; without it the row says they are not recorded."""
    spec_dir = write_mini(tmp_path / "spec")
    students = [HOSTILE, CYRILLIC, "plain"]
    v1 = _result(assignments.load(spec_dir), "x", {"hello"})  # a fingerprint is read when asked
    _reweigh(spec_dir, builds=10, hello=60)
    v2 = assignments.load(spec_dir)
    out = tmp_path / "out"
    folders = folder_names(students)
    journal = Journal(out / "journal.jsonl")
    for n, student in enumerate(students):
        output.write(v1, out / folders[student])
        journal.add(_entry(student, folders[student], v1, n))
    # the hostile and the Cyrillic student's earlier results are kept; plain's is not
    regrade.keep_previous(out, [journal.latest()[HOSTILE], journal.latest()[CYRILLIC]])
    for n, student in enumerate(students):
        result = _result(v2, "x", {"hello", "starts"} if student != "plain" else {"hello"})
        output.write(result, out / folders[student])
        journal.add(
            {
                **_entry(student, folders[student], result, n),
                **regrade.detail(
                    out / folders[student], _entry(student, "", result, n), v2.fingerprint
                ),
            }
        )
    write_summaries(out, journal, "Lab <b>", version=v2.fingerprint)

    rows = _changes(out)
    assert set(rows) == {HOSTILE, CYRILLIC, "plain"}
    assert rows[HOSTILE]["items"] == "builds 20 → 10; starts 30 → 0"
    assert rows[CYRILLIC]["old_score"] == "50" and rows[CYRILLIC]["new_score"] == "10"
    assert rows["plain"]["items"] == "points per item not recorded"
    index = (out / "index.html").read_text()
    assert "<script>alert" not in index and "&lt;script&gt;alert(1)&lt;/script&gt;" in index
    assert "Иванов, &#34;Ваня&#34;" in index
    assert "builds 20 → 10; starts 30 → 0" in index


def test_batch_without_regrade_on_a_changed_assignment_grades_nothing(tmp_path: Path) -> None:
    """The real CLI: exit 2, the count and what to do on stderr, the journal untouched, the class
    page marking the stale grades. No Docker: the batch stops before it needs one."""
    spec_dir = write_mini(tmp_path / "spec")
    v1 = assignments.load(spec_dir)
    source, out = _class(tmp_path / "class", ["alice", "bob", "carol"]), tmp_path / "out"
    journal = Journal(out / "journal.jsonl")
    for n, student in enumerate(["alice", "bob"]):
        result = _result(v1, str(source / student), set())
        output.write(result, out / student)
        journal.add(_entry(student, student, result, n))
    before = (out / "journal.jsonl").read_bytes()
    _reweigh(spec_dir, builds=10, hello=60)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "grader.cli",
            "batch",
            str(source),
            "-a",
            str(spec_dir),
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    err = " ".join(done.stderr.split())
    assert "2 of 3 grades were made with an earlier version of the assignment" in err
    assert "--regrade" in err and "not done, the grader's fault" not in err
    assert (out / "journal.jsonl").read_bytes() == before
    assert not (out / "carol").exists(), "not even the new submission is graded"
    index = (out / "index.html").read_text()
    assert "2 grades were made with an earlier version" in index and index.count("(stale)") == 2


@pytest.mark.docker
def test_regrade_end_to_end_on_docker(tmp_path: Path, docker_client: DockerClient) -> None:
    spec = write_mini(tmp_path / "spec")
    source, out = tmp_path / "class", tmp_path / "out"
    make_submission(source / "alice")
    make_submission(source / "bob", mode="wrong")

    def grade(*more: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "grader.cli",
                "batch",
                str(source),
                "-a",
                str(spec),
                "-o",
                str(out),
                "-j",
                "2",
                *more,
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    first = grade()
    assert first.returncode == 0, first.stderr[-2000:]
    v1 = regrade.fingerprint(_lines(out)[0])
    _reweigh(spec, builds=10, hello=60)
    assert grade().returncode == 2
    again = grade("--regrade")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "changes.csv" in again.stderr
    rows = _changes(out)
    assert set(rows) == {"bob"}, "alice keeps 100"
    # one of hello's two tests fails: half its points, 25 of 50, then 30 of 60
    assert (rows["bob"]["old_score"], rows["bob"]["new_score"]) == ("75", "70")
    assert rows["bob"]["items"] == "builds 20 → 10; hello 25 → 30"
    assert len(_lines(out)) == 4
    assert full.read(out / "bob" / f"full-{v1}.json").score == 75
    assert not leftovers(docker_client, runs={str(e["run_id"]) for e in _lines(out)})


def test_a_new_submission_time_grades_that_student_again_and_nothing_is_stale(
    tmp_path: Path, fake: FakeGrader
) -> None:
    """The roster's times are part of a grade's key (an extension granted later grades again),
    never mistaken for the assignment's version."""
    spec = write_mini(tmp_path / "spec")
    source, out = _class(tmp_path / "class", ["alice", "bob"]), tmp_path / "out"
    roster = tmp_path / "roster.csv"

    def write(alice_time: str) -> None:
        roster.write_text(
            "student,path,ref,deadline,submitted_at\n"
            f"alice,{source / 'alice'},,,{alice_time}\n"
            f"bob,{source / 'bob'},,,2026-12-01T10:00:00+03:00\n"
        )

    write("2026-12-01T09:00:00+03:00")
    first = run_batch(source=roster, assignment=str(spec), out=out)
    version = assignments.load(spec).fingerprint
    assert {regrade.fingerprint(e) for e in first.values()} == {version}
    write("2026-12-01T08:00:00+03:00")
    fake.graded.clear()
    run_batch(source=roster, assignment=str(spec), out=out)  # no StaleGrades: the version is one
    assert fake.graded == ["alice"]


def test_back_to_an_earlier_submission_is_graded_again(tmp_path: Path, fake: FakeGrader) -> None:
    """A, then B, then A again: the folder holds B's result, so A's old journal line is no grade
    of the submission as it is now."""
    spec = write_mini(tmp_path / "spec")
    source, out = _class(tmp_path / "class", ["alice", "bob"]), tmp_path / "out"
    code = source / "alice" / "app.py"
    first = code.read_text()
    for text in (first, "# alice, second try\n", first):
        code.write_text(text)
        fake.graded.clear()
        latest = run_batch(source=source, assignment=str(spec), out=out)
        assert "alice" in fake.graded
    alice = [e["key"] for e in _lines(out) if e["student"] == "alice"]
    assert len(alice) == 3 and alice[0] == alice[2] != alice[1], "A's key again, graded again"
    assert latest["alice"]["key"] == alice[0]
