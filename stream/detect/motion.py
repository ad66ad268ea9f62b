"""``MotionDetector`` (``detector: motion``): moving cars of a fixed camera. OpenCV background
subtraction (MOG2 or KNN, shadows marked and removed), morphology, external
contours -> boxes, kept by area and aspect ratio and inside an optional
region-of-interest polygon. The first ``warmup`` frames only teach the
background and give no boxes. A global light change is compensated (each
frame's brightness is matched to the background's) and, when the foreground
still floods the frame (a sudden change, a camera knock), that frame gives no
boxes and the background is re-learnt fast for ``relearn_frames`` frames.
A camera that drifts slowly (wind on the mount) is held still: each frame's
global shift against the first is measured (corners of the static scene
followed by Lucas-Kanade, median displacement) and undone before subtraction
(``stabilize``), so the static scene's edges do not turn into moving blobs.

    >>> det = MotionDetector(MotionConfig())                       # doctest: +SKIP
    >>> cars = det(frame)        # doctest: +SKIP

(``cars``: boxes, score NaN: motion has no confidence.)
"""
from __future__ import annotations

from typing import Optional, Tuple

import cv2
import numpy as np

from ..config import MotionConfig
from ..geometry import polygon_pixels
from ..record import Cars, Frame

FOREGROUND = 255  # MOG2/KNN mark shadows 127 and foreground 255


