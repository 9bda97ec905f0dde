"""`grader export`: a batch's grades as an LMS gradebook import (Canvas, Moodle) or a plain CSV.

The batch's journal is the source of truth (its last line per student); each student's
`full.json` gives the breakdown (categories, items, causes) when it is the journal's grade. A
class roster (`student,name,email,sis_id[,section]`) gives the identities an LMS matches on.

Each format is one writer over one `Gradebook` with the same small interface (`Writer`). What an
LMS reads was checked against its importer: Canvas' gradebook importer (header `Student, ID, SIS
User ID, SIS Login ID, Section`, a row whose first cell says "Points Possible", a blank cell
is no grade) and Moodle's CSV grade import (UTF-8, comma; the user column mapped to
`useremail` or `useridnumber`; "-" is no grade — an empty cell mapped to a new grade item is
stored as 0, and a row whose user is blank or unknown stops the whole import).
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

from grader import assignment as assignments
from grader import regrade
from grader.batch import FINAL, Journal
from grader.core import GraderFault, Result, csv_text, write_atomic
from grader.output import full, views

ROSTER_COLUMNS = ("student", "name", "email", "sis_id")  # and `section`, optional
MISSING = "missing"  # a roster student with no submission in the batch
# a Canvas header ending so is a computed column its importer drops, not an assignment
CANVAS_COMPUTED = re.compile(
    r"Current Score|Current Points|Current Grade|Final Score|Final Points|Final Grade"
)


class Format(StrEnum):
    canvas = "canvas"
    moodle = "moodle"
    csv = "csv"


class IdColumn(StrEnum):
    """The user field a Moodle import maps its user column to."""

    email = "email"  # Moodle: "Email address" -> useremail
    idnumber = "idnumber"  # Moodle: "ID number" -> useridnumber; the roster's sis_id


class InputError(ValueError):
    """What the instructor gave cannot be exported (no batch folder, a broken roster); `param`
    names the input (a CLI argument or option)."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class Person:
    """One roster row."""

    student: str  # the batch's key: the submission's folder/archive name or roster name
    name: str
    email: str
    sis_id: str
    section: str = ""


@dataclass(frozen=True)
class Grade:
    """A student's latest journal entry, and the result behind it when full.json is that grade."""

    student: str
    status: str  # the journal's: graded, rejected, build_failed, start_failed, not_graded
    score: float | None  # None: no score (not graded) — never 0
    reason: str
    report: str  # report.html, relative to the batch folder
    result: Result | None  # None: full.json unreadable or not this grade


@dataclass(frozen=True)
class Row:
    person: Person | None  # None: graded, not in the roster
    grade: Grade | None  # None: in the roster, no submission (missing)

    @property
    def student(self) -> str:
        return self.person.student if self.person else self.grade.student if self.grade else ""


@dataclass(frozen=True)
class Column:
    """A rubric category or item as the results name it."""

    id: str
    title: str
    max_points: float
    category: str = ""  # an item's category id; "" for a category


@dataclass
class Gradebook:
    title: str  # the assignment's name: the LMS column's title
    points: float | None  # points possible; None: no result says
    rows: list[Row]
    roster: bool  # rows carry roster identities
    categories: list[Column] = field(default_factory=list)
    items: list[Column] = field(default_factory=list)


Warn = Callable[[str], None]
Writer = Callable[[Gradebook, Warn], str]  # the file's text (a BOM first when it wants one)


def _num(value: float | None) -> str:
    """A number as an LMS reads it: no exponent, at most 2 decimals; None: empty."""
    return "" if value is None else f"{value:.2f}".rstrip("0").rstrip(".")


def _csv(rows: list[list[str]]) -> str:
    return csv_text(rows)


