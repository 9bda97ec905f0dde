"""Stage 7: one writer per output format, all over one `grader.core.Result`.

`gradescope` (results.json), `full` (full.json, read back by `full.read`), `html` (report.html and
the reproducers beside it), `markdown`, `junit`, `terminal` (what `grader grade`/`check` print),
`index` (a batch's class summary), `changes` (a regrade's changes.csv); `views` holds what several
of them show alike.
"""

from __future__ import annotations

from pathlib import Path

from grader.core import Result, write_atomic
from grader.output import full, gradescope, html


def write(result: Result, out: Path) -> dict[str, Path]:
    """The files of one grade in `out` (atomically): results.json, full.json, report.html and
    its reproducers; returns {file name: path}."""
    paths = {name: out / name for name in (gradescope.NAME, html.NAME, full.NAME)}
    write_atomic(paths[gradescope.NAME], gradescope.render(result))
    write_atomic(paths[full.NAME], full.render(result))
    html.write(result, out)
    return paths
