"""Small shared helpers of grader.core."""

from __future__ import annotations

import csv
import io

from grader.core import csv_text, with_database


def test_with_database_keeps_user_host_and_query() -> None:
    assert (
        with_database("postgresql://grader:pw@db:5432/app", "migrated")
        == "postgresql://grader:pw@db:5432/migrated"
    )
    assert (
        with_database("postgresql://u@h/postgres?sslmode=require", "x")
        == "postgresql://u@h/x?sslmode=require"
    )


def test_csv_cells_never_run_as_formulas() -> None:
    """Students name their folders and archives: a name a spreadsheet would run stays text."""
    hostile = ['=HYPERLINK("http://127.0.0.1/x","click")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)"]
    text = csv_text([["student", "score"], *[[h, "-10"] for h in hostile], ["\tx", 4.5]])
    rows = list(csv.reader(io.StringIO(text)))
    assert [r[0] for r in rows[1:]] == [*(f"'{h}" for h in hostile), "'\tx"]
    assert [r[1] for r in rows[1:]] == ["-10"] * 4 + ["4.5"], "numbers stay numbers"
    assert rows[0] == ["student", "score"] and text.endswith("\r\n")
