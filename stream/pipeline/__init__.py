"""The pipeline: frame -> boxes -> crops -> colours -> (more stages) -> outputs.

- ``loop``: ``process``, the loop itself (any iterable of frames, any callables), ``ColorStage``, ``Summary``;
- ``wiring``: ``run``, which builds every stage and sink from a ``Config`` and closes them;
- ``progress``: the stderr progress line; ``live_stats``: the live sources' ``stats`` events.
"""
from .live_stats import LiveStats
from .loop import ColorStage, Loop, Sink, Stage, Summary, finish, process
from .progress import Progress
from .wiring import run

__all__ = ["ColorStage", "LiveStats", "Loop", "Progress", "Sink", "Stage", "Summary", "finish", "process", "run"]
