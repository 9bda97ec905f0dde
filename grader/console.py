"""The grader's rich Console: what students wrote is shown on a terminal, never obeyed by it."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import accumulate

from rich.console import Console, ConsoleOptions, RenderableType
from rich.segment import Segment
from rich.text import Span, Text

from grader.core import terminal_safe


class SafeConsole(Console):
    """A Console whose printed text passes `terminal_safe`, whoever wrote it: a reason, an app's
    answer, a file or student name, a log line. rich prints ESC, OSC and C1 sequences as they are
    (markup=False too); its own codes are kept: styles are added after `render`, cursor moves (a
    progress bar's) are control segments. Markup is not covered: text from outside goes in a
    `Text` or with markup=False, never into a markup string."""

    def render(
        self, renderable: RenderableType, options: ConsoleOptions | None = None
    ) -> Iterable[Segment]:
        if isinstance(renderable, Text):  # before the layout: an escape takes its room in a line
            renderable = _safe(renderable)
        for segment in super().render(renderable, options):  # and whatever is not a Text
            text = segment.text if segment.control else terminal_safe(segment.text)
            yield segment if text == segment.text else Segment(text, segment.style)


def _safe(text: Text) -> Text:
    """`text` made `terminal_safe`, its styles on the same characters."""
    plain = text.plain
    if terminal_safe(plain) == plain:
        return text
    pieces = [terminal_safe(c) for c in plain]
    at = list(accumulate(map(len, pieces), initial=0))  # where each old offset moved
    safe = text.blank_copy("".join(pieces))
    safe.spans = [Span(at[s.start], at[s.end], s.style) for s in text.spans]
    return safe
