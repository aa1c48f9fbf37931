"""Recovery of ``.mp4.part`` files cut at arbitrary byte offsets."""

from __future__ import annotations

import hashlib
import random
import shutil
import struct
from pathlib import Path

import av
import pytest

from vigil.config.model import RecordingConfig
from vigil.record import (
    Recorder,
    recover_partial,
    recover_storage,
    scan_partials,
    verify_playable,
)
from vigil.record.types import SegmentInfo

from .feeder import MemoryCatalog, feed_file

WALL0 = 1_700_000_000_000_000


@pytest.fixture(scope="module")
def segment(tmp_path_factory: pytest.TempPathFactory, clips: dict[str, Path]) -> SegmentInfo:
    """One cleanly closed 6 s H.264+AAC segment with 1 s fragments."""
    root = tmp_path_factory.mktemp("seg")
    cat = MemoryCatalog()
    rec = Recorder("cam", root, cat, RecordingConfig(segment_seconds=6, fragment_seconds=1))
    feed_file(rec, clips["h264_aac"], wall_start_us=WALL0, max_seconds=6.5)
    return cat.segments[0]


def _top_level(data: bytes) -> list[tuple[bytes, int, int]]:
    """(type, start, end) of top-level boxes — an independent minimal walk."""
    out = []
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
        out.append((kind, pos, pos + size))
        pos += size
    return out


def _fragment_ends(data: bytes) -> list[int]:
    boxes = _top_level(data)
    return [end for (k, _, end), prev in zip(boxes[1:], boxes, strict=False)
            if k == b"mdat" and prev[0] == b"moof"]


def _demux_count(path: Path) -> tuple[int, float]:
    n = 0
    video_dur = 0.0
    with av.open(str(path)) as c:
        for p in c.demux():
            if p.size:
                n += 1
                if p.stream.type == "video" and p.duration:
                    video_dur += float(p.duration * p.time_base)
    return n, video_dur


def _place(segment: SegmentInfo, root: Path, data: bytes) -> Path:
    rel = segment.path.relative_to(segment.path.parents[4])
    part = root / rel.parent / (rel.name + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(data)
    return part


def test_recover_at_any_cut(tmp_path: Path, segment: SegmentInfo) -> None:
    full = segment.path.read_bytes()
    ends = _fragment_ends(full)
    assert len(ends) >= 6
    rng = random.Random(1234)
    cuts = {0, 7, 100, len(full), len(full) - 1}
    for _kind, start, end in _top_level(full):
        cuts.update({start, start + 1, start + 8, end - 1, end, end + 1})
    cuts.update(rng.randrange(len(full)) for _ in range(30))
    cuts = {c for c in cuts if 0 <= c <= len(full)}
    for i, cut in enumerate(sorted(cuts)):
        root = tmp_path / f"r{i}"
        part = _place(segment, root, full[:cut])
        info = recover_partial(part, "cam")
        assert not part.exists()
        kept = max((e for e in ends if e <= cut), default=0)
        if kept == 0:
            assert info is None, cut
            continue
        assert info is not None and info.recovered
        # Exactly the complete fragments are kept (plus the index when the file was whole),
        # and the kept bytes are the original bytes: nothing written is changed.
        expect = len(full) if cut == len(full) else kept
        assert info.bytes == expect == info.path.stat().st_size, cut
        assert info.sha256 == hashlib.sha256(full[:expect]).hexdigest()
        assert info.path.name == segment.path.name
        assert (info.video_codec, info.width, info.height, info.audio_codec) == (
            "h264", 640, 360, "aac")
        assert info.start_us == segment.start_us
        n, video_dur = _demux_count(info.path)
        assert info.packets == n
        assert abs(info.duration_us / 1e6 - video_dur) < 0.001
        ok, detail = verify_playable(info.path)
        assert ok, f"cut {cut}: {detail}"
        shutil.rmtree(root)


def test_recovery_is_idempotent(tmp_path: Path, segment: SegmentInfo) -> None:
    full = segment.path.read_bytes()
    ends = _fragment_ends(full)
    cut = ends[2] + 5000
    part = _place(segment, tmp_path, full[:cut])
    # A crash after truncating but before renaming: recovery runs again from there.
    with part.open("r+b") as f:
        f.truncate(ends[2])
    first = recover_partial(part, "cam")
    assert first is not None and first.bytes == ends[2]
    snapshot = first.path.read_bytes()
    assert recover_partial(part, "cam") is None  # already done: nothing to do
    assert first.path.read_bytes() == snapshot
    # A second crash leaving the same part again must not overwrite the complete file.
    part2 = _place(segment, tmp_path, full[:cut])
    second = recover_partial(part2, "cam")
    assert second is not None and second.path != first.path
    assert second.path.name.endswith("-r1.mp4")
    assert first.path.read_bytes() == snapshot


def test_garbage_tail_and_header_only(tmp_path: Path, segment: SegmentInfo) -> None:
    full = segment.path.read_bytes()
    ends = _fragment_ends(full)
    part = _place(segment, tmp_path / "a", full[: ends[1]] + b"\x00\x00\x10\x00moof" + b"x" * 50)
    info = recover_partial(part, "cam")
    assert info is not None and info.bytes == ends[1]
    assert verify_playable(info.path)[0]
    header_end = _top_level(full)[1][2]  # ftyp, moov
    part = _place(segment, tmp_path / "b", full[:header_end])
    assert recover_partial(part, "cam") is None
    assert not part.exists()
    part = _place(segment, tmp_path / "c", b"")
    assert recover_partial(part, "cam") is None


def test_scan_and_recover_storage(tmp_path: Path, segment: SegmentInfo) -> None:
    full = segment.path.read_bytes()
    ends = _fragment_ends(full)
    root = tmp_path / "root"
    p1 = _place(segment, root, full[: ends[3] + 10])
    other = root / "cam2" / "2024" / "01" / "02" / "1704153600000000-7.mp4.part"
    other.parent.mkdir(parents=True)
    other.write_bytes(full[: ends[0] - 1])  # nothing complete: deleted
    (root / "cam" / "notes.txt").write_text("not a segment")
    assert scan_partials(root) == sorted([p1, other], key=lambda p: (p.parent.as_posix(), p.name))
    cat = MemoryCatalog()
    infos = recover_storage(root, cat)
    assert cat.segments == infos and len(infos) == 1
    assert infos[0].camera == "cam" and infos[0].bytes == ends[3]
    assert scan_partials(root) == []
    assert not other.exists()


def test_damaged_headers_never_crash_recovery(tmp_path: Path, segment: SegmentInfo) -> None:
    """Corrupt box headers make recovery keep less or refuse, never raise anything else."""
    full = segment.path.read_bytes()
    boxes = _top_level(full)
    rng = random.Random(99)
    outcomes = {"kept": 0, "none": 0, "refused": 0}
    for i in range(60):
        data = bytearray(full[: rng.randrange(len(full) // 2, len(full))])
        _kind, start, end = rng.choice([b for b in boxes[1:] if b[1] < len(data)])
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(start, min(end, start + 64, len(data)))] = rng.randrange(256)
        part = _place(segment, tmp_path / f"f{i}", bytes(data))
        try:
            info = recover_partial(part, "cam")
        except ValueError:
            outcomes["refused"] += 1
            assert part.exists(), "a file recovery cannot read must be left alone"
            continue
        outcomes["kept" if info else "none"] += 1
        if info is not None:
            assert info.bytes <= len(data)
            assert info.sha256 == hashlib.sha256(bytes(data[: info.bytes])).hexdigest()
    assert outcomes["kept"] > 0
