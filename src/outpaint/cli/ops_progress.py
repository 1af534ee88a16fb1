"""Progress on stderr for long ops commands: a redrawn bar on a terminal, periodic lines otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

BAR_WIDTH = 30
REDRAW_SECONDS = 0.1
LINE_SECONDS = 5.0


class Progress:
    """``done`` of ``total`` items with a label. Write ``update``/``advance`` freely: output is rate-limited.

    On a TTY the bar is redrawn in place (``\\r``); elsewhere (CI logs, pipes) one plain line is written
    every ``LINE_SECONDS`` and once at the end, so logs stay readable.
    """

    def __init__(
        self,
        label: str,
        total: int | None,
        *,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.note = ""
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.clock = clock
        self.started = clock()
        self._last_output = float("-inf")
        self._last_position: tuple[int, int | None] | None = None
        self._closed = False

    def advance(self, count: int = 1, note: str = "") -> None:
        self.update(self.done + count, note)

    def update(self, done: int, note: str = "", total: int | None = None) -> None:
        """Set the position (and optionally a new total); redraw when due."""
        self.done = done
        self.note = note or self.note
        if total is not None:
            self.total = total
        now = self.clock()
        if now - self._last_output >= (REDRAW_SECONDS if self.tty else LINE_SECONDS):
            self._write(now)

    def close(self) -> None:
        """Write the final state once (and end the terminal line); a log line is not repeated."""
        if self._closed:
            return
        self._closed = True
        if self.tty or self._last_position != (self.done, self.total):
            self._write(self.clock())
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def render(self, now: float) -> str:
        elapsed = f"{now - self.started:.1f}s"
        note = f"  {self.note}" if self.note else ""
        if not self.total:
            return f"{self.label}: {self.done}  {elapsed}{note}"
        fraction = min(max(self.done / self.total, 0.0), 1.0)
        counts = f"{self.done}/{self.total} {fraction:4.0%}"
        if not self.tty:
            return f"{self.label}: {counts}  {elapsed}{note}"
        filled = round(fraction * BAR_WIDTH)
        return f"{self.label} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {counts}  {elapsed}{note}"

    def _write(self, now: float) -> None:
        self._last_output = now
        self._last_position = (self.done, self.total)
        line = self.render(now)
        # On a terminal, pad to wipe the tail of a longer previous line.
        self.stream.write(f"\r{line:<79}" if self.tty else line + "\n")
        self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
