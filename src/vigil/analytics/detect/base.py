"""The detector interface and what all back-ends share: results, errors, crop planning."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from vigil.analytics.geometry import Box


class DetectorError(Exception):
    """A detector could not be set up (bad model file, unexpected shapes) or run."""


@dataclass(frozen=True, slots=True)
class Detection:
    """One object: an object-class label (``person``, ``car``...), a score in 0..1 and a
    normalized box. Labels are object classes only, never attributes of a person."""

    label: str
    score: float
    box: Box


@runtime_checkable
class Detector(Protocol):
    """Finds objects in a BGR frame.

    ``regions`` are normalized boxes where something moved (or a tracked object is
    expected); back-ends look only there when given, which is what keeps CPU detection
    affordable. ``None`` means the whole frame; an empty list means nothing to do.
    """

    def detect(
        self, frame_bgr: npt.NDArray[np.uint8], regions: Sequence[Box] | None = None
    ) -> list[Detection]: ...


@dataclass(frozen=True, slots=True)
class Crop:
    """A pixel rectangle of the frame to analyse, and the factor to resize it by."""

    x1: int
    y1: int
    x2: int
    y2: int
    scale: float

    @property
    def width(self) -> int:
        return self.x2 - self.x1

    @property
    def height(self) -> int:
        return self.y2 - self.y1


def plan_crops(
    regions: Sequence[Box],
    frame_w: int,
    frame_h: int,
    *,
    margin: float = 0.25,
    min_pad_px: int = 8,
    min_aspect: float = 0.0,
    target_object_px: float = 0.0,
    max_scale: float = 4.0,
    max_crop_px: int = 640 * 480,
    merge_slack: float = 1.2,
) -> list[Crop]:
    """Turn motion regions into crops for a detector.

    Each region grows by ``margin`` of its size (motion boxes are tight and often miss
    the still parts of a body), gets at least ``min_aspect`` width/height (a person
    detector's window is 1:2), and is merged with any crop it overlaps so no pixel is
    analysed twice — unless the merged crop would be much larger (``merge_slack``) than the
    two apart, e.g. two far-apart people whose margins touch. ``scale`` upscales a crop
    until its region is ``target_object_px`` tall (small, far objects), bounded by
    ``max_scale`` and ``max_crop_px`` after scaling.
    """
    rects: list[list[float]] = []  # x1, y1, x2, y2, object_height_px
    for reg in regions:
        x1, y1 = reg.x1 * frame_w, reg.y1 * frame_h
        x2, y2 = reg.x2 * frame_w, reg.y2 * frame_h
        bw, bh = max(1.0, x2 - x1), max(1.0, y2 - y1)
        px = max(bw * margin, min_pad_px)
        py = max(bh * margin, min_pad_px)
        x1, x2, y1, y2 = x1 - px, x2 + px, y1 - py, y2 + py
        if min_aspect > 0 and (x2 - x1) < min_aspect * (y2 - y1):
            extra = (min_aspect * (y2 - y1) - (x2 - x1)) / 2
            x1, x2 = x1 - extra, x2 + extra
        rects.append(
            [max(0.0, x1), max(0.0, y1), min(float(frame_w), x2), min(float(frame_h), y2), bh]
        )
    merged = True
    while merged and len(rects) > 1:
        merged = False
        out: list[list[float]] = []
        for r in rects:
            for m in out:
                if _worth_merging(r, m, merge_slack):
                    m[0], m[1] = min(m[0], r[0]), min(m[1], r[1])
                    m[2], m[3] = max(m[2], r[2]), max(m[3], r[3])
                    m[4] = min(m[4], r[4])
                    merged = True
                    break
            else:
                out.append(r)
        rects = out
    crops: list[Crop] = []
    for x1, y1, x2, y2, obj_h in rects:
        ix1, iy1 = math.floor(x1), math.floor(y1)
        ix2, iy2 = math.ceil(x2), math.ceil(y2)
        if ix2 - ix1 < 2 or iy2 - iy1 < 2:
            continue
        scale = 1.0
        if target_object_px > 0 and obj_h < target_object_px:
            scale = min(max_scale, target_object_px / obj_h)
        area = (ix2 - ix1) * (iy2 - iy1)
        if area * scale * scale > max_crop_px:
            scale = max(1.0, math.sqrt(max_crop_px / area))
        crops.append(Crop(ix1, iy1, ix2, iy2, scale))
    return crops


def _worth_merging(a: list[float], b: list[float], slack: float) -> bool:
    """Overlapping rectangles are merged when their union is not much bigger than the two
    apart; a union full of empty pixels would be scanned (and upscaled) for nothing."""
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    if ix <= 0 or iy <= 0:
        return False
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    union = (max(a[2], b[2]) - min(a[0], b[0])) * (max(a[3], b[3]) - min(a[1], b[1]))
    return union <= slack * (area_a + area_b - ix * iy)
