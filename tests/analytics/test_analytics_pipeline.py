"""Pipeline behaviour on synthetic scenes with known ground truth: a sprite walking over a
real (static) background frame, labelled by a trivial motion-box detector."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest

from vigil.analytics import (
    AnalysisFrame,
    AnalyticsEvent,
    AnalyticsPipeline,
    Line,
    MotionActivity,
    PipelineConfig,
    Zone,
)
from vigil.analytics.detect import Detection
from vigil.analytics.geometry import Box
from vigil.analytics.tracking import TrackerConfig

from .analytics_helpers import MotionBoxDetector, background, linear_path, sprite_frames

YARD = Zone("yard", ((0.4, 0.6), (0.6, 0.6), (0.6, 0.85), (0.4, 0.85)), frozenset({"person"}), 0.5)
GATE = Line("gate", (0.7, 0.5), (0.7, 0.9))  # drawn downwards: A = left of it
PRIVACY = ((0.0, 0.0), (0.3, 0.0), (0.3, 0.3), (0.0, 0.3))


@pytest.fixture(scope="module")
def bg(vtest_path: Path) -> np.ndarray:
    return background(str(vtest_path))


def run(
    frames: list[AnalysisFrame], **cfg: object
) -> tuple[AnalyticsPipeline, list[AnalyticsEvent], list[MotionActivity]]:
    events: list[AnalyticsEvent] = []
    activity: list[MotionActivity] = []
    config = PipelineConfig(
        "cam1", zones=(YARD,), lines=(GATE,), privacy_masks=(PRIVACY,), track_regions=False, **cfg
    )
    p = AnalyticsPipeline(config, MotionBoxDetector("person"), events.append, activity.append)
    for f in frames:
        p.process(f)
    p.flush(frames[-1].time)
    return p, events, activity


def test_walk_through_zone_and_line(bg: np.ndarray) -> None:
    frames = sprite_frames(bg, linear_path((0.1, 0.8), (0.9, 0.8), 41))
    p, events, activity = run(frames)
    starts = [e for e in events if e.kind == "start"]
    ends = [e for e in events if e.kind == "end"]
    assert len(starts) == 1 and len(ends) == 1
    end = ends[0]
    assert end.label == "person" and end.camera == "cam1" and end.event_id == starts[0].event_id
    assert end.zones == ("yard",)
    assert end.lines_crossed == (("gate", "a_to_b"),)
    assert p.line_counts == {"gate": {"a_to_b": 1, "b_to_a": 0}}
    # crossing at x = 0.7: frame 8 + 30 -> 7.6 s; zone entered at x = 0.4 -> frame 23 (4.6 s)
    updates = [e for e in events if e.kind == "update"]
    assert any(e.current_zones == ("yard",) for e in updates)
    assert any(e.lines_crossed for e in updates)
    assert end.start_time <= 4.6 <= end.end_time and end.end_time >= 7.6
    # the snapshot is a JPEG of the frame with the privacy mask filled black
    assert end.snapshot_jpeg is not None
    snap = cv2.imdecode(np.frombuffer(end.snapshot_jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert snap.shape == bg.shape
    h, w = snap.shape[:2]
    assert snap[: int(0.28 * h), : int(0.28 * w)].max() < 20
    assert snap[int(0.35 * h) :, int(0.35 * w) :].mean() > 40
    # motion activity per second for the timeline: 49 frames at 5 fps -> 10 seconds
    assert [a.second for a in activity] == list(range(10))
    assert all(a.frames == 5 for a in activity[:-1])
    assert max(a.peak for a in activity) > 0.005


def test_walk_back_counts_the_other_direction(bg: np.ndarray) -> None:
    frames = sprite_frames(bg, linear_path((0.9, 0.8), (0.1, 0.8), 41))
    p, events, _ = run(frames)
    assert p.line_counts == {"gate": {"a_to_b": 0, "b_to_a": 1}}
    end = next(e for e in events if e.kind == "end")
    assert end.lines_crossed == (("gate", "b_to_a"),) and end.zones == ("yard",)


def test_outside_the_zone_and_line(bg: np.ndarray) -> None:
    frames = sprite_frames(bg, linear_path((0.1, 0.55), (0.65, 0.55), 30))
    p, events, _ = run(frames)
    end = next(e for e in events if e.kind == "end")
    assert end.zones == () and end.lines_crossed == ()
    assert p.line_counts["gate"] == {"a_to_b": 0, "b_to_a": 0}


def test_privacy_mask_hides_motion(bg: np.ndarray) -> None:
    frames = sprite_frames(bg, linear_path((0.05, 0.25), (0.25, 0.25), 20), size=(0.04, 0.15))
    _, events, _ = run(frames)
    assert events == []


def test_lighting_step_raises_no_event(bg: np.ndarray) -> None:
    frames = []
    for i in range(40):
        img = bg if i < 20 else np.clip(bg.astype(np.float32) * 1.5, 0, 255).astype(np.uint8)
        frames.append(AnalysisFrame(i, i, i / 5, img))
    _, events, activity = run(frames)
    assert events == []
    assert all(a.peak < 0.01 for a in activity)


class OracleDetector:
    """Reports the sprite's true box whenever asked (a perfect detector)."""

    def __init__(self, boxes: dict[float, Box]) -> None:
        self.boxes = boxes
        self.now = 0.0

    def detect(
        self, frame_bgr: np.ndarray, regions: Sequence[Box] | None = None
    ) -> list[Detection]:
        box = self.boxes.get(self.now)
        return [Detection("person", 0.9, box)] if box is not None and regions else []


def test_stationary_object_ends_event_and_starts_none(bg: np.ndarray) -> None:
    path = linear_path((0.1, 0.8), (0.3, 0.8), 10) + [(0.3, 0.8)] * 40
    frames = sprite_frames(bg, path)
    w, h = 0.06, 0.2
    truth = {
        f.time: Box(x - w / 2, y - h, x + w / 2, y)
        for f, (x, y) in zip(frames, path, strict=False)
        if x >= 0
    }
    oracle = OracleDetector(truth)
    events: list[AnalyticsEvent] = []
    cfg = PipelineConfig("cam1", tracker=TrackerConfig(stationary_seconds=3.0))
    p = AnalyticsPipeline(cfg, oracle, events.append)
    for f in frames:
        oracle.now = f.time
        p.process(f)
    kinds = [(e.kind, e.end_reason) for e in events if e.kind != "update"]
    # the object stops at frame 17; it is stationary 3 s later and its event ends, although
    # the detector keeps seeing it (the pipeline asks where the track is expected)
    assert kinds == [("start", None), ("end", "stationary")]
    end = events[-1]
    assert end.stationary and 17 / 5 + 3.0 <= end.end_time <= 17 / 5 + 4.0
    # no motion and no moving track there any more: the track ends, its place is kept
    assert p.tracker.tracks == [] and [lbl for lbl, _ in p.tracker.parked] == ["person"]


def test_run_with_frame_source_closes_every_event(tree_path: Path) -> None:
    from vigil.analytics import FrameSource

    events: list[AnalyticsEvent] = []
    p = AnalyticsPipeline(
        PipelineConfig("tree", track_regions=False), MotionBoxDetector("motion"), events.append
    )
    n = p.run(FrameSource(tree_path, drop_policy="block"))
    assert n == 68
    started = {e.event_id for e in events if e.kind == "start"}
    assert started and started == {e.event_id for e in events if e.kind == "end"}
