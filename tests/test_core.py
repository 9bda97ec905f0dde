"""Small shared helpers of grader.core."""

from __future__ import annotations

from grader.core import with_database


def test_with_database_keeps_user_host_and_query() -> None:
    assert (
        with_database("postgresql://grader:pw@db:5432/app", "migrated")
        == "postgresql://grader:pw@db:5432/migrated"
    )
    assert (
        with_database("postgresql://u@h/postgres?sslmode=require", "x")
        == "postgresql://u@h/x?sslmode=require"
    )
