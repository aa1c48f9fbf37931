"""Normalized geometry shared by motion, detection, tracking and zones.

Everything user-facing in analytics is expressed in *normalized* image coordinates
(x right, y down, both in 0..1) so that masks, zones and lines survive a change of
analysis resolution or of the camera's substream. Pixel coordinates only exist inside
one stage, for one frame size.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import cv2
import numpy as np
import numpy.typing as npt

Point = tuple[float, float]


class Box(NamedTuple):
    """An axis-aligned box in normalized coordinates, ``x1 <= x2`` and ``y1 <= y2``."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        return max(0.0, self.x2 - self.x1) * max(0.0, self.y2 - self.y1)

    @property
    def center(self) -> Point:
        return ((self.x1 + self.x2) / 2.0, (self.y1 + self.y2) / 2.0)

    @property
    def bottom_center(self) -> Point:
        """Where a standing person or a car touches the ground: the natural anchor for
        zones and lines drawn on the floor."""
        return ((self.x1 + self.x2) / 2.0, self.y2)

    def clip(self) -> Box:
        return Box(_clamp01(self.x1), _clamp01(self.y1), _clamp01(self.x2), _clamp01(self.y2))

    def expand(self, fraction: float) -> Box:
        """Grow by ``fraction`` of the box size on every side (not clipped)."""
        dx = self.width * fraction
        dy = self.height * fraction
        return Box(self.x1 - dx, self.y1 - dy, self.x2 + dx, self.y2 + dy)

    def to_pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        """Integer pixel rectangle ``(x1, y1, x2, y2)`` clipped to the frame; x2/y2 exclusive."""
        x1 = min(max(math.floor(self.x1 * width), 0), width)
        y1 = min(max(math.floor(self.y1 * height), 0), height)
        x2 = min(max(math.ceil(self.x2 * width), 0), width)
        y2 = min(max(math.ceil(self.y2 * height), 0), height)
        return x1, y1, x2, y2

    @classmethod
    def from_pixels(
        cls, x1: float, y1: float, x2: float, y2: float, width: int, height: int
    ) -> Box:
        return cls(x1 / width, y1 / height, x2 / width, y2 / height).clip()


