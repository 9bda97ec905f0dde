"""Local mode gives the grade Docker gives: submissions graded both ways (`runtime="local"` and in
Docker), compared item by item on every item both can check (local mode cannot check the build,
the container's start or its process list: those are "not checked in local mode").

The submissions: both reference solutions as they are, and variants of them generated from a small
spec — the FastAPI tutorial's shape (main.py at the root, a `uvicorn main:app` CMD, no Alembic, no
health route), a shell-chain CMD with Alembic in a WORKDIR that holds a subfolder, and one without
requirements.txt. The grades run two at a time, each in a process of its own (`grader grade`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT
from docker import DockerClient

pytestmark = pytest.mark.docker

REFERENCES = ROOT / "reference_solution"
LEFT_OUT = (
    "__pycache__",
    "tests",
    ".grader.yaml",
    "README.md",
    "pytest.ini",
    "requirements-dev.txt",
    ".dockerignore",
    ".gitignore",
    ".env.example",
)
LOCAL_SKIPS = {"build", "start", "processes"}  # what only a container shows


@dataclass(frozen=True)
class Variant:
    """A submission derived from a reference solution."""

    name: str
    assignment: str
    package: str = "app"  # the app's package, renamed
    under: str = ""  # the folder of the submission that holds the code
    root_main: bool = False  # a main.py beside the package: `uvicorn main:app`
    alembic: bool = True  # False: no Alembic at all, the tables made by create_all at start
    health: bool = True  # False: no health route (GET /health answers 404)
    requirements: bool = True
    dockerfile: str | None = None  # None: the reference's


TUTORIAL = """FROM python:3.11-slim
WORKDIR /code
COPY ./requirements.txt /code/requirements.txt
RUN pip install --no-cache-dir -r /code/requirements.txt
COPY . /code
CMD ["uvicorn", "main:app", "--host", "0.0.0.0", "--port", "8000"]
"""

CHAIN = """FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1
WORKDIR /srv
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

FROM base
COPY src/ /srv/
# migrations first, in the shell's form
CMD alembic upgrade head && \\
    exec uvicorn api.main:app --host 0.0.0.0 --port 8000
