"""What a student wrote (an app's answers, a reason quoting them, file names, log lines) reaches the
instructor's or student's terminal shown, never obeyed: no escape sequence of its own, no markup."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text

from grader import cli, config
from grader.console import SafeConsole
from grader.core import (
    CategoryScore,
    Cause,
    Exchange,
    GraderFault,
    ItemScore,
    Outcome,
    Result,
    Status,
    terminal_safe,
)
from grader.output import terminal

# clears the screen, sets the window title (OSC, BEL-ended), clears again by a C1 CSI, ends a
# style that is not open (rich's MarkupError), links a local file; a lone surrogate
HOSTILE = "A\x1b[2J B\x1b]0;pwned\x07 C\x9b2J D[/] E[link=file:///etc/passwd]x[/link] F\ud800"
# as shown: escaped, the markup as typed (rich itself drops a BEL)
SHOWN = "A\\x1b[2J B\\x1b]0;pwned C\\x9b2J D[/] E[link=file:///etc/passwd]x[/link] F\\ud800"
# the only escapes allowed: rich's own styles (SGR) and the cursor moves of a progress bar
RICH_OWN = re.compile(r"\x1b\[[0-9;]*m|\x1b\[\?25[lh]|\r?\x1b\[2K|\x1b\[1A")


def _foreign(out: str) -> list[str]:
    """The control characters in `out` that rich did not put there itself."""
    return re.findall(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]", RICH_OWN.sub("", out))


def _result(status: Status = Status.GRADED) -> Result:
    failed = Outcome(
        check="contract",
        name=f"test_items {HOSTILE}",
        item="crud",
        passed=False,
        message=f"GET /items answered: {HOSTILE}",
        expected=HOSTILE,
        actual=HOSTILE,
        exchange=Exchange(
            "POST", "http://app:8000/items", {"X-Name": HOSTILE}, request_body=HOSTILE
        ),
    )
    why = f"Not checked: the app said {HOSTILE}"
    not_run = Outcome(
        check="contract", name="t", item="db", passed=False, message=why, not_run=True
    )
    return Result(
        assignment="demo",
        assignment_version="1",
        submission=f"/submissions/{HOSTILE}",
        seed=1,
        status=status,
        reason=HOSTILE,
        score=1,
        max_score=6,
        categories=[CategoryScore("api", "API", 1, 6)],
        items=[
            ItemScore("crud", "CRUD", "api", 1, 4, "visible", [failed], zeroed_by=HOSTILE),
            ItemScore("db", "Database", "api", 0, 2, "visible", [not_run]),
        ],
        causes=[Cause(title=HOSTILE, points=3, outcomes=[failed])],
    )


@pytest.mark.parametrize(
    ("show", "status", "times"),
    [
        (terminal.grade, Status.GRADED, 2),  # the summary's reason, the root cause
        (terminal.grade, Status.NOT_GRADED, 1),
        # and the not-run line, the zeroed item, the failure's name and message, expected,
        # actual, the curl line's header and body
        (terminal.check, Status.GRADED, 10),
        (terminal.check, Status.NOT_GRADED, 1),
    ],
)
def test_the_writers_show_what_a_student_wrote_and_obey_none_of_it(
    show: Callable[[SafeConsole, Result, Path], None], status: Status, times: int
) -> None:
    buf = io.StringIO()
    show(SafeConsole(file=buf, width=400, force_terminal=True), _result(status), Path("OUT"))
    out = buf.getvalue()
    assert _foreign(out) == [], out
    assert "\x1b]8;" not in out, "no hyperlink from the student's [link=…]"
    assert RICH_OWN.sub("", out).count(SHOWN) == times, out


def test_a_safe_console_keeps_its_own_codes() -> None:
    """Tables and progress bars still draw: their cursor moves are rich's, the content's are not."""
    buf = io.StringIO()
    console = SafeConsole(file=buf, width=200, force_terminal=True)
    table = Table("student")
    table.add_row(Text(HOSTILE))
    console.print(table)
    columns = TextColumn("{task.description}", markup=False), BarColumn()
    with Progress(*columns, console=console, auto_refresh=False) as bar:
        task = bar.add_task(HOSTILE, total=2)
        bar.update(task, advance=1, refresh=True)
        console.print(HOSTILE, markup=False)
    out = buf.getvalue()
    assert _foreign(out) == [], out
    assert "\x1b[2K" in out, "the bar redraws"
    plain = RICH_OWN.sub("", out)
    assert SHOWN in plain, "the printed line"
    assert plain.count(SHOWN[:24]) >= 3, "and the table's cell and the bar's description"


def test_terminal_safe_escapes_controls_only() -> None:
    assert terminal_safe("a\x1b[2Jb\x9b\x7f\r\x00\ud800") == "a\\x1b[2Jb\\x9b\\x7f\\r\\x00\\ud800"
    assert terminal_safe("two\n\tlines, é 中 ✓ [/]") == "two\n\tlines, é 中 ✓ [/]"
    assert terminal_safe(terminal_safe(HOSTILE)) == terminal_safe(HOSTILE)
    # what reorders or hides text on a terminal is shown as well (a name reading backwards)
    assert terminal_safe("ann\u202egpj.exe\u200b") == "ann\\u202egpj.exe\\u200b"


@pytest.fixture
def grader_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger("grader")
    handlers, level = root.handlers[:], root.level
    yield root
    root.handlers[:], root.level = handlers, level


def test_progress_lines_are_shown_not_obeyed(grader_logger: logging.Logger) -> None:
    """A module's log line quotes a file name or an app's log: escaped before any `show`."""
    lines: list[str] = []
    config.progress(lines.append)
    logging.getLogger("grader.submission").info("reading %s", HOSTILE)
    assert lines == [f"reading {terminal_safe(HOSTILE)}"]


def test_the_cli_prints_progress_lines_and_faults_as_they_are(
    grader_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI's progress lines and its grader-fault message: no markup read in them (a `[/]`
    made rich raise), no escape of theirs reaches the terminal."""
    buf = io.StringIO()
    monkeypatch.setattr(cli, "console", SafeConsole(file=buf, width=200, force_terminal=True))
    config.progress(cli._say)
    logging.getLogger("grader.pipeline").info("building %s", HOSTILE)

    def fail() -> None:
        raise GraderFault(f"could not read {HOSTILE}")

    monkeypatch.setattr(cli, "app", fail)
    with pytest.raises(SystemExit):
        cli.main()
    out = buf.getvalue()
    assert _foreign(out) == [], out
    plain = RICH_OWN.sub("", out)
    assert f"building {terminal_safe(HOSTILE)}\n" in plain, plain  # escaped before rich drops a BEL
    assert f"could not read {SHOWN}\n" in plain, plain
