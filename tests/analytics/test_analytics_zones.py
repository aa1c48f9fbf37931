from __future__ import annotations

import pytest

from vigil.analytics.detect import Detection
from vigil.analytics.geometry import Box
from vigil.analytics.tracking import Tracker, TrackerConfig
from vigil.analytics.zones import Line, Zone, ZoneMonitor


def feet_at(x: float, y: float, label: str = "person") -> Detection:
    return Detection(label, 0.9, Box(x - 0.02, y - 0.12, x + 0.02, y))


def run(
    monitor: ZoneMonitor, points: list[tuple[float, float]], label: str = "person", dt: float = 0.2
):
    tr = Tracker(TrackerConfig(min_hits=1))
    zone_events, crossings = [], []
    for i, (x, y) in enumerate(points):
        upd = tr.update([feet_at(x, y, label)], i * dt)
        ze, cr = monitor.update(upd.active, i * dt, upd.ended)
        zone_events += ze
        crossings += cr
    ended = tr.flush()
    ze, _ = monitor.update([], len(points) * dt, ended)
    return zone_events + ze, crossings


def test_line_directions() -> None:
    line = Line("door", (0.5, 0.1), (0.5, 0.9))  # drawn downwards: side A is the left
    mon = ZoneMonitor(lines=[line])
    _, cr = run(mon, [(0.2 + 0.05 * i, 0.6) for i in range(13)])  # left -> right
    assert [c.direction for c in cr] == ["a_to_b"]
    _, cr = run(mon, [(0.8 - 0.05 * i, 0.6) for i in range(13)])  # right -> left
    assert [c.direction for c in cr] == ["b_to_a"]
    assert mon.counts["door"] == {"a_to_b": 1, "b_to_a": 1}


def test_line_jitter_and_extent() -> None:
    line = Line("door", (0.5, 0.1), (0.5, 0.5))
    mon = ZoneMonitor(lines=[line])
    jitter = (
        [(0.45 + 0.05 * i, 0.3) for i in range(3)]
        + [(0.5 + (0.004 if i % 2 else -0.004), 0.3) for i in range(10)]
        + [(0.56, 0.3), (0.6, 0.3)]
    )
    _, cr = run(mon, jitter)
    assert len(cr) == 1  # standing on the line counts once
    _, cr = run(ZoneMonitor(lines=[line]), [(0.2 + 0.05 * i, 0.8) for i in range(13)])
    assert cr == []  # passes below the end of the drawn segment


def test_zone_enter_exit_with_dwell_and_labels() -> None:
    zone = Zone(
        "lawn", ((0.4, 0.4), (0.6, 0.4), (0.6, 0.8), (0.4, 0.8)), frozenset({"person"}), 1.0
    )
    path = [(0.2 + 0.02 * i, 0.6) for i in range(31)]  # 0.2 -> 0.8 at 0.5 units/s
    ze, _ = run(ZoneMonitor(zones=[zone]), path)
    assert [(e.kind, e.zone) for e in ze] == [("enter", "lawn"), ("exit", "lawn")]
    assert ze[0].time == pytest.approx(2.2, abs=0.21)  # first inside, reported after the dwell
    ze, _ = run(ZoneMonitor(zones=[zone]), path, label="car")
    assert ze == []  # label filter
    fast = [(0.2 + 0.1 * i, 0.6) for i in range(7)]  # inside for 0.4 s only: no dwell
    ze, _ = run(ZoneMonitor(zones=[zone]), fast)
    assert ze == []


def test_zone_exit_when_track_ends_inside() -> None:
    zone = Zone("porch", ((0.4, 0.4), (0.6, 0.4), (0.6, 0.8), (0.4, 0.8)))
    ze, _ = run(ZoneMonitor(zones=[zone]), [(0.5, 0.6)] * 5)
    assert [e.kind for e in ze] == ["enter", "exit"]


@pytest.mark.parametrize(
    ("polygon", "message"),
    [
        (((0.1, 0.1), (0.9, 0.9), (0.9, 0.1), (0.1, 0.9)), "self-intersecting"),
        (((0.1, 0.1), (0.9, 0.1)), "at least 3 points"),
        (((0.1, 0.1), (1.5, 0.1), (0.5, 0.9)), "outside the frame"),
    ],
)
def test_zone_validation_names_the_zone(polygon: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message) as err:
        Zone("front door", polygon)
    assert "front door" in str(err.value)


def test_line_validation() -> None:
    with pytest.raises(ValueError, match=r"gate.*outside the frame"):
        Line("gate", (0.1, 0.1), (1.1, 0.5))
    with pytest.raises(ValueError, match="same point"):
        Line("gate", (0.1, 0.1), (0.1, 0.1))
