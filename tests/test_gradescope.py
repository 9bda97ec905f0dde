"""The Gradescope bundle, run the way Gradescope runs it: unpacked into <root>/source, `setup.sh`
once, then `run_autograder` per submission in <root>/submission, writing <root>/results/results.json."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

from conftest import REFERENCE_DIR, TEMPLATE_DIR

from grader.assignment import load
from grader.bundle import bundle


def _valid_results(data: dict[str, Any]) -> None:
    """The fields Gradescope reads, with the types it accepts."""
    assert isinstance(data["score"], int | float)
    assert isinstance(data["execution_time"], int | float) and isinstance(data["output"], str)
    assert data["tests"]
    for test in data["tests"]:
        assert isinstance(test["name"], str) and isinstance(test["output"], str)
        assert 0 <= test["score"] <= test["max_score"]
        assert test["status"] in {"passed", "failed"}
        assert test["visibility"] in {"visible", "hidden", "after_due_date", "after_published"}
    assert abs(sum(t["score"] for t in data["tests"]) - data["score"]) < 0.05


def test_bundle_setup_and_run_autograder(tmp_path: Path) -> None:
    spec = load("fastapi-db-auth")
    zipped = bundle(assignment="fastapi-db-auth", out=tmp_path / "autograder.zip")
    with zipfile.ZipFile(zipped) as zf:
        names = set(zf.namelist())
        modes = {i.filename: i.external_attr >> 16 for i in zf.infolist()}
    assert {
        "setup.sh",
        "run_autograder",
        "pyproject.toml",
        "grader/cli.py",
        "specs/fastapi-db-auth/assignment.yaml",
        "reference_solution/fastapi-db-auth/Dockerfile",
    } <= names
    assert modes["run_autograder"] & 0o111 and modes["setup.sh"] & 0o111
    assert not [
        n for n in names if "__pycache__" in n or n.startswith(("tests/", "student_template/"))
    ]
    # the samples and mutants grade nothing: whole app trees left out
    spec_dir = "specs/fastapi-db-auth/"
    assert not [n for n in names if n.startswith((spec_dir + "mutants/", spec_dir + "examples/"))]

    root = tmp_path / "autograder"
    (root / "source").mkdir(parents=True)
    with zipfile.ZipFile(zipped) as zf:  # as unzip does: with the modes the zip records
        zf.extractall(root / "source")
        for info in zf.infolist():
            if info.external_attr >> 16:
                (root / "source" / info.filename).chmod((info.external_attr >> 16) & 0o777)
    env = {**os.environ, "AUTOGRADER_ROOT": str(root)}
    setup = subprocess.run(
        ["bash", str(root / "source" / "setup.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-3000:]
    assert (root / "venv" / "bin" / "grader").is_file()

    unchecked = sum(i.points for i in spec.items if i.check in {"build", "start"})
    scores = {}
    for name, source in (("reference", REFERENCE_DIR), ("template", TEMPLATE_DIR)):
        shutil.rmtree(root / "submission", ignore_errors=True)
        shutil.rmtree(root / "results", ignore_errors=True)
        shutil.copytree(source, root / "submission")
        done = subprocess.run(
            [str(root / "source" / "run_autograder")],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        data = json.loads((root / "results" / "results.json").read_text())
        _valid_results(data)
        assert data["extra_data"]["runtime"] == "local"
        scores[name] = data["score"]
    assert scores["reference"] == spec.total - unchecked  # everything but the Dockerfile items
    assert 0 < scores["template"] < spec.total / 2
