"""`grader export`: a batch folder's grades as Canvas and Moodle gradebook imports and a plain CSV.

The batch folder is written here by the batch's own writers (Journal, output.write,
write_summaries) from Result objects; no Docker. Each format is compared byte for byte with its
golden file (tests/golden/export/; regenerate with GOLDEN_UPDATE=1 and review the diff), then read
back the way its LMS reads it: Canvas' gradebook importer (header, "Points Possible" row, students
found by SIS User ID, SIS Login ID, then name; a blank cell is no grade) and Moodle's CSV grade
import (UTF-8, comma, every row as wide as the header, the user column mapped to e-mail or ID
number, "-" no grade).
"""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from grader import assignment, gradebook, output
from grader.batch import Journal, folder_names, write_summaries
from grader.core import CategoryScore, Cause, ItemScore, Outcome, Result, Status
from grader.gradebook import Format, IdColumn, InputError

GOLDEN = Path(__file__).parent / "golden" / "export"
ROSTER = GOLDEN / "roster.csv"
ROOT = Path(__file__).resolve().parents[1]
TITLE = 'Lab 2: Users, "Items" — Лаба 2'  # a comma, quotes and Cyrillic in the header
RUBRIC = [  # item id, title, category, points
    ("create", "POST /things/ creates a thing, answers 201", "api", 40.0),
    ("read", 'GET /things/{id} answers "404" when there is none', "api", 30.0),
    ("schema", "Tables, columns and keys", "db", 30.0),
]
CATEGORIES = {"api": "API", "db": 'Database, "schema"'}
# student -> (status, points per item or None when not graded, reason)
CLASS: dict[str, tuple[Status, list[float] | None, str]] = {
    "alice": (Status.GRADED, [40.0, 15.0, 17.5], ""),
    "bob": (Status.GRADED, [40.0, 30.0, 30.0], ""),
    "ivanov": (Status.GRADED, [40.0, 0.0, 15.0], ""),
    "olga": (Status.NOT_GRADED, None, "the Docker engine did not answer"),
    "dave": (Status.BUILD_FAILED, [0.0, 0.0, 0.0], "the image did not build: RUN exit 3"),
    "O'Brien": (Status.GRADED, [40.0, 30.0, 20.0], ""),
    "mallory": (Status.GRADED, [30.0, 0.0, 0.0], ""),  # not in the roster
}  # zoe: in the roster, never submitted


def _result(status: Status, points: list[float] | None, reason: str) -> Result:
    result = Result(
        assignment="lab-2-not-a-spec",  # no spec of that id: the title falls back to it
        assignment_version="1-0123456789ab",
        submission="/submissions/x",
        seed=0,
        status=status,
        reason=reason,
        max_score=100.0,
    )
    if points is None:
        return result
    causes = []
    for (item_id, title, category, max_points), got in zip(RUBRIC, points, strict=True):
        outcome = Outcome(
            check="contract", name=f"test_{item_id}", item=item_id, passed=got == max_points
        )
        result.items.append(
            ItemScore(item_id, title, category, got, max_points, "visible", [outcome])
        )
        if got < max_points:
            causes.append(Cause(f"{title}: answered 500", max_points - got, [outcome]))
    for cat, cat_title in CATEGORIES.items():
        mine = [i for i in result.items if i.category == cat]
        result.categories.append(
            CategoryScore(
                cat, cat_title, sum(i.points for i in mine), sum(i.max_points for i in mine)
            )
        )
    result.score = sum(points)
    result.causes = sorted(causes, key=lambda c: -c.points)
    return result


def _entry(student: str, folder: str, result: Result, n: int) -> dict[str, object]:
    """A journal line as run_batch writes it."""
    graded = result.status is not Status.NOT_GRADED
    return {
        "key": f"{student}|hash{n}|{result.assignment_version}|0",
        "student": student,
        "source": f"/submissions/{student}",
        "report": f"{folder}/report.html",
        "status": str(result.status),
        "reason": result.reason,
        "score": result.score if graded else None,
        "max_score": sum(i.max_points for i in result.items) or None,
        "seconds": 12.5,
        "run_id": f"run{n}",
    }


@pytest.fixture
def batch_dir(tmp_path: Path) -> Path:
    """A finished `grader batch` folder; alice was first not graded, then regraded: the journal's
    last line is hers."""
    out = tmp_path / "class"
    folders = folder_names(list(CLASS))
    journal = Journal(out / "journal.jsonl")
    first = _result(Status.NOT_GRADED, None, "Postgres did not start")
    journal.add(_entry("alice", folders["alice"], first, 0))
    for n, (student, (status, points, reason)) in enumerate(CLASS.items(), 1):
        result = _result(status, points, reason)
        output.write(result, out / folders[student])
        journal.add(_entry(student, folders[student], result, n))
    write_summaries(out, journal, TITLE)
    return out


