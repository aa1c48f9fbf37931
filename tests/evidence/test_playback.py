"""Playback by stream copy: exact first frame, continuity, gaps, wall clock, damaged files."""

from __future__ import annotations

import io
import itertools
import os
import random
import struct
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
import pytest
from sqlalchemy import insert

from vigil.evidence.playback import (
    NoFootageError,
    WallClock,
    export_mp4,
    frame_at,
    iso_utc,
    iter_fmp4,
    open_at,
    plan_playback,
    read_wall_clock,
    stream_fmp4,
    wall_time_of,
)
from vigil.evidence.playback_bmff import iter_boxes, read_prfts
from vigil.evidence.timeline import TimeRangeError
from vigil.index.models import Segment

if TYPE_CHECKING:  # tests/evidence is not a package: conftest is only for the type checker
    from conftest import Footage, MakeFootage


def decode(source: Path | bytes, read: Callable[[Any], int]) -> list[tuple[Fraction, int]]:
    """(presentation time in s, drawn frame number) of every decoded video frame."""
    src: Any = str(source) if isinstance(source, Path) else io.BytesIO(source)
    with av.open(src) as c:
        return [(Fraction(fr.pts) * fr.time_base, read(fr)) for fr in c.decode(video=0)]


def shown(frames: list[tuple[Fraction, int]]) -> list[tuple[Fraction, int]]:
    """What a player presents: frames at or after media time 0 (edit list applied)."""
    return [x for x in frames if x[0] >= 0]


def test_mid_segment_start_shows_requested_frame(footage: Footage, tmp_path: Path) -> None:
    f = footage
    start = f.wall(25) + 30_000  # 30 ms into frame 25; the keyframe is frame 20
    res = export_mp4(f.index, "cam1", start, f.wall(110), tmp_path / "out.mp4")
    assert res.gaps == () and len(res.clips) == 1
    clip = res.clips[0]
    frames = decode(clip.path, f.frame_number)
    assert frames[0] == (0, 25)  # the frame on screen at the instant comes first
    assert [n for _t, n in frames] == list(range(25, 110))
    assert abs(clip.duration_us - (f.wall(110) - f.wall(25))) <= f.frame_us
    with av.open(str(clip.path)) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        assert abs(c.duration - 8_500_000) <= f.frame_us  # container duration (µs)
        assert c.metadata["creation_time"] == iso_utc(f.wall(25))
    data = clip.path.read_bytes()
    top = [b.type for b in iter_boxes(data)]
    assert top.index(b"moov") < top.index(b"mdat")  # faststart: playable over byte ranges
    assert b"elst" in data  # the preroll 20..24 is hidden by an edit list, not dropped
    # wall time of every presented frame
    assert clip.start_us == f.wall(25)
    for t, n in frames:
        assert clip.wall_time_of(t, Fraction(1)) == f.wall(n)
    assert read_wall_clock(clip.path) == clip.clock


def test_fragmented_stream_trims_and_stamps_wall_time(footage: Footage) -> None:
    f = footage
    plan = plan_playback(f.index, "cam1", f.wall(57), f.wall(95))
    chunks = list(iter_fmp4(plan.parts[0]))
    assert len(chunks) > 3  # produced fragment by fragment, not all at the end
    blob = b"".join(chunks)
    frames = decode(blob, f.frame_number)
    assert frames[0][1] == 50  # decoding starts at the keyframe...
    assert shown(frames)[0] == (0, 57)  # ...but media time 0 is the requested frame
    assert [n for _t, n in shown(frames)] == list(range(57, 95))
    tracks, prfts = read_prfts(blob)
    assert len(prfts) == len([b for b in iter_boxes(blob) if b.type == b"moof"])
    clock = read_wall_clock(blob)
    for t, n in frames:
        assert clock.wall_time_of(t, Fraction(1)) == f.wall(n)
    # each prft names the capture time of its fragment's first frame
    ts = tracks[0].timescale
    edit = tracks[0].edit_media_time
    for p in prfts:
        pts = Fraction(p.media_time - edit, ts)
        n = next(n for t, n in frames if t == pts)
        assert p.wall_us == f.wall(n)


