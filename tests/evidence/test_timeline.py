"""Timeline: spans merged across roll-overs, gaps explained or 'unknown', validation."""

from __future__ import annotations

import itertools
import json
import os
from typing import TYPE_CHECKING

import pytest

from vigil.evidence.timeline import (
    DAY_US,
    TimeRangeError,
    UnknownCameraError,
    timeline,
)

if TYPE_CHECKING:  # tests/evidence is not a package: conftest is only for the type checker
    from conftest import Footage, MakeFootage


def test_spans_and_gap_reasons(footage: Footage) -> None:
    f = footage
    tl = timeline(f.index, "cam1", f.wall(-10), f.wall(240))
    assert [(s.start_us, s.end_us, s.segments) for s in tl.spans] == [
        (f.wall(0), f.wall(120), 3),
        (f.wall(150), f.wall(230), 2),
    ]
    assert [(g.start_us, g.end_us, g.reason) for g in tl.gaps] == [
        (f.wall(-10), f.wall(0), "unknown"),  # before the first recording
        (f.wall(120), f.wall(150), "offline"),
        (f.wall(230), f.wall(240), "unknown"),  # after the last indexed segment
    ]
    assert tl.events == ()  # reserved slot, empty until the events subsystem exists
    # spans and gaps tile the window exactly
    pieces = sorted(
        [(s.start_us, s.end_us) for s in tl.spans] + [(g.start_us, g.end_us) for g in tl.gaps]
    )
    assert pieces[0][0] == tl.start_us and pieces[-1][1] == tl.end_us
    assert all(a[1] == b[0] for a, b in itertools.pairwise(pieces))
    assert tl.recorded_us == 200 * f.frame_us
    json.dumps(tl.to_dict())


def test_window_clips_spans(footage: Footage) -> None:
    f = footage
    tl = timeline(f.index, "cam1", f.wall(50), f.wall(160))
    assert [(s.start_us, s.end_us) for s in tl.spans] == [
        (f.wall(50), f.wall(120)),
        (f.wall(150), f.wall(160)),
    ]
    assert [(g.start_us, g.end_us, g.reason) for g in tl.gaps] == [
        (f.wall(120), f.wall(150), "offline")
    ]


def test_partly_explained_hole_and_unknown_hole(make_footage: MakeFootage) -> None:
    f = make_footage([(0, 40), (60, 40), (130, 20)], gaps=[(40, 50, "disk_full")])
    tl = timeline(f.index, "cam1", f.wall(0), f.wall(150))
    assert [(g.start_us, g.end_us, g.reason) for g in tl.gaps] == [
        (f.wall(40), f.wall(50), "disk_full"),
        (f.wall(50), f.wall(60), "unknown"),
        (f.wall(100), f.wall(130), "unknown"),
    ]


def test_clock_jitter_between_segments_is_not_a_gap(make_footage: MakeFootage) -> None:
    # Next file starting 40 ms late, then 30 ms early (overlap): one recording.
    f = make_footage([(0, 40), (40, 40), (80, 40)], jitter_us=[0, 40_000, -30_000])
    tl = timeline(f.index, "cam1", f.wall(0), f.end_us)
    assert len(tl.spans) == 1 and tl.spans[0].segments == 3
    assert tl.gaps == ()


def test_validation_errors(footage: Footage) -> None:
    f = footage
    with pytest.raises(TimeRangeError, match="must be after start"):
        timeline(f.index, "cam1", f.wall(10), f.wall(5))
    with pytest.raises(TimeRangeError, match="must be after start"):
        timeline(f.index, "cam1", f.wall(10), f.wall(10))
    with pytest.raises(UnknownCameraError, match="unknown camera 'nope'"):
        timeline(f.index, "nope", f.wall(0), f.wall(10))
    assert issubclass(UnknownCameraError, TimeRangeError)
    assert "nope" not in f.index.camera_names()  # the check did not create it
    with pytest.raises(TimeRangeError, match="longer than the maximum"):
        timeline(f.index, "cam1", f.wall(0), f.wall(0) + 32 * DAY_US)
    with pytest.raises(TimeRangeError, match="longer than the maximum"):
        timeline(f.index, "cam1", f.wall(0), f.wall(100), max_range_us=5_000_000)
    with pytest.raises(TimeRangeError, match="integer"):
        timeline(f.index, "cam1", 1.5, f.wall(10))  # type: ignore[arg-type]


def test_check_files_reports_missing_and_truncated(footage: Footage) -> None:
    f = footage
    f.segments[1].path.unlink()  # frames 40-79 deleted behind Vigil's back
    p = f.segments[3].path  # frames 150-189: cut in half
    os.truncate(p, p.stat().st_size // 2)
    plain = timeline(f.index, "cam1", f.wall(0), f.wall(230))
    assert [g.reason for g in plain.gaps] == ["offline"]  # index only: cannot know
    tl = timeline(f.index, "cam1", f.wall(0), f.wall(230), check_files=True)
    reasons = [(g.reason, g.start_us, g.end_us) for g in tl.gaps]
    assert reasons[0] == ("missing", f.wall(40), f.wall(80))
    assert reasons[1] == ("offline", f.wall(120), f.wall(150))
    kind, start, end = reasons[2]
    assert kind == "truncated" and end == f.wall(190)
    assert f.wall(150) < start < f.wall(190)  # what survives stays on the timeline