def _clamp01(v: float) -> float:
    return 0.0 if v < 0.0 else 1.0 if v > 1.0 else v


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when disjoint)."""
    ix = min(a.x2, b.x2) - max(a.x1, b.x1)
    iy = min(a.y2, b.y2) - max(a.y1, b.y1)
    if ix <= 0.0 or iy <= 0.0:
        return 0.0
    inter = ix * iy
    union = a.area + b.area - inter
    return inter / union if union > 0.0 else 0.0


def union_box(a: Box, b: Box) -> Box:
    return Box(min(a.x1, b.x1), min(a.y1, b.y1), max(a.x2, b.x2), max(a.y2, b.y2))


def merge_boxes(boxes: Iterable[Box], gap: float = 0.0) -> list[Box]:
    """Merge boxes that overlap or lie within ``gap`` (normalized) of each other.

    A walking person often shows up as several motion blobs (head, torso, legs); merging
    them gives the detector one region with the whole body. Repeats until stable, which
    is cheap for the handful of boxes a frame has.
    """
    out = [Box(*b) for b in boxes]
    changed = True
    while changed and len(out) > 1:
        changed = False
        merged: list[Box] = []
        for b in out:
            for i, m in enumerate(merged):
                if (
                    b.x1 <= m.x2 + gap
                    and m.x1 <= b.x2 + gap
                    and b.y1 <= m.y2 + gap
                    and m.y1 <= b.y2 + gap
                ):
                    merged[i] = union_box(m, b)
                    changed = True
                    break
            else:
                merged.append(b)
        out = merged
    return out


def nms(boxes: Sequence[Box], scores: Sequence[float], iou_threshold: float) -> list[int]:
    """Greedy non-maximum suppression; returns kept indices, best score first."""
    order = sorted(range(len(boxes)), key=lambda i: scores[i], reverse=True)
    keep: list[int] = []
    for i in order:
        if all(iou(boxes[i], boxes[k]) <= iou_threshold for k in keep):
            keep.append(i)
    return keep


# --- polygons -----------------------------------------------------------------------------


def _orient(p: Point, q: Point, r: Point) -> float:
    """Twice the signed area of triangle pqr (positive: clockwise on screen, y down)."""
    return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])


def _on_segment(p: Point, q: Point, r: Point) -> bool:
    return (
        min(p[0], r[0]) - 1e-12 <= q[0] <= max(p[0], r[0]) + 1e-12
        and min(p[1], r[1]) - 1e-12 <= q[1] <= max(p[1], r[1]) + 1e-12
    )


def segments_intersect(p1: Point, p2: Point, q1: Point, q2: Point) -> bool:
    """True when closed segments p1p2 and q1q2 share at least one point."""
    d1 = _orient(q1, q2, p1)
    d2 = _orient(q1, q2, p2)
    d3 = _orient(p1, p2, q1)
    d4 = _orient(p1, p2, q2)
    if ((d1 > 0 > d2) or (d1 < 0 < d2)) and ((d3 > 0 > d4) or (d3 < 0 < d4)):
        return True
    eps = 1e-15
    return (
        (abs(d1) <= eps and _on_segment(q1, p1, q2))
        or (abs(d2) <= eps and _on_segment(q1, p2, q2))
        or (abs(d3) <= eps and _on_segment(p1, q1, p2))
        or (abs(d4) <= eps and _on_segment(p1, q2, p2))
    )


def validate_polygon(name: str, points: Sequence[Sequence[float]]) -> tuple[Point, ...]:
    """Check a user-drawn polygon and return it as a tuple of points.

    Raises ``ValueError`` naming the polygon when it has fewer than 3 points, a point
    outside [0, 1], repeated consecutive points, no area, or crossing edges: a
    self-intersecting polygon has no well-defined inside, and a silently "fixed" one would
    trigger (or hide) events where the user did not draw.
    """
    pts: list[Point] = []
    for i, p in enumerate(points):
        if len(p) != 2:
            raise ValueError(f"{name}: point {i} must be (x, y), got {tuple(p)!r}")
        x, y = float(p[0]), float(p[1])
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f"{name}: point {i} is not a finite number: {(x, y)!r}")
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ValueError(
                f"{name}: point {i} {(x, y)!r} is outside the frame; coordinates are "
                "normalized and must be within [0, 1]"
            )
        pts.append((x, y))
    if len(pts) >= 2 and pts[0] == pts[-1]:
        pts.pop()  # an explicitly closed ring
    if len(pts) < 3:
        raise ValueError(f"{name}: a polygon needs at least 3 points, got {len(pts)}")
    n = len(pts)
    for i in range(n):
        if pts[i] == pts[(i + 1) % n]:
            raise ValueError(f"{name}: point {i} repeats the next point")
    for i in range(n):
        a1, a2 = pts[i], pts[(i + 1) % n]
        for j in range(i + 1, n):
            if j == i or (j + 1) % n == i or j == (i + 1) % n:
                continue  # adjacent edges share a vertex by construction
            b1, b2 = pts[j], pts[(j + 1) % n]
            if segments_intersect(a1, a2, b1, b2):
                raise ValueError(
                    f"{name}: the polygon is self-intersecting (edge {i}-{(i + 1) % n} "
                    f"crosses edge {j}-{(j + 1) % n})"
                )
    if abs(polygon_area(pts)) < 1e-9:
        raise ValueError(f"{name}: the polygon has no area (all points on one line)")
    return tuple(pts)


def polygon_area(points: Sequence[Point]) -> float:
    """Signed area (shoelace formula)."""
    s = 0.0
    n = len(points)
    for i in range(n):
        x1, y1 = points[i]
        x2, y2 = points[(i + 1) % n]
        s += x1 * y2 - x2 * y1
    return s / 2.0


def point_in_polygon(p: Point, polygon: Sequence[Point]) -> bool:
    """Even-odd ray casting; points on the boundary may go either way."""
    x, y = p
    inside = False
    n = len(polygon)
    j = n - 1
    for i in range(n):
        xi, yi = polygon[i]
        xj, yj = polygon[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def rasterize_polygons(
    polygons: Iterable[Sequence[Point]], width: int, height: int, value: int = 255
) -> npt.NDArray[np.uint8]:
    """A ``height x width`` uint8 image with the polygons filled with ``value`` (else 0)."""
    img = np.zeros((height, width), np.uint8)
    pts = [
        np.array([[round(x * width), round(y * height)] for x, y in poly], np.int32)
        for poly in polygons
    ]
    if pts:
        cv2.fillPoly(img, pts, int(value))
    return img


def fill_polygons(
    image: npt.NDArray[np.uint8], polygons: Iterable[Sequence[Point]], color: int = 0
) -> npt.NDArray[np.uint8]:
    """Fill normalized polygons on a copy of ``image`` (privacy masks on snapshots)."""
    h, w = image.shape[:2]
    out = image.copy()
    pts = [np.array([[round(x * w), round(y * h)] for x, y in poly], np.int32) for poly in polygons]
    if pts:
        fill = (color,) * (out.shape[2] if out.ndim == 3 else 1)
        cv2.fillPoly(out, pts, fill)
    return out