def _export(
    batch_dir: Path, tmp_path: Path, fmt: Format, **options: object
) -> tuple[str, list[str]]:
    warnings: list[str] = []
    out = tmp_path / f"export-{fmt}.csv"
    gradebook.export(out_dir=batch_dir, format=fmt, out=out, warn=warnings.append, **options)  # type: ignore[arg-type]
    return out.read_bytes().decode("utf-8"), warnings


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("GOLDEN_UPDATE"):
        path.write_bytes(text.encode("utf-8"))
    assert text.encode("utf-8") == path.read_bytes(), (
        f"{name} changed (GOLDEN_UPDATE=1 rewrites it)"
    )


# --- what each LMS reads ---------------------------------------------------------------------

CANVAS_COMPUTED = re.compile(
    r"Current Score|Current Points|Current Grade|Final Score|Final Points|Final Grade"
)


def canvas_import(data: bytes) -> dict[str, object]:
    """The file as Canvas' GradebookImporter reads it: RFC 4180 CSV in UTF-8; the header's first
    cells Student, ID, [SIS User ID,] SIS Login ID, Section; a row whose first cell says Points
    Possible gives the assignments' points; rows of blanks (or "Muted") are skipped; each other
    row is a student found by SIS User ID, else SIS Login ID, else name, with a grade per
    assignment (blank: none)."""
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    header = rows[0]
    assert re.search("Student", header[0]) and re.search("ID", header[1])
    assert re.search(r"SIS\s+User\s+ID", header[2]) and re.search(r"SIS\s+Login\s+ID", header[3])
    assert re.search("Section", header[4]), "the last student column must be Section"
    titles = header[5:]
    while titles and CANVAS_COMPUTED.search(titles[-1]):
        titles.pop()
    # Assignment.title_and_id: "Title (123)" is the existing assignment 123; else a title
    assignments = [
        (m[1], int(m[2])) if (m := re.fullmatch(r"(.*)\s\((\d+)\)", t, re.S)) else (t, None)
        for t in titles
    ]
    points: list[str] = []
    students = []
    for row in rows[1:]:
        assert len(row) == len(header)
        if re.search("Points Possible", row[0]):
            points = row[5:]
            continue
        if all(re.fullmatch(r"(Muted|)", c.strip(), re.I) for c in row):
            continue
        students.append(
            {
                "key": row[2] or row[3] or row[0],  # SIS User ID, SIS Login ID, name
                "name": row[0],
                "grades": [g or None for g in row[5 : 5 + len(titles)]],
            }
        )
    return {"titles": titles, "assignments": assignments, "points": points, "students": students}


def moodle_import(data: bytes, user_field: str) -> dict[str, tuple[float | None, str]]:
    """The file as Moodle's CSV grade import reads it (encoding UTF-8, separator comma; a BOM is
    trimmed; each row as wide as the header or the file is refused): the user column (mapped to
    `user_field`), the grade column (mapped to a grade item; "" or "-" is no grade, anything else
    a number) and its feedback column. A blank user stops the import."""
    text = data.decode("utf-8").removeprefix("\ufeff").replace("\r\n", "\n")
    rows = [r for r in csv.reader(io.StringIO(text.strip(), newline="")) if r != []]
    header = rows[0]
    assert all(len(r) == len(header) for r in rows), "csvweirdcolumns"
    user = header.index({"useremail": "Email address", "useridnumber": "ID number"}[user_field])
    grades = {}
    for row in rows[1:]:
        value = row[user].strip()
        assert value, "a blank user stops Moodle's import"
        cell = row[2].strip()
        grades[value] = (None if cell in ("", "-") else float(cell), row[3])
    return grades


# --- golden files, read back ------------------------------------------------------------------


def test_canvas_golden_and_as_canvas_reads_it(batch_dir: Path, tmp_path: Path) -> None:
    text, warnings = _export(batch_dir, tmp_path, Format.canvas, roster=ROSTER, title=TITLE)
    _golden("canvas.csv", text)
    book = canvas_import(text.encode())
    assert book["titles"] == [TITLE] and book["points"] == ["100"]
    grades = {s["key"]: s["grades"][0] for s in book["students"]}  # type: ignore[attr-defined]
    assert grades == {
        "S001": "72.5",  # the journal's last line: regraded
        "S002": "100",
        "S003": "55",
        "S004": None,  # not graded: no grade, never 0
        "S005": "0",  # the build failed: the student's 0
        "sean@example.edu": "90",  # no SIS id: found by login
        "S007": None,  # missing
    }
    names = [s["name"] for s in book["students"]]  # type: ignore[attr-defined]
    assert names[:4] == [
        "Smith, Alice",
        'Robert "Bobby" Tables',
        "Иванов Иван Иванович",
        "Петрова, Ольга",
    ]
    assert any("mallory" in w and "roster" in w for w in warnings)


