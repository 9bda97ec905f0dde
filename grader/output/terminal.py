"""What `grader grade` and `grader check` print (rich): the score by category, the root causes,
and for a self-check each failure with what was expected and how to reproduce it."""

from __future__ import annotations

import os
from pathlib import Path

from rich.table import Table

from grader.console import SafeConsole
from grader.core import Result, Status
from grader.output.views import (
    cause,
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


def grade(console: SafeConsole, result: Result, out: Path | None) -> None:
    """A grade's summary: the score by category and the root causes; where the files are."""
    style = {Status.GRADED: "green", Status.NOT_GRADED: "yellow"}.get(result.status, "red")
    _summary(console, result, f"bold {style}")
    for cat in result.categories:
        console.print(f"  {cat.title:<34} {cat.points:>6g} / {cat.max_points:g}")
    if (deadline := late_line(result)) is not None:
        style = "bold red" if result.late and result.late.penalty else ""
        console.print(f"  {deadline}", style=style, markup=False, highlight=False)
    causes(console, result)
    if out is not None:
        console.print(
            f"report: {out / 'report.html'}   results: {out / 'results.json'}", markup=False
        )


def causes(console: SafeConsole, result: Result) -> None:
    """The root causes the report opens with, each with the points it costs."""
    shown, rest = top_causes(result)
    if not shown:
        return
    console.print("[bold]Where the points went[/]")
    for n, c in enumerate(shown, 1):
        console.print(f"  {n}. {c.title}  (−{c.points:g})", markup=False, highlight=False)
    if rest:
        console.print(
            f"  … and {len(rest)} smaller cause(s) ({sum(c.points for c in rest):.2f} points)"
        )


def check(console: SafeConsole, result: Result, out: Path) -> None:
    """The self-check's summary: categories, then each failure with a reproducer."""
    if result.status is Status.NOT_GRADED:
        _summary(console, result, "bold yellow")
        return
    table = Table(
        title=f"{result.assignment} · visible checks · {result.runtime} mode", title_justify="left"
    )
    table.add_column("category")
    table.add_column("points", justify="right")
    table.add_column("not checked", justify="right")
    for cat in result.categories:
        unchecked = sum(
            i.max_points for i in result.items if i.category == cat.id and i.not_checked
        )
        style = "green" if cat.points >= cat.max_points - unchecked else "red"
        table.add_row(
            cat.title,
            f"[{style}]{cat.points:g} / {cat.max_points - unchecked:g}[/]",
            f"[dim]{unchecked:g}[/]" if unchecked else "",
        )
    console.print(table)
    for why, items in not_run(result):  # one line for the items that could not run
        console.print(
            f"✗ {not_run_line(why, items)}", style="bold red", markup=False, highlight=False
        )
    causes(console, result)
    scripts = reproducers(result)
    fix = to_fix(result)
    for item in result.items:
        if item.not_checked:
            console.print(f"[dim]○ {item.title}: not checked in {result.runtime} mode[/]")
        elif item in fix:
            console.print(f"[bold red]✗ {item.title}[/] ({item.points:g}/{item.max_points:g})")
            if item.zeroed_by:
                console.print(f"    {zeroed(item)}", style="bold", markup=False, highlight=False)
            groups = failure_groups(item)
            for first, same in groups[:3]:
                what = cause(first)
                console.print(f"    {first.name}: {what}", markup=False, highlight=False)
                if first.expected is not None:
                    console.print(
                        f"      expected: {first.expected}", markup=False, highlight=False
                    )
                    console.print(f"      actual:   {first.actual}", markup=False, highlight=False)
                if id(first) in scripts:  # the whole sequence, against the student's own app
                    script = os.path.relpath(out / scripts[id(first)][0])  # copied as one line
                    console.print(
                        f"      reproduce: python {script}",
                        markup=False,
                        highlight=False,
                        soft_wrap=True,
                    )
                elif first.exchange is not None:
                    console.print(
                        f"      reproduce: {first.exchange.curl()}", markup=False, highlight=False
                    )
                if same:
                    console.print(f"      … and {len(same)} more with the same cause")
            if len(groups) > 3:
                console.print(f"    … {len(groups) - 3} more problem(s): see the report")
    style = "green" if all(i.passed or i.not_checked for i in result.items) else "red"
    _summary(console, result, f"bold {style}")
    console.print(f"report: {out / 'report.html'}", markup=False)


def _summary(console: SafeConsole, result: Result, style: str) -> None:
    """The summary line in `style`. Its reason may quote the app or the submission: it is never
    read as markup (a `[/]` in it would end a style, or fail); highlighted as printed text is."""
    line = console.render_str(summary(result), markup=False)
    line.stylize(style)
    console.print(line)
