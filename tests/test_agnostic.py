"""The grader knows no assignment: nothing under grader/ names an assignment, one of its routes or
one of its environment variables. A new assignment is a new folder in specs/, not new grader code."""

from __future__ import annotations

from pathlib import Path

import yaml

from grader.assignment import SPECS_DIR, load

GRADER = Path(__file__).resolve().parents[1] / "grader"


def _words(spec_id: str) -> set[str]:
    spec = load(spec_id)
    api = yaml.safe_load(spec.spec_path.read_text())
    # a route's path without its parameters ("/requests/current", "/users/me"), but not the
    # health path every assignment has by default
    paths = {p for p in api["paths"] if len(p) > 2 and p != spec.runtime.health_path}
    return {spec.id, *paths, *spec.runtime.env}


def test_grader_names_no_assignment_route_or_variable() -> None:
    ids = sorted(p.name for p in SPECS_DIR.iterdir() if (p / "assignment.yaml").is_file())
    assert len(ids) >= 2
    words = set().union(*(_words(i) for i in ids))
    found = []
    for path in sorted(GRADER.rglob("*")):
        if (
            path.suffix not in {".py", ".j2", ".sh", ""}
            or not path.is_file()
            or "__pycache__" in path.parts
        ):
            continue
        text = path.read_text(errors="replace")
        found += [f"{path.relative_to(GRADER)}: {w}" for w in sorted(words) if w in text]
    assert not found, found
