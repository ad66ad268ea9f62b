"""``carcolor batch``: many recorded videos, long ones in time chunks, processed in parallel on Ray.

Each input is cut into chunks of ``chunk`` seconds (each running ``overlap``
seconds into the next, where tracks are joined: :mod:`stream.batch.join`). A
chunk is one Ray task: ``pipeline.run`` on that time range with one inference
thread, writing its log under ``DIR/.parts/<name>/`` to a temporary name that
is renamed when the chunk is complete. When all chunks of an input are there
they are joined into ``DIR/<name>.jsonl`` (written whole, then renamed), and
the parts are removed. ``DIR/summary.json`` and ``DIR/summary.csv`` (cars by
colour per file and per hour) are rebuilt from every finished log at the end.

So a rerun skips the inputs whose log exists and the chunks whose part exists;
a worker killed mid-chunk (Ray retries the task on another worker process,
``retries`` times) loses only that chunk's unfinished work.

    >>> run_batch(load_config(), ["a.mp4", "b.mp4"], "out")              # doctest: +SKIP
    >>> run_batch(cfg, videos, "out", address="ray://head:10001")       # doctest: +SKIP
"""
from __future__ import annotations

import io
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from ..errors import CarcolorError, SourceError
from . import join

PARTS = ".parts"


@dataclass(frozen=True)
class Chunk:
    """One Ray task: ``video`` from ``start`` to ``until`` (``end`` + overlap; None = to its end)."""

    video: str
    name: str
    index: int
    start: float
    end: Optional[float]
    until: Optional[float]
    frames: int  # expected, for the progress line


@dataclass
class Input:
    video: str
    name: str
    chunks: List[Chunk]
    fps: float
    frames: int


@dataclass
class BatchResult:
    """What a batch did: inputs skipped (already done), processed, failed (name -> reason)."""

    out: Path
    skipped: List[str] = field(default_factory=list)
    done: List[str] = field(default_factory=list)
    failed: Dict[str, str] = field(default_factory=dict)
    chunks: int = 0
    frames: int = 0
    seconds: float = 0.0
    summary: Dict = field(default_factory=dict)
    task_seconds: List[float] = field(default_factory=list)  # each finished chunk's own time in its worker

    def __str__(self) -> str:
        fps = self.frames / self.seconds if self.seconds > 0 else 0.0
        text = (f"batch done: {len(self.done)} inputs processed ({self.chunks} chunks, {self.frames} frames, "
                f"{fps:.1f} fps over the batch, {self.seconds:.1f} s), {len(self.skipped)} already done")
        if self.failed:
            text += f", {len(self.failed)} failed"
        return text + f"; {self.summary.get('total', {}).get('cars', 0)} cars -> {self.out / 'summary.json'}"


def probe(path: Path) -> Tuple[float, int]:
    """(fps, frame count) of a video file; ``SourceError`` naming it when it is not one."""
    import cv2

    if not path.is_file():
        raise SourceError(f"video file not found: {path}")
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        if not cap.isOpened() or not cap.grab():
            raise SourceError(f"cannot open video {path}: not a video file or an unsupported format")
        return float(cap.get(cv2.CAP_PROP_FPS) or 0.0) or 25.0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    finally:
        cap.release()


