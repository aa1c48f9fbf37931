"""Segmenter and writer behaviour on real H.264/H.265 (+AAC) clips made by ffmpeg."""

from __future__ import annotations

import hashlib
import itertools
import logging
import subprocess
from pathlib import Path

import av
import pytest

from vigil.config.model import RecordingConfig
from vigil.ingest.types import TimedPacket
from vigil.record import Recorder, describe_segment, gap_reason, verify_playable
from vigil.record import bitstream as bs
from vigil.record.isobmff import scan_fragments
from vigil.record.paths import UnsafePathError
from vigil.record.types import SegmentInfo

from .feeder import MemoryCatalog, Variant, feed_file

WALL0 = 1_700_000_000_000_000  # 2023-11-14T22:13:20Z


def _recorder(root: Path, catalog: MemoryCatalog, seg: float = 3, frag: float = 1,
              **kw: object) -> Recorder:
    return Recorder("cam", root, catalog,
                    RecordingConfig(segment_seconds=seg, fragment_seconds=frag), **kw)  # type: ignore[arg-type]


def _file_packets(path: Path) -> tuple[int, int, list[bool]]:
    """(video packets, audio packets, keyframe flags of video) as demuxed from the file."""
    v = a = 0
    keys: list[bool] = []
    with av.open(str(path)) as c:
        for p in c.demux():
            if p.size == 0:
                continue
            if p.stream.type == "video":
                v += 1
                keys.append(bool(p.is_keyframe))
            else:
                a += 1
    return v, a, keys


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_segments(root: Path, segs: list[SegmentInfo]) -> None:
    """Invariants every closed segment must satisfy."""
    for s in segs:
        assert s.path.is_file(), s.path
        assert s.path.suffix == ".mp4"
        assert not s.path.with_name(s.path.name + ".part").exists()
        rel = s.path.relative_to(root)
        assert rel.parts[0] == "cam" and len(rel.parts) == 5
        assert rel.name.startswith(f"{s.start_us}-")
        ok, detail = verify_playable(s.path)
        assert ok, f"{s.path.name}: {detail}"
        assert s.bytes == s.path.stat().st_size
        assert s.sha256 == _sha(s.path)
        v, a, keys = _file_packets(s.path)
        assert s.packets == v + a
        assert keys[0], "segment must start with a keyframe"
        assert s.end_us == s.start_us + s.duration_us
        assert describe_segment(s.path, "cam") == s


@pytest.mark.parametrize("clip", ["h264_aac", "hevc", "hevc_aac"])
def test_segments_cut_at_keyframes_and_play(tmp_path: Path, clips: dict[str, Path],
                                            clip: str) -> None:
    cat = MemoryCatalog()
    rec = _recorder(tmp_path, cat, seg=3)
    fed = feed_file(rec, clips[clip], wall_start_us=WALL0)
    segs = cat.segments
    st = rec.status()
    assert st.state == "idle" and st.last_error is None
    # Every packet is accounted for: written, or dropped only because it preceded the
    # first keyframe (AAC priming packet before video starts).
    assert set(st.dropped) <= {"before_segment"}
    assert st.dropped.get("before_segment", 0) <= 1
    assert sum(s.packets for s in segs) == st.packets_written == fed.fed - sum(st.dropped.values())
    _check_segments(tmp_path, segs)
    # GOP 1 s, segment 3 s: cuts exactly on keyframes at 3 s, last one the remainder.
    assert [s.duration_us for s in segs[:-1]] == [3_000_000] * (len(segs) - 1)
    assert 0 < segs[-1].duration_us <= 3_000_000
    # Contiguous timeline: each segment starts where the previous ended.
    for prev, nxt in itertools.pairwise(segs):
        assert nxt.start_us == prev.end_us
    # Container overhead on top of the elementary streams stays under 1 %.
    total = sum(s.bytes for s in segs)
    assert total < fed.fed_bytes * 1.01, (total, fed.fed_bytes)
    if "aac" in clip:
        assert all(s.audio_codec == "aac" for s in segs)
        assert all(_file_packets(s.path)[1] > 0 for s in segs)
    else:
        assert all(s.audio_codec is None for s in segs)
    codec = "hevc" if clip.startswith("hevc") else "h264"
    assert all((s.video_codec, s.width, s.height) == (codec, 640, 360) for s in segs)
    assert cat.gaps == []


