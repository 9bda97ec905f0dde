"""The CLI's defaults are the API functions' own: every option passed to an API function either
is left out when not given (the function's default applies) or, where the CLI means another
default on purpose, is listed here with why."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from grader import batch, bundle, gradebook, machine, offline, pipeline, similarity
from grader.cli import ApiDefault, app
from grader.core import Result, Status

# command -> the API function it passes its options to, and the option names it renames
WRAPS: dict[str, tuple[Any, dict[str, str]]] = {
    "grade": (pipeline.grade, {"submission": "submission_path", "published_ports": "isolate"}),
    "check": (pipeline.grade, {}),
    "demo": (pipeline.grade, {}),
    "batch": (batch.run_batch, {}),
    "setup": (machine.setup, {}),
    "images build-offline": (offline.build_offline_images, {}),
    "gradescope bundle": (bundle.bundle, {}),
    "export": (gradebook.export, {}),
    "similarity": (similarity.find_similar, {}),
}
# the options whose default is the CLI's own, on purpose
OWN = {
    ("check", "runtime"): "a student's machine may have no Docker engine: auto, not docker",
    ("check", "out"): "the repository's .grader-report/, which pipeline.grade does not know",
    ("demo", "out"): "the demo writes somewhere even when not told where",
    ("gradescope bundle", "out"): "bundle() has no default file",
}
# options of `batch` passed on to each child's `grader grade`
BATCH_GRADE = {"build_timeout", "deadline"}


def _command(path: str) -> Any:
    """The click command (typer's own click) of `grader <path>`."""
    command: Any = typer.main.get_command(app)
    for name in path.split():
        command = command.commands[name]
    return command


def _api_default(function: Any, name: str) -> Any:
    return inspect.signature(function).parameters[name].default


@pytest.mark.parametrize("path", list(WRAPS))
def test_every_option_defaults_to_the_api_functions_default(path: str) -> None:
    function, renames = WRAPS[path]
    checked = 0
    for param in _command(path).params:
        assert param.name is not None
        api_name = renames.get(param.name, param.name)
        target = pipeline.grade if path == "batch" and api_name in BATCH_GRADE else function
        if param.required or (path, param.name) in OWN:
            continue
        if api_name not in inspect.signature(target).parameters:
            continue
        wanted = _api_default(target, api_name)
        if wanted is inspect.Parameter.empty:
            continue  # required by the function: the CLI's own default or none
        default = param.default
        assert isinstance(default, ApiDefault), f"{path} --{param.name}: a default of its own"
        assert default() is None, "not given: not passed"
        expected = (not wanted) if param.name == "published_ports" else wanted
        assert default.value() == expected, f"{path} --{param.name}"
        assert f"{target.__module__}:{target.__name__}" == default.function
        checked += 1
    assert checked, f"{path}: no option checked"


def test_an_option_left_out_is_not_passed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`grader grade` with no options calls pipeline.grade with the required ones only, so every
    other value is the function's own default; given ones are passed as given."""
    calls: list[dict[str, Any]] = []

    def fake(**kwargs: Any) -> Result:
        calls.append(kwargs)
        return Result("fastapi-basics", "1", "x", 0, Status.GRADED)

    monkeypatch.setattr(pipeline, "grade", fake)
    runner = CliRunner()
    args = ["grade", str(tmp_path), "-a", "fastapi-basics", "-o", str(tmp_path / "o")]
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    assert calls.pop() == {
        "submission_path": str(tmp_path),
        "assignment": "fastapi-basics",
        "out": tmp_path / "o",
    }
    done = runner.invoke(app, [*args, "--seed", "0", "--published-ports", "--deadline", "5"])
    assert done.exit_code == 0, done.output
    assert calls.pop() == {
        "submission_path": str(tmp_path),
        "assignment": "fastapi-basics",
        "out": tmp_path / "o",
        "seed": 0,
        "isolate": False,
        "deadline": 5.0,
    }


def test_batch_passes_a_grades_defaults_to_each_child(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[dict[str, Any]] = []

    def fake(**kwargs: Any) -> dict[str, dict[str, Any]]:
        calls.append(kwargs)
        return {}

    monkeypatch.setattr(batch, "run_batch", fake)
    done = CliRunner().invoke(app, ["batch", str(tmp_path), "-a", "mini", "-o", str(tmp_path)])
    assert done.exit_code == 0, done.output
    (call,) = calls
    assert "jobs" not in call and "seed" not in call
    build, deadline = (
        _api_default(pipeline.grade, "build_timeout"),
        _api_default(pipeline.grade, "deadline"),
    )
    assert call["extra"] == ["--build-timeout", str(build), "--deadline", str(deadline)]
    assert call["timeout"] == build + deadline + 300


def test_help_shows_the_api_functions_defaults() -> None:
    done = CliRunner().invoke(app, ["grade", "--help"], terminal_width=200)
    assert done.exit_code == 0
    assert f"[default: {_api_default(pipeline.grade, 'build_timeout')}]" in done.output
    assert f"[default: {_api_default(pipeline.grade, 'deadline')}]" in done.output
