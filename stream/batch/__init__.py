"""Batch processing of recorded videos on Ray (the ``[batch]`` extra): ``carcolor batch VIDEOS... --out DIR``.

- ``runner``: ``run_batch`` (plan, schedule the chunks on Ray, join, summarise), ``process_chunk`` (a task);
- ``join``: chunk logs joined into one log per input (tracks joined at the borders), the summary.

Ray is imported only when a batch runs.
"""
from .join import join_logs, match_tracks, summary
from .runner import BatchResult, Chunk, plan, run_batch

__all__ = ["BatchResult", "Chunk", "join_logs", "match_tracks", "plan", "run_batch", "summary"]
