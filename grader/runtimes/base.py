"""The runtime seam: how a submission's app comes up for the checks, whatever runs it.

One small interface (`Runtime`), several implementations — Docker (`docker.py`: the image, its
containers, the sandbox), local (`local.py`: a virtual environment and processes) and in-process
(`inprocess.py`: the app imported and served in a thread, for the grader's own tests). The
pipeline asks for one by name (`create`) and knows nothing of which it got.

A runtime reports a student's failure (no build, no start) in `Started`, never by raising; it
raises `GraderFault` only for the grader's own faults (an engine or a Postgres that fails).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from grader.assignment import Assignment
from grader.core import MigrateRun, Target

RuntimeName = Literal["docker", "local", "inprocess", "auto"]


@dataclass
class Started:
    """What `Runtime.up` brought up: the app the checks talk to and what the report says of it."""

    target: Target | None = None  # the app the checks talk to; None: none answers
    built: bool | None = None  # the image built; None: this runtime builds no image
    build_reason: str = ""  # why it did not build
    build_log: str = ""  # the build's (or the dependencies' installation's) log tail
    started: bool = False  # healthy within the start deadline
    start_reason: str = ""  # why it is not healthy, as the start item says it
    start_log: str = ""  # the app's log when its start failed
    reason: str = ""  # the result's reason: why it did not build or start ("" when it did)
    answered_unhealthy: bool = False  # it answers HTTP, never on its health path: checked anyway
    served: str = ""  # what started the app, when not the image's own command as is
    logs: Callable[[], str] | None = None  # the app's output so far
    migrate: MigrateRun | None = None  # the migrate command run alone on an empty database
    # a second instance of the app, on a database of its own, healthy: for the checks that run
    # beside the others (grader.checks); None when not asked for, not offered or not healthy
    twin: Target | None = None
    twin_logs: Callable[[], str] | None = None  # its output so far
    timings: dict[str, float] = field(
        default_factory=dict
    )  # install/build/database_ready/app_ready


class Runtime(ABC):
    """Brings one app up beside its services, and down again (`down`, or the `with` block's end).
    A runtime made with `reference=True` runs the assignment's reference solution
    (grader.reference), not a submission. `up` registers what it starts on `self.stack`."""

    name = ""  # "docker", "local" or "inprocess": the mode the checks and reports name

    def __init__(self) -> None:
        self.stack = ExitStack()
        # what `up` has brought up so far: also after it raised (a grade "not graded" still
        # reports the build's log and the phases' timings)
        self.started: Started | None = None

    @abstractmethod
    def up(self, root: Path, assignment: Assignment, *, twin: bool = False) -> Started:
        """Bring up the app in `root` (the prepared submission) beside the services `assignment`
        asks for. A build or start that fails is in `Started`; GraderFault is the grader's fault.
        `twin`: also a second instance of the app on a database of its own (`Started.twin`), when
        this runtime can run one; nothing of the first instance's result depends on it."""

    def restart(self) -> None:
        """Restart the app and wait until it is healthy again; AssertionError when it is not
        (`Target.restart` calls this)."""
        raise AssertionError("this runtime has no app to restart")

    def processes(self) -> list[str] | None:
        """The command lines of the app's processes; None: this runtime cannot see them."""
        return None

    def verify(self) -> None:
        """GraderFault when what runs the app was lost or replaced from outside since `up`
        (nothing outside the grader's process can replace what this default runtime runs)."""
        return None

    def down(self) -> None:
        """Stop and remove whatever `up` started (also after a failed or interrupted `up`)."""
        self.stack.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.down()