def read_roster(path: Path) -> list[Person]:
    """The roster's students in its order; InputError (param "--roster") says what is wrong, with
    the line: a missing column, a row of the wrong width (an unquoted comma), a student, e-mail
    or SIS id twice, a blank student or name, an e-mail that is not one."""

    def bad(message: str) -> InputError:
        return InputError("--roster", f"{path}: {message}")

    try:
        text = path.read_text(encoding="utf-8-sig")  # with or without a BOM (Excel writes one)
    except UnicodeDecodeError as exc:
        raise bad(f"not UTF-8 (byte {exc.start}): save it as CSV UTF-8") from None
    except OSError as exc:
        raise bad(exc.strerror or str(exc)) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader, [])]
        missing = [c for c in ROSTER_COLUMNS if c not in header]
        if missing:
            raise bad(
                f"no column {', '.join(missing)} in the header (it needs {', '.join(ROSTER_COLUMNS)})"
            )
        twice = sorted({h for h in header if h and header.count(h) > 1})
        if twice:
            raise bad(f"column {', '.join(twice)} twice in the header")
        people: list[Person] = []
        seen: dict[tuple[str, str], int] = {}
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise bad(
                    f"line {line} has {len(row)} fields, the header {len(header)} "
                    "(a value with a comma must be in double quotes)"
                )
            cells = {h: v.strip() for h, v in zip(header, row, strict=True)}
            person = Person(
                cells["student"],
                cells["name"],
                cells["email"],
                cells["sis_id"],
                cells.get("section", ""),
            )
            for what in ("student", "name"):
                if not getattr(person, what):
                    raise bad(f"line {line}: no {what}")
            if person.email and not re.fullmatch(r"[^@\s]+@[^@\s]+", person.email):
                raise bad(f"line {line}: {person.email!r} is not an e-mail address")
            for what, value in (
                ("student", person.student),
                ("email", person.email.casefold()),
                ("sis_id", person.sis_id),
            ):
                if value and (what, value) in seen:
                    raise bad(f"line {line}: {what} {value!r} is also on line {seen[what, value]}")
                seen[what, value] = line
            people.append(person)
    except csv.Error as exc:
        raise bad(f"line {reader.line_num}: {exc}") from None
    if not people:
        raise bad("no students")
    return people


def read_grades(out_dir: Path, warn: Warn) -> list[Grade]:
    """The latest grade of each student of a `grader batch` folder, by student."""
    path = out_dir / "journal.jsonl"
    if not path.is_file():
        raise InputError("OUT_DIR", f"{out_dir}: no journal.jsonl, not a `grader batch` folder")
    latest = Journal(path).latest()
    versions = {regrade.fingerprint(e) for e in latest.values()}
    if len(versions) > 1:  # an interrupted regrade: old and new grades side by side
        warn(
            f"the grades were made with {len(versions)} versions of the assignment: finish the "
            "regrade (`grader batch … --regrade`) before importing them"
        )
    grades = []
    for student, entry in sorted(latest.items()):
        score = entry.get("score")
        grades.append(
            Grade(
                student=student,
                status=entry["status"],
                score=None if score is None else float(score),
                reason=entry.get("reason") or "",
                report=entry["report"],
                result=_result(out_dir, entry, warn),
            )
        )
    return grades


def _result(out_dir: Path, entry: dict[str, Any], warn: Warn) -> Result | None:
    """The full.json behind a journal entry; None (and a warning) when it is not that grade — a
    batch regrading the student right now has removed or replaced it."""
    if entry["status"] not in FINAL:
        return None  # not graded: nothing to break down
    try:
        result = full.read((out_dir / entry["report"]).with_name(full.NAME))
    except (OSError, ValueError, KeyError, TypeError):
        result = None
    if result is None or str(result.status) != entry["status"] or result.score != entry["score"]:
        warn(f"{entry['student']}: full.json is not the journal's grade: no breakdown exported")
        return None
    return result


def _title(results: list[Result], out_dir: Path, warn: Warn) -> str:
    """The assignment's title, as its spec says (the results name the assignment by its id)."""
    ids = Counter(r.assignment for r in results)
    if not ids:
        warn(f"no result names the assignment: its column is titled {out_dir.name!r} (--title)")
        return out_dir.name
    name = ids.most_common(1)[0][0]
    try:
        return assignments.load(name).title
    except GraderFault:
        return name  # graded from a spec folder no longer there: its id


def _points(results: list[Result], warn: Warn) -> float | None:
    """Points possible: the results' maximum (a warning when grades of several versions mix)."""
    versions = Counter((r.assignment, r.assignment_version) for r in results)
    if len(versions) > 1:
        warn(
            f"grades of {len(versions)} assignment versions are mixed here "
            f"({', '.join(f'{a} {v}: {n}' for (a, v), n in versions.most_common())}): regrade first"
        )
    maxima = Counter(r.max_score for r in results)
    return maxima.most_common(1)[0][0] if maxima else None


