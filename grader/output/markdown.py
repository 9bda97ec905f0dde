"""A short Markdown summary for CI job pages (e.g. GitHub's $GITHUB_STEP_SUMMARY): `--markdown`."""

from __future__ import annotations

from grader.core import Result
from grader.output.views import (
    blocked_groups,
    cause,
    cause_line,
    cause_titles,
    failure_groups,
    late_line,
    not_run,
    not_run_line,
    reproducers,
    summary,
    to_fix,
    top_causes,
    zeroed,
)


def render(result: Result) -> str:
    """A short summary for CI job pages (e.g. GitHub's $GITHUB_STEP_SUMMARY)."""
    lines = [f"## {summary(result)}", ""]
    if (deadline := late_line(result)) is not None:
        lines += [f"**{deadline}**" if result.late and result.late.penalty else deadline, ""]
    if result.categories:
        lines += ["| category | points |", "|---|---|"]
        lines += [f"| {c.title} | {c.points:g} / {c.max_points:g} |" for c in result.categories]
        lines.append("")
    failed = to_fix(result)
    titles = cause_titles(result)
    scripts = reproducers(result)
    unchecked = [i for i in result.items if i.not_checked]
    if unchecked:
        lines.append(
            f"Not checked in {result.runtime} mode: " + "; ".join(i.title for i in unchecked)
        )
        lines.append("")
    for why, items in not_run(result):
        lines += [not_run_line(why, items)[:1000], ""]
    shown, rest = top_causes(result)
    if shown:
        lines.append("### Where the points went")
        for n, c in enumerate(shown, 1):
            lines.append(
                f"{n}. **−{c.points:g} points: {c.title}** — {cause_line(c, result.items)}"[:600]
            )
            if c.critical:
                lines.append("   - a security hole: the rubric item it belongs to scores 0")
        if rest:
            lines.append(
                f"\n… and {len(rest)} smaller cause{'s' if len(rest) != 1 else ''} "
                f"({sum(c.points for c in rest):g} points), below."
            )
        lines.append("")
    if failed:
        lines.append("### To fix")
        for item in failed:
            lines.append(f"- **{item.title}** ({item.points:g}/{item.max_points:g})")
            if item.zeroed_by:
                lines.append(f"  - {zeroed(item)}"[:400])
            for why, blocked in blocked_groups(item, titles):
                lines.append(f"  - not checked ({len(blocked)}): {why}"[:400])
            for first, same in failure_groups(item)[:3]:
                what = cause(first)
                detail = (
                    f": expected {first.expected}, got {first.actual}" if first.expected else ""
                )
                lines.append(f"  - `{first.name}` — {what}{detail}"[:400])
                if first.exchange is not None:
                    lines.append(f"    `{first.exchange.curl()}`"[:600])
                if id(first) in scripts:
                    lines.append(
                        f"    whole sequence, next to report.html: `python {scripts[id(first)][0]}`"
                    )
                if same:
                    lines.append(f"  - … and {len(same)} more with the same cause")
    return "\n".join(lines) + "\n"