def plan(videos: Sequence[Union[str, Path]], chunk: float, overlap: float, align: int = 1) -> List[Input]:
    """The inputs and their chunks; an error names a missing video or two inputs with one name.

    Each chunk starts on a frame number that is a multiple of ``align`` (``every`` x the vehicle
    detector's ``detect_every``), so a chunk runs the network on the same frames a whole run would.
    """
    if chunk <= 0 or overlap < 0:
        raise CarcolorError(f"--chunk must be > 0 and --overlap >= 0 seconds, got {chunk:g} and {overlap:g}")
    inputs: List[Input] = []
    names: Dict[str, str] = {}
    for v in videos:
        path = Path(v).resolve()
        name = path.stem
        if name in names:
            raise CarcolorError(f"two inputs would write the same log {name}.jsonl: {names[name]} and {v} "
                                "(rename one)")
        names[name] = str(v)
        fps, count = probe(path)
        length = count / fps if count else None
        step = max(align, int(round(chunk * fps / align)) * align)  # frames per chunk
        starts = [0.0] if length is None else [i * step / fps for i in range(max(1, -(-count // step)))]
        chunks = []
        for i, s in enumerate(starts):
            last = i == len(starts) - 1
            end = None if last else starts[i + 1]
            until = None if last else end + overlap
            span = (length if until is None else min(until, length or until)) if length else 0
            chunks.append(Chunk(str(path), name, i, s, end, until, int(round((span - s) * fps)) if span else 0))
        inputs.append(Input(str(path), name, chunks, fps, count))
    return inputs


# --- the worker side ----------------------------------------------------------------------------

_CLASSIFIERS: Dict[tuple, object] = {}  # per worker process: Ray reuses a worker for many chunks


def _classifier(cfg):
    from ..classify import ColorClassifier

    key = (str(cfg.model_file), str(cfg.label_file), cfg.top_k, cfg.unknown_threshold, cfg.rule_weight)
    if key not in _CLASSIFIERS:
        _CLASSIFIERS[key] = ColorClassifier.from_config(cfg)
    return _CLASSIFIERS[key]


def part_path(parts: Path, chunk: Chunk) -> Path:
    return parts / chunk.name / f"{chunk.index:05d}.jsonl"


def process_chunk(cfg, chunk: Chunk, parts: str, tally=None) -> Dict:
    """One chunk (in a Ray worker): its log written to a temporary name, renamed when complete.

    Each attempt appends its process id to ``<index>.attempts`` beside the part (a
    retried chunk shows two). ``tally`` (a ``Tally`` actor) hears the frames done.
    """
    from ..pipeline import run

    part = part_path(Path(parts), chunk)
    part.parent.mkdir(parents=True, exist_ok=True)
    with open(part.with_suffix(".attempts"), "a") as f:
        f.write(f"{os.getpid()}\n")
    tmp = part.with_name(f".{part.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    over: Dict = {"start": chunk.start, "threads": 1}
    if chunk.until is not None:
        over["end"] = chunk.until
    cfg = cfg.override(**over)
    key = f"{chunk.name}#{chunk.index}"
    last = [0.0]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if tally is not None and now - last[0] >= 0.5:
            last[0] = now
            tally.update.remote(key, done)

    err = io.StringIO()
    started = time.monotonic()
    summary = run(cfg, chunk.video, log=tmp, progress=report, classifier=_classifier(cfg), stderr=err)
    os.replace(tmp, part)
    warnings = [ln for ln in err.getvalue().splitlines() if ln.startswith("warning:")]
    return {"key": key, "frames": summary.frames, "seconds": time.monotonic() - started, "pid": os.getpid(),
            "warnings": warnings}


class Tally:
    """A Ray actor: frames done per running chunk, for the batch's progress line."""

    def __init__(self):
        self.frames: Dict[str, int] = {}

    def update(self, key: str, frames: int) -> None:
        self.frames[key] = frames

    def done(self, key: str) -> None:
        self.frames.pop(key, None)

    def total(self) -> int:
        return sum(self.frames.values())


# --- the driver side ----------------------------------------------------------------------------

def unknown_threshold(cfg) -> float:
    """A joined car's vote is unknown below the threshold ``CarVotes`` uses for a track's vote:
    ``tracking.unknown_threshold`` capped at the classifier's per-crop one (null: that one)."""
    from ..cars import vote_threshold
    from ..classify import model_meta

    per_crop = (float(cfg.unknown_threshold) if cfg.unknown_threshold is not None
                else float(model_meta(Path(cfg.model_file)).get("unknown_threshold", 0.0)))
    return vote_threshold(cfg.tracking.unknown_threshold, per_crop)


def finish_input(inp: Input, out: Path, parts: Path, cfg) -> None:
    """All chunks of an input are done: join them into ``<name>.jsonl`` (atomically), drop the parts."""
    logs = [join.read_lines(part_path(parts, c)) for c in inp.chunks]
    borders = [None if c.end is None else (int(round(c.end * inp.fps)), c.end - 0.5 / inp.fps) for c in inp.chunks]
    lines = join.join_logs(logs, borders, unknown_threshold(cfg), cfg.top_k)
    join.write_lines(out / f"{inp.name}.jsonl", lines)
    shutil.rmtree(parts / inp.name, ignore_errors=True)


def write_summary(out: Path, names: Sequence[str]) -> Dict:
    files = {n: join.read_lines(out / f"{n}.jsonl") for n in names if (out / f"{n}.jsonl").is_file()}
    data = join.summary(files)
    join.write_atomic(out / "summary.json", (json.dumps(data, indent=1) + "\n").encode())
    join.write_atomic(out / "summary.csv", join.summary_csv(data).encode())
    return data


def _ray():
    try:
        import ray
    except ModuleNotFoundError as e:
        raise CarcolorError(f"'batch' needs the [batch] extra, missing here ({e}): pip install 'carcolor[batch]'") from e
    return ray


def run_batch(cfg, videos: Sequence[Union[str, Path]], out: Union[str, Path], *, address: Optional[str] = None,
              workers: int = 0, chunk: float = 300.0, overlap: float = 3.0, retries: int = 3,
              progress: bool = True, stderr=None) -> BatchResult:
    """Process ``videos`` into ``out`` on Ray: a local Ray with ``workers`` CPUs (0 = all cores), or the
    cluster at ``address``. At most ``workers`` chunks run at once (0 = as many as Ray schedules)."""
    stderr = stderr or sys.stderr
    out = Path(out)
    if not out.parent.is_dir():
        raise CarcolorError(f"--out folder's parent does not exist: {out.parent}")
    if out.exists() and not out.is_dir():
        raise CarcolorError(f"--out is a file, not a folder: {out}")
    if not videos:
        raise CarcolorError("no input videos given")
    if workers < 0:
        raise CarcolorError(f"--workers must be >= 0, got {workers}")
    inputs = plan(videos, chunk, overlap, cfg.every * (cfg.vehicle.detect_every if cfg.detector == "vehicle" else 1))
    out.mkdir(exist_ok=True)
    parts = out / PARTS
    result = BatchResult(out)
    todo = []
    for inp in inputs:
        if (out / f"{inp.name}.jsonl").is_file():
            result.skipped.append(inp.name)
        else:
            todo.append(inp)
    chunks = [c for inp in todo for c in inp.chunks if not part_path(parts, c).is_file()]
    resumed = sum(len(inp.chunks) for inp in todo) - len(chunks)
    stderr.write(f"batch: {len(inputs)} inputs, {len(result.skipped)} already done (skipped), {len(todo)} to do "
                 f"in {len(chunks)} chunks" + (f" ({resumed} chunks already done)" if resumed else "") + "\n")
    started = time.monotonic()
    try:
        if chunks:
            _schedule(cfg, chunks, todo, out, parts, result, address, workers, retries, progress, stderr)
        else:
            for inp in todo:  # every chunk was done by an earlier, interrupted batch
                finish_input(inp, out, parts, cfg)
                result.done.append(inp.name)
    finally:
        result.seconds = time.monotonic() - started
        result.summary = write_summary(out, [i.name for i in inputs])
    return result


def _schedule(cfg, chunks, todo, out, parts, result, address, workers, retries, progress, stderr) -> None:
    from ..pipeline.progress import Progress

    ray = _ray()
    own = not ray.is_initialized()
    if own:
        if address:  # a cluster: its own resources and dashboard
            ray.init(address=address, log_to_driver=False, logging_level="ERROR")
        else:
            ray.init(num_cpus=workers or os.cpu_count(), include_dashboard=False, log_to_driver=False,
                     logging_level="ERROR")
    try:
        task = ray.remote(num_cpus=1, max_retries=retries)(process_chunk)
        tally = ray.remote(num_cpus=0)(Tally).remote()
        limit = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        cfg_ref = ray.put(cfg)
        waiting = list(chunks)
        running: Dict = {}
        left = {inp.name: sum(not part_path(parts, c).is_file() for c in inp.chunks) for inp in todo}
        by_name = {inp.name: inp for inp in todo}
        bar = Progress(sum(c.frames for c in chunks), stderr, enabled=progress)
        frames_done = 0
        try:
            while waiting or running:
                while waiting and len(running) < limit:
                    c = waiting.pop(0)
                    running[task.remote(cfg_ref, c, str(parts), tally)] = c
                ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
                for ref in ready:
                    c = running.pop(ref)
                    try:
                        info = ray.get(ref)
                    except Exception as e:  # noqa: BLE001 - the task's own error, after Ray's retries
                        reason = str(getattr(e, "cause", None) or e).strip().splitlines()[-1]
                        if c.name not in result.failed:
                            result.failed[c.name] = f"chunk {c.index} ({c.start:g} s-): {reason}"
                            stderr.write(f"batch: {c.name} failed: {result.failed[c.name]}\n")
                        waiting = [w for w in waiting if w.name != c.name]
                        continue
                    tally.done.remote(info["key"])
                    frames_done += info["frames"]
                    result.chunks += 1
                    result.frames += info["frames"]
                    result.task_seconds.append(info["seconds"])
                    for w in info["warnings"]:
                        stderr.write(f"batch: {c.name} chunk {c.index}: {w}\n")
                    left[c.name] -= 1
                    if left[c.name] == 0 and c.name not in result.failed:
                        finish_input(by_name[c.name], out, parts, cfg)
                        result.done.append(c.name)
                        stderr.write(f"batch: {c.name} done -> {out / (c.name + '.jsonl')}\n")
                bar.update(frames_done + ray.get(tally.total.remote()))
        finally:
            bar.close()
            for ref in running:
                ray.cancel(ref, force=True)
    finally:
        if own:
            ray.shutdown()
