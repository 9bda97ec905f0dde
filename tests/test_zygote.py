"""grader.zygote: grades forked from one process that imported the grader once.

Real processes: a zygote started as the batch starts it, forks running `tests/zygote_target.py`
(what `grader.cli:main` is in a batch), signals and deaths as they happen."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from grader.zygote import Child, Zygote

TESTS = Path(__file__).resolve().parent


@pytest.fixture
def zygote(monkeypatch: pytest.MonkeyPatch) -> Iterator[Zygote]:
    monkeypatch.setenv("PYTHONPATH", f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    z = Zygote(entry="zygote_target:main")
    z.start()
    yield z
    z.close()


def _run(zygote: Zygote, tmp_path: Path, *args: str) -> tuple[Child, Path, Path]:
    out, err = tmp_path / f"{args[0]}.out", tmp_path / f"{args[0]}.err"
    with out.open("wb") as o, err.open("wb") as e:
        child = zygote.spawn(list(args), stdout=o.fileno(), stderr=e.fileno())
    return child, out, err


def test_a_fork_runs_the_entry_with_its_streams_and_exit_code(
    zygote: Zygote, tmp_path: Path
) -> None:
    child, out, err = _run(zygote, tmp_path, "echo", "hello")
    assert child.wait(timeout=30) == 0
    assert out.read_text() == "hello\n"
    assert err.read_text() == "to stderr: hello\n"
    assert _run(zygote, tmp_path, "exit", "2")[0].wait(timeout=30) == 2
    crashed, _, err = _run(zygote, tmp_path, "crash", "boom")
    assert crashed.wait(timeout=30) == 1
    assert "RuntimeError: boom" in err.read_text()  # the last line: a batch's reason


def test_each_fork_has_its_fuzzing_process_forked_already(zygote: Zygote, tmp_path: Path) -> None:
    child, out, _ = _run(zygote, tmp_path, "fuzz", "-")
    assert child.wait(timeout=30) == 0
    assert out.read_text() == "fork\n"


def test_a_fork_is_killed_and_ended_like_a_popen(zygote: Zygote, tmp_path: Path) -> None:
    child, out, _ = _run(zygote, tmp_path, "sleep", "60")
    with pytest.raises(subprocess.TimeoutExpired):
        child.wait(timeout=0.5)
    assert out.read_text() == "sleeping\n"
    begin = time.monotonic()
    child.kill()
    assert child.wait(timeout=10) == -signal.SIGKILL
    assert time.monotonic() - begin < 5  # its fuzzing process does not hold the exit back
    other, _, _ = _run(zygote, tmp_path, "sleep", "60")
    other.terminate()
    assert other.wait(timeout=10) == -signal.SIGTERM
    child.kill()  # ended and reaped already: nothing is signalled


def test_a_fork_holds_nothing_of_the_zygote_or_its_siblings(zygote: Zygote, tmp_path: Path) -> None:
    alone, out, _ = _run(zygote, tmp_path, "fds", "-")
    assert alone.wait(timeout=30) == 0
    own = out.read_text().split()
    sleepers = []
    for n in range(2):
        (tmp_path / str(n)).mkdir()
        sleepers.append(_run(zygote, tmp_path / str(n), "sleep", "60"))
    beside, out, _ = _run(zygote, tmp_path, "fds", "-")
    assert beside.wait(timeout=30) == 0
    # the same descriptors with two siblings running: none of their report sockets, and none of
    # the zygote's (its control socket; a sibling's socket would hide the zygote's death)
    assert len(out.read_text().split()) == len(own)
    assert all(not fd.startswith("anon_inode:[pidfd]") for fd in own)
    for child, _, _ in sleepers:
        child.kill()
        child.wait(timeout=10)


def test_forks_end_with_a_killed_zygote_and_the_next_spawn_starts_a_new_one(
    zygote: Zygote, tmp_path: Path
) -> None:
    child, _, _ = _run(zygote, tmp_path, "sleep", "60")
    assert zygote._process is not None
    zygote._process.kill()  # out of memory, say
    assert child.wait(timeout=10) == -signal.SIGTERM  # its parent-death signal: its run goes
    again, out, _ = _run(zygote, tmp_path, "echo", "again")
    assert again.wait(timeout=30) == 0
    assert out.read_text() == "again\n"


def test_a_batch_on_a_terminal_does_not_colour_its_grades_stderr(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The zygote's imports look at its streams once (rich picks colours for a terminal): started
    by a batch on a terminal, the grades would write escape codes into the stderr the batch reads
    a crash's reason from. Its streams are files, as a `grader grade` child's pipes were."""
    monkeypatch.setenv("PYTHONPATH", f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)
    main, tty = os.openpty()
    saved = os.dup(2)
    z = Zygote(entry="zygote_target:main")
    try:
        os.dup2(tty, 2)  # the batch's stderr is a terminal while it starts the zygote
        z.start()
    finally:
        os.dup2(saved, 2)
        for fd in (saved, tty, main):
            os.close(fd)
    try:
        child, out, _ = _run(z, tmp_path, "console", "-")
        assert child.wait(timeout=30) == 0
        assert out.read_text() == "None\n"
    finally:
        z.close()
