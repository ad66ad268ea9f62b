"""Frames done / total, fps and ETA on stderr while a run goes."""
from __future__ import annotations

import sys
import time


class Progress:
    """One updating line on a terminal, else a line every 5 s (a log file stays readable)."""

    def __init__(self, total: int = 0, stream=None, enabled: bool = True):
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.monotonic()
        self._last = self.start  # first line after one interval, when fps means something
        self._printed = False
        self.done = 0

    def fps(self) -> float:
        dt = time.monotonic() - self.start
        return self.done / dt if dt > 0 else 0.0

    def update(self, done: int) -> None:
        self.done = done
        now = time.monotonic()
        if not self.enabled or now - self._last < (0.5 if self.tty else 5.0):
            return
        self._last, self._printed = now, True
        fps = self.fps()
        if self.total:
            eta = (self.total - done) / fps if fps > 0 else 0.0
            text = f"frames {done}/{self.total} ({100 * done / self.total:.0f}%)  {fps:.1f} fps  ETA {eta:.0f}s"
        else:
            text = f"frames {done}  {fps:.1f} fps"
        self.stream.write(("\r" + text + "   ") if self.tty else text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty and self._printed:
            self.stream.write("\n")
            self.stream.flush()
