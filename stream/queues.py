"""Both sides of a producer thread's bounded queue, in one place (the decoder, the loop's look-ahead).

The producer posts its items, then an end marker in ``finally``; an error it met is posted as an item
that ``error_of`` recognises. The consumer waits with a timeout and checks that the producer lives, so
a producer that died without its end marker ends the iteration instead of hanging it.
"""
from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator, Optional


def drain(q: "queue.Queue", producer: threading.Thread, end: object,
          error_of: Callable[[object], Optional[BaseException]] = lambda item: None,
          poll: float = 0.5) -> Iterator:
    """Items of ``q`` until ``end`` (or the producer gone and the queue empty); raises the errors posted."""
    while True:
        try:
            item = q.get(timeout=poll)
        except queue.Empty:
            if not producer.is_alive() and q.empty():
                return
            continue
        if item is end:
            return
        error = error_of(item)
        if error is not None:
            raise error
        yield item


def offer(q: "queue.Queue", item: object, stop: threading.Event, poll: float = 0.2) -> bool:
    """The producer's side: put ``item``, waiting while ``q`` is full, unless ``stop`` is set first.
    True when it was put."""
    while not stop.is_set():
        try:
            q.put(item, timeout=poll)
            return True
        except queue.Full:
            continue
    return False