class MotionDetector:
    """Moving blobs of a fixed camera as car boxes (see the module docstring)."""

    def __init__(self, cfg: Optional[MotionConfig] = None):
        self.cfg = cfg = cfg or MotionConfig()
        self.subtractor = self._subtractor()
        self.frames = 0
        self._relearn = 0
        self._level: Optional[np.ndarray] = None  # first frame on a coarse grid (light reference)
        self.gain = 1.0
        self._size: Optional[Tuple[int, int]] = None
        self._size_seen = False
        self._roi: Optional[np.ndarray] = None
        self._roi_poly: Optional[np.ndarray] = None
        self.flooded = 0  # frames dropped as a global change
        self.shift = (0.0, 0.0)  # estimated camera shift against the first frame, processing pixels
        self.applied = (0.0, 0.0)  # the shift undone on the last frame
        self._ref: Optional[np.ndarray] = None  # stabiliser reference frame, its corners, its shift
        self._ref_pts: Optional[np.ndarray] = None
        self._ref_shift: Tuple[float, float] = (0.0, 0.0)
        self._ref_age = 0
        self._moving: Optional[np.ndarray] = None  # last foreground, grown: no corners there
        self._grow = cv2.getStructuringElement(cv2.MORPH_RECT, (9, 9))
        k_open, k_close = cfg.open_kernel, cfg.close_kernel
        self._open = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k_open, k_open)) if k_open > 1 else None
        self._close = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k_close, k_close)) if k_close > 1 else None

    def _subtractor(self):
        cfg = self.cfg
        if cfg.method == "mog2":
            sub = cv2.createBackgroundSubtractorMOG2(cfg.history, cfg.threshold or 16.0, True)
        else:
            sub = cv2.createBackgroundSubtractorKNN(cfg.history, cfg.threshold or 400.0, True)
        sub.setShadowThreshold(cfg.shadow_threshold)
        return sub

    def _setup(self, width: int, height: int) -> None:
        """Scale and ROI mask for a frame size (again if a live source changes size)."""
        self._size = (width, height)
        pw = self.cfg.process_width
        self.scale = min(1.0, pw / width) if pw else 1.0
        self.small = (max(1, int(round(width * self.scale))), max(1, int(round(height * self.scale))))
        if self.cfg.roi:
            poly = polygon_pixels(self.cfg.roi, width, height)
            self._roi_poly = poly
            mask = np.zeros((self.small[1], self.small[0]), np.uint8)
            cv2.fillPoly(mask, [np.round(poly * self.scale).astype(np.int32)], 255)
            self._roi = mask
        if self._size_seen:
            self.subtractor = self._subtractor()  # a live source came back at another size: start over
        self._size_seen = True
        self.frames, self._level, self._ref, self._moving = 0, None, None, None
        self.shift = self.applied = (0.0, 0.0)

    def _normalise(self, gray: np.ndarray) -> np.ndarray:
        """Match the frame's brightness to the first frame's: a global light change is no motion.

        The gain is the median over a coarse grid of per-pixel ratios first / now, so cars
        (a minority of the pixels, whatever their colour) do not move it.
        """
        grid = gray[::8, ::8].astype(np.float32)
        if self._level is None:
            self._level = grid
        if not self.cfg.normalize_light:
            return gray
        ok = (grid > 10) & (self._level > 10)
        if not ok.any():
            return gray
        gain = float(np.clip(np.median(self._level[ok] / grid[ok]), 0.5, 2.0))
        self.gain = gain
        return gray if abs(gain - 1) < 0.02 else cv2.convertScaleAbs(gray, alpha=gain)

    def _anchor(self, gray: np.ndarray, shift: Tuple[float, float]) -> None:
        """Corners of the static scene in ``gray`` (away from last frame's moving blobs) to follow."""
        mask = None
        if self._moving is not None:
            mask = cv2.bitwise_not(self._moving)
        pts = cv2.goodFeaturesToTrack(gray, 150, 0.01, 10, mask=mask, blockSize=7)
        self._ref, self._ref_pts, self._ref_shift, self._ref_age = gray, pts, shift, 0

    def _stabilise(self, gray: np.ndarray) -> np.ndarray:
        """``gray`` shifted back onto the first frame (translation only).

        Corners of the static scene are followed from a reference frame with
        pyramidal Lucas-Kanade; the median of their displacements, leaving out
        corners on last frame's moving blobs, is the camera's shift (cars are a
        minority of corners and move differently). The reference is renewed when
        too few corners are still followed, or every ``history`` frames.
        """
        if self._ref is None:
            self._anchor(gray, (0.0, 0.0))
            return gray
        dx, dy = self.shift
        pts = self._ref_pts
        self._ref_age += 1
        if pts is not None and len(pts) >= 8:
            nxt, status, _ = cv2.calcOpticalFlowPyrLK(self._ref, gray, pts, None, winSize=(15, 15), maxLevel=2)
            ok = status.ravel() == 1
            if self._moving is not None:
                h, w = gray.shape
                xy = np.round(nxt.reshape(-1, 2)).astype(int)
                inside = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
                ok &= inside
                ok[inside] &= self._moving[xy[inside, 1], xy[inside, 0]] == 0
            if ok.sum() >= 8:
                d = (nxt.reshape(-1, 2) - pts.reshape(-1, 2))[ok]
                mx, my = (float(v) for v in np.median(d, axis=0) + self._ref_shift)
                # A mount drifts slowly: a measurement far from the current shift is a glitch.
                if abs(mx - dx) <= 3.0 and abs(my - dy) <= 3.0:
                    dx, dy = dx + 0.5 * (mx - dx), dy + 0.5 * (my - dy)
            if ok.sum() < 0.5 * len(pts) or self._ref_age >= self.cfg.history:
                self._anchor(gray, (dx, dy))
        else:
            self._anchor(gray, (dx, dy))
        self.shift = (dx, dy)
        if abs(dx) < 0.5 and abs(dy) < 0.5:
            self.applied = (0.0, 0.0)
            return gray
        self.applied = (dx, dy)
        m = np.float32([[1, 0, -dx], [0, 1, -dy]])
        return cv2.warpAffine(gray, m, (gray.shape[1], gray.shape[0]), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)

    def mask(self, frame: Frame) -> np.ndarray:
        """The cleaned foreground mask (processing size, 0/255) of ``frame``; learns the background."""
        w, h = frame.size
        if self._size != (w, h):
            self._setup(w, h)
        cfg = self.cfg
        image = frame.image if self.scale == 1.0 else cv2.resize(frame.image, self.small, interpolation=cv2.INTER_AREA)
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if cfg.blur > 1:
            gray = cv2.GaussianBlur(gray, (cfg.blur | 1, cfg.blur | 1), 0)
        gray = self._normalise(gray)
        if cfg.stabilize:
            gray = self._stabilise(gray)
        rate = cfg.learning_rate
        if self.frames < cfg.warmup:
            rate = -1.0  # automatic: 1/frames seen, the fastest clean start
        if self._relearn > 0:
            rate, self._relearn = max(rate, 0.2), self._relearn - 1
        fg = self.subtractor.apply(gray, learningRate=rate)
        self.frames += 1
        fg = np.where(fg == FOREGROUND, np.uint8(255), np.uint8(0))  # shadows (127) removed
        if self._roi is not None:
            fg &= self._roi
        if self._open is not None:
            fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, self._open)
        if self._close is not None:
            fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, self._close)
        if cfg.stabilize:
            self._moving = cv2.dilate(fg, self._grow)
        return fg

    def __call__(self, frame: Frame) -> Cars:
        fg = self.foreground = self.mask(frame)
        cfg = self.cfg
        if self.frames <= cfg.warmup:
            return Cars.empty()
        area_total = fg.shape[0] * fg.shape[1] if self._roi is None else max(1, int(np.count_nonzero(self._roi)))
        if np.count_nonzero(fg) > cfg.max_foreground * area_total:
            self.flooded += 1
            self._relearn = cfg.relearn_frames  # a global change: learn the new scene, report nothing
            return Cars.empty()
        contours, _ = cv2.findContours(fg, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        w, h = frame.size
        frame_area = float(w * h)
        rows = []
        sx, sy = self.applied  # boxes back to where the (drifted) camera sees them
        for c in contours:
            x, y, bw, bh = cv2.boundingRect(c)
            x, y = x + sx, y + sy
            s = 1.0 / self.scale
            x1, y1 = max(0, int(np.floor(x * s))), max(0, int(np.floor(y * s)))
            x2, y2 = min(w, int(np.ceil((x + bw) * s))), min(h, int(np.ceil((y + bh) * s)))
            if x2 - x1 < 2 or y2 - y1 < 2:
                continue
            area = (x2 - x1) * (y2 - y1)
            aspect = (x2 - x1) / max(1, y2 - y1)
            if not (cfg.min_area * frame_area <= area <= cfg.max_area * frame_area):
                continue
            if not (cfg.min_aspect <= aspect <= cfg.max_aspect):
                continue
            if self._roi_poly is not None and cv2.pointPolygonTest(
                    self._roi_poly.astype(np.float32), ((x1 + x2) / 2, (y1 + y2) / 2), False) < 0:
                continue
            rows.append([x1, y1, x2, y2])
        if not rows:
            return Cars.empty()
        return Cars(np.asarray(rows, np.int32))  # score NaN: motion has no confidence


# --- ONNX (YOLO family) ------------------------------------------------------------------


def build(cfg) -> MotionDetector:
    """The registry's builder: ``detector: motion`` with its ``motion`` section."""
    return MotionDetector(cfg.motion)
