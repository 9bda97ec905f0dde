"""Start and build failures name their cause: the decisive line of a log, the failing build step and
its error line, a base image the machine does not have. Fast: no Docker (the end-to-end tests are
in test_pipeline_docker.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from stub_server import Handler, serving

from grader import build, logtext, run

CRASH = """\x1b[32mINFO\x1b[0m:     Started server process [7]
Traceback (most recent call last):
  File "/srv/app/db.py", line 3, in <module>
    import psycopg2
ModuleNotFoundError: No module named 'psycopg2'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/usr/local/bin/uvicorn", line 8, in <module>
    sys.exit(main())
  File "/srv/app/main.py", line 1, in <module>
    from app.db import engine
    ^^^^^^^^^^^^^^^^^^^^^^^^^
ModuleNotFoundError: No module named 'psycopg'
\x1b[31mERROR\x1b[0m:    Application startup failed. Exiting.
"""

# pip 24 on a source-only psycopg2 without pg_config (the shape of the real output)
PIP_PG_CONFIG = """Collecting psycopg2==2.9.9
  Downloading psycopg2-2.9.9.tar.gz (384 kB)
  Preparing metadata (setup.py): started
  Preparing metadata (setup.py): finished with status 'error'
  error: subprocess-exited-with-error

  \u00d7 python setup.py egg_info did not run successfully.
  \u2502 exit code: 1
  \u2570\u2500> [23 lines of output]
      running egg_info
      writing psycopg2.egg-info/PKG-INFO

      Error: pg_config executable not found.

      pg_config is required to build psycopg2 from source.  Please add the directory
      containing pg_config to the $PATH or specify the full executable path with the option:
      [end of output]

  note: This error originates from a subprocess, and is likely not a problem with pip.
error: metadata-generation-failed

\u00d7 Encountered error while generating package metadata.
\u2570\u2500> See above for output.

note: This is an issue with the package mentioned above, not pip.
hint: See above for details.
"""

PIP_NO_VERSION = """Collecting fastapi==99.0
\x1b[31mERROR: Could not find a version that satisfies the requirement fastapi==99.0 (from versions: none)\x1b[0m
\x1b[31mERROR: No matching distribution found for fastapi==99.0\x1b[0m
"""


def _no_bases() -> list[str]:
    return []


def test_ansi_codes_are_removed() -> None:
    assert logtext.plain("\x1b[1;31mERROR\x1b[0m: x \x1b]0;title\x07y\x1b(B") == "ERROR: x y"


def test_the_last_traceback_names_the_decisive_exception() -> None:
    assert logtext.exception_line(CRASH) == "ModuleNotFoundError: No module named 'psycopg'"
    assert logtext.decisive_line(CRASH) == "ModuleNotFoundError: No module named 'psycopg'"
    assert (
        logtext.decisive_line("starting\n\nUvicorn running on http://127.0.0.1:8000\n\n")
        == "Uvicorn running on http://127.0.0.1:8000"
    )
    assert logtext.decisive_line("") == ""


def test_a_start_reason_quotes_the_log() -> None:
    exited = "the app exited with code 1 before answering"
    assert (
        run.with_log_line(exited, CRASH)
        == f"{exited}; the last error in the log: ModuleNotFoundError: No module named 'psycopg'"
    )
    assert (
        run.with_log_line(exited, "no config, giving up\n")
        == f"{exited}; the log ends with: no config, giving up"
    )
    assert run.with_log_line(exited, "") == exited
    # an app that answers: its last line is a request it logged, only a traceback says something
    unhealthy = "not healthy within 8 s: GET /health answered 404, never 2xx"
    assert (
        run.with_log_line(unhealthy, '"GET /health HTTP/1.1" 404 -\n', answered=True) == unhealthy
    )
    assert "No module named 'psycopg'" in run.with_log_line(unhealthy, CRASH, answered=True)


def test_build_error_line_is_the_specific_one() -> None:
    assert build.error_line(PIP_PG_CONFIG) == "Error: pg_config executable not found."
    assert (
        build.error_line(PIP_NO_VERSION)
        == "ERROR: No matching distribution found for fastapi==99.0"
    )
    assert (
        build.error_line("Reading package lists...\nE: Unable to locate package libpq-dev\n")
        == "E: Unable to locate package libpq-dev"
    )
    assert build.error_line("  File \"x\", line 1\nKeyError: 'DB'\n") == "KeyError: 'DB'"
    assert build.error_line("about to fail\n") == "about to fail"


def test_a_failed_run_step_is_named_with_its_error_line() -> None:
    reason = build.failure(
        "The command '/bin/sh -c pip install -r requirements.txt' returned a non-zero code: 1",
        "Step 4/6 : RUN pip install -r requirements.txt",
        PIP_PG_CONFIG,
        [],
        _no_bases,
    )
    assert reason == (
        "docker build failed: step 4 `RUN pip install -r requirements.txt` exited "
        "with code 1: Error: pg_config executable not found."
    )
    copy = build.failure(
        "COPY failed: file not found in build context or excluded by .dockerignore: "
        "stat requirements.txt: file does not exist",
        "Step 3/6 : COPY requirements.txt .",
        "",
        [],
        _no_bases,
    )
    assert copy.startswith(
        "docker build failed: step 3 `COPY requirements.txt .`: COPY failed: file not"
    )
    # before any step (a Dockerfile the engine cannot parse): the engine's message
    assert (
        build.failure(
            "dockerfile parse error line 1: unknown instruction: FROMM", None, "", [], _no_bases
        )
        == "docker build failed: dockerfile parse error line 1: unknown instruction: FROMM"
    )


@pytest.mark.parametrize(
    "error",
    [
        # the classic builder when no registry answers, when the name is unknown, when the tag is
        'Get "https://registry.invalid/v2/": dial tcp: lookup registry.invalid on 127.0.0.53:53: '
        "server misbehaving",
        "pull access denied for python, repository does not exist or may require 'docker login': denied: "
        "requested access to the resource is denied",
        "manifest for python:latest not found: manifest unknown: manifest unknown",
    ],
)
def test_a_missing_base_image_is_named_with_those_available(error: str) -> None:
    reason = build.failure(
        error,
        "Step 1/4 : FROM python:latest",
        "",
        ["python:latest"],
        lambda: ["postgres:15", "python:3.11-slim"],
    )
    assert reason == (
        "docker build failed: the base image `python:latest` is not available on the "
        "grading machine; base images it has: postgres:15, python:3.11-slim"
    )
    # a FROM through an ARG the builder printed unexpanded: the pre-parsed name, else the error's
    assert "`python:latest`" in build.failure(
        error, "Step 2/5 : FROM $BASE", "", ["python:latest"], _no_bases
    )


def test_from_lines_are_read_with_global_args() -> None:
    dockerfile = (
        "# syntax=docker/dockerfile:1\nARG PY=3.12\nARG REG\nFROM python:${PY}-slim AS build\n"
        "ARG PY=9\nRUN pip wheel .\nFROM build AS test\nFROM scratch\n"
        "FROM --platform=linux/amd64 \\\n  postgres:15\n"
    )
    assert build.dockerfile_bases(dockerfile) == ["python:3.12-slim", "postgres:15"]
    assert build.dockerfile_bases("ARG BASE\nFROM ${BASE:-python:3.11-slim}\n") == [
        "python:3.11-slim"
    ]
    assert build.dockerfile_bases("FROM $BASE\n") is None  # only the build knows: read its error


class _NoHealth(Handler):
    def do_GET(self) -> None:
        self.answer(404)


@pytest.fixture
def answers_404() -> Iterator[str]:
    with serving(_NoHealth) as url:
        yield url


def _running() -> str | None:
    return None


def test_health_wait_tells_an_answering_app_from_a_silent_one(answers_404: str) -> None:
    health = run.wait_health(answers_404 + "/health", 1.0, alive=_running)
    assert health.reason == "not healthy within 1 s: GET /health answered 404, never 2xx"
    assert health.status == 404 and not health.stopped
    begin = time.monotonic()  # after a restart of such an app: any answer will do
    assert (
        run.wait_health(answers_404 + "/health", 5.0, alive=_running, any_answer=True).reason == ""
    )
    assert time.monotonic() - begin < 1
    silent = run.wait_health(answers_404.rsplit(":", 1)[0] + ":1/health", 0.5, alive=_running)
    assert silent.status is None and silent.reason.startswith("not healthy within 0.5 s: ")
    gone = run.wait_health(answers_404 + "/health", 5.0, alive=lambda: "the app exited with code 3")
    assert gone.stopped and gone.reason == "the app exited with code 3"
