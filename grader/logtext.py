"""Reading logs a student's build or app printed: colour codes out, the decisive line found."""

from __future__ import annotations

import re

# CSI sequences (colours, cursor moves), OSC sequences (titles, links), character set choices
# (tput's "ESC ( B") and the other two-byte escapes
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()*+].|\x1b[@-Z\\-_]"
)
TRACEBACK = "Traceback (most recent call last):"
LINE_CAP = 300  # characters of a quoted line


def plain(text: str) -> str:
    """`text` without ANSI escape sequences (uvicorn, pip and rich colour their output)."""
    return _ANSI.sub("", text)


def exception_line(text: str) -> str:
    """The exception line of the last Python traceback in `text`, e.g. "ModuleNotFoundError: No
    module named 'psycopg'"; "" when there is none. A chained traceback ends with the decisive one."""
    lines = plain(text).splitlines()
    starts = [n for n, line in enumerate(lines) if line.strip() == TRACEBACK]
    if not starts:
        return ""
    last = starts[-1]
    indent = len(lines[last]) - len(lines[last].lstrip())
    for line in lines[last + 1 :]:
        # frames are indented deeper than "Traceback"; the first line that is not is the exception
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            return line.strip()[:LINE_CAP]
    return ""


def last_line(text: str) -> str:
    lines = [line.strip() for line in plain(text).splitlines() if line.strip()]
    return lines[-1][:LINE_CAP] if lines else ""


def decisive_line(text: str) -> str:
    """What a log says went wrong: the last traceback's exception line, else its last line."""
    return exception_line(text) or last_line(text)
