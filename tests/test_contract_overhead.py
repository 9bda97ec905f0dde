"""What the contract suite's in-process pytest run loads and computes besides the tests (issue 14):
no installed plugin (pytest11 entry points: Schemathesis', Hypothesis', ... cost about 2 s a run),
no gc.collect() rounds at the session's end, and a traceback style that does not read each failing
frame's source — while the outcomes' messages stay what they were, and a suite run by hand
(`pytest -p grader.checks.contract --app-url ...`) still shows pytest's own tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from grader.checks.contract import run_suite
from grader.core import Target

ROOT = Path(__file__).resolve().parents[1]

SEEN = """
import json, os

def test_plugins(request):
    manager = request.config.pluginmanager
    seen = {
        "plugins": sorted(  # a blocked plugin is listed with None
            name for name, plugin in manager.list_name_plugin() if plugin is not None
        ),
        "tbstyle": request.config.getoption("tbstyle", "auto"),
    }
    with open(os.environ["SEEN_FILE"], "w") as fh:
        json.dump(seen, fh)
"""

FAILING = '''
from grader.testing import expect_equal

def test_mismatch():
    """A doc."""
    answer = 41
    expect_equal(answer, 42, "the answer")

def test_error():
    {}["missing"]
'''


def _suite(tmp_path: Path, text: str, name: str) -> Path:
    """A suite of one file, `test_<name>.py`."""
    tests = tmp_path / "suite"
    tests.mkdir()
    (tests / f"test_{name}.py").write_text(text)
    return tests


def test_no_installed_plugin_is_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    installed = {ep.name for ep in entry_points(group="pytest11")}
    assert installed, "no pytest11 entry point installed here: this test would prove nothing"
    seen_file = tmp_path / "seen.json"
    monkeypatch.setenv("SEEN_FILE", str(seen_file))
    outcomes = run_suite(
        _suite(tmp_path, SEEN, "seen"), Target(base_url="http://127.0.0.1:9")
    ).outcomes
    assert [o.passed for o in outcomes] == [True]
    seen = json.loads(seen_file.read_text())
    loaded = set(seen["plugins"])
    assert not loaded & installed, f"entry-point plugins loaded: {sorted(loaded & installed)}"
    assert "unraisableexception" not in loaded  # its cleanup runs gc.collect() five times
    assert seen["tbstyle"] == "native"  # nobody shows the traceback: the cheap style


def test_failure_messages_are_worded_from_the_exception(tmp_path: Path) -> None:
    outcomes = {
        o.name: o
        for o in run_suite(
            _suite(tmp_path, FAILING, "failing"), Target(base_url="http://127.0.0.1:9")
        ).outcomes
    }
    mismatch = outcomes["test_mismatch"]
    assert not mismatch.passed
    assert mismatch.message == "A doc.\nthe answer"
    assert (mismatch.expected, mismatch.actual) == ("42", "41")
    assert outcomes["test_error"].message == "KeyError: 'missing'"


def test_a_suite_run_by_hand_keeps_pytests_tracebacks(tmp_path: Path) -> None:
    """The plugin picks the cheap traceback style only when no terminal shows tracebacks."""
    tests = _suite(tmp_path, FAILING, "by_hand")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(tests),
            "-p",
            "grader.checks.contract",
            "--app-url",
            "http://127.0.0.1:9",
            "-p",
            "no:cacheprovider",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**_environ(), "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    # pytest's long style shows the failing line's source with its `>` marker
    assert '>       expect_equal(answer, 42, "the answer")' in run.stdout, run.stdout
    assert "2 failed" in run.stdout


def _environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}


def test_a_suite_never_runs_another_suites_same_named_tests(tmp_path: Path) -> None:
    """Two suites with a file of the same name, run in one process (a Dask worker recording two
    assignments' references, or one assignment's before and after its tests changed): each runs
    its own tests (pytest's importlib mode took the module already imported under that name)."""
    target = Target(base_url="http://127.0.0.1:9")
    first, second = tmp_path / "first", tmp_path / "second"
    for suite, body in ((first, "assert 1 == 1"), (second, "assert 1 == 2")):
        suite.mkdir()
        (suite / "test_same.py").write_text(f"def test_same():\n    {body}\n")
    assert [o.passed for o in run_suite(first, target).outcomes] == [True]
    assert [o.passed for o in run_suite(second, target).outcomes] == [False]
    (first / "test_same.py").write_text("def test_same():\n    pass\n\ndef test_new():\n    pass\n")
    assert [o.name for o in run_suite(first, target).outcomes] == ["test_same", "test_new"]
