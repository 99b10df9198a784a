"""git's progress lines (``Receiving objects:  45% (45/100)``) as one 0-100 percentage.

git reports each phase of a clone from 0 to 100 % on its own; each phase
gets a slice of the whole, so the overall value only grows. Lines arrive on
stderr separated by carriage returns (rewrites of one terminal line) or
newlines.
"""

from __future__ import annotations

import re
from collections import deque

from orchestrator.domain.commands import MAX_PROGRESS_LINE_LENGTH

#: Each phase's share of the whole clone, as (start, end) percentages.
PHASES: dict[str, tuple[int, int]] = {
    "counting objects": (0, 5),
    "compressing objects": (5, 10),
    "receiving objects": (10, 80),
    "resolving deltas": (80, 95),
    "updating files": (95, 100),
    "checking out files": (95, 100),
}

_LINE = re.compile(r"(?:remote:\s*)?(?P<phase>[A-Za-z][A-Za-z ]*?):\s+(?P<percent>\d{1,3})%")
#: Lines kept to explain a failure.
TAIL_LINES = 20


def overall(line: str) -> int | None:
    """The clone's overall percentage a progress line stands for, or None if it is not one."""
    match = _LINE.match(line.strip())
    if match is None:
        return None
    phase = PHASES.get(match.group("phase").strip().lower())
    if phase is None:
        return None
    start, end = phase
    percent = min(int(match.group("percent")), 100)
    return start + (end - start) * percent // 100


class GitProgress:
    """Splits git's stderr into lines, tracks the percentage and keeps the last lines."""

    def __init__(self) -> None:
        self.percent = 0
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._pending = b""
        self._reported = False

    def feed(self, data: bytes) -> list[tuple[int, str]]:
        """Take a chunk of stderr; returns (percentage, line) for each step forward."""
        text = (self._pending + data).replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *lines, self._pending = text.split(b"\n")
        return [step for raw in lines if (step := self._line(raw)) is not None]

    def finish(self) -> list[tuple[int, str]]:
        """The last, unterminated line, once stderr has ended."""
        rest, self._pending = self._pending, b""
        step = self._line(rest) if rest else None
        return [step] if step else []

    def _line(self, raw: bytes) -> tuple[int, str] | None:
        line = raw.decode("utf-8", "replace").strip()[:MAX_PROGRESS_LINE_LENGTH]
        if not line:
            return None
        value = overall(line)
        if value is None:
            self.tail.append(line)
            return None
        if value <= self.percent and self._reported:
            return None  # the same or an earlier point: nothing new to tell
        self._reported = True
        self.percent = max(self.percent, value)
        return self.percent, line

    def failure(self, status: int) -> str:
        """One sentence saying why git failed, from its last ``fatal:``/``error:`` line."""
        lines = list(self.tail)
        chosen = next(
            (ln for ln in reversed(lines) if ln.startswith(("fatal:", "error:"))),
            lines[-1] if lines else "",
        )
        for prefix in ("fatal:", "error:", "remote:"):
            chosen = chosen.removeprefix(prefix).strip()
        if not chosen:
            return f"git clone failed (exit status {status})."
        detail = chosen.rstrip(".")[:400]
        return f"git clone failed: {detail}."
