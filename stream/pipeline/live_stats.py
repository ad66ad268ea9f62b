"""A stage that posts a live source's rates (fps in, fps processed, dropped) every interval."""
from __future__ import annotations

import time
from typing import Callable

from ..capture import Source
from ..events import StatsEvent
from ..record import FrameRecord


class LiveStats:
    """``FrameRecord -> FrameRecord`` unchanged; a ``StatsEvent`` to ``on_event`` every ``interval`` seconds."""

    def __init__(self, src: Source, on_event: Callable[[StatsEvent], None], interval: float):
        self.src, self.on_event, self.interval = src, on_event, interval
        self._t = time.monotonic()
        self._read = src.frames_read
        self._done = 0
        self._dropped = src.dropped

    def __call__(self, record: FrameRecord) -> FrameRecord:
        self._done += 1
        now = time.monotonic()
        dt = now - self._t
        if dt >= self.interval:
            read, dropped = self.src.frames_read, self.src.dropped
            self.on_event(StatsEvent(self.src.name, record.frame.timestamp, (read - self._read) / dt,
                                     self._done / dt, dropped - self._dropped, self.src.reconnects))
            self._t, self._read, self._done, self._dropped = now, read, 0, dropped
        return record
