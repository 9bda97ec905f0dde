"""A process that has imported what a grade needs, and forks each of a batch's grades from there.

A `grader grade` child spends about a CPU-second importing the grader, pytest, Schemathesis and
Hypothesis, and its fuzzing process as much again: in a batch on two cores, a tenth of a grade's
CPU with a database and argon2 logins, a quarter of a small one's. The zygote imports once; each
grade is a fork of it, which forks its own fuzzing process at once, still single-threaded
(`fuzz.prefork`), and ends as a `grader grade` process ends (its threads waited for, its exit
handlers run, a traceback on a crash). A fork starts from the zygote's state, which never changes:
it has imported modules, run no grade, seen no submission and started no thread, so a grade is no
different from a fresh `grader grade` and grades share nothing.

`Zygote.spawn` returns a `Child` with what the batch uses of `subprocess.Popen` (`wait`, `kill`,
`terminate`): the batch does not care which it has. The batch talks to the zygote over a socket
pair; each grade gets a socket of its own, on which the zygote sends the child's pidfd (a signal
never reaches another process that took its pid) and, when it ends, its exit code. The zygote dies
with the batch (parent-death signal) and each child with the zygote, as `grader grade` children do.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from typing import NoReturn

from grader.core import GraderFault

READY = b"ready"
START_LIMIT = 120.0  # seconds for the zygote's imports (a loaded machine)
_MESSAGE = 65536


def die_with_parent() -> None:  # pragma: no cover - runs in the child
    """This process gets SIGTERM when its parent dies (even by SIGKILL)."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Child:
    """A grade forked by the zygote, as much of `subprocess.Popen` as the batch uses."""

    def __init__(self, report: socket.socket, pid: int, pidfd: int) -> None:
        self.report, self.pid, self.pidfd = report, pid, pidfd
        self.returncode: int | None = None

    def wait(self, timeout: float | None = None) -> int:
        """The exit code (negative: a signal); `subprocess.TimeoutExpired` after `timeout`."""
        if self.returncode is None:
            self.report.settimeout(timeout)
            try:
                message = self.report.recv(_MESSAGE)
            except TimeoutError:
                raise subprocess.TimeoutExpired(f"grade {self.pid}", timeout or 0.0) from None
            # no message: the zygote died first (its children got SIGTERM from it)
            self.returncode = int(json.loads(message)["exit"]) if message else -signal.SIGTERM
            self.report.close()
            os.close(self.pidfd)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):  # ended already
                signal.pidfd_send_signal(self.pidfd, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class Zygote:
    """The batch's side: starts the zygote (`python -m grader.zygote`, waiting for its imports)
    and asks it for grades; a zygote that died is started again for the next grade."""

    def __init__(self, entry: str = "grader.cli:main") -> None:
        self.entry = entry  # what a fork calls, with sys.argv = ["grader", *args]
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._socket: socket.socket | None = None

    def start(self) -> None:
        """Start the zygote now (the next `spawn` would): from a thread that lives as long as the
        batch, since the zygote's parent-death signal comes when the thread that started it ends."""
        with self._lock:
            if self._socket is None:
                self._start()

    def _start(self) -> socket.socket:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # Its standard streams are files, never the batch's terminal: what it imports looks at
        # them once (rich's console picks colours for a terminal), and a grade's stderr is a file
        # the batch reads its reason from, as a `grader grade` child's pipe was.
        with theirs, tempfile.TemporaryFile() as err:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "grader.zygote", str(theirs.fileno()), self.entry],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                preexec_fn=die_with_parent,
            )
            mine.settimeout(START_LIMIT)
            try:
                ready = mine.recv(_MESSAGE)
            except OSError:
                ready = b""
            if ready != READY:
                mine.close()
                self._stop_process()
                err.seek(0)
                lines = err.read().decode("utf-8", "replace").strip().splitlines()
                raise GraderFault(
                    "the grader's zygote process did not start: " + (lines or ["no output"])[-1]
                )
        mine.settimeout(None)
        self._socket = mine
        return mine

    def spawn(self, args: list[str], *, stdout: int, stderr: int) -> Child:
        """`grader <args>` in a fork, its standard output and error on these descriptors."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs, self._lock:
            request = json.dumps(args).encode()
            for attempt in (1, 2):  # a zygote that died (killed, out of memory): a new one
                ctl = self._socket if self._socket is not None else self._start()
                try:
                    socket.send_fds(ctl, [request], [stdout, stderr, theirs.fileno()])
                    break
                except OSError:
                    self.close()
                    if attempt == 2:
                        raise
        message, fds, _, _ = socket.recv_fds(mine, _MESSAGE, 1)
        if not message or len(fds) != 1:
            mine.close()
            raise GraderFault("the grader's zygote process ended before starting a grade")
        return Child(mine, int(json.loads(message)["pid"]), fds[0])

    def _stop_process(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait()
            self._process = None

    def close(self) -> None:
        """End the zygote: it has no grade left to wait for (children run on without it only to
        get its parent-death signal, so the batch closes it after its grades)."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self._process is not None:
            self._process.wait()
            self._process = None