def test_range_over_three_segments_is_continuous(footage: Footage, tmp_path: Path) -> None:
    f = footage
    clip = export_mp4(f.index, "cam1", f.wall(5), f.wall(115), tmp_path / "c.mp4").clips[0]
    assert len(clip.segments) == 3
    frames = decode(clip.path, f.frame_number)
    assert [n for _t, n in frames] == list(range(5, 115))
    steps = {b[0] - a[0] for a, b in itertools.pairwise(frames)}
    assert steps == {Fraction(1, 10)}  # no jump or overlap at the two file boundaries
    with av.open(str(clip.path)) as c:
        dts = [p.dts for p in c.demux(video=0) if p.dts is not None]
    assert all(b > a for a, b in itertools.pairwise(dts))


def test_gap_split_gives_one_clip_per_span(footage: Footage, tmp_path: Path) -> None:
    f = footage
    res = export_mp4(f.index, "cam1", f.wall(100), f.wall(170), tmp_path / "g.mp4")
    assert [(g.start_us, g.end_us, g.reason) for g in res.gaps] == [
        (f.wall(120), f.wall(150), "offline")
    ]
    assert [c.path.name for c in res.clips] == ["g-001.mp4", "g-002.mp4"]
    a, b = res.clips
    assert [n for _t, n in decode(a.path, f.frame_number)] == list(range(100, 120))
    assert [n for _t, n in decode(b.path, f.frame_number)] == list(range(150, 170))
    assert (a.start_us, a.end_us, b.start_us, b.end_us) == (
        f.wall(100),
        f.wall(120),
        f.wall(150),
        f.wall(170),
    )
    with av.open(str(b.path)) as c:
        assert c.metadata["creation_time"] == iso_utc(f.wall(150))


def test_gap_join_collapses_and_records_the_jump(footage: Footage, tmp_path: Path) -> None:
    f = footage
    res = export_mp4(f.index, "cam1", f.wall(100), f.wall(170), tmp_path / "j.mp4", on_gap="join")
    (clip,) = res.clips
    assert [(g.reason, g.start_us, g.end_us) for g in clip.collapsed] == [
        ("offline", f.wall(120), f.wall(150))
    ]
    frames = decode(clip.path, f.frame_number)
    assert [n for _t, n in frames] == list(range(100, 120)) + list(range(150, 170))
    assert frames[20][0] == 2  # media time runs on across the hole
    assert clip.duration_us == 4_000_000
    clock = read_wall_clock(clip.path)
    for t, n in frames:  # but the wall clock jumps with the footage
        assert wall_time_of(clock, t, Fraction(1)) == f.wall(n)
    assert clock.media_time_of(f.wall(130)) is None  # inside the collapsed gap
    assert clock.media_time_of(f.wall(155)) == 2_500_000


