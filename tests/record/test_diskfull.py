"""Storage failures: a full filesystem, read-only storage, I/O errors."""

from __future__ import annotations

import errno
import hashlib
import threading
from pathlib import Path

import pytest

from vigil.config.model import RecordingConfig
from vigil.ingest.types import TimedPacket
from vigil.record import Recorder, scan_partials, verify_playable
from vigil.record import writer as writer_mod
from vigil.record.types import SegmentInfo

from .conftest import SmallFs
from .feeder import FeedResult, MemoryCatalog, feed_file

WALL0 = 1_700_000_000_000_000


class MediaClock:
    """Monotonic clock driven by the fed packets' wall time, so retry intervals are
    measured in media time and tests run as fast as the CPU allows."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def tick(self, pkt: TimedPacket) -> None:
        self.now = pkt.wall_us / 1e6


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_closed(segs: list[SegmentInfo]) -> None:
    for s in segs:
        assert s.path.stat().st_size == s.bytes
        assert _sha(s.path) == s.sha256, f"{s.path.name} changed after it was reported"
        ok, detail = verify_playable(s.path)
        assert ok, f"{s.path.name}: {detail}"


@pytest.mark.slow
def test_disk_full_pauses_salvages_and_resumes(tiny_fs: SmallFs, clips: dict[str, Path]
                                               ) -> None:
    root = tiny_fs.path / "store"
    ballast = tiny_fs.path / "ballast"
    # Leave ~1.5 MiB: the 2 Mb/s clip fills it after a few seconds.
    with ballast.open("wb") as f:
        f.write(b"\1" * max(0, tiny_fs.free_bytes() - 1_500_000))
    clock = MediaClock()
    cat = MemoryCatalog()
    rec = Recorder("cam", root, cat, RecordingConfig(segment_seconds=2, fragment_seconds=1),
                   retry_interval=1.0, probe_bytes=256 * 1024, clock=clock)
    states: list[tuple[str, str]] = []
    hashes: dict[Path, str] = {}
    paused_at: list[int] = []

    def on_packet(pkt: TimedPacket, _r: FeedResult) -> None:
        clock.tick(pkt)
        st = rec.status()
        states.append((st.state, st.reason))
        for s in cat.segments:  # hash every segment as soon as it is reported
            hashes.setdefault(s.path, _sha(s.path))
        if st.state == "paused" and not paused_at:
            paused_at.append(pkt.wall_us)
        if paused_at and ballast.exists() and pkt.wall_us > paused_at[0] + 2_000_000:
            ballast.unlink()  # the operator frees space

    fed = feed_file(rec, clips["h264_aac"], wall_start_us=WALL0, on_packet=on_packet)
    st = rec.status()

    assert paused_at, "recording never paused"
    paused = [r for s, r in states if s == "paused"]
    assert paused[0].startswith("disk_full: ") and "No space left on device" in paused[0]
    assert states[-1][0] == "recording", "recording did not resume after space was freed"
    assert st.dropped["paused"] > 0
    assert set(st.dropped) <= {"paused", "before_segment", "write_failed", "waiting_keyframe"}
    assert st.packets_written + sum(st.dropped.values()) == fed.fed
    # Packets muxed into fragments that never reached the disk are lost with the pause:
    # at most the fragment being written plus the one in the muxer (1 s each).
    lost = st.packets_written - sum(s.packets for s in cat.segments)
    assert 0 <= lost <= 2 * 75

    segs = cat.segments
    _check_closed(segs)
    for path, digest in hashes.items():
        assert _sha(path) == digest
    assert scan_partials(root) == []
    salvaged = [s for s in segs if s.recovered]
    assert len(salvaged) <= 1
    # Gap: reported as ongoing when the pause began, closed when recording resumed.
    assert [g.ongoing for g in cat.gaps] == [True, False]
    start, end = cat.gaps
    assert start.reason == end.reason == "disk_full" and start.start_us == end.start_us
    assert start.end_us == start.start_us  # end unknown while ongoing
    before = [s for s in segs if s.end_us <= start.start_us]
    after = [s for s in segs if s.start_us >= end.end_us]
    assert before and after and len(before) + len(after) == len(segs)
    assert before[-1].end_us == start.start_us
    assert after[0].start_us == end.end_us


@pytest.mark.slow
def test_readonly_storage_at_start(tiny_fs: SmallFs, tmp_path: Path, clips: dict[str, Path]
                                   ) -> None:
    tiny_fs.remount("ro")
    clock_a = MediaClock()
    cat_a, cat_b = MemoryCatalog(), MemoryCatalog()
    rec_a = Recorder("cam-a", tiny_fs.path, cat_a, RecordingConfig(segment_seconds=2),
                     retry_interval=1.0, probe_bytes=4096, clock=clock_a)
    rec_b = Recorder("cam-b", tmp_path / "ok", cat_b, RecordingConfig(segment_seconds=2))
    results: dict[str, FeedResult] = {}

    def run(name: str, rec: Recorder, tick: MediaClock | None) -> None:
        results[name] = feed_file(rec, clips["h264_small"], camera=name, wall_start_us=WALL0,
                                  on_packet=(lambda p, _r: tick.tick(p)) if tick else None)

    threads = [threading.Thread(target=run, args=("cam-a", rec_a, clock_a)),
               threading.Thread(target=run, args=("cam-b", rec_b, None))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    st = rec_a.status()
    assert st.state == "paused"
    assert st.reason.startswith("error: ") and "Read-only file system" in st.reason
    assert cat_a.segments == [] and st.packets_written == 0
    assert [(g.reason, g.ongoing) for g in cat_a.gaps] == [("error", True)]
    # The other camera did not notice.
    assert rec_b.status().last_error is None and len(cat_b.segments) == 3
    _check_closed(cat_b.segments)

    # Storage comes back: the next probe succeeds and recording resumes.
    tiny_fs.remount("rw")
    feed_file(rec_a, clips["h264_small"], camera="cam-a", session_id=2,
              wall_start_us=WALL0 + 10_000_000, on_packet=lambda p, _r: clock_a.tick(p))
    assert rec_a.status().state == "idle" and cat_a.segments
    _check_closed(cat_a.segments)
    assert [(g.reason, g.ongoing) for g in cat_a.gaps] == [("error", True), ("error", False)]
    assert cat_a.gaps[1].end_us == cat_a.segments[0].start_us


def test_io_error_salvages_and_resumes(tmp_path: Path, clips: dict[str, Path],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """EIO in the middle of a segment: keep its complete fragments, pause, resume."""
    original = writer_mod._SegmentSink.write
    failures = {"left": 1}

    def flaky(self: writer_mod._SegmentSink, parts: list[bytes]) -> None:
        # Fail one fragment write (torn in the middle) once the first segment is ~1.5
        # fragments long.
        data = b"".join(parts)
        if self.size > 400_000 and failures["left"] > 0:
            failures["left"] -= 1
            original(self, data[: len(data) // 2])  # a torn write
            self.error = OSError(errno.EIO, "Input/output error")
            return
        original(self, data)

    monkeypatch.setattr(writer_mod._SegmentSink, "write_parts", flaky)
    clock = MediaClock()
    cat = MemoryCatalog()
    rec = Recorder("cam", tmp_path, cat, RecordingConfig(segment_seconds=4),
                   retry_interval=1.0, probe_bytes=4096, clock=clock)
    feed_file(rec, clips["h264_aac"], wall_start_us=WALL0, on_packet=lambda p, _r: clock.tick(p))
    segs = cat.segments
    _check_closed(segs)
    assert segs[0].recovered and segs[0].start_us == WALL0 + 21_333
    assert 0 < segs[0].duration_us < 4_000_000
    assert [(g.reason, g.ongoing) for g in cat.gaps] == [("error", True), ("error", False)]
    assert cat.gaps[0].start_us == segs[0].end_us
    assert cat.gaps[1].end_us == segs[1].start_us
    assert "Input/output error" in (rec.status().last_error or "")
    assert not list(tmp_path.rglob("*.part"))


def test_failure_while_closing_at_a_cut(tmp_path: Path, clips: dict[str, Path],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk fills exactly when a cut segment is being finished (its last fragment and
    index are written at close): both open segments are salvaged and recording pauses."""
    original = writer_mod.SegmentWriter.close
    state = {"failed": False}

    def failing_close(self: writer_mod.SegmentWriter) -> SegmentInfo | None:
        if not state["failed"]:
            state["failed"] = True
            raise writer_mod.SegmentWriteError(errno.ENOSPC, "No space left on device")
        return original(self)

    monkeypatch.setattr(writer_mod.SegmentWriter, "close", failing_close)
    clock = MediaClock()
    cat = MemoryCatalog()
    rec = Recorder("cam", tmp_path, cat, RecordingConfig(segment_seconds=3),
                   retry_interval=1.0, probe_bytes=4096, clock=clock)
    fed = feed_file(rec, clips["h264_aac"], wall_start_us=WALL0,
                    on_packet=lambda p, _r: clock.tick(p))
    segs = cat.segments
    _check_closed(segs)
    assert not list(tmp_path.rglob("*.part"))
    first = segs[0]
    # The first segment lost only its unwritten last fragment (about 1 s of 3 s).
    assert first.recovered and 1_500_000 <= first.duration_us < 3_000_000
    assert [(g.reason, g.ongoing) for g in cat.gaps] == [("disk_full", True),
                                                         ("disk_full", False)]
    assert cat.gaps[0].start_us == first.end_us
    assert cat.gaps[1].end_us == segs[1].start_us
    st = rec.status()
    assert st.state == "idle" and st.packets_written + sum(st.dropped.values()) == fed.fed
