"""Load `specs/<assignment>/assignment.yaml`: runtime contract, services, fuzzing budget, rubric."""

from __future__ import annotations

import hashlib
import re
import secrets
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from grader.core import GraderFault

SPECS_DIR = Path(__file__).resolve().parent.parent / "specs"
NOT_GRADING = {"examples", "mutants"}  # folders of a spec that no grade reads
# what tools leave beside code: never part of what grades
CACHES = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".venv", ".git"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Runtime(_Model):
    port: int = 8000
    health_path: str = "/health"
    start_deadline: float = 60.0  # seconds from container start to a 2xx on health_path
    # Values may contain ${postgres_url} (the app's database) and ${random_<name>} (a fresh random
    # value per run, the same wherever the name recurs), e.g. ${random_secret}.
    env: dict[str, str] = Field(default_factory=dict)
    # A command that applies the schema alone (e.g. ["alembic", "upgrade", "head"]). The grader runs
    # it in the image on an empty database before the app starts; tests see that database as
    # target.databases["migrated"] (what the migrations create, not what the app creates later).
    migrate: list[str] | None = None
    # Local mode (no Docker) serves the app as the Dockerfile's CMD does when that is a plain
    # uvicorn/gunicorn/fastapi command; this one only when it is not, and the module it names
    # exists. "{port}" is a free port on 127.0.0.1; programs come from the app's virtual environment.
    local_command: list[str] = Field(
        default_factory=lambda: [
            "uvicorn",
            "app.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
        ]
    )

    def randoms(self) -> dict[str, str]:
        """A fresh value for each ${random_<name>} placeholder of the env."""
        names = {m for v in self.env.values() for m in re.findall(r"\$\{(random_\w+)\}", v)}
        return {name: secrets.token_urlsafe(24) for name in sorted(names)}


class Services(_Model):
    postgres: bool = False


class Fuzz(_Model):
    max_examples: int = 25
    stateful: bool = True
    max_steps: int | None = None  # per stateful scenario
    hooks: str | None = None  # a Python file in the spec folder (auth for the fuzzer)


class LatePolicy(_Model):
    """`late:` — the deadline and what lateness costs, as Canvas' automatic late deduction: each
    day late or part of one takes `penalty_per_day` percent of the max score; a submission within
    `grace_minutes` after the deadline is on time (its days still count from the deadline); more
    than `max_days` days late is not accepted: 0 points (the report still shows the work's points).
    grader.late applies it."""

    deadline: AwareDatetime  # with its offset: 2026-12-01T23:59:00+03:00
    grace_minutes: float = Field(default=0, ge=0)
    penalty_per_day: float = Field(default=0, ge=0, le=100)  # percent of the max score
    max_days: int | None = Field(default=None, ge=0)  # None: late work is always accepted


class Category(_Model):
    id: str
    title: str


class Item(_Model):
    id: str
    title: str
    category: str
    points: float = Field(gt=0)
    check: str  # a registered check (grader.checks): build, start, contract, schemathesis, ...
    visibility: Literal["visible", "hidden", "after_due_date", "after_published"] = "visible"
    # partial: points times the share of its outcomes that passed; all: its points only when every
    # outcome passed (one rule tested from several sides, e.g. both bounds of a range)
    scoring: Literal["partial", "all"] = "partial"
    # what the check takes: its options model (grader.checks) validates them when the file loads
    options: dict[str, Any] = Field(default_factory=dict)