def _is_config_record(path: Path) -> tuple[bool, bool]:
    """(extradata is avcC/hvcC, every video sample is length-prefixed)."""
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        ed = bytes(vs.codec_context.extradata or b"")
        lp = all(bs.is_length_prefixed(bytes(p), 4) for p in c.demux(vs) if p.size)
    return bs.is_config_record(ed), lp


VARIANTS: list[tuple[str, Variant, bool]] = [
    ("mp4", "as_is", True),  # avcC/hvcC + length-prefixed
    ("ts", "as_is", True),  # Annex B extradata + Annex B packets
    ("mp4", "annexb_from_mp4", True),  # avcC/hvcC extradata + Annex B packets
    ("mp4", "annexb_extradata_lp_packets", True),  # Annex B extradata + length-prefixed
    ("ts", "no_extradata", True),  # in-band parameter sets only
    ("mp4", "as_is", False),  # no template: add_mux_stream path
    ("ts", "as_is", False),
]


@pytest.mark.parametrize("codec", ["h264", "hevc"])
@pytest.mark.parametrize(("container", "variant", "template"), VARIANTS)
def test_extradata_variants(tmp_path: Path, clips: dict[str, Path], codec: str,
                            container: str, variant: Variant, template: bool) -> None:
    src = clips["h264_aac" if codec == "h264" else "hevc"]
    if container == "ts":
        ts = tmp_path / "src.ts"
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(src),
                        "-t", "7", "-c", "copy", "-f", "mpegts", str(ts)], check=True,
                       timeout=60)
        src = ts
    cat = MemoryCatalog()
    root = tmp_path / "store"
    rec = _recorder(root, cat, seg=3)
    fed = feed_file(rec, src, wall_start_us=WALL0, variant=variant, template=template,
                    max_seconds=7)
    st = rec.status()
    assert st.last_error is None
    assert cat.segments
    for s in cat.segments:
        ok, detail = verify_playable(s.path)
        assert ok, f"{variant}/{template}: {detail}"
        config, lp = _is_config_record(s.path)
        assert config, "MP4 sample description must hold avcC/hvcC"
        assert lp, "MP4 samples must be length-prefixed"
        assert s.video_codec == codec
    dropped_ok = {"before_segment", "audio_not_recorded"}
    assert set(st.dropped) <= dropped_ok
    assert sum(s.packets for s in cat.segments) == fed.fed - sum(st.dropped.values())
    if fed.fed_audio:
        # AAC survives every framing, including ADTS without a config (MPEG-TS), and
        # without a template stream (the sample entry is then written by hand).
        assert all(s.audio_codec == "aac" for s in cat.segments)
        assert st.dropped.get("audio_not_recorded", 0) == 0


