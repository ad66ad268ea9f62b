"""One colour model for every camera: crops from all camera threads in shared batched calls.

Each camera's thread hands its frame's crops to ``SharedColors.predict`` and
waits; one worker thread takes every request waiting at that moment (up to the
model's ``batch_size`` crops) and runs them as one ``predict_proba`` call. While
the model runs, the other cameras' requests queue up, so with N busy cameras a
call carries about N frames' crops without any added wait. ``CameraColors`` is a
camera's view of it: its own ``unknown_threshold``, and IR frames answered
``unknown`` without a model call.
"""
from __future__ import annotations

import queue
import threading
import time
from typing import List, Optional, Sequence

import numpy as np

from ..boxes import clip
from ..classify import ColorClassifier
from ..labels import UNKNOWN
from ..record import Cars, Frame

IR_TOP = ((UNKNOWN, 1.0),)


class _Request:
    __slots__ = ("crops", "probs", "error", "done")

    def __init__(self, crops: Sequence[np.ndarray]):
        self.crops, self.probs, self.error = list(crops), None, None
        self.done = threading.Event()


class SharedColors:
    """``predict(crops) -> (N, C) probabilities``, batched across the threads calling it."""

    def __init__(self, classifier: ColorClassifier):
        self.classifier = classifier
        self.calls = 0          # model calls
        self.crops = 0          # crops classified
        self.requests = 0       # frames (camera requests) served
        self.seconds = 0.0      # time in the model
        self._queue: "queue.Queue[Optional[_Request]]" = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="colors", daemon=True)
        self._thread.start()

    def predict(self, crops: Sequence[np.ndarray], timeout: float = 30.0) -> np.ndarray:
        if not len(crops):
            return np.zeros((0, len(self.classifier.labels)), np.float32)
        req = _Request(crops)
        self._queue.put(req)
        if not req.done.wait(timeout):
            raise TimeoutError(f"the colour model did not answer within {timeout:g} s")
        if req.error is not None:
            raise req.error
        return req.probs

    def _work(self) -> None:
        limit = self.classifier.batch_size
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch: List[_Request] = [first]
            n = len(first.crops)
            while n < limit:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(nxt)
                n += len(nxt.crops)
            crops = [c for r in batch for c in r.crops]
            started = time.perf_counter()
            try:
                probs = self.classifier.predict_proba(crops)
            except Exception as e:  # noqa: BLE001 - handed to the callers, who raise it
                for r in batch:
                    r.error = e
                    r.done.set()
                continue
            self.seconds += time.perf_counter() - started
            self.calls += 1
            self.crops += len(crops)
            self.requests += len(batch)
            i = 0
            for r in batch:
                r.probs = probs[i:i + len(r.crops)]
                i += len(r.crops)
                r.done.set()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(2.0)


class CameraColors:
    """A camera's colour stage (``(frame, cars) -> cars``) on the shared model.

    It has the ``top_k`` and ``unknown_threshold`` a ``CarVotes`` reads from a
    classifier, so it stands in for one in ``wiring.car_stages_for``. While
    ``ir()`` says the picture is grey, every crop is ``unknown`` (probability 1)
    and the model is not called: the car is still tracked and counted.
    """

    def __init__(self, shared: SharedColors, unknown_threshold: Optional[float], ir=lambda: False):
        clf = shared.classifier
        self.shared, self.ir = shared, ir
        self.top_k = clf.top_k
        self.unknown_threshold = clf.unknown_threshold if unknown_threshold is None else float(unknown_threshold)
        self.labels = clf.labels

    def __call__(self, frame: Frame, cars: Cars) -> Cars:
        image = frame.image
        cars, _ = clip(cars, image.shape[1], image.shape[0])
        n = len(cars)
        if n == 0:
            return cars
        if self.ir():
            return cars.with_crop_colors([IR_TOP] * n, [UNKNOWN] * n)
        probs = self.shared.predict([image[y1:y2, x1:x2] for x1, y1, x2, y2 in cars.xyxy.tolist()])
        clf = self.shared.classifier
        best = probs.argmax(axis=1)
        decided = [self.labels[j] if p[j] >= self.unknown_threshold else UNKNOWN for p, j in zip(probs, best)]
        return cars.with_crop_colors(clf.top(probs, self.top_k), decided)