# --- the zygote process ---------------------------------------------------------------------


def preload() -> None:
    """Import what a grade imports: the grader, every check's heavy modules, the fuzzing engine."""
    from grader import checks, cli, pipeline  # noqa: F401
    from grader.checks import fuzz

    for name in sorted({m.partition(":")[0] for r in checks._registry().values() for m in r.warm}):
        importlib.import_module(name)
    fuzz.preload()
    importlib.import_module("testcontainers.community.postgres")


class _Server:
    def __init__(self, ctl: socket.socket, entry: str) -> None:
        self.ctl, self.entry = ctl, entry
        self.selector = selectors.DefaultSelector()
        self.selector.register(ctl, selectors.EVENT_READ)
        self.children: dict[int, tuple[int, socket.socket]] = {}  # pidfd → pid, report

    def serve(self) -> None:
        while True:
            for key, _ in self.selector.select():
                if key.fileobj is self.ctl:
                    if not self._start_one():
                        return
                else:
                    self._reap(int(key.fd))

    def _start_one(self) -> bool:
        try:
            message, fds, _, _ = socket.recv_fds(self.ctl, _MESSAGE, 3)
        except OSError:
            return False
        if not message:  # the batch closed its end
            return False
        out, err, report_fd = fds
        report = socket.socket(fileno=report_fd)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the grade
            report.close()
            _grade(json.loads(message), out, err, self)  # ends as the command ends: SystemExit
        os.close(out)
        os.close(err)
        # before it can be reaped, so always this child; readable when it ends
        pidfd = os.pidfd_open(pid)
        try:
            socket.send_fds(report, [json.dumps({"pid": pid}).encode()], [pidfd])
        except OSError:  # the batch gave up on it already
            os.kill(pid, signal.SIGKILL)
        self.children[pidfd] = (pid, report)
        self.selector.register(pidfd, selectors.EVENT_READ)
        return True

    def _reap(self, pidfd: int) -> None:
        self.selector.unregister(pidfd)
        pid, report = self.children.pop(pidfd)
        _, status = os.waitpid(pid, 0)
        os.close(pidfd)
        with contextlib.suppress(OSError), report:
            report.send(json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode())

    def close_in_child(self) -> None:
        """In a fork: nothing of the zygote's stays open (a grade holding another's report
        socket would keep the batch from seeing the zygote die)."""
        self.selector.close()
        self.ctl.close()
        for pidfd, (_, report) in self.children.items():
            report.close()
            os.close(pidfd)


def _grade(args: list[str], out: int, err: int, server: _Server) -> NoReturn:  # pragma: no cover
    """A grade, in a fork of the zygote: `grader <args>` with the standard streams given. It ends
    the way the command ends a process of its own: SystemExit (or an exception) unwinds to the
    interpreter, which waits for the grade's threads and runs its exit handlers."""
    server.close_in_child()
    os.dup2(out, 1)
    os.dup2(err, 2)
    os.close(out)
    os.close(err)
    zygote = os.getppid()
    die_with_parent()
    if os.getppid() != zygote:  # the zygote died before the signal was asked for
        raise SystemExit(2)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # the zygote ignores Ctrl-C
    from grader.checks import fuzz

    fuzz.prefork()  # while this process has one thread: a fork is safe
    module, _, function = server.entry.partition(":")
    sys.argv = ["grader", *args]
    getattr(importlib.import_module(module), function)()
    raise SystemExit(0)


def _main() -> None:  # pragma: no cover - the zygote process
    ctl = socket.socket(fileno=int(sys.argv[1]))
    # Ctrl-C in the batch's terminal is for the grades (they clean up) and the batch, which
    # closes the zygote when its grades have ended
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    preload()
    ctl.send(READY)
    _Server(ctl, sys.argv[2]).serve()


if __name__ == "__main__":
    _main()
