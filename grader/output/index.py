"""index.html of `grader batch`: histogram, pass rate per rubric item, slowest, a link per student."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from grader.output import full
from grader.output.html import templates

NAME = "index.html"
PHASES = [  # (timing, shown as): a grade's main phases
    ("build", "build"),
    ("services_start", "services"),
    ("app_ready", "start"),
    ("checks", "checks"),
    ("total", "total"),
]


def render(title: str, entries: list[dict[str, Any]], out: Path) -> str:
    """`entries`: the batch journal's latest entry per student (`report` relative to `out`; its
    full.json beside it gives the rubric items)."""
    scores = [e["score"] for e in entries if e["score"] is not None]
    bins = [0] * 10
    for s in scores:
        bins[min(int(s // 10), 9)] += 1
    items: dict[str, list[bool]] = {}
    phases: dict[str, str] = {}  # student -> the grade's main phases, for a cluster's batch
    for e in entries:
        try:
            result = full.read((out / e["report"]).with_name(full.NAME))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        phases[e["student"]] = " · ".join(
            f"{name} {result.timings[key]:.1f} s" for key, name in PHASES if key in result.timings
        )
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
        # graded on a Dask cluster: which worker graded each submission, and how long each phase took
        cluster=any("worker" in e for e in entries),
        phases=phases,
    )