def gradebook(
    *, out_dir: Path, roster: list[Person] | None, title: str | None, warn: Warn
) -> Gradebook:
    grades = read_grades(out_dir, warn)
    results = [g.result for g in grades if g.result is not None]
    by_student = {g.student: g for g in grades}
    if roster is None:
        rows = [Row(None, g) for g in grades]
    else:
        listed = {p.student for p in roster}
        rows = [Row(p, by_student.get(p.student)) for p in roster]
        extra = [g for g in grades if g.student not in listed]
        rows += [Row(None, g) for g in extra]
        if extra:
            warn(
                f"{len(extra)} graded student(s) not in the roster: "
                f"{', '.join(g.student for g in extra)}"
            )
    categories: dict[str, Column] = {}
    items: dict[str, Column] = {}
    for r in results:
        for c in r.categories:
            categories.setdefault(c.id, Column(c.id, c.title, c.max_points))
        for i in r.items:
            items.setdefault(i.id, Column(i.id, i.title, i.max_points, i.category))
    return Gradebook(
        title=title or _title(results, out_dir, warn),
        points=_points(results, warn),
        rows=rows,
        roster=roster is not None,
        categories=list(categories.values()),
        items=list(items.values()),
    )


def _lms_rows(book: Gradebook, warn: Warn, lms: str) -> list[tuple[Person, Grade | None]]:
    """The roster's students: an LMS matches on roster identities, so a student graded but not in
    the roster cannot be imported (the warning names them)."""
    left = [r.student for r in book.rows if r.person is None]
    if left:
        warn(f"{lms}: left out (no roster identity): {', '.join(left)}")
    return [(r.person, r.grade) for r in book.rows if r.person is not None]


def canvas(book: Gradebook, warn: Warn) -> str:
    """Canvas' gradebook import: Student, ID, SIS User ID, SIS Login ID, Section, then the
    assignment's column; a "Points Possible" row second. Canvas finds each student by ID (the
    Canvas user id, not known here: blank), then SIS User ID, SIS Login ID, then name. A student
    not graded (or missing) has a blank cell: Canvas gives no grade, never 0."""
    if CANVAS_COMPUTED.search(book.title):
        raise InputError(
            "--title", f"Canvas drops a column titled {book.title!r} as a computed one: rename it"
        )
    rows = [
        ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", book.title],
        ["Points Possible", "", "", "", "", _num(book.points)],
    ]
    for person, grade in _lms_rows(book, warn, "canvas"):
        if not person.sis_id and not person.email:
            warn(f"canvas: {person.student} has no sis_id nor email: Canvas matches them by name")
        score = grade.score if grade else None
        rows.append([person.name, "", person.sis_id, person.email, person.section, _num(score)])
    return _csv(rows)


MOODLE_USER = {IdColumn.email: "Email address", IdColumn.idnumber: "ID number"}
MOODLE_NO_GRADE = "-"  # Moodle's own "no grade": an empty cell in a new grade item becomes 0


def _feedback(grade: Grade | None, report_url: str | None) -> str:
    """One line for the student: the summary and the costliest root causes, then the report's
    address when the reports are published."""
    if grade is None:
        return "No submission was graded."
    if grade.status == "not_graded":
        text = f"Not graded, no score (a grader problem, not yours): {grade.reason}"
    elif grade.result is None:
        text = f"Score {_num(grade.score)}. {grade.reason}".strip()
    else:
        text = views.summary(grade.result)
        if grade.result.late is not None and grade.result.late.penalty:
            text += f" {views.late_line(grade.result)}"
        shown, _ = views.top_causes(grade.result)
        if shown:
            text += " Points lost: " + "; ".join(f"{c.title} (−{c.points:g})" for c in shown) + "."
    if report_url:
        end = "" if text.endswith(".") else "."
        text += f"{end} Report: {report_url.rstrip('/')}/{quote(grade.report)}"
    return text


def moodle(
    book: Gradebook,
    warn: Warn,
    *,
    id_column: IdColumn = IdColumn.email,
    report_url: str | None = None,
) -> str:
    """Moodle's CSV grade import (Grades > Import > CSV file; encoding UTF-8, separator comma):
    the user column mapped from to `useremail` or `useridnumber`, the grade column to a grade
    item (or a new one), the feedback column to that item's feedback. No grade is "-" (Moodle's
    own export writes it; its import reads it as no grade). A student without the identity is
    left out: Moodle stops the whole import at a row whose user it cannot find."""
    rows = [[MOODLE_USER[id_column], "Full name", book.title, f"Feedback: {book.title}"]]
    for person, grade in _lms_rows(book, warn, "moodle"):
        user = person.email if id_column is IdColumn.email else person.sis_id
        if not user:
            warn(
                f"moodle: {person.student} left out: no {'email' if id_column is IdColumn.email else 'sis_id'} in the roster"
            )
            continue
        score = grade.score if grade else None
        cell = MOODLE_NO_GRADE if score is None else _num(score)
        rows.append([user, person.name, cell, _feedback(grade, report_url)])
    return _csv(rows)


