"""Process-wide settings, applied by the API functions that start containers (`pipeline.grade`,
`batch.run_batch`) and the tests' conftest with one explicit, idempotent call each — never as a
side effect of an import."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from grader.core import terminal_safe

_PROGRESS = "grader-progress"  # the name of the handler `progress` installs


def configure() -> None:
    """testcontainers' settings for the grader's Postgres containers. Idempotent."""
    # testcontainers' reaper image cannot be pulled without a registry; the grader removes what
    # it creates itself, by label (an explicit TESTCONTAINERS_RYUK_DISABLED=false still wins)
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    from testcontainers.core.config import testcontainers_config

    testcontainers_config.ryuk_disabled = os.environ["TESTCONTAINERS_RYUK_DISABLED"] == "true"
    # testcontainers' own waits (a published port) poll every 0.2 s (the default is 1 s), for at
    # most 60 s; Postgres' readiness is the grader's (services.READY_POLL)
    testcontainers_config.sleep_time = 0.2
    testcontainers_config.max_tries = 300


class _Progress(logging.Handler):
    def __init__(self, show: Callable[[str], None]) -> None:
        super().__init__(logging.INFO)
        self.show = show
        self.name = _PROGRESS

    def emit(self, record: logging.LogRecord) -> None:
        # a message may quote a student's file names or an app's log: shown, never obeyed
        self.show(terminal_safe(record.getMessage()))


def progress(show: Callable[[str], None]) -> None:
    """Show the grader's progress lines (its modules' INFO records and above, `terminal_safe`)
    with `show`, in place of the one an earlier call installed."""
    root = logging.getLogger("grader")
    for handler in [h for h in root.handlers if h.name == _PROGRESS]:
        root.removeHandler(handler)
    root.addHandler(_Progress(show))
    root.setLevel(logging.INFO)
