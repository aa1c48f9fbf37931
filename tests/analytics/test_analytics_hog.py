from __future__ import annotations

import time
from pathlib import Path

import pytest

from vigil.analytics.detect.base import plan_crops
from vigil.analytics.detect.opencv import HogPeopleDetector
from vigil.analytics.geometry import Box, iou

from .analytics_helpers import background

MAN = Box(0.32, 0.37, 0.38, 0.54)  # the man walking on the path in frame 0 of vtest.avi
GRASS = Box(0.05, 0.70, 0.20, 0.95)


@pytest.mark.parametrize("batch", [True, False])
def test_finds_the_person_in_a_motion_region(vtest_path: Path, batch: bool) -> None:
    frame = background(str(vtest_path))
    det = HogPeopleDetector(batch=batch)
    found = det.detect(frame, [MAN, GRASS])
    people = [d for d in found if iou(d.box, MAN) > 0.3]
    assert len(people) == 1 and people[0].label == "person" and people[0].score >= 0.7
    assert all(iou(d.box, GRASS) == 0 for d in found)
    assert det.detect(frame, []) == []


def test_cost_per_crop(vtest_path: Path) -> None:
    frame = background(str(vtest_path))
    det = HogPeopleDetector()
    det.detect(frame, [MAN])
    t0 = time.perf_counter()
    for _ in range(10):
        det.detect(frame, [MAN])
    per_crop = (time.perf_counter() - t0) * 100
    print(f"HOG on one person-sized motion region: {per_crop:.1f} ms per crop")
    assert per_crop < 60


def test_plan_crops_upscales_small_regions_and_merges_overlaps() -> None:
    crops = plan_crops(
        [Box(0.1, 0.1, 0.15, 0.2), Box(0.12, 0.12, 0.16, 0.21), Box(0.8, 0.8, 0.9, 0.95)],
        640,
        480,
        margin=0.2,
        min_aspect=0.5,
        target_object_px=110,
        max_scale=4,
    )
    assert len(crops) == 2
    small = min(crops, key=lambda c: c.x1)
    assert small.height * small.scale >= 128  # upscaled to at least the HOG window
    assert small.width >= 0.5 * small.height


def test_optional_haar_fullbody_second_opinion(vtest_path: Path) -> None:
    frame = background(str(vtest_path))
    det = HogPeopleDetector(haar_fullbody=True, min_score=0.5)
    found = det.detect(frame, [MAN])
    assert any(iou(d.box, MAN) > 0.3 for d in found)
    assert all(d.label == "person" and 0.0 <= d.score <= 1.0 for d in found)
