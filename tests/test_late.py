"""Deadlines and late work (grader.late): the policy checked when the assignment loads, the
penalty's arithmetic at its edges, extensions from the batch roster, the git commit date as the
submission time, and the penalty as a line of its own in every report. No Docker: the pipeline
runs in-process on a tiny ASGI app."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import zipfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from mini_assignment import make_submission, write_mini
from typer.testing import CliRunner

from grader import assignment as assignments
from grader import batch, gradebook, late, submission
from grader.assignment import LatePolicy
from grader.batch import Submission, discover
from grader.bundle import bundle
from grader.cli import app as cli
from grader.console import SafeConsole
from grader.core import GraderFault, ItemScore, Late, Result, Status
from grader.engine import leftovers
from grader.output import full, gradescope, html, markdown, terminal
from grader.pipeline import grade

MSK = timezone(timedelta(hours=3))
DEADLINE = datetime(2026, 12, 1, 23, 59, tzinfo=MSK)
POLICY = LatePolicy(deadline=DEADLINE, grace_minutes=15, penalty_per_day=10, max_days=5)


def _assess(submitted: datetime | None, points: float = 80, **kw: Any) -> Late:
    return late.assess(
        kw.pop("policy", POLICY),
        max_score=100,
        points=points,
        submitted_at=submitted,
        source="roster",
        **kw,
    )


# -- the policy in assignment.yaml ------------------------------------------------------------

SPEC = """
id: mini-late
title: Mini late
runtime: {port: 8000, health_path: /health, start_deadline: 20, env: {GREETING: hello}}
categories: [{id: api, title: API}]
items: [{id: hello, title: GET /hello greets, category: api, points: 100, check: contract}]
"""
TEST = """
import pytest
from grader.testing import expect_equal, expect_status

@pytest.mark.rubric("hello")
def test_hello(client, target):
    r = client.get("/hello")
    expect_status(r, 200)
    expect_equal(r.json(), {"greeting": target.env["GREETING"]}, "GET /hello body")