def test_session_change_new_segment_and_gaps(tmp_path: Path, clips: dict[str, Path]) -> None:
    cat = MemoryCatalog()
    rec = _recorder(tmp_path, cat, seg=3)
    a = feed_file(rec, clips["hevc"], session_id=1, wall_start_us=WALL0, end_reason="stalled",
                  max_seconds=4)
    end_a = cat.segments[-1].end_us
    n_a = len(cat.segments)
    # The camera comes back 5 s later at a lower resolution (new session, new codec).
    b = feed_file(rec, clips["h264_small"], session_id=2, wall_start_us=end_a + 5_000_000,
                  end_reason="codec_change")
    # ... and immediately again with the original stream (zero-length boundary).
    end_b = cat.segments[-1].end_us
    feed_file(rec, clips["hevc"], session_id=3, wall_start_us=end_b, max_seconds=2)
    segs = cat.segments
    _check_segments(tmp_path, segs)
    assert a.fed and b.fed
    s2 = [s for s in segs if s.path.name.endswith("-2.mp4")]
    assert s2 and all((s.video_codec, s.width, s.height) == ("h264", 320, 240) for s in s2)
    assert s2[0] is segs[n_a], "a new session starts a new segment"
    assert s2[0].start_us == end_a + 5_000_000
    s3 = [s for s in segs if s.path.name.endswith("-3.mp4")]
    assert s3 and s3[0].width == 640
    assert [(g.reason, g.start_us, g.end_us) for g in cat.gaps] == [
        ("stalled", end_a, end_a + 5_000_000),
        ("codec_change", end_b, end_b),
    ]


def test_current_segment_and_status(tmp_path: Path, clips: dict[str, Path]) -> None:
    cat = MemoryCatalog()
    rec = _recorder(tmp_path, cat, seg=3)
    seen: list[tuple[Path, int, int, str]] = []

    def probe(pkt: TimedPacket, _r: object) -> None:
        cur = rec.current_segment()
        if cur is not None:
            assert cur.path.name.endswith(".mp4.part") and cur.path.exists()
            assert cur.path.stat().st_size == cur.bytes
            seen.append((cur.path, cur.start_us, cur.bytes, rec.status().state))

    feed_file(rec, clips["h264_aac"], wall_start_us=WALL0, max_seconds=5, on_packet=probe)
    assert seen and all(state == "recording" for *_, state in seen)
    first = [b for p, _, b, _ in seen if p == seen[0][0]]
    assert first == sorted(first) and first[-1] > first[0], "bytes grow fragment by fragment"
    assert rec.current_segment() is None
    assert {p.name[: -len(".part")] for p, *_ in seen} == {s.path.name for s in cat.segments}


def test_fragments_at_most_fragment_seconds(tmp_path: Path) -> None:
    """With a 4 s GOP, fragments are still flushed about every fragment_seconds."""
    src = tmp_path / "gop4.mp4"
    from .feeder import make_clip

    make_clip(src, seconds=9, gop=100, bitrate="1M")
    cat = MemoryCatalog()
    rec = _recorder(tmp_path / "s", cat, seg=8, frag=1)
    feed_file(rec, src, wall_start_us=WALL0)
    seg = cat.segments[0]
    assert seg.duration_us == 8_000_000
    with seg.path.open("rb") as f:
        scan = scan_fragments(f, seg.bytes)
    assert scan.fragments >= 8
    ok, detail = verify_playable(seg.path)
    assert ok, detail


def test_bframes_clip(tmp_path: Path) -> None:
    src = tmp_path / "bf.mp4"
    from .feeder import make_clip

    make_clip(src, seconds=7, bframes=2, audio=True)
    cat = MemoryCatalog()
    rec = _recorder(tmp_path / "s", cat, seg=3)
    fed = feed_file(rec, src, wall_start_us=WALL0)
    _check_segments(tmp_path / "s", cat.segments)
    st = rec.status()
    assert sum(s.packets for s in cat.segments) == fed.fed - sum(st.dropped.values())


def test_unstorable_audio_is_dropped_once(tmp_path: Path, caplog: pytest.LogCaptureFixture
                                          ) -> None:
    src = tmp_path / "mulaw.mkv"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
                    "-f", "lavfi", "-i", "sine=sample_rate=8000", "-t", "5",
                    "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p",
                    "-c:a", "pcm_mulaw", str(src)], check=True, timeout=60)
    cat = MemoryCatalog()
    rec = _recorder(tmp_path / "s", cat, seg=2)
    with caplog.at_level(logging.WARNING, logger="vigil.record"):
        fed = feed_file(rec, src, wall_start_us=WALL0)
        feed_file(rec, src, session_id=2, wall_start_us=WALL0 + 10_000_000)
    warnings = [r for r in caplog.records if "pcm_mulaw" in r.getMessage()]
    assert len(warnings) == 1
    assert cat.segments and all(s.audio_codec is None for s in cat.segments)
    for s in cat.segments:
        assert verify_playable(s.path)[0]
    assert rec.status().dropped["audio_not_recorded"] == 2 * fed.fed_audio


