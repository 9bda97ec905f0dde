"""What test_zygote's forks run instead of the grader's CLI: `grader <command> <value>`."""

from __future__ import annotations

import contextlib
import os
import sys
import time


def main() -> None:
    command, value = sys.argv[1], sys.argv[2]
    if command == "echo":
        print(value)
        print(f"to stderr: {value}", file=sys.stderr)
    elif command == "exit":
        raise SystemExit(int(value))
    elif command == "crash":
        raise RuntimeError(value)
    elif command == "sleep":
        print("sleeping", flush=True)
        time.sleep(float(value))
    elif command == "fds":  # every descriptor but the standard streams, as what it points to
        print(" ".join(sorted(_links())))
    elif command == "console":  # what the grader's console made of its terminal, in the zygote
        from grader import cli

        print(cli.console.color_system)
    elif command == "fuzz":  # whether a fuzzing process was forked, ready, before this ran
        from grader.checks import fuzz

        spare = fuzz._spare
        print(spare is not None and spare.process.is_alive() and "fork")


def _links() -> list[str]:
    links = []
    for fd in os.listdir("/proc/self/fd"):
        if int(fd) > 2:
            # the listing's own descriptor is closed already
            with contextlib.suppress(FileNotFoundError):
                links.append(os.readlink(f"/proc/self/fd/{fd}"))
    return links
