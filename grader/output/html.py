"""report.html (jinja2, `grader/templates/report.html.j2`) and the reproducers beside it."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from grader import logtext, reproduce
from grader.core import Result, write_atomic
from grader.output.views import (
    blocked_groups,
    cause_line,
    cause_titles,
    checked_failures,
    example,
    failure_groups,
    item_output,
    late_line,
    not_run,
    reproducers,
    status_text,
    to_fix,
    top_causes,
    work_points,
    zeroed,
)

NAME = "report.html"

templates = Environment(
    loader=PackageLoader("grader", "templates"),
    autoescape=select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters["plain"] = logtext.plain  # logs without colour codes


def render(result: Result) -> str:
    shown, rest = top_causes(result)
    scripts = reproducers(result)
    return templates.get_template("report.html.j2").render(
        r=result,
        status_text=status_text(result),
        late_line=late_line(result),
        work_points=work_points(result),
        not_run=not_run(result),
        to_fix=to_fix(result),
        item_output=item_output,
        zeroed=zeroed,
        failure_groups=failure_groups,
        causes=shown,
        other_causes=rest,
        cause_line=cause_line,
        example=example,
        blocked_groups=blocked_groups,
        checked_failures=checked_failures,
        titles=cause_titles(result),
        reproducer_path=lambda o: scripts.get(id(o), (None,))[0],
    )


def write(result: Result, out: Path) -> Path:
    """`out/report.html` and, beside it, `reproduce/<test>.py` per failed test that has one (an
    earlier grade's scripts in that folder go); returns the report's path."""
    path = out / NAME
    write_atomic(path, render(result))
    scripts = dict(reproducers(result).values())
    folder = out / reproduce.FOLDER
    for old in folder.glob("*.py") if folder.is_dir() else ():  # an earlier grade's, same folder
        if f"{reproduce.FOLDER}/{old.name}" not in scripts:
            old.unlink()
    for relative, text in scripts.items():
        write_atomic(out / relative, text)
    return path