def _headers(columns: list[Column], book: Gradebook) -> list[str]:
    titles = {c.id: c.title for c in book.categories}
    names = [
        f"{titles.get(c.category, c.category)}: {c.id} /{_num(c.max_points)}"
        if c.category
        else f"{c.title} /{_num(c.max_points)}"
        for c in columns
    ]
    count = Counter(names)
    return [n if count[n] == 1 else f"{n} [{c.id}]" for n, c in zip(names, columns, strict=True)]


def plain(book: Gradebook, warn: Warn) -> str:
    """For spreadsheets (UTF-8 with a BOM, so Excel reads Cyrillic right): a row per student (the
    roster's, in its order, then any graded student not in it), status ("missing": no
    submission), score, points per category and per item (each category's items after it)."""
    columns: list[Column] = []
    for cat in book.categories:
        columns.append(cat)
        columns += [i for i in book.items if i.category == cat.id]
    columns += [i for i in book.items if i.category not in {c.id for c in book.categories}]
    who = ["student", *(["name", "email", "sis_id", "section"] if book.roster else [])]
    # a late policy's columns, when a grade has one: the score is the items' points minus it
    lates = any(r.grade and r.grade.result and r.grade.result.late for r in book.rows)
    timing = [
        "submitted_at",
        "submitted_from",
        "deadline",
        "extension",
        "days_late",
        "late_penalty",
    ]
    rows = [
        [
            *who,
            "status",
            "score",
            "max_score",
            *(timing if lates else []),
            *_headers(columns, book),
            "reason",
            "report",
        ]
    ]
    for row in book.rows:
        person, grade = row.person, row.grade
        ids = [row.student]
        if book.roster:
            ids += (
                [person.name, person.email, person.sis_id, person.section] if person else [""] * 4
            )
        result = grade.result if grade else None
        points: dict[str, float] = {}
        if result is not None:
            points = {c.id: c.points for c in result.categories}
            points.update({f"item:{i.id}": i.points for i in result.items})
        cells = [_num(points.get(f"item:{c.id}" if c.category else c.id)) for c in columns]
        rows.append(
            [
                *ids,
                grade.status if grade else MISSING,
                _num(grade.score) if grade else "",
                _num(result.max_score if result else book.points)
                if grade and grade.score is not None
                else "",
                *(_late_cells(result) if lates else []),
                *cells,
                grade.reason if grade else "",
                grade.report if grade else "",
            ]
        )
    return "\ufeff" + _csv(rows)


def _late_cells(result: Result | None) -> list[str]:
    late = result.late if result else None
    if late is None:
        return [""] * 6
    return [
        late.submitted_at or "",
        late.source,
        late.deadline,
        "yes" if late.extension else "",
        str(late.days) if late.submitted_at else "",
        _num(late.penalty),
    ]


def export(
    *,
    out_dir: Path,
    format: Format,
    out: Path,
    roster: Path | None = None,
    id_column: IdColumn = IdColumn.email,
    title: str | None = None,
    report_url: str | None = None,
    warn: Warn | None = None,
) -> Path:
    """Write the grades of the `grader batch` folder `out_dir` to `out` in `format`. `roster`:
    the class roster (CSV: student, name, email, sis_id[, section]) — Canvas and Moodle need it,
    they match students on its identities. `id_column`: what Moodle matches on. `title`: the
    assignment's column (default: the title of the assignment the results name). `report_url`:
    where `out_dir` is published: each Moodle feedback links the student's report. `warn` is told
    what was left out or looks wrong (default: nothing is said). InputError: a broken roster or
    not a batch folder."""
    say: Warn = warn or (lambda _: None)
    format = Format(format)
    people = read_roster(roster) if roster is not None else None
    if people is None and format is not Format.csv:
        raise InputError(
            "--roster", f"{format} matches students on the roster's identities: give --roster"
        )
    book = gradebook(out_dir=out_dir, roster=people, title=title, warn=say)
    writers: dict[Format, Writer] = {
        Format.canvas: canvas,
        Format.moodle: partial(moodle, id_column=IdColumn(id_column), report_url=report_url),
        Format.csv: plain,
    }
    write_atomic(out, writers[format](book, say))
    return out
