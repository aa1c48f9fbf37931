"""Helpers for the analytics tests: a trivial detector and synthetic moving sprites."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from vigil.analytics.detect import Detection
from vigil.analytics.frames import AnalysisFrame, FrameSource
from vigil.analytics.geometry import Box


class MotionBoxDetector:
    """Labels every motion region as ``label``: lets scene tests check tracking, zones and
    lines with exactly known geometry, independently of a real detector's quality."""

    def __init__(self, label: str = "person", score: float = 0.9) -> None:
        self.label = label
        self.score = score
        self.calls = 0

    def detect(
        self, frame_bgr: npt.NDArray[np.uint8], regions: Sequence[Box] | None = None
    ) -> list[Detection]:
        self.calls += 1
        return [Detection(self.label, self.score, r) for r in (regions or [])]


def background(path: str, index: int = 0, width: int = 640) -> npt.NDArray[np.uint8]:
    """One real frame to paint sprites on."""
    with FrameSource(path, width=width, drop_policy="block") as src:
        for frame in src:
            if frame.index == index:
                return frame.image.copy()
    raise AssertionError("frame not found")


def sprite_frames(
    bg: npt.NDArray[np.uint8],
    path: Sequence[tuple[float, float]],
    size: tuple[float, float] = (0.06, 0.2),
    fps: float = 5.0,
    color: tuple[int, int, int] = (25, 25, 35),
) -> list[AnalysisFrame]:
    """Frames of a textured rectangle whose *bottom-center* follows ``path`` (normalized
    points, one per frame) over a static real background."""
    h, w = bg.shape[:2]
    sw, sh = int(size[0] * w), int(size[1] * h)
    tex = np.zeros((sh, sw, 3), np.uint8)
    tex[:] = color
    cv2.circle(tex, (sw // 2, sh // 6), max(2, sw // 4), (180, 180, 220), -1)
    out = []
    for i, (x, y) in enumerate(path):
        img = bg.copy()
        x1 = round(x * w - sw / 2)
        y1 = round(y * h - sh)
        xa, ya = max(0, x1), max(0, y1)
        xb, yb = min(w, x1 + sw), min(h, y1 + sh)
        if xb > xa and yb > ya:
            img[ya:yb, xa:xb] = tex[ya - y1 : yb - y1, xa - x1 : xb - x1]
        out.append(AnalysisFrame(i, i, i / fps, img))
    return out


def linear_path(
    start: tuple[float, float], end: tuple[float, float], steps: int, still_before: int = 8
) -> list[tuple[float, float]]:
    """``still_before`` frames without the sprite (off-screen, while the motion detector
    learns the background), then a straight walk."""
    off = [(-1.0, -1.0)] * still_before
    return off + [
        (
            start[0] + (end[0] - start[0]) * i / (steps - 1),
            start[1] + (end[1] - start[1]) * i / (steps - 1),
        )
        for i in range(steps)
    ]