def test_path_outside_root_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsafePathError):
        Recorder("../escape", tmp_path / "root", MemoryCatalog())
    assert not (tmp_path / "escape").exists()


@pytest.mark.parametrize("template", [True, False])
def test_mjpeg(tmp_path: Path, template: bool) -> None:
    src = tmp_path / "mjpeg.mkv"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10", "-t", "5",
                    "-c:v", "mjpeg", "-q:v", "5", str(src)], check=True, timeout=60)
    cat = MemoryCatalog()
    rec = _recorder(tmp_path / "s", cat, seg=2)
    fed = feed_file(rec, src, wall_start_us=WALL0, template=template)
    _check_segments(tmp_path / "s", cat.segments)
    assert sum(s.packets for s in cat.segments) == fed.fed
    assert all(s.video_codec == "mjpeg" for s in cat.segments)


def test_close_finishes_open_segment(tmp_path: Path, clips: dict[str, Path]) -> None:
    """Shutdown with a session still open: the segment is closed and reported."""
    cat = MemoryCatalog()
    rec = _recorder(tmp_path, cat, seg=30)
    fed = feed_file(rec, clips["h264_aac"], wall_start_us=WALL0, max_seconds=4,
                    end_reason=None)
    assert cat.segments == [] and rec.current_segment() is not None
    rec.close()
    assert rec.current_segment() is None and rec.status().state == "idle"
    _check_segments(tmp_path, cat.segments)
    assert sum(s.packets for s in cat.segments) == fed.fed - 1  # AAC priming packet


def test_name_collision_gets_new_name(tmp_path: Path, clips: dict[str, Path]) -> None:
    cat = MemoryCatalog()
    rec = _recorder(tmp_path, cat, seg=30)
    feed_file(rec, clips["h264_small"], wall_start_us=WALL0, max_seconds=1)
    rec2 = _recorder(tmp_path, cat, seg=30)  # e.g. a restart with the clock set back
    feed_file(rec2, clips["h264_small"], wall_start_us=WALL0, max_seconds=1)
    names = sorted(s.path.name for s in cat.segments)
    assert names == [f"{WALL0}-1-r1.mp4", f"{WALL0}-1.mp4"]
    _check_segments(tmp_path, cat.segments)


@pytest.mark.parametrize(("reason", "expected"), [
    ("offline", "offline"), ("stalled", "stalled"), ("stall timeout", "stalled"),
    ("codec_change", "codec_change"), ("resolution changed", "codec_change"),
    ("connection refused", "offline"), ("eof", "offline"), ("shutdown", "restart"),
])
def test_gap_reason_mapping(reason: str, expected: str) -> None:
    assert gap_reason(reason) == expected


def test_catalog_failure_does_not_stop_recording(tmp_path: Path, clips: dict[str, Path]
                                                  ) -> None:
    class Flaky(MemoryCatalog):
        calls = 0

        def segment_closed(self, info: SegmentInfo) -> None:
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("database is locked")
            super().segment_closed(info)

    cat = Flaky()
    rec = _recorder(tmp_path, cat, seg=3)
    feed_file(rec, clips["hevc"], wall_start_us=WALL0)
    assert cat.calls == 4 and len(cat.segments) == 3
    on_disk = sorted(p.name for p in tmp_path.rglob("*.mp4"))
    assert len(on_disk) == 4  # the unreported file stays for reconciliation
    assert rec.status().state == "idle" and rec.status().last_error is None
