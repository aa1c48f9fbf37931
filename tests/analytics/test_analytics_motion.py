from __future__ import annotations

import statistics
from pathlib import Path

import cv2
import numpy as np
import pytest

from vigil.analytics.frames import FrameSource
from vigil.analytics.motion import MotionConfig, MotionDetector

from .analytics_helpers import background, linear_path, sprite_frames


@pytest.fixture(scope="module")
def vtest_frames(vtest_path: Path) -> list[np.ndarray]:
    with FrameSource(vtest_path, target_fps=5, width=640, drop_policy="block") as src:
        return [f.image for f in src if f.index < 120]


def test_static_scene_has_no_motion(vtest_path: Path) -> None:
    bg = background(str(vtest_path))
    md = MotionDetector()
    rng = np.random.default_rng(1)
    for _ in range(20):
        noisy = np.clip(bg.astype(np.int16) + rng.integers(-4, 5, bg.shape), 0, 255)
        r = md.detect(noisy.astype(np.uint8))
        assert r.boxes == []


def test_moving_sprite_box_is_where_the_sprite_is(vtest_path: Path) -> None:
    bg = background(str(vtest_path))
    frames = sprite_frames(bg, linear_path((0.2, 0.9), (0.8, 0.9), 20))
    md = MotionDetector()
    results = [md.detect(f.image) for f in frames]
    r = results[8 + 9]  # 8 frames without sprite, then step 9: x = 0.2 + 0.6 * 9/19
    x = 0.2 + 0.6 * 9 / 19
    hits = [b for b in r.boxes if b.x1 - 0.02 <= x <= b.x2 + 0.02 and b.y2 >= 0.85]
    assert len(hits) == 1
    assert 0.0 < r.activity < 0.1
    assert r.cost_ms > 0


def test_tree_in_wind_is_motion(tree_path: Path) -> None:
    md = MotionDetector()
    with FrameSource(tree_path, drop_policy="block") as src:
        results = [md.detect(f.image) for f in src]
    moving = sum(1 for r in results if r.boxes)
    assert moving >= 0.7 * len(results)
    for r in results:
        for b in r.boxes:
            assert 0.0 <= b.x1 < b.x2 <= 1.0 and 0.0 <= b.y1 < b.y2 <= 1.0


def test_brightness_step_is_not_motion(vtest_frames: list[np.ndarray]) -> None:
    """Real footage (people walking), brightness x1.5 from frame 60 on."""
    step = 60
    md = MotionDetector()
    results = []
    for i, img in enumerate(vtest_frames):
        if i >= step:
            img = np.clip(img.astype(np.float32) * 1.5, 0, 255).astype(np.uint8)
        results.append(md.detect(img))
    normal_area = statistics.median(sum(b.area for b in r.boxes) for r in results[10:step])
    assert results[step].lighting_change
    assert results[step].boxes == []
    # one frame of tolerance after the step; from then on motion looks like before
    for r in results[step + 1 :]:
        assert not r.lighting_change
        assert sum(b.area for b in r.boxes) < 3 * normal_area + 0.02
        assert r.activity < 0.15
    # and the people are still seen moving after the step
    assert sum(1 for r in results[step + 2 :] if r.boxes) >= 0.9 * len(results[step + 2 :])


def test_gradual_exposure_ramp_is_absorbed(vtest_path: Path) -> None:
    bg = background(str(vtest_path)).astype(np.float32)
    md = MotionDetector()
    for i in range(30):  # +2 % per frame, +80 % overall: auto-exposure, dusk, clouds
        r = md.detect(np.clip(bg * (1 + 0.02 * i), 0, 255).astype(np.uint8))
        assert r.boxes == []


def test_motion_mask_hides_motion(vtest_path: Path) -> None:
    bg = background(str(vtest_path))
    frames = sprite_frames(bg, linear_path((0.2, 0.9), (0.8, 0.9), 20))
    mask = ((0.0, 0.6), (1.0, 0.6), (1.0, 1.0), (0.0, 1.0))  # the bottom 40 %
    md = MotionDetector(MotionConfig(masks=(mask,)))
    assert all(md.detect(f.image).boxes == [] for f in frames)


def test_invalid_mask_is_named() -> None:
    with pytest.raises(ValueError, match="motion mask 2"):
        MotionConfig(masks=(((0, 0), (1, 0), (1, 1)), ((0, 0), (1, 1), (1, 0), (0, 1))))


def test_cost_per_frame_at_640x360(vtest_frames: list[np.ndarray]) -> None:
    frames = [cv2.resize(f, (640, 360), interpolation=cv2.INTER_AREA) for f in vtest_frames]
    md = MotionDetector()
    costs = [md.detect(f).cost_ms for f in frames]
    median = statistics.median(costs[5:])
    print(f"motion cost at 640x360: median {median:.3f} ms/frame")
    assert median < 3.0  # typically ~0.1-0.2 ms; generous for a loaded CI machine
