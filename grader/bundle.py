"""`grader gradescope bundle`: the autograder zip Gradescope expects for one assignment.

The zip holds `setup.sh` and `run_autograder` at its root (Gradescope unpacks it into
/autograder/source), the grader itself, the assignment's spec folder and its reference solution.
Gradescope's containers have no Docker engine, so `run_autograder` grades in local mode.
"""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from grader import assignment as assignments
from grader.assignment import NOT_GRADING
from grader.core import GraderFault
from grader.submission import SKIP_DIRS

REPO = Path(__file__).resolve().parent.parent


def _files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not SKIP_DIRS.intersection(p.relative_to(folder).parts)
    )


def bundle(*, assignment: str | Path, out: Path, seed: int = 0) -> Path:
    """Write the autograder zip for `assignment` to `out`; returns `out`."""
    spec = assignments.load(assignment)
    if not (REPO / "pyproject.toml").is_file():
        raise GraderFault(
            f"the grader's source tree is not at {REPO}: bundle from a checkout of the "
            "grader repository (pip install -e)"
        )
    folders = [REPO / "grader", spec.dir]
    if spec.reference_dir is not None:
        folders.append(spec.reference_dir)
    for folder in folders[1:]:
        if not folder.is_relative_to(REPO):
            raise GraderFault(
                f"{folder} is outside the grader's repository {REPO}; the bundle keeps "
                "the spec and its reference at their places in it"
            )
    env = Environment(
        loader=PackageLoader("grader", "templates/gradescope"),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        comment_start_string="<#",
        comment_end_string="#>",
    )  # bash uses {#
    values = {
        "assignment": spec.id,
        "seed": seed,
        "postgres": spec.services.postgres,
        "spec": spec.dir.relative_to(REPO).as_posix(),
        "reference": spec.reference_dir.relative_to(REPO).as_posix() if spec.reference_dir else "",
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in ("setup.sh", "run_autograder"):
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFREG | 0o755) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, env.get_template(name).render(**values))
        zf.write(REPO / "pyproject.toml", "pyproject.toml")
        for folder in folders:
            for path in _files(folder):
                if folder == spec.dir and path.relative_to(folder).parts[0] in NOT_GRADING:
                    continue  # samples and mutants: whole app trees that grade nothing
                zf.write(path, path.relative_to(REPO).as_posix())
    return out