def test_moodle_golden_and_as_moodle_reads_it(batch_dir: Path, tmp_path: Path) -> None:
    text, warnings = _export(
        batch_dir,
        tmp_path,
        Format.moodle,
        roster=ROSTER,
        title=TITLE,
        report_url="https://grades.example.edu/lab2/",
    )
    _golden("moodle.csv", text)
    grades = moodle_import(text.encode(), "useremail")
    assert {u: g for u, (g, _) in grades.items()} == {
        "alice@example.edu": 72.5,
        "bob@example.edu": 100.0,
        "ivanov@example.edu": 55.0,
        "olga@example.edu": None,  # not graded: "-", never 0
        "sean@example.edu": 90.0,
        "zoe@example.edu": None,  # missing
    }  # dave has no e-mail: left out (a blank user would stop the import)
    alice = grades["alice@example.edu"][1]
    assert "72.5/100" in alice and "answered 500" in alice
    assert alice.endswith("Report: https://grades.example.edu/lab2/alice/report.html")
    assert "/lab2/O_Brien-" in grades["sean@example.edu"][1]  # its own folder
    assert "not yours" in grades["olga@example.edu"][1]
    assert any("dave" in w and "email" in w for w in warnings)
    assert any("mallory" in w for w in warnings)


def test_moodle_by_id_number(batch_dir: Path, tmp_path: Path) -> None:
    text, warnings = _export(
        batch_dir, tmp_path, Format.moodle, roster=ROSTER, id_column=IdColumn.idnumber
    )
    grades = moodle_import(text.encode(), "useridnumber")
    assert {u: g for u, (g, _) in grades.items()} == {
        "S001": 72.5,
        "S002": 100.0,
        "S003": 55.0,
        "S004": None,
        "S005": 0.0,
        "S007": None,
    }  # O'Brien has no sis_id: left out
    assert any("O'Brien" in w and "sis_id" in w for w in warnings)
    assert text.splitlines()[0].startswith("ID number,Full name,lab-2-not-a-spec,")


def test_plain_csv_golden_and_as_a_spreadsheet_reads_it(batch_dir: Path, tmp_path: Path) -> None:
    text, _ = _export(batch_dir, tmp_path, Format.csv, roster=ROSTER, title=TITLE)
    _golden("plain.csv", text)
    assert text.startswith("\ufeff")  # Excel reads UTF-8 (Cyrillic) only with a BOM
    rows = list(csv.DictReader(io.StringIO(text.encode().decode("utf-8-sig"), newline="")))
    by = {r["student"]: r for r in rows}
    assert [r["student"] for r in rows] == [
        "alice",
        "bob",
        "ivanov",
        "olga",
        "dave",
        "O'Brien",
        "zoe",
        "mallory",
    ]  # the roster's order, then who is not in it
    assert by["alice"]["name"] == "Smith, Alice" and by["alice"]["score"] == "72.5"
    assert by["alice"]["API /70"] == "55" and by["alice"]['Database, "schema" /30'] == "17.5"
    assert by["alice"]["API: read /30"] == "15"
    assert by["olga"]["status"] == "not_graded" and by["olga"]["score"] == ""
    assert (
        by["olga"]["API /70"] == "" and by["olga"]["reason"] == "the Docker engine did not answer"
    )
    assert by["zoe"]["status"] == "missing" and by["zoe"]["score"] == ""
    assert by["dave"]["score"] == "0" and by["dave"]["API: create /40"] == "0"
    assert by["mallory"]["name"] == "" and by["mallory"]["score"] == "30"


def test_plain_csv_without_a_roster(batch_dir: Path, tmp_path: Path) -> None:
    text, warnings = _export(batch_dir, tmp_path, Format.csv)
    _golden("plain-no-roster.csv", text)
    header = next(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert header[:4] == ["student", "status", "score", "max_score"]
    assert warnings == []


# --- choices -----------------------------------------------------------------------------------


def test_the_title_is_the_assignments_own(batch_dir: Path, tmp_path: Path) -> None:
    """Results name their assignment by id; the column carries the title its spec gives."""
    for full_json in batch_dir.glob("*/full.json"):
        full_json.write_text(full_json.read_text().replace("lab-2-not-a-spec", "fastapi-basics"))
    text, _ = _export(batch_dir, tmp_path, Format.canvas, roster=ROSTER)
    title = assignment.load("fastapi-basics").title
    assert canvas_import(text.encode())["titles"] == [title]


def test_a_full_json_that_is_not_the_journals_grade_gives_no_breakdown(
    batch_dir: Path, tmp_path: Path
) -> None:
    """A batch regrading bob right now has removed his files: the journal's grade stands, with
    no breakdown, and a warning says so."""
    folder = folder_names(list(CLASS))["bob"]
    (batch_dir / folder / "full.json").unlink()
    text, warnings = _export(batch_dir, tmp_path, Format.csv)
    bob = next(
        r for r in csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))) if r["student"] == "bob"
    )
    assert bob["score"] == "100" and bob["API /70"] == ""
    assert any(w.startswith("bob: full.json") for w in warnings)


