"""similarity.html and similarity.csv of `grader similarity` (grader/similarity.py computes them).

Student code is hostile: it reaches the page only through the template's autoescaping (the page
has no script of its own), never as markup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from grader import core
from grader.output.html import templates

if TYPE_CHECKING:
    from grader.similarity import Code, Report

NAME = "similarity.html"
CSV_NAME = "similarity.csv"
DETAILED = 50  # flagged pairs shown side by side; the CSV has every pair
NEAR = 10  # closest pairs below the threshold, listed to show where it cuts


def render(report: Report, title: str) -> str:
    from grader import similarity

    flagged = report.flagged
    details = [
        (
            n,
            pair,
            _files(report.codes[pair.first], pair.first_spans),
            _files(report.codes[pair.second], pair.second_spans),
        )
        for n, pair in enumerate(flagged[:DETAILED], 1)
    ]
    return templates.get_template("similarity.html.j2").render(
        title=title,
        report=report,
        flagged=flagged,
        details=details,
        near=[p for p in report.pairs if not p.flagged][:NEAR],
        compared=len(report.codes),
        noise=similarity.NOISE,
        guarantee=similarity.GUARANTEE,
    )


def _files(
    code: Code, spans: tuple[tuple[int, int], ...]
) -> list[tuple[str, list[tuple[str, bool]]]]:
    """The files of `code` with a match: each as segments of text, matched or not."""
    shown = []
    for rel, start, end in code.files:
        inside = sorted((max(a, start), min(b, end)) for a, b in spans if a < end and b > start)
        if not inside:
            continue
        segments, at = [], start
        for a, b in inside:
            if b <= at:
                continue
            a = max(a, at)
            if a > at:
                segments.append((code.text[at:a], False))
            segments.append((code.text[a:b], True))
            at = b
        if at < end:
            segments.append((code.text[at:end], False))
        shown.append((rel, segments))
    return shown


def csv_text(report: Report) -> str:
    rows: list[list[Any]] = [
        [
            "first",
            "second",
            "first_share",
            "second_share",
            "first_tokens",
            "second_tokens",
            "flagged",
        ]
    ]
    for p in report.pairs:
        rows.append(
            [
                p.first,
                p.second,
                f"{p.first_share:.4f}",
                f"{p.second_share:.4f}",
                p.first_tokens,
                p.second_tokens,
                "yes" if p.flagged else "no",
            ]
        )
    return core.csv_text(rows)
