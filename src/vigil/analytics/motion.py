"""Cheap, robust motion detection: the gate in front of the (expensive) object detector.

Runs on a small grayscale copy of the frame (320 px wide by default): motion only has to
say *where to look*, and every pixel saved here is saved on every frame of every camera.
The background is a running average (``cv2.accumulateWeighted``); it adapts to slow
changes (clouds, dusk) and needs three cheap OpenCV calls per frame, where MOG2 costs
several times more for no gain in a gate whose output is re-checked by a detector.

Two things make a naive frame difference unusable on real cameras and are handled here:

* noise (sensor grain, compression, leaves): blur before differencing, a threshold,
  a morphological opening (drops isolated pixels), a dilation (joins the pieces of one
  body) and a minimum blob area given as a fraction of the frame;
* lighting changes (a light switched on, auto-exposure, IR cut filter, a cloud): the
  whole picture changes *together*. Each frame's mean intensity is compared with the
  background's; a moderate drift is compensated by scaling the background by that gain
  before differencing; a step larger than ``lighting_gain`` — or a change over more than
  ``lighting_fraction`` of the picture even after compensation — is reported as
  ``lighting_change`` and the background is re-baselined on that frame instead of
  reporting the whole frame as motion.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from vigil.analytics.geometry import Box, Point, merge_boxes, rasterize_polygons, validate_polygon


@dataclass(frozen=True, slots=True)
class MotionConfig:
    """Motion detector settings. Defaults are tuned for ~5 analysis frames per second."""

    width: int = 320  # analysis width in pixels; height follows the aspect ratio
    height: int | None = None  # or fix the height instead (takes precedence when set)
    threshold: int = 20  # per-pixel gray-level difference counted as change
    blur: int = 5  # box blur kernel (odd, 0 = off) applied before differencing
    learning_rate: float = 0.05  # background update weight per analysed frame
    min_area: float = 0.0006  # smallest blob, as a fraction of the frame area
    dilate: int = 5  # dilation kernel size that joins nearby pieces (0 = off)
    merge_gap: float = 0.0  # boxes closer than this (normalized) are merged (0: overlapping)
    lighting_gain: float = 0.12  # relative mean-intensity step treated as a lighting change
    lighting_fraction: float = 0.5  # changed fraction treated as global (IR switch, PTZ)
    warmup_frames: int = 5  # frames of fast background learning after (re)baselining
    masks: tuple[tuple[Point, ...], ...] = field(default=())  # normalized, ignored areas

    def __post_init__(self) -> None:
        checked = tuple(
            validate_polygon(f"motion mask {i + 1}", m) for i, m in enumerate(self.masks)
        )
        object.__setattr__(self, "masks", checked)
        if self.blur and self.blur % 2 == 0:
            raise ValueError("blur must be odd (or 0)")
        if not 0.0 < self.learning_rate <= 1.0:
            raise ValueError("learning_rate must be in (0, 1]")


@dataclass(frozen=True, slots=True)
class MotionResult:
    """Motion in one frame: normalized boxes, fraction of changed (unmasked) pixels."""

    boxes: list[Box]
    activity: float
    cost_ms: float
    lighting_change: bool = False


class MotionDetector:
    """Stateful per-camera motion detector; feed it every analysed frame in order."""

    def __init__(self, config: MotionConfig | None = None) -> None:
        self.config = config or MotionConfig()
        c = self.config
        self._bg: npt.NDArray[np.float32] | None = None
        self._bg8: npt.NDArray[Any] | None = None
        self._size: tuple[int, int] | None = None
        self._src_shape: tuple[int, ...] | None = None
        self._interp = cv2.INTER_AREA
        self._mask: npt.NDArray[Any] | None = None
        self._valid_px = 1
        self._warmup = 0
        self._open_kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))
        self._dilate_kernel = (
            cv2.getStructuringElement(cv2.MORPH_RECT, (c.dilate, c.dilate)) if c.dilate else None
        )

    def reset(self) -> None:
        """Forget the background (e.g. after a reconnect or a PTZ move)."""
        self._bg = None
        self._bg8 = None

    def _setup(self, shape: tuple[int, ...]) -> None:
        c = self.config
        h0, w0 = shape[0], shape[1]
        if c.height:
            h = min(c.height, h0)
            w = max(8, round(w0 * h / h0))
        else:
            w = min(c.width, w0)
            h = max(8, round(h0 * w / w0))
        self._size = (w, h)
        self._src_shape = shape
        # INTER_AREA is the best downscaler but ~30x slower for non-integer ratios; the
        # blur that follows hides the aliasing of INTER_LINEAR there
        integer_ratio = w0 % w == 0 and h0 % h == 0 and w0 // w == h0 // h
        self._interp = cv2.INTER_AREA if integer_ratio else cv2.INTER_LINEAR
        if c.masks:
            self._mask = cv2.bitwise_not(rasterize_polygons(c.masks, w, h))
            self._valid_px = max(1, cv2.countNonZero(self._mask))
        else:
            self._mask = None
            self._valid_px = w * h
        self.reset()

    def _prepare(self, frame: npt.NDArray[np.uint8]) -> npt.NDArray[Any]:
        """Grayscale, downscaled and blurred copy of the frame."""
        if self._src_shape != frame.shape:
            self._setup(frame.shape)
        assert self._size is not None
        gray: npt.NDArray[Any] = (
            cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
        )
        if (gray.shape[1], gray.shape[0]) != self._size:
            gray = cv2.resize(gray, self._size, interpolation=self._interp)
        k = self.config.blur
        if k > 1:
            gray = cv2.blur(gray, (k, k))
        if self._mask is not None:
            # masked pixels are constant zero in frame and background: never any change
            gray = cv2.bitwise_and(gray, self._mask)
        return gray

    def _rebaseline(self, gray: npt.NDArray[Any]) -> None:
        self._bg = gray.astype(np.float32)
        self._bg8 = gray.copy()
        self._warmup = self.config.warmup_frames

    def detect(self, frame: npt.NDArray[np.uint8]) -> MotionResult:
        """Analyse one BGR (or grayscale) frame of any size."""
        t0 = time.perf_counter()
        c = self.config
        gray = self._prepare(frame)
        bg, bg8 = self._bg, self._bg8
        if bg is None or bg8 is None:
            self._rebaseline(gray)
            return MotionResult([], 0.0, (time.perf_counter() - t0) * 1000.0)

        # global gain between this frame and the background, over the unmasked area
        m_cur = cv2.mean(gray, self._mask)[0]
        m_bg = cv2.mean(bg8, self._mask)[0]
        gain = (m_cur + 1.0) / (m_bg + 1.0)
        ref = bg8 if abs(gain - 1.0) < 0.02 else cv2.convertScaleAbs(bg, alpha=gain)
        diff = cv2.absdiff(gray, ref)
        _, thresh = cv2.threshold(diff, c.threshold, 255, cv2.THRESH_BINARY)
        changed = cv2.countNonZero(thresh)
        activity = changed / self._valid_px
        if abs(gain - 1.0) > c.lighting_gain or activity > c.lighting_fraction:
            self._rebaseline(gray)
            return MotionResult([], 0.0, (time.perf_counter() - t0) * 1000.0, True)

        boxes: list[Box] = []
        if changed:
            clean = cv2.morphologyEx(thresh, cv2.MORPH_OPEN, self._open_kernel)
            if self._dilate_kernel is not None:
                clean = cv2.dilate(clean, self._dilate_kernel)
            # outer contours are ~6x cheaper than connected-component labelling here
            contours, _ = cv2.findContours(clean, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            w, h = self._size or (1, 1)
            min_px = c.min_area * w * h
            for cnt in contours:
                if cv2.contourArea(cnt) >= min_px:
                    x, y, bw, bh = cv2.boundingRect(cnt)
                    boxes.append(Box(x / w, y / h, (x + bw) / w, (y + bh) / h))
            if len(boxes) > 1:
                boxes = merge_boxes(boxes, c.merge_gap)

        rate = c.learning_rate
        if self._warmup > 0:
            self._warmup -= 1
            rate = max(rate, 0.3)
        cv2.accumulateWeighted(gray, bg, rate)
        self._bg8 = cv2.convertScaleAbs(bg)
        return MotionResult(boxes, activity, (time.perf_counter() - t0) * 1000.0)


def motion_mask_image(
    masks: Sequence[Sequence[Point]], width: int, height: int
) -> npt.NDArray[np.uint8]:
    """255 where motion is analysed, 0 under the masks (for previews in the UI)."""
    return np.asarray(cv2.bitwise_not(rasterize_polygons(masks, width, height)), np.uint8)