"""


def _spec(root: Path, late_yaml: str | None) -> Path:
    spec = root / "spec"
    (spec / "tests").mkdir(parents=True)
    (spec / "assignment.yaml").write_text(SPEC + (f"late: {late_yaml}\n" if late_yaml else ""))
    (spec / "openapi.yaml").write_text(
        "openapi: 3.1.0\ninfo: {title: m, version: '1'}\npaths: {}\n"
    )
    (spec / "tests" / "test_hello.py").write_text(TEST)
    return spec


def test_a_policy_loads_with_its_timezone(tmp_path: Path) -> None:
    spec = assignments.load(
        _spec(
            tmp_path,
            "{deadline: 2026-12-01T23:59:00+03:00, grace_minutes: 15, penalty_per_day: 10, "
            "max_days: 5}",
        )
    )
    assert spec.late is not None
    assert spec.late.deadline == DEADLINE
    assert spec.late.deadline.utcoffset() == timedelta(hours=3)
    assert (spec.late.grace_minutes, spec.late.penalty_per_day, spec.late.max_days) == (15, 10, 5)


@pytest.mark.parametrize(
    ("late_yaml", "why"),
    [
        ("{deadline: 2026-12-01T23:59:00}", "timezone"),  # naive: whose midnight?
        ("{deadline: '2026-12-01 23:59'}", "timezone"),
        ("{deadline: 2026-12-01}", "deadline"),  # a date, no time
        ("{grace_minutes: 15}", "deadline"),  # no deadline at all
        ("{deadline: 2026-12-01T23:59:00Z, grace_minutes: -1}", "grace_minutes"),
        ("{deadline: 2026-12-01T23:59:00Z, penalty_per_day: -5}", "penalty_per_day"),
        ("{deadline: 2026-12-01T23:59:00Z, penalty_per_day: 150}", "penalty_per_day"),
        ("{deadline: 2026-12-01T23:59:00Z, max_days: -1}", "max_days"),
        ("{deadline: 2026-12-01T23:59:00Z, max_days: 1.5}", "max_days"),
        ("{deadline: 2026-12-01T23:59:00Z, penalty: 10}", "penalty"),  # a typo is no default
    ],
)
def test_a_broken_policy_is_refused_at_load(tmp_path: Path, late_yaml: str, why: str) -> None:
    with pytest.raises(GraderFault, match="not a valid assignment") as info:
        assignments.load(_spec(tmp_path, late_yaml))
    assert "late" in str(info.value) and why in str(info.value)


# -- the arithmetic ---------------------------------------------------------------------------


def test_exactly_at_the_deadline_and_within_the_grace_is_on_time() -> None:
    for submitted in (DEADLINE - timedelta(days=3), DEADLINE, DEADLINE + timedelta(minutes=15)):
        result = _assess(submitted)
        assert (result.days, result.penalty, result.too_late) == (0, 0, False)
        assert late.final_score(80, result) == 80


def test_a_minute_after_the_grace_is_a_day_late() -> None:
    result = _assess(DEADLINE + timedelta(minutes=16))
    assert (result.days, result.penalty) == (1, 10)  # 10% of the max score, 100
    assert late.final_score(80, result) == 70


def test_each_started_day_counts_from_the_deadline_not_the_grace() -> None:
    assert _assess(DEADLINE + timedelta(hours=24)).days == 1
    assert _assess(DEADLINE + timedelta(hours=24, seconds=1)).days == 2
    # the grace forgives a late upload, it does not move the day's boundary
    assert _assess(DEADLINE + timedelta(hours=24, minutes=5)).days == 2


def test_the_penalty_is_a_share_of_the_max_score_and_never_makes_a_negative_score() -> None:
    result = _assess(DEADLINE + timedelta(days=4), points=25)
    assert result.days == 4 and result.penalty == 25  # 40 owed, 25 held
    assert late.final_score(25, result) == 0
    assert late.final_score(25, _assess(DEADLINE + timedelta(days=2), points=25)) == 5


def test_max_days_late_is_still_accepted_and_one_more_is_not() -> None:
    last = _assess(DEADLINE + timedelta(days=5))
    assert (last.days, last.too_late, last.penalty) == (5, False, 50)
    refused = _assess(DEADLINE + timedelta(days=5, minutes=1))
    assert (refused.days, refused.too_late, refused.penalty) == (6, True, 80)
    assert late.final_score(80, refused) == 0


def test_no_max_days_keeps_accepting() -> None:
    policy = LatePolicy(deadline=DEADLINE, penalty_per_day=1)
    result = _assess(DEADLINE + timedelta(days=30), policy=policy)
    assert (result.days, result.too_late, result.penalty, result.max_days) == (30, False, 30, None)


def test_time_zones_compare_as_instants() -> None:
    # 23:59 in Moscow is 20:59 UTC: 21:10Z is 11 minutes late (within the grace), 21:20Z is not
    assert _assess(datetime(2026, 12, 1, 21, 10, tzinfo=UTC)).days == 0
    assert _assess(late.parse_time("2026-12-01T21:20:00Z")).days == 1
    assert _assess(late.parse_time("2026-12-01T16:20:00-05:00")).days == 1  # the same instant
    line = late.describe(_assess(late.parse_time("2026-12-01T21:20:00Z")), 100)
    assert "submitted at 2026-12-02T00:20:00+03:00" in line  # shown in the deadline's zone


def test_a_time_without_an_offset_is_refused() -> None:
    with pytest.raises(ValueError, match="no timezone offset"):
        late.parse_time("2026-12-01T23:59:00")
    with pytest.raises(ValueError, match="not an ISO 8601 time"):
        late.parse_time("yesterday")


def test_an_extension_replaces_the_assignments_deadline() -> None:
    extended = DEADLINE + timedelta(days=2)
    result = _assess(DEADLINE + timedelta(days=1), due=extended)
    assert (result.days, result.penalty, result.extension) == (0, 0, True)
    assert result.deadline == extended.isoformat()
    assert _assess(extended + timedelta(hours=1), due=extended).days == 1


def test_an_unknown_submission_time_costs_nothing_and_says_so() -> None:
    result = _assess(None)
    assert (result.submitted_at, result.source, result.penalty) == (None, "", 0)
    assert "Submission time unknown" in late.describe(result, 100)


# -- the roster ---------------------------------------------------------------------------------


def test_the_headerless_roster_still_reads(tmp_path: Path) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text("ann,subs/ann\nbob,https://example.invalid/bob.git,main\n")
    assert discover(roster) == [
        Submission("ann", str((tmp_path / "subs/ann").resolve())),
        Submission("bob", "https://example.invalid/bob.git", "main"),
    ]


def test_a_roster_header_adds_deadlines_and_submission_times(tmp_path: Path) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "student,path,submitted_at,deadline,ref\n"
        "ann,subs/ann,2026-12-02T10:00:00+03:00,2026-12-04T23:59:00+03:00,\n"
        "bob,subs/bob,2026-12-01T20:00:00Z,,v1\n"
        "cy,subs/cy\n"
    )
    ann, bob, cy = discover(roster)
    assert (ann.ref, ann.deadline, ann.submitted_at) == (
        None,
        "2026-12-04T23:59:00+03:00",
        "2026-12-02T10:00:00+03:00",
    )
    assert (bob.ref, bob.deadline, bob.submitted_at) == ("v1", None, "2026-12-01T20:00:00Z")
    assert (cy.ref, cy.deadline, cy.submitted_at) == (None, None, None)
    # a header that names a third column otherwise keeps it as the ref
    roster.write_text("student,path,branch\nann,subs/ann,dev\n")
    assert discover(roster)[0].ref == "dev"


def test_a_roster_time_without_an_offset_is_refused_with_its_line(tmp_path: Path) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text("student,path,deadline\nann,subs/ann,2026-12-04T23:59:00+03:00\nbob,b,soon\n")
    with pytest.raises(GraderFault, match=r"line 3, deadline: 'soon'"):
        discover(roster)


def test_the_roster_times_go_to_the_grade_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands: list[list[str]] = []

    def run(cmd: list[str], *_: Any) -> tuple[int, str]:
        commands.append(cmd)
        return 2, "stopped here"

    monkeypatch.setattr(batch, "_wait_child", run)
    sub = Submission("ann", "subs/ann", None, "2026-12-04T23:59:00+03:00", "2026-12-02T10:00Z")
    batch._grade_one(sub, tmp_path / "ann", "spec", 0, 60, [], None)
    batch._grade_one(Submission("bob", "subs/bob"), tmp_path / "bob", "spec", 0, 60, [], None)
    ann, bob = commands
    assert ann[ann.index("--submitted-at") + 1] == "2026-12-02T10:00Z"
    assert ann[ann.index("--due") + 1] == "2026-12-04T23:59:00+03:00"
    assert ann[ann.index("--times-from") + 1] == "roster"
    assert not {"--submitted-at", "--due", "--times-from"} & set(bob)


def test_a_roster_extension_without_a_late_policy_is_refused_before_grading(
    tmp_path: Path,
) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text("student,path,deadline\nann,subs/ann,2026-12-04T23:59:00+03:00\n")
    with pytest.raises(GraderFault, match="no late policy"):
        batch.run_batch(source=roster, assignment=str(_spec(tmp_path, None)), out=tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_the_cli_refuses_a_time_without_an_offset(tmp_path: Path) -> None:
    done = CliRunner().invoke(
        cli,
        ["grade", "x", "-a", "spec", "-o", str(tmp_path / "o"), "--submitted-at", "2026-12-01"],
    )
    assert done.exit_code == 2
    assert "--submitted-at" in done.output and "no timezone offset" in done.output


def test_the_cli_hands_the_times_to_the_grade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def fake(**kwargs: Any) -> Result:
        seen.update(kwargs)
        return _late_result()

    monkeypatch.setattr("grader.pipeline.grade", fake)
    monkeypatch.setattr("grader.cli._interruptible", lambda: None)  # this process's signals
    spec = _spec(tmp_path, POLICY_YAML)
    argv = ["grade", "x", "-a", str(spec), "-o", str(tmp_path / "o")]
    done = CliRunner().invoke(
        cli,
        [*argv, "--submitted-at", "2026-12-02T10:00:00Z", "--due", "2026-12-05T00:00:00+03:00"],
    )
    assert done.exit_code == 0, done.output
    assert seen["submitted_at"] == datetime(2026, 12, 2, 10, tzinfo=UTC)
    assert seen["due"] == datetime(2026, 12, 5, tzinfo=MSK)
    assert "times_from" not in seen  # the API's default: "command line"
    seen.clear()
    assert CliRunner().invoke(cli, [*argv, "--times-from", "roster"]).exit_code == 0
    assert seen["times_from"] == "roster" and "submitted_at" not in seen


def test_gradescopes_upload_time_is_the_submission_time(tmp_path: Path) -> None:
    """run_autograder passes submission_metadata.json's created_at (Gradescope's clock)."""
    zipped = bundle(assignment="fastapi-basics", out=tmp_path / "autograder.zip")
    root = tmp_path / "autograder"
    (root / "venv" / "bin").mkdir(parents=True)
    (root / "source").mkdir()
    with zipfile.ZipFile(zipped) as zf:
        (root / "run_autograder").write_bytes(zf.read("run_autograder"))
    (root / "venv" / "bin" / "python").symlink_to(sys.executable)
    fake = root / "venv" / "bin" / "grader"  # says what it was asked
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$AUTOGRADER_ROOT/args"\n')
    fake.chmod(0o755)

    def args(metadata: dict[str, Any] | None) -> list[str]:
        meta = root / "submission_metadata.json"
        meta.unlink(missing_ok=True)
        if metadata is not None:
            meta.write_text(json.dumps(metadata))
        env = {"PATH": "/usr/bin:/bin", "AUTOGRADER_ROOT": str(root)}
        subprocess.run(["bash", str(root / "run_autograder")], env=env, check=True, timeout=60)
        return (root / "args").read_text().splitlines()

    created = "2026-12-01T14:22:32.365935-07:00"
    given = args({"created_at": created, "assignment": {"due_date": created}})
    assert given[given.index("--submitted-at") + 1] == created
    assert late.parse_time(created)  # what the grader will read
    assert "--submitted-at" not in args(None)  # not on Gradescope: no time
    assert "--submitted-at" not in args({"created_at": "2026-12-01T14:22:32"})  # no offset


# -- git: the commit date -----------------------------------------------------------------------

APP = """
import json, os

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].rsplit(".", 1)[-1]
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    answers = {"/health": {"status": "ok"}, "/hello": {"greeting": os.environ["GREETING"]}}
    body = json.dumps(answers.get(scope["path"], {})).encode()
    status = 200 if scope["path"] in answers else 404
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
"""


def _app(root: Path) -> Path:
    (root / "app").mkdir(parents=True)
    (root / "app" / "__init__.py").write_text("")
    (root / "app" / "main.py").write_text(APP)
    (root / "Dockerfile").write_text(
        'FROM python:3.11-slim\nCOPY . .\nCMD ["uvicorn", "app.main:app", "--host", "0.0.0.0", '
        '"--port", "8000"]\n'
    )
    return root


def _git_repo(root: Path, committed: str) -> Path:
    """A repository of the app whose one commit has the committer date `committed`."""
    _app(root)
    env = {"GIT_COMMITTER_DATE": committed, "GIT_AUTHOR_DATE": "2020-01-01T00:00:00Z"}
    git = ["git", "-C", str(root), "-c", "user.email=s@example.invalid", "-c", "user.name=s"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run(
        [*git, "commit", "-qm", "work"], check=True, env={"PATH": "/usr/bin:/bin", **env}
    )
    return root


def test_a_git_source_gives_its_committer_date(tmp_path: Path) -> None:
    repo = _git_repo(tmp_path / "repo", "2026-12-03T09:30:00+05:00")
    prepared = submission.prepare_source(f"file://{repo}", workdir=tmp_path / "w")
    assert (prepared.root / "app" / "main.py").is_file()
    assert prepared.committed_at == "2026-12-03T09:30:00+05:00"  # the committer's, not the author's
    folder = submission.prepare_source(repo, workdir=tmp_path / "w2")  # a folder: no commit
    assert folder.committed_at is None


def _grade(
    source: Path | str, spec: Path, out: Path | None = None, **kw: Any
) -> tuple[Result, Path | None]:
    return grade(submission_path=source, assignment=spec, runtime="inprocess", out=out, **kw), out


POLICY_YAML = (
    "{deadline: 2026-12-01T23:59:00+03:00, grace_minutes: 15, penalty_per_day: 10, max_days: 5}"
)


def test_a_late_commit_is_graded_with_its_penalty_and_the_reports_say_whose_time(
    tmp_path: Path,
) -> None:
    spec = _spec(tmp_path, POLICY_YAML)
    # 2026-12-03 09:30 +05:00 is 07:30 Moscow: 1 day and 7 h 31 min after the deadline, 2 days
    repo = _git_repo(tmp_path / "repo", "2026-12-03T09:30:00+05:00")
    result, out = _grade(f"file://{repo}", spec, tmp_path / "out")
    assert result.status is Status.GRADED and result.items[0].points == 100  # the work's points
    assert result.late is not None
    assert (result.late.source, result.late.days, result.late.penalty) == ("commit date", 2, 20)
    assert result.score == 80
    assert out is not None
    saved = json.loads((out / "full.json").read_text())
    assert saved["late"]["penalty"] == 20 and saved["late"]["source"] == "commit date"
    assert saved["items"][0]["points"] == 100  # never folded into an item
    report = (out / "report.html").read_text()
    assert "80 <small>/ 100</small>" in report and "100 for the work − 20 late penalty" in report
    assert "from the commit date" in report and "the push time" in report
    results = json.loads((out / "results.json").read_text())
    assert results["score"] == 80
    assert results["tests"][-1]["name"] == "Late penalty: −20 points"
    # a time given (an upload time) wins over the commit date
    given, _ = _grade(
        f"file://{repo}", spec, submitted_at=late.parse_time("2026-12-01T23:00:00+03:00")
    )
    assert given.late is not None and given.late.source == "command line"
    assert (given.late.days, given.score) == (0, 100)
    # an extension from the roster
    extended, _ = _grade(
        f"file://{repo}",
        spec,
        due=late.parse_time("2026-12-05T23:59:00+03:00"),
        times_from="roster",
    )
    assert extended.late is not None and extended.late.extension
    assert (extended.late.days, extended.score) == (0, 100)


def test_without_a_policy_a_grade_has_no_late_section(tmp_path: Path) -> None:
    result, _ = _grade(_app(tmp_path / "app"), _spec(tmp_path, None))
    assert result.status is Status.GRADED and result.late is None and result.score == 100
    with pytest.raises(GraderFault, match="no late policy"):  # before anything runs
        _grade(tmp_path / "app", tmp_path / "spec", due=DEADLINE)


def test_a_result_not_graded_gets_no_penalty_and_no_score(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fault(*_: Any, **__: Any) -> None:
        raise GraderFault("the disk is full")

    monkeypatch.setattr(submission, "prepare_source", fault)
    result, out = _grade(
        tmp_path / "nothing",
        _spec(tmp_path, POLICY_YAML),
        tmp_path / "out",
        submitted_at=DEADLINE + timedelta(days=3),
    )
    assert result.status is Status.NOT_GRADED and result.late is None
    assert out is not None
    results = json.loads((out / "results.json").read_text())
    assert "score" not in results and not any("Late" in t["name"] for t in results["tests"])


# -- every report shows the penalty as its own line ---------------------------------------------


def _late_result(penalty: float = 20, days: int = 2) -> Result:
    item = ItemScore(
        id="hello",
        title="GET /hello greets",
        category="api",
        points=90,
        max_points=100,
        visibility="visible",
    )
    return Result(
        assignment="mini-late",
        assignment_version="1-x",
        submission="ann",
        seed=0,
        status=Status.GRADED,
        score=90 - penalty,
        max_score=100,
        items=[item],
        late=Late(
            deadline="2026-12-01T23:59:00+03:00",
            extension=False,
            submitted_at="2026-12-03T10:00:00+03:00",
            source="roster",
            grace_minutes=15,
            penalty_per_day=10,
            max_days=5,
            days=days,
            too_late=False,
            penalty=penalty,
        ),
    )


LINE = (
    "Late penalty −20 points: 2 days late (10% of 100 points per day or part of one, "
    "the score never below 0); submitted at 2026-12-03T10:00:00+03:00 (from the roster); deadline "
    "2026-12-01T23:59:00+03:00."
)


def test_markdown_shows_the_penalty_line() -> None:
    text = markdown.render(_late_result())
    assert text.startswith(
        f"## mini-late: Graded. Score 70/100 (90 for the work, −20 late penalty).\n\n**{LINE}**\n\n"
    )


def test_gradescope_shows_the_penalty_as_a_test_of_its_own() -> None:
    data = gradescope.results(_late_result())
    assert data["score"] == 70  # Gradescope's total: over the tests' sum, 90
    assert [t["score"] for t in data["tests"]] == [90, 0]
    assert data["tests"][-1] == {
        "name": "Late penalty: −20 points",
        "score": 0,
        "max_score": 0,
        "status": "failed",
        "output": LINE,
        "tags": ["late"],
        "visibility": "visible",
    }
    assert data["extra_data"]["late"]["days"] == 2
    assert "(90 for the work, −20 late penalty)" in data["output"]


def test_the_html_report_and_the_terminal_show_the_penalty_line(tmp_path: Path) -> None:
    page = html.render(_late_result())
    assert '<div class="score">70 <small>/ 100</small>' in page
    assert "90 for the work − 20 late penalty" in page
    assert '<div class="banner" id="late">Late penalty −20 points' in page, "said once"
    buf = io.StringIO()
    terminal.grade(SafeConsole(file=buf, width=400), _late_result(), None)
    assert LINE in buf.getvalue()


def test_on_time_is_said_without_a_penalty() -> None:
    result = _late_result(penalty=0, days=0)
    assert "On time, with a grace of 15 minutes" in markdown.render(result)
    assert "late penalty" not in markdown.render(result)
    assert gradescope.results(result)["tests"][-1]["status"] == "passed"
    assert '<div class="note" id="late"><b>Deadline.</b> On time' in html.render(result)


def test_full_json_carries_the_late_section_back(tmp_path: Path) -> None:
    path = tmp_path / "full.json"
    path.write_text(full.render(_late_result()))
    assert full.read(path).late == _late_result().late
    old = json.loads(full.render(_late_result()))
    del old["late"]  # a full.json written before deadlines existed
    path.write_text(json.dumps(old))
    assert full.read(path).late is None


def test_the_exports_carry_the_penalty(tmp_path: Path) -> None:
    out = tmp_path / "class"
    (out / "ann").mkdir(parents=True)
    result = _late_result()
    (out / "ann" / "full.json").write_text(full.render(result))
    entry = {
        "key": "ann|h|1-x|0",
        "student": "ann",
        "status": "graded",
        "reason": "",
        "score": 70,
        "max_score": 100,
        "report": "ann/report.html",
    }
    (out / "journal.jsonl").write_text(json.dumps(entry) + "\n")
    plain = gradebook.export(out_dir=out, format=gradebook.Format.csv, out=tmp_path / "g.csv")
    rows = plain.read_text(encoding="utf-8-sig").splitlines()
    assert rows[0].startswith(
        "student,status,score,max_score,submitted_at,submitted_from,deadline,extension,days_late,"
        "late_penalty,"
    )
    assert rows[1].startswith(
        "ann,graded,70,100,2026-12-03T10:00:00+03:00,roster,2026-12-01T23:59:00+03:00,,2,20,"
    )
    roster = tmp_path / "roster.csv"
    roster.write_text("student,name,email,sis_id\nann,Ann,ann@example.invalid,1\n")
    moodle = gradebook.export(
        out_dir=out, format=gradebook.Format.moodle, roster=roster, out=tmp_path / "m.csv"
    )
    assert "Late penalty −20 points: 2 days late" in moodle.read_text()
    canvas = gradebook.export(
        out_dir=out, format=gradebook.Format.canvas, roster=roster, out=tmp_path / "c.csv"
    )
    assert canvas.read_text().splitlines()[-1].endswith(",70")  # the final score, one column


def test_the_description_names_every_case() -> None:
    too_late = _assess(DEADLINE + timedelta(days=6))
    assert "more than the 5 accepted: not accepted, 0 points" in late.describe(too_late, 100)
    committed = late.assess(
        POLICY,
        max_score=100,
        points=80,
        submitted_at=DEADLINE,
        source=late.COMMIT_DATE,
    )
    assert "the push time (from the Git host) is what to trust" in late.describe(committed, 100)
    extension = _assess(DEADLINE, due=DEADLINE + timedelta(days=1))
    assert "(an extension)" in late.describe(extension, 100)


@pytest.mark.docker
def test_a_roster_with_times_through_a_real_batch(tmp_path: Path, docker_client: Any) -> None:
    """The roster's times reach each `grader grade` child: a day late costs its share, an
    extension keeps the work on time; every run's containers are gone."""
    spec = write_mini(tmp_path / "spec")
    with (spec / "assignment.yaml").open("a") as fh:
        fh.write("late: {deadline: '2026-12-01T23:59:00+03:00', penalty_per_day: 10}\n")
    source, out = tmp_path / "class", tmp_path / "out"
    make_submission(source / "alice")
    make_submission(source / "bob")
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "student,path,ref,deadline,submitted_at\n"
        f"alice,{source / 'alice'},,,2026-12-02T08:00:00+03:00\n"
        f"bob,{source / 'bob'},,2026-12-03T23:59:00+03:00,2026-12-02T08:00:00+03:00\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "grader.cli", "batch", str(roster), "-a", str(spec), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    alice, bob = full.read(out / "alice" / full.NAME), full.read(out / "bob" / full.NAME)
    assert alice.late is not None and bob.late is not None
    assert (alice.late.days, alice.late.penalty, alice.score) == (1, 10, 90)
    assert (alice.late.source, alice.late.extension) == ("roster", False)
    assert (bob.late.days, bob.late.penalty, bob.score, bob.late.extension) == (0, 0, 100, True)
    rows = {r["student"]: r for r in csv.DictReader(io.StringIO((out / "grades.csv").read_text()))}
    assert (rows["alice"]["score"], rows["alice"]["late_penalty"]) == ("90", "10")
    assert (rows["bob"]["score"], rows["bob"]["late_penalty"]) == ("100", "0")
    assert "(−10 late)" in (out / "index.html").read_text()
    runs = {json.loads(line)["run_id"] for line in (out / "journal.jsonl").read_text().splitlines()}
    assert not leftovers(docker_client, runs=runs)


def test_a_commit_with_a_zone_git_never_writes_gives_no_time_not_a_crash(tmp_path: Path) -> None:
    """A commit object made by hand may say +9999: the grade goes on, its time unknown."""
    repo = _app(tmp_path / "repo")
    git = ["git", "-C", str(repo), "-c", "user.email=s@example.invalid", "-c", "user.name=s"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    tree = subprocess.run([*git, "write-tree"], check=True, capture_output=True, text=True)
    raw = (
        f"tree {tree.stdout.strip()}\nauthor s <s@example.invalid> 1764600000 +9999\n"
        "committer s <s@example.invalid> 1764600000 +9999\n\nwork\n"
    )
    made = subprocess.run(
        [*git, "hash-object", "-t", "commit", "-w", "--literally", "--stdin"],
        input=raw,
        check=True,
        capture_output=True,
        text=True,
    )
    subprocess.run([*git, "update-ref", "refs/heads/main", made.stdout.strip()], check=True)
    result, _ = _grade(f"file://{repo}", _spec(tmp_path, POLICY_YAML))
    assert result.status is Status.GRADED and result.score == 100, result.reason
    assert result.late is not None and result.late.submitted_at is None