class Assignment(_Model):
    id: str
    version: str = "1"
    title: str
    spec: str = "openapi.yaml"
    tests: str = "tests"
    reference: str | None = None  # the reference solution's folder, relative to this file
    runtime: Runtime = Field(default_factory=Runtime)
    services: Services = Field(default_factory=Services)
    fuzz: Fuzz = Field(default_factory=Fuzz)
    total: float = 100
    # checks that would run on a second instance of the app, beside the others, but must see the
    # app the others used instead (its data, its state): they run on it after them, one at a time
    alone: list[str] = Field(default_factory=list)
    late: LatePolicy | None = None  # None: no deadline, nothing is late
    categories: list[Category]
    items: list[Item]

    model_config = ConfigDict(extra="forbid")
    _dir: Path = Path()

    @model_validator(mode="after")
    def _consistent(self) -> Assignment:
        cats = {c.id for c in self.categories}
        ids = [i.id for i in self.items]
        if len(ids) != len(set(ids)):
            raise ValueError("rubric item ids must be unique")
        for item in self.items:
            if item.category not in cats:
                raise ValueError(f"item {item.id!r}: unknown category {item.category!r}")
        points = sum(i.points for i in self.items)
        if abs(points - self.total) > 1e-6:
            raise ValueError(f"rubric points sum to {points}, not {self.total}")
        return self

    @property
    def dir(self) -> Path:
        return self._dir

    @property
    def spec_path(self) -> Path:
        return self._dir / self.spec

    @property
    def reference_dir(self) -> Path | None:
        return (self._dir / self.reference).resolve() if self.reference else None

    @property
    def tests_dir(self) -> Path:
        return self._dir / self.tests

    @property
    def fingerprint(self) -> str:
        """Changes whenever anything that grades changes: the spec folder (journal key for batch
        grading) and the reference solution (the differential check compares with it). The
        spec's `examples/` and `mutants/` (the bundled samples and the benchmark's bugs) grade
        nothing, so editing them keeps every grade current; nor do caches."""
        digest = hashlib.sha256()
        trees: list[tuple[Path, set[str]]] = [(self._dir, NOT_GRADING)]
        if self.reference_dir is not None and self.reference_dir.is_dir():
            trees.append((self.reference_dir, set()))
        for n, (root, skipped) in enumerate(trees):
            for path in sorted(
                p
                for p in root.rglob("*")
                if p.is_file()
                and not CACHES & set(p.relative_to(root).parts)
                and p.relative_to(root).parts[0] not in skipped
            ):
                digest.update(f"{n} {path.relative_to(root)}".encode())
                digest.update(path.read_bytes())
        return f"{self.version}-{digest.hexdigest()[:12]}"

    def item(self, item_id: str) -> Item:
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(item_id)


def load(name_or_path: str | Path, *, specs_dir: Path = SPECS_DIR) -> Assignment:
    """An assignment by id (a folder of `specs/`) or by the path of its folder. Its rubric is
    checked here, before anything is built: every item's check exists and takes its options, and
    the items a check needs (the whole rubric's, the visible ones a self-check grades) are there."""
    folder = Path(name_or_path)
    if not (folder / "assignment.yaml").is_file():
        folder = specs_dir / str(name_or_path)
    path = folder / "assignment.yaml"
    if not path.is_file():
        known = sorted(p.name for p in specs_dir.iterdir() if (p / "assignment.yaml").is_file())
        raise GraderFault(
            f"unknown assignment {name_or_path!r}; known: {', '.join(known) or 'none'}"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        assignment = Assignment.model_validate(data)
    except (yaml.YAMLError, ValidationError) as exc:
        raise GraderFault(f"{path} is not a valid assignment: {exc}") from exc
    from grader.checks import rubric_problems  # the checks' registry imports this module

    visible = [i for i in assignment.items if i.visibility == "visible"]
    problems = rubric_problems(
        assignment.items, subsets=[("rubric's visible part", visible)], alone=assignment.alone
    )
    if problems:
        raise GraderFault(
            f"{path} is not a valid assignment:\n" + "\n".join(f"  {p}" for p in problems)
        )
    assignment._dir = folder.resolve()
    return assignment


MARKER = ".grader.yaml"  # in a starter repo: `assignment: <id or path of the spec folder>`


def find_marker(start: Path) -> tuple[Path, str | Path]:
    """The repo root holding the marker file (searching `start` and its parents) and the
    assignment it names: an id, or a spec folder relative to the marker."""
    here = start.resolve()
    for folder in [here, *here.parents]:
        marker = folder / MARKER
        if marker.is_file():
            break
    else:
        raise GraderFault(
            f"no {MARKER} in {here} or above: run `grader check` inside your assignment "
            f"repository, or use `grader grade PATH --assignment ID`"
        )
    try:
        data = yaml.safe_load(marker.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise GraderFault(f"{marker} is not valid YAML: {exc}") from exc
    name = data.get("assignment") if isinstance(data, dict) else None
    if not isinstance(name, str) or not name:
        raise GraderFault(f"{marker} must say which assignment this is: `assignment: <id>`")
    as_path = folder / name
    return folder, as_path if (as_path / "assignment.yaml").is_file() else name