"""

VARIANTS = [  # the longest grades first
    Variant(
        "tutorial",
        "fastapi-db-auth",
        package="sql_app",
        root_main=True,
        alembic=False,
        health=False,
        dockerfile=TUTORIAL,
    ),
    Variant("reference-db-auth", "fastapi-db-auth"),
    Variant("reference-basics", "fastapi-basics"),
    Variant("chain", "fastapi-db-auth", package="api", under="src", dockerfile=CHAIN),
    Variant("no-requirements", "fastapi-basics", requirements=False),
    # uvicorn's default host: nothing answers from outside the container
    Variant(
        "loopback",
        "fastapi-basics",
        dockerfile="FROM python:3.11-slim\nWORKDIR /app\n"
        "COPY requirements.txt .\nRUN pip install -r requirements.txt\nCOPY app ./app\n"
        'CMD ["uvicorn", "app.main:app"]\n',
    ),
]

CREATE_ALL = """    from {package}.models import Base

    async with db.engine.begin() as connection:  # no migrations: the tables made at start
        await connection.run_sync(Base.metadata.create_all)
    yield
    await db.engine.dispose()"""


def render(variant: Variant, dest: Path) -> Path:
    """Write `variant` into `dest` (a fresh folder) and return it."""
    reference = REFERENCES / variant.assignment
    code = dest / variant.under
    shutil.copytree(reference, code, ignore=shutil.ignore_patterns(*LEFT_OUT, "Dockerfile"))
    requirements = (code / "requirements.txt").read_text()
    (code / "requirements.txt").unlink()
    if variant.package != "app":
        (code / "app").rename(code / variant.package)
        for path in code.rglob("*.py"):
            text = re.sub(r"\bfrom app(\.| import)", rf"from {variant.package}\1", path.read_text())
            path.write_text(text)
    if variant.root_main:
        (code / "main.py").write_text(f"from {variant.package}.main import app  # noqa: F401\n")
    main = code / variant.package / "main.py"
    if not variant.alembic:
        shutil.rmtree(code / "alembic")
        (code / "alembic.ini").unlink()
        requirements = "".join(
            line
            for line in requirements.splitlines(keepends=True)
            if not line.startswith("alembic")
        )
        text = main.read_text()
        old = "    yield\n    await db.engine.dispose()"
        assert old in text
        main.write_text(text.replace(old, CREATE_ALL.format(package=variant.package)))
    if not variant.health:
        text = main.read_text()
        assert "app.include_router(health.router)\n" in text
        main.write_text(text.replace("app.include_router(health.router)\n", ""))
    if variant.requirements:
        (dest / "requirements.txt").write_text(requirements)
    (dest / "Dockerfile").write_text(variant.dockerfile or (reference / "Dockerfile").read_text())
    return dest


def _grade(submission: Path, assignment: str, runtime: str, out: Path) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "grader.cli",
            "grade",
            str(submission),
            "--assignment",
            assignment,
            "--runtime",
            runtime,
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    full: dict[str, Any] = json.loads((out / "full.json").read_text())
    full["html"] = (out / "report.html").read_text()
    return full


@pytest.fixture(scope="module")
def graded(
    tmp_path_factory: pytest.TempPathFactory,
    docker_client: DockerClient,
) -> dict[str, dict[str, dict[str, Any]]]:
    """variant name → runtime → full.json, every grade run once for the module."""
    base = tmp_path_factory.mktemp("parity")
    jobs = []
    for variant in VARIANTS:
        submission = render(variant, base / variant.name)
        for runtime in ("docker", "local"):
            jobs.append((variant, runtime, submission))
    # two at a time: one's health wait or build overlaps the other's checks (the longest first)
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            (v.name, runtime): pool.submit(
                _grade, sub, v.assignment, runtime, base / "out" / f"{v.name}-{runtime}"
            )
            for v, runtime, sub in jobs
        }
        return {
            v.name: {rt: futures[(v.name, rt)].result() for rt in ("docker", "local")}
            for v in VARIANTS
        }


def _comparable(full: dict[str, Any]) -> dict[str, float]:
    checks = {o["check"] for i in full["items"] for o in i["outcomes"]}
    assert checks, full["reason"]
    return {
        i["id"]: i["points"]
        for i in full["items"]
        if not {o["check"] for o in i["outcomes"]} & LOCAL_SKIPS
    }


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_same_points_on_every_item_both_check(
    graded: dict[str, dict[str, dict[str, Any]]], variant: Variant
) -> None:
    docker, local = graded[variant.name]["docker"], graded[variant.name]["local"]
    assert docker["runtime"] == "docker" and local["runtime"] == "local"
    in_docker, in_local = _comparable(docker), _comparable(local)
    assert set(in_docker) == set(in_local) and in_docker
    differ = {
        item: (in_docker[item], in_local[item])
        for item in in_docker
        if in_docker[item] != in_local[item]
    }
    assert not differ, (
        f"points (docker, local) differ: {differ}\n{docker['reason']}\n{local['reason']}"
    )
    # the items only Docker checks are "not checked" locally, never passed
    for item in local["items"]:
        if {o["check"] for o in item["outcomes"]} & LOCAL_SKIPS and item["points"]:
            pytest.fail(f"{item['id']} scored {item['points']} in local mode")


def test_failures_are_told_as_in_docker(graded: dict[str, dict[str, dict[str, Any]]]) -> None:
    tutorial = graded["tutorial"]
    for runtime, full in tutorial.items():  # no health route: checked all the same, both ways
        assert full["answered_unhealthy"], runtime
        assert "GET /health answered 404" in full["reason"], runtime
        assert full["reason"].endswith("; the other checks ran anyway"), runtime
        assert full["migrate"]["exit_code"] not in (0, None), runtime  # no alembic: that item only
    assert (
        "alembic: not found in the app's virtual environment" in tutorial["local"]["migrate"]["log"]
    )
    start = next(i for i in graded["chain"]["local"]["items"] if i["id"] == "app-starts")
    assert (
        "the Dockerfile's command `alembic upgrade head && exec uvicorn api.main:app"
        in start["outcomes"][0]["message"]
    )
    missing = graded["no-requirements"]["local"]
    assert missing["status"] == "start_failed"
    assert missing["reason"].startswith(
        "there is no requirements.txt at the root of the submission: "
        "local mode installs the app's dependencies from it"
    )
    assert "did not build" not in missing["html"] and "requirements.txt" in missing["html"]
    loopback = graded["loopback"]
    assert loopback["docker"]["status"] == loopback["local"]["status"] == "start_failed"
    assert "Uvicorn running on http://127.0.0.1:8000" in loopback["docker"]["reason"]
    assert "listens on 127.0.0.1:8000, inside the container only" in loopback["local"]["reason"]
