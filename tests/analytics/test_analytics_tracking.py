from __future__ import annotations

from vigil.analytics.detect import Detection
from vigil.analytics.geometry import Box
from vigil.analytics.tracking import Tracker, TrackerConfig


def person(cx: float, cy: float, w: float = 0.05, h: float = 0.15, score: float = 0.9) -> Detection:
    return Detection("person", score, Box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))


def test_ids_are_stable_and_crossing_paths_keep_ids() -> None:
    tr = Tracker(TrackerConfig(min_hits=2))
    ids_a, ids_b = set(), set()
    for i in range(30):  # two people walking towards each other and past
        t = i * 0.2
        a = person(0.1 + 0.025 * i, 0.5)
        b = person(0.85 - 0.025 * i, 0.5)
        upd = tr.update([a, b], t)
        by_x = sorted((trk for trk in upd.active if trk.observed), key=lambda trk: trk.velocity[0])
        if i >= 3:
            ids_b.add(by_x[0].track_id)  # moving left
            ids_a.add(by_x[-1].track_id)  # moving right
    assert len(ids_a) == 1 and len(ids_b) == 1 and ids_a != ids_b


def test_missed_detections_are_bridged() -> None:
    tr = Tracker(TrackerConfig(max_age=1.0))
    ids = set()
    for i in range(20):
        dets = [] if i in (8, 9, 10) else [person(0.1 + 0.03 * i, 0.5)]  # 0.6 s gap
        for trk in tr.update(dets, i * 0.2).active:
            ids.add(trk.track_id)
    assert ids == {1}


def test_track_ends_after_max_age() -> None:
    tr = Tracker(TrackerConfig(max_age=1.0))
    tr.update([person(0.5, 0.5)], 0.0)
    assert tr.update([], 0.8).ended == []
    ended = tr.update([], 1.2).ended
    assert [t.track_id for t in ended] == [1]


def test_confirmation_needs_min_hits() -> None:
    tr = Tracker(TrackerConfig(min_hits=3, fast_confirm_hits=2, fast_confirm_score=0.9))
    assert not tr.update([person(0.5, 0.5, score=0.8)], 0.0).active[0].confirmed
    assert not tr.update([person(0.5, 0.5, score=0.95)], 0.2).active[0].confirmed
    assert tr.update([person(0.5, 0.5, score=0.95)], 0.4).active[0].confirmed


def test_high_scores_confirm_after_fast_confirm_hits() -> None:
    tr = Tracker(TrackerConfig(min_hits=3, fast_confirm_hits=2, fast_confirm_score=0.9))
    assert not tr.update([person(0.5, 0.5, score=0.95)], 0.0).active[0].confirmed
    assert tr.update([person(0.5, 0.5, score=0.92)], 0.2).active[0].confirmed


def test_one_low_score_hit_means_min_hits() -> None:
    # a track is fast-confirmed only when EVERY hit scored high: one doubtful hit (the
    # usual false positive) sends it back to the min_hits rule
    tr = Tracker(TrackerConfig(min_hits=3, fast_confirm_hits=2, fast_confirm_score=0.9))
    tr.update([person(0.5, 0.5, score=0.95)], 0.0)
    assert not tr.update([person(0.5, 0.5, score=0.85)], 0.2).active[0].confirmed
    assert tr.update([person(0.5, 0.5, score=0.99)], 0.4).active[0].confirmed


def test_fast_confirmation_on_a_single_hit() -> None:
    tr = Tracker(TrackerConfig(min_hits=3, fast_confirm_hits=1, fast_confirm_score=0.98))
    assert tr.update([person(0.2, 0.5, score=0.99)], 0.0).active[0].confirmed
    assert not tr.update([person(0.8, 0.5, score=0.9)], 0.2).active[-1].confirmed


def test_stationary_object_and_memory() -> None:
    cfg = TrackerConfig(stationary_seconds=3.0, stationary_distance=0.02, max_age=1.0)
    tr = Tracker(cfg)
    t = 0.0
    for i in range(10):  # walks in ...
        tr.update([person(0.1 + 0.04 * i, 0.5)], t)
        t += 0.2
    for _ in range(25):  # ... and stands (5 s)
        trk = tr.update([person(0.46, 0.5)], t).active[0]
        t += 0.2
    assert trk.stationary and trk.confirmed
    # the detector loses it for a while: the track ends but its place is remembered
    t += 2.0
    assert [x.track_id for x in tr.update([], t).ended] == [trk.track_id]
    new = tr.update([person(0.46, 0.5)], t + 0.2).active[0]
    assert new.track_id != trk.track_id and new.stationary  # born stationary: no new event
    for i in range(1, 6):  # it walks away: moving again
        new = tr.update([person(0.46 + 0.02 * i, 0.5)], t + 0.2 + 0.2 * i).active[0]
    assert not new.stationary
