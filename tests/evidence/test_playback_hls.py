"""HLS over recorded fragments: playlist validity, timing, discontinuities, decodable parts."""

from __future__ import annotations

import io
import itertools
from datetime import datetime
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import av
import pytest

from vigil.evidence.hls import hls_init, hls_part, hls_plan, hls_playlist, parse_playlist
from vigil.evidence.playback import NoFootageError, read_wall_clock

if TYPE_CHECKING:  # tests/evidence is not a package: conftest is only for the type checker
    from conftest import Footage, MakeFootage


def _decode(blob: bytes, read: Any) -> list[tuple[Fraction, int]]:
    with av.open(io.BytesIO(blob)) as c:
        return [(Fraction(fr.pts) * fr.time_base, read(fr)) for fr in c.decode(video=0)]


def _pdt_us(text: str) -> int:
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(dt.timestamp()) * 1_000_000 + dt.microsecond


def test_playlist_is_valid_and_parts_decode(make_footage: MakeFootage) -> None:
    # 7 s + 4 s contiguous, a 3 s offline gap, 4 s more; with audio.
    f = make_footage([(0, 70), (70, 40), (140, 40)], gaps=[(110, 140, "offline")], audio=True)
    start, end = f.wall(3), f.wall(175)
    text = hls_playlist(f.index, "cam1", start, end, "/api/hls/cam1/x/")
    lines = text.splitlines()
    assert lines[0] == "#EXTM3U" and "#EXT-X-VERSION:7" in lines
    assert lines[-1] == "#EXT-X-ENDLIST" and "#EXT-X-PLAYLIST-TYPE:VOD" in lines
    target = int(next(x for x in lines if x.startswith("#EXT-X-TARGETDURATION:")).split(":")[1])
    parts = parse_playlist(text)
    assert [p["uri"] for p in parts] == [f"/api/hls/cam1/x/part/{n}.m4s" for n in range(len(parts))]
    assert all(p["map"] == "/api/hls/cam1/x/init/0.mp4" for p in parts)
    durations = [float(p["duration"]) for p in parts]  # type: ignore[arg-type]
    assert all(d <= 6.0 + 1e-9 for d in durations) and target == 6
    assert all(round(d) <= target for d in durations)
    # whole fragments: from the keyframe before the start (frame 0) to the end of the
    # fragment holding the end (frame 179); EXT-X-START points at the exact start
    assert sum(durations) == pytest.approx((110 + 180 - 140) / 10, abs=1e-6)
    assert durations == [6.0, 1.0, 4.0, 4.0]  # the 7 s file is cut 6 s + 1 s on keyframes
    # discontinuity exactly at the gap (the first part after it)
    assert [p["discontinuity"] for p in parts] == [False, False, False, True]
    # EXT-X-START points at the requested instant inside the first part
    offset = next(x for x in lines if x.startswith("#EXT-X-START:"))
    assert "TIME-OFFSET=0.300000" in offset and "PRECISE=YES" in offset

    plan = hls_plan(f.index, "cam1", start, end)
    init = plan.init_segment(0)
    media_end = Fraction(0)
    for n, p in enumerate(parts):
        blob = init + plan.part_bytes(n)
        frames = _decode(blob, f.frame_number)
        first_t, first_n = frames[0]
        # EXT-X-PROGRAM-DATE-TIME is the capture time of the part's first frame
        assert abs(_pdt_us(str(p["pdt"])) - f.wall(first_n)) <= 1000
        assert first_n % 10 == 0  # cut on keyframes
        assert len(frames) == round(float(p["duration"]) * 10)  # type: ignore[arg-type]
        # timestamps run on from part to part (collapsed across the gap)
        assert first_t == media_end
        media_end = first_t + Fraction(len(frames), 10)
        with av.open(io.BytesIO(blob)) as c:
            assert len(list(c.decode(audio=0))) > 0
        # prft wall clock in each part agrees with the frames
        clock = read_wall_clock(blob)
        assert all(clock.wall_time_of(t, Fraction(1)) == f.wall(k) for t, k in frames)
    # all parts appended after one init segment play as one stream (what MSE does)
    frames = _decode(init + b"".join(plan.part_bytes(n) for n in range(len(parts))), f.frame_number)
    assert [k for _t, k in frames] == list(range(0, 110)) + list(range(140, 180))
    ts = [t for t, _k in frames]
    assert all(b > a for a, b in itertools.pairwise(ts))


def test_module_functions_match_plan(footage: Footage) -> None:
    f = footage
    args = (f.index, "cam1", f.wall(0), f.wall(230))
    plan = hls_plan(*args)
    assert hls_init(*args, 0) == plan.init_segment(0)
    assert hls_part(*args, 2) == plan.part_bytes(2)
    with pytest.raises(IndexError):
        hls_part(*args, len(plan.parts))
    with pytest.raises(IndexError):
        hls_init(*args, 1)
    with pytest.raises(NoFootageError):
        hls_playlist(f.index, "cam1", f.wall(121), f.wall(149), "/x")


def test_codec_change_gets_new_map_and_discontinuity(make_footage: MakeFootage) -> None:
    make_footage([(0, 20)])
    f = make_footage([(20, 20)], codec="libx265")
    plan = hls_plan(f.index, "cam1", f.wall(0), f.wall(40))
    parts = parse_playlist(plan.playlist("http://h/p"))
    assert [p["map"] for p in parts] == ["http://h/p/init/0.mp4", "http://h/p/init/1.mp4"]
    assert [p["discontinuity"] for p in parts] == [False, True]
    for n, p in enumerate(plan.parts):
        frames = _decode(plan.init_segment(p.init) + plan.part_bytes(n), f.frame_number)
        assert frames[0][1] == 20 * n


def test_missing_file_becomes_a_discontinuity(footage: Footage) -> None:
    f = footage
    f.segments[1].path.unlink()
    plan = hls_plan(f.index, "cam1", f.wall(0), f.wall(120))
    assert [g.reason for g in plan.gaps] == ["missing"]
    parts = parse_playlist(plan.playlist("/p"))
    assert [p["discontinuity"] for p in parts] == [False, True]
    assert [
        _decode(plan.init_segment(0) + plan.part_bytes(n), f.frame_number)[0][1] for n in range(2)
    ] == [0, 80]