def test_canvas_grades_an_existing_assignment_by_its_id(batch_dir: Path, tmp_path: Path) -> None:
    text, _ = _export(batch_dir, tmp_path, Format.canvas, roster=ROSTER, title="Lab 2 (12345)")
    assert canvas_import(text.encode())["assignments"] == [("Lab 2", 12345)]
    text, _ = _export(batch_dir, tmp_path, Format.canvas, roster=ROSTER, title=TITLE)
    assert canvas_import(text.encode())["assignments"] == [(TITLE, None)]  # by title, or new


def test_canvas_refuses_a_title_it_would_drop(batch_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="computed"):
        _export(batch_dir, tmp_path, Format.canvas, roster=ROSTER, title="Final Grade project")


@pytest.mark.parametrize("fmt", [Format.canvas, Format.moodle])
def test_an_lms_needs_a_roster(batch_dir: Path, tmp_path: Path, fmt: Format) -> None:
    with pytest.raises(InputError, match="--roster") as caught:
        _export(batch_dir, tmp_path, fmt)
    assert caught.value.param == "--roster"


def test_not_a_batch_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"journal\.jsonl") as caught:
        _export(tmp_path, tmp_path, Format.csv)
    assert caught.value.param == "OUT_DIR"


# --- the roster --------------------------------------------------------------------------------


def test_a_roster_with_or_without_bom_other_columns_ignored(tmp_path: Path) -> None:
    people = gradebook.read_roster(ROSTER)
    assert people[1].name == 'Robert "Bobby" Tables' and people[2].section == "Группа Б"
    plain = tmp_path / "plain.csv"
    plain.write_bytes(ROSTER.read_bytes().removeprefix(b"\xef\xbb\xbf"))
    assert gradebook.read_roster(plain) == people


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("student,name,email\nalice,Alice,a@x.edu\n", "no column sis_id"),
        ("student,name,email,sis_id\nalice,Smith, Alice,a@x.edu,S1\n", "line 2 has 5 fields"),
        (
            "student,name,email,sis_id\nalice,A,a@x.edu,S1\nalice,B,b@x.edu,S2\n",
            "student 'alice' is also on line 2",
        ),
        (
            "student,name,email,sis_id\na,A,A@x.edu,S1\nb,B,a@x.edu,S2\n",
            "email 'a@x.edu' is also on line 2",
        ),
        ("student,name,email,sis_id\na,A,a@x.edu,S1\nb,B,b@x.edu,S1\n", "sis_id 'S1' is also"),
        ("student,name,email,sis_id\na,A,S1,a@x.edu\n", "'S1' is not an e-mail address"),
        ("student,name,email,sis_id\na,,a@x.edu,S1\n", "line 2: no name"),
        ("student,name,email,sis_id\n\n", "no students"),
        ("student,name,student,email,sis_id\n", "column student twice"),
    ],
)
def test_a_broken_roster_says_what_and_where(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "roster.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=re.escape(error)):
        gradebook.read_roster(path)


def test_a_roster_not_in_utf8(tmp_path: Path) -> None:
    path = tmp_path / "roster.csv"
    path.write_bytes("student,name,email,sis_id\nivanov,Иванов,i@x.edu,S1\n".encode("cp1251"))
    with pytest.raises(InputError, match="not UTF-8"):
        gradebook.read_roster(path)


# --- the command ----------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grader.cli", "export", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
        timeout=120,
        check=False,
    )


def test_the_command_writes_the_file_and_warns(batch_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "canvas.csv"
    done = _cli(
        str(batch_dir),
        "--format",
        "canvas",
        "--roster",
        str(ROSTER),
        "--title",
        TITLE,
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == (GOLDEN / "canvas.csv").read_bytes()
    assert "warning:" in done.stderr and "mallory" in done.stderr


def test_the_command_refuses_a_broken_roster_as_a_usage_error(
    batch_dir: Path, tmp_path: Path
) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text("student,name,email,sis_id\nalice,Smith, Alice,a@x.edu,S1\n")
    out = tmp_path / "moodle.csv"
    done = _cli(str(batch_dir), "-f", "moodle", "--roster", str(roster), "-o", str(out))
    assert done.returncode == 2, done.stderr
    assert "line 2 has 5 fields" in done.stderr and "--roster" in done.stderr
    assert not out.exists()
