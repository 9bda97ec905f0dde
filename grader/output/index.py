"""index.html of `grader batch`: histogram, pass rate per rubric item, slowest, a link per student."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.output import changes as changes_csv
from grader.output import full, similarity
from grader.output.html import templates
from grader.regrade import Regrade

NAME = "index.html"
PHASES = [  # (timing, shown as): a grade's main phases
    ("build", "build"),
    ("services_start", "services"),
    ("app_ready", "start"),
    ("checks", "checks"),
    ("total", "total"),
]


@dataclass(frozen=True)
class Seen:
    """What the index takes from one full.json, and the file's (mtime, size) when read."""

    stamp: tuple[int, int]
    items: list[tuple[str, bool]]  # ("category: title", passed)
    phases: str


def _seen(path: Path, cache: dict[Path, Seen]) -> Seen | None:
    """One full.json's part of the index; read again only when the file changed. A batch renders
    the index after every grade: a class of 2,000 would otherwise parse every report each time."""
    try:
        st = path.stat()
        stamp = (st.st_mtime_ns, st.st_size)
        if path in cache and cache[path].stamp == stamp:
            return cache[path]
        result = full.read(path)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    cache[path] = Seen(
        stamp,
        [(f"{item.category}: {item.title}", item.passed) for item in result.items],
        " · ".join(
            f"{name} {result.timings[key]:.1f} s" for key, name in PHASES if key in result.timings
        ),
    )
    return cache[path]


def render(
    title: str,
    entries: list[dict[str, Any]],
    out: Path,
    regrade: Regrade | None = None,
    cache: dict[Path, Seen] | None = None,
) -> str:
    """`entries`: the batch journal's latest entry per student (`report` relative to `out`; its
    full.json beside it gives the rubric items). `regrade`: the grades made with an earlier
    version of the assignment (stale) and what regrading changed. `cache`: kept by the caller
    between renders."""
    cache = {} if cache is None else cache
    scores = [e["score"] for e in entries if e["score"] is not None]
    bins = [0] * 10
    for s in scores:
        bins[min(int(s // 10), 9)] += 1
    items: dict[str, list[bool]] = {}
    phases: dict[str, str] = {}  # student -> the grade's main phases, for a cluster's batch
    for e in entries:
        seen = _seen((out / e["report"]).with_name(full.NAME), cache)
        if seen is None:
            continue
        phases[e["student"]] = seen.phases
        for name, passed in seen.items:
            items.setdefault(name, []).append(passed)
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
        # graded on a Dask cluster: which worker graded each submission, and how long each phase took
        cluster=any("worker" in e for e in entries),
        phases=phases,
    )