def test_deleted_segment_is_skipped_with_a_gap(
    footage: Footage, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    f = footage
    f.segments[1].path.unlink()  # frames 40-79
    res = export_mp4(f.index, "cam1", f.wall(10), f.wall(110), tmp_path / "d.mp4")
    assert [(g.reason, g.start_us, g.end_us) for g in res.gaps] == [
        ("missing", f.wall(40), f.wall(80))
    ]
    assert [[n for _t, n in decode(c.path, f.frame_number)] for c in res.clips] == [
        list(range(10, 40)),
        list(range(80, 110)),
    ]
    assert "missing" in caplog.text


def test_truncated_segment_plays_what_survives(footage: Footage, tmp_path: Path) -> None:
    f = footage
    p = f.segments[1].path  # frames 40-79, cut in half behind Vigil's back
    os.truncate(p, p.stat().st_size // 2)
    res = export_mp4(f.index, "cam1", f.wall(10), f.wall(110), tmp_path / "t.mp4")
    (gap,) = res.gaps
    assert gap.reason == "truncated" and gap.end_us == f.wall(80)
    first, second = res.clips
    got = [n for _t, n in decode(first.path, f.frame_number)]
    survived = f.frame_at(gap.start_us)
    assert 40 < survived < 80 and got == list(range(10, survived))
    assert [n for _t, n in decode(second.path, f.frame_number)] == list(range(80, 110))
    # a file cut inside its init segment is unreadable, still no crash
    os.truncate(p, 100)
    res = export_mp4(f.index, "cam1", f.wall(10), f.wall(110), tmp_path / "t2.mp4")
    assert [g.reason for g in res.gaps] == ["truncated"]
    assert len(res.clips) == 2


def test_audio_is_carried_and_trimmed(make_footage: MakeFootage, tmp_path: Path) -> None:
    f = make_footage([(0, 40), (40, 40)], audio=True)
    clip = export_mp4(f.index, "cam1", f.wall(15), f.wall(65), tmp_path / "a.mp4").clips[0]
    assert shown(decode(clip.path, f.frame_number))[0] == (0, 15)
    with av.open(str(clip.path)) as c:
        a = c.streams.audio[0]
        pkts = [p for p in c.demux(a) if p.pts is not None]
    start = Fraction(pkts[0].pts) * a.time_base
    end = Fraction(pkts[-1].pts + pkts[-1].duration) * a.time_base
    assert 0 <= start < Fraction(1, 20)
    assert abs(end - 5) < Fraction(1, 10)  # 5 s range, audio within one packet or two


@pytest.mark.parametrize("codec,bframes", [("libx265", 0), ("libx264", 2)])
def test_hevc_and_bframes(
    make_footage: MakeFootage, tmp_path: Path, codec: str, bframes: int
) -> None:
    f = make_footage([(0, 30), (30, 30)], codec=codec, bframes=bframes)
    clip = export_mp4(f.index, "cam1", f.wall(13), f.wall(47), tmp_path / "h.mp4").clips[0]
    frames = shown(decode(clip.path, f.frame_number))
    assert frames[0] == (0, 13)
    got = [n for _t, n in frames]
    assert got[: 47 - 13] == list(range(13, 47))
    assert len(got) - (47 - 13) <= bframes  # B-frame streams may show a reference frame more
    for t, n in frames:
        assert clip.wall_time_of(t, Fraction(1)) == f.wall(n)
    if codec == "libx265":
        with av.open(str(clip.path)) as c:
            assert c.streams.video[0].codec_context.name == "hevc"
        assert b"hvc1" in clip.path.read_bytes()[:4096]  # the tag Safari/Chrome need


def test_codec_change_is_never_joined(make_footage: MakeFootage, tmp_path: Path) -> None:
    make_footage([(0, 20)])
    f = make_footage([(20, 20)], codec="libx265")
    res = export_mp4(f.index, "cam1", f.wall(5), f.wall(35), tmp_path / "x.mp4", on_gap="join")
    assert len(res.clips) == 2 and res.gaps == ()
    assert [decode(c.path, f.frame_number)[0][1] for c in res.clips] == [5, 20]


def test_stream_join_and_errors(footage: Footage) -> None:
    f = footage
    st = stream_fmp4(f.index, "cam1", f.wall(110), f.wall(160))  # join is the stream default
    frames = shown(decode(b"".join(st.chunks), f.frame_number))
    assert [n for _t, n in frames] == list(range(110, 120)) + list(range(150, 160))
    assert [g.reason for g in st.gaps] == ["offline"]
    with pytest.raises(NoFootageError) as ei:
        export_mp4(f.index, "cam1", f.wall(121), f.wall(149), Path("/nonexistent/x.mp4"))
    assert [g.reason for g in ei.value.gaps] == ["offline"]
    with pytest.raises(TimeRangeError):
        plan_playback(f.index, "cam1", f.wall(0), f.wall(0) + 25 * 3600 * 1_000_000)
    with pytest.raises(ValueError, match="on_gap"):
        plan_playback(f.index, "cam1", f.wall(0), f.wall(5), on_gap="merge")  # type: ignore[arg-type]


def test_open_at_and_frame_at(footage: Footage) -> None:
    f = footage
    st = open_at(f.index, "cam1", f.wall(57) + 1)
    assert (st.keyframe_us, st.start_us, st.skip_us) == (f.wall(50), f.wall(57), 700_000)
    frames = shown(decode(b"".join(st.chunks), f.frame_number))
    assert frames[0] == (0, 57) and frames[-1][1] == 119  # to the end of the recording
    st = open_at(f.index, "cam1", f.wall(130))  # in the gap: starts at the next recording
    assert st.start_us == f.wall(150)
    frame, wall = frame_at(f.index, "cam1", f.wall(77) + 50_000)
    assert f.frame_number(frame) == 77 and wall == f.wall(77)
    with pytest.raises(NoFootageError):
        open_at(f.index, "cam1", f.wall(400))


def test_wall_clock_helpers() -> None:
    c = WallClock(((0, 1_000_000_000), (2_000_000, 1_000_005_000_000)))
    assert c.wall_time_of(1_500_000) == 1_001_500_000
    assert c.wall_time_of(2_500, Fraction(1, 1000)) == 1_000_005_500_000
    assert c.wall_time_of(30720, Fraction(1, 10240)) == 1_000_005_000_000 + 1_000_000
    assert c.media_time_of(1_000_005_250_000) == 2_250_000
    assert WallClock.from_json(c.to_json()) == c


def test_open_at_is_fast_in_a_week_of_footage(make_footage: MakeFootage, tmp_path: Path) -> None:
    """A week of one-minute segments in the index; only the files near the instant exist
    (the rest are never touched). Target: first bytes in < 300 ms."""
    seed = make_footage([(0, 600)], camera="week")  # one real 60 s file
    src = seed.segments[0]
    index = seed.index
    cid = index.camera_id("week")
    week = 7 * 24 * 60
    base = seed.base_us
    rows = [
        {
            "camera_id": cid,
            "path": f"week/fake/{i}.mp4",
            "start_us": base + i * 60_000_000,
            "end_us": base + (i + 1) * 60_000_000,
            "duration_us": 60_000_000,
            "bytes": src.bytes,
            "packets": 600,
            "video_codec": "h264",
            "width": 320,
            "height": 192,
            "audio_codec": None,
            "sha256": "0" * 64,
            "recovered": False,
            "created_us": 0,
        }
        for i in range(1, week)
    ]
    with index.db.session() as s:
        s.execute(insert(Segment), rows)
        s.commit()
    rng = random.Random(7)
    timings = []
    for _ in range(3):
        i = rng.randrange(1, week - 20)
        for k in range(i, i + 11):  # the files open_at's 10 minutes will touch
            real = index.root / f"week/fake/{k}.mp4"
            real.parent.mkdir(parents=True, exist_ok=True)
            if not real.exists():
                os.link(src.path, real)
        offset = rng.randrange(0, 600)
        instant = base + i * 60_000_000 + offset * 100_000
        t0 = time.perf_counter()
        st = open_at(index, "week", instant)
        first = next(st.chunks)
        timings.append(time.perf_counter() - t0)
        assert st.start_us == instant
        st.chunks.close()  # type: ignore[attr-defined]
        # the first chunk alone (init + first fragment) is playable from the instant
        assert shown(decode(first, seed.frame_number))[0] == (0, offset)
    print(f"open_at first bytes: {[round(t * 1000, 1) for t in timings]} ms")
    assert min(timings) < 0.3


def test_absolute_base_data_offset_is_relocated(tmp_path: Path, footage: Footage) -> None:
    """Fragments using absolute ``base_data_offset`` (fMP4 written without
    default-base-is-moof) still make playable parts once moved: the rewrite converts their
    data offsets to moof-relative ones."""
    from vigil.evidence.playback_bmff import rewrite_fragment, scan

    p = tmp_path / "abs.mp4"
    with (
        av.open(str(footage.segments[0].path)) as ic,
        av.open(str(p), "w", format="mp4", options={"movflags": "+frag_keyframe+empty_moov"}) as oc,
    ):
        ost = oc.add_stream_from_template(ic.streams.video[0])
        for pkt in ic.demux(video=0):
            if pkt.dts is not None:
                pkt.stream = ost
                oc.mux(pkt)
    raw = p.read_bytes()
    layout = scan(p)
    frag = layout.fragments[2]
    tfhd = raw.index(b"tfhd", frag.offset)
    assert struct.unpack(">I", raw[tfhd + 4 : tfhd + 8])[0] & 1  # base-data-offset present
    part = rewrite_fragment(raw[frag.offset : frag.end], frag, {1: 12345}, sequence=1)
    frames = decode(layout.init + part, footage.frame_number)
    assert [n for _t, n in frames] == list(range(20, 30))
    assert frames[0][0] == Fraction(12345, layout.tracks[0].timescale)
