"""The reference solution's own test suite passes against a real PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from grader import localpg

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "reference_solution" / "fastapi-db-auth"


@pytest.mark.postgres
def test_reference_own_tests_pass(postgres: localpg.LocalPostgres) -> None:
    if not (REFERENCE_DIR / "tests").is_dir():
        pytest.skip(f"{REFERENCE_DIR / 'tests'} does not exist yet")
    env = {
        **os.environ,
        "TEST_DATABASE_URL": postgres.create_database(f"reftests_{uuid.uuid4().hex[:10]}"),
    }
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=REFERENCE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, f"the reference's own tests failed:\n{output[-6000:]}"
    assert " passed" in output and " skipped" not in output, output[-2000:]
