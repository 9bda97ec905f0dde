"""index.html of `grader batch`: histogram, pass rate per rubric item, slowest, a link per student."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from grader.output import changes as changes_csv
from grader.output import full, similarity
from grader.output.html import templates
from grader.regrade import Regrade

NAME = "index.html"


def render(
    title: str, entries: list[dict[str, Any]], out: Path, regrade: Regrade | None = None
) -> str:
    """`entries`: the batch journal's latest entry per student (`report` relative to `out`; its
    full.json beside it gives the rubric items). `regrade`: the grades made with an earlier
    version of the assignment (stale) and what regrading changed."""
    scores = [e["score"] for e in entries if e["score"] is not None]
    bins = [0] * 10
    for s in scores:
        bins[min(int(s // 10), 9)] += 1
    items: dict[str, list[bool]] = {}
    for e in entries:
        try:
            result = full.read((out / e["report"]).with_name(full.NAME))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        for item in result.items:
            items.setdefault(f"{item.category}: {item.title}", []).append(item.passed)
    rates = sorted(
        ((name, sum(v) / len(v), len(v)) for name, v in items.items()), key=lambda r: r[1]
    )
    slowest = sorted((e for e in entries if e.get("seconds")), key=lambda e: -e["seconds"])[:5]
    return templates.get_template("index.html.j2").render(
        title=title,
        entries=entries,
        bins=bins,
        rates=rates,
        slowest=slowest,
        graded=len(scores),
        mean=(sum(scores) / len(scores)) if scores else None,
        similarity=similarity.NAME if (out / similarity.NAME).is_file() else None,
        stale=set(regrade.stale) if regrade else set(),
        compared=regrade.compared if regrade else 0,
        changes=[
            {
                "student": c.student,
                "report": c.new["report"],
                "old": changes_csv.number(c.old["score"]) or "—",
                "new": changes_csv.number(c.new["score"]) or "—",
                "delta": "" if c.delta is None else f"{c.delta:+g}",
                "old_status": c.old["status"],
                "new_status": c.new["status"],
                "moved": changes_csv.items(c),
                "resubmitted": c.resubmitted,
            }
            for c in (regrade.changes if regrade else [])
        ],
        changes_csv=changes_csv.NAME,
    )
