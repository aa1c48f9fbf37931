"""Just enough ISO-BMFF (MP4) parsing to find fragment boundaries and count samples.

A fragmented MP4 is a sequence of top-level boxes: ``ftyp``, ``moov`` (empty sample tables),
then ``moof`` + ``mdat`` pairs, optionally preceded by ``styp``/``sidx``/``prft``/``emsg``,
and an ``mfra`` index when the muxer closed cleanly. After a crash or a failed write the last
pair may be cut anywhere; everything up to the end of the last complete ``mdat`` that follows a
``moof`` is valid on its own. This module finds that point and reads the sample counts and
durations from the ``moof`` headers (``tfdt`` + ``trun``), so the recorder and recovery derive
a segment's duration and packet count from the file itself, never from what they believe
they wrote. Only box headers are read; media data is skipped with seeks.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

# Boxes that may precede a moof and belong to the fragment that follows them.
_FRAGMENT_PREFIX = frozenset({b"styp", b"sidx", b"prft", b"emsg", b"ssix"})
# Complete boxes that may follow the last fragment without being part of one.
_TRAILER_BOXES = frozenset({b"mfra", b"free", b"skip", b"meta", b"udta"})
# moov children worth parsing; everything is read into memory (moov is small).
_MAX_HEADER_BOX = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Box:
    type: bytes
    start: int
    header: int
    size: int  # total size including header; for incomplete boxes, the announced size

    @property
    def end(self) -> int:
        return self.start + self.size


def iter_boxes(f: BinaryIO, start: int, end: int) -> Iterator[tuple[Box, bool]]:
    """Top-level boxes between ``start`` and ``end`` as (box, complete).

    Iteration stops at the first box that is truncated or malformed (reported once with
    ``complete=False`` when its header could be read, so the caller knows where valid data
    ends).
    """
    pos = start
    while pos + 8 <= end:
        f.seek(pos)
        head = f.read(16)
        if len(head) < 8:
            return
        size, kind = struct.unpack(">I4s", head[:8])
        header = 8
        if size == 1:
            if len(head) < 16:
                return
            size = struct.unpack(">Q", head[8:16])[0]
            header = 16
        elif size == 0:
            # "extends to end of file": only legal for a final mdat of a non-fragmented
            # file; FFmpeg never writes it for fragments, so it cannot be trusted here.
            yield Box(kind, pos, header, end - pos), False
            return
        if size < header or not kind.isascii():
            return
        box = Box(kind, pos, header, size)
        if box.end > end:
            yield box, False
            return
        yield box, True
        pos = box.end


def _children(
    buf: bytes, start: int = 0, end: int | None = None
) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of the boxes packed in ``buf[start:end]``."""
    end = len(buf) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", buf, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                return
            size = struct.unpack_from(">Q", buf, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            return
        yield kind, pos + header, pos + size
        pos += size


def _find(buf: bytes, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    for k, s, e in _children(buf, start, end):
        if k == kind:
            return s, e
    return None


@dataclass(slots=True)
class TrackHeader:
    track_id: int
    handler: str  # "vide", "soun", ...
    timescale: int
    default_duration: int = 0  # from trex
    fourcc: str = ""  # sample entry type: avc1, hvc1, hev1, mp4a, ...
    width: int = 0
    height: int = 0
    object_type: int = 0  # esds objectTypeIndication for mp4a/mp4v

    @property
    def codec(self) -> str:
        """FFmpeg codec name for the sample entry (best effort, no decoding)."""
        if self.fourcc in ("mp4a", "mp4v"):
            name = _OBJECT_TYPES.get(self.object_type)
            if name:
                return name
            return "aac" if self.fourcc == "mp4a" else "mpeg4"
        return _FOURCCS.get(self.fourcc, self.fourcc.strip() or "unknown")


_FOURCCS = {
    "avc1": "h264", "avc3": "h264", "hvc1": "hevc", "hev1": "hevc", "av01": "av1",
    "vp09": "vp9", "Opus": "opus", "fLaC": "flac", "ac-3": "ac3", "ec-3": "eac3",
    "alac": "alac", "jpeg": "mjpeg", "mjpa": "mjpeg",
}
_OBJECT_TYPES = {0x40: "aac", 0x66: "aac", 0x67: "aac", 0x68: "aac", 0x69: "mp3", 0x6B: "mp3",
                 0x6C: "mjpeg", 0x20: "mpeg4", 0x21: "h264", 0xA5: "ac3", 0xA6: "eac3"}


def _descriptor(buf: bytes, pos: int, end: int) -> tuple[int, int, int] | None:
    """(tag, payload start, payload end) of an MPEG-4 descriptor at ``pos``."""
    if pos + 2 > end:
        return None
    tag = buf[pos]
    pos += 1
    size = 0
    for _ in range(4):
        if pos >= end:
            return None
        b = buf[pos]
        pos += 1
        size = (size << 7) | (b & 0x7F)
        if not b & 0x80:
            break
    return tag, pos, min(end, pos + size)


def _esds_object_type(buf: bytes, start: int, end: int) -> int:
    es = _descriptor(buf, start + 4, end)  # skip FullBox version/flags
    if es is None or es[0] != 0x03:
        return 0
    pos = es[1] + 2  # ES_ID
    if pos >= es[2]:
        return 0
    flags = buf[pos]
    pos += 1
    if flags & 0x80:
        pos += 2
    if flags & 0x40:
        pos += 1 + buf[pos] if pos < es[2] else 0
    if flags & 0x20:
        pos += 2
    dc = _descriptor(buf, pos, es[2])
    if dc is None or dc[0] != 0x04 or dc[1] >= dc[2]:
        return 0
    return buf[dc[1]]


def _sample_entry(buf: bytes, stsd: tuple[int, int], track: TrackHeader) -> None:
    start, end = stsd
    # FullBox header (4) + entry_count (4), then the first sample entry box.
    for kind, s, e in _children(buf, start + 8, end):
        track.fourcc = kind.decode("latin-1")
        if track.handler == "vide" and s + 28 <= e:
            track.width, track.height = struct.unpack_from(">HH", buf, s + 24)
            children_at = s + 78
        else:
            children_at = s + 28
        if kind in (b"mp4a", b"mp4v"):
            esds = _find(buf, children_at, e, b"esds")
            if esds is not None:
                track.object_type = _esds_object_type(buf, esds[0], esds[1])
        return


def parse_moov(buf: bytes) -> dict[int, TrackHeader]:
    """Tracks of a moov payload: id, handler type, media timescale, trex defaults."""
    tracks: dict[int, TrackHeader] = {}
    trex: dict[int, int] = {}
    for kind, s, e in _children(buf):
        if kind == b"trak":
            tkhd = _find(buf, s, e, b"tkhd")
            mdia = _find(buf, s, e, b"mdia")
            if tkhd is None or mdia is None:
                continue
            version = buf[tkhd[0]]
            track_id = struct.unpack_from(">I", buf, tkhd[0] + (20 if version == 1 else 12))[0]
            mdhd = _find(buf, mdia[0], mdia[1], b"mdhd")
            hdlr = _find(buf, mdia[0], mdia[1], b"hdlr")
            if mdhd is None or hdlr is None:
                continue
            mversion = buf[mdhd[0]]
            timescale = struct.unpack_from(">I", buf, mdhd[0] + (20 if mversion == 1 else 12))[0]
            handler = buf[hdlr[0] + 8 : hdlr[0] + 12].decode("ascii", "replace")
            track = TrackHeader(track_id, handler, timescale)
            minf = _find(buf, mdia[0], mdia[1], b"minf")
            stbl = _find(buf, minf[0], minf[1], b"stbl") if minf else None
            stsd = _find(buf, stbl[0], stbl[1], b"stsd") if stbl else None
            if stsd is not None:
                _sample_entry(buf, stsd, track)
            tracks[track_id] = track
        elif kind == b"mvex":
            for k2, s2, _e2 in _children(buf, s, e):
                if k2 == b"trex":
                    tid, _desc, duration = struct.unpack_from(">III", buf, s2 + 4)
                    trex[tid] = duration
    for tid, duration in trex.items():
        if tid in tracks:
            tracks[tid].default_duration = duration
    return tracks


@dataclass(frozen=True, slots=True)
class TrackRun:
    track_id: int
    base_decode_time: int
    samples: int
    duration: int  # sum of sample durations, in the track timescale


def parse_moof(buf: bytes, defaults: dict[int, int]) -> list[TrackRun]:
    """Per-track sample runs of a moof payload (one entry per traf)."""
    runs: list[TrackRun] = []
    for kind, s, e in _children(buf):
        if kind != b"traf":
            continue
        track_id = 0
        default_duration = 0
        base_time = 0
        samples = 0
        duration = 0
        for k2, s2, _e2 in _children(buf, s, e):
            if k2 == b"tfhd":
                flags = int.from_bytes(buf[s2 + 1 : s2 + 4], "big")
                track_id = struct.unpack_from(">I", buf, s2 + 4)[0]
                default_duration = defaults.get(track_id, 0)
                pos = s2 + 8
                if flags & 0x01:
                    pos += 8
                if flags & 0x02:
                    pos += 4
                if flags & 0x08:
                    default_duration = struct.unpack_from(">I", buf, pos)[0]
            elif k2 == b"tfdt":
                if buf[s2] == 1:
                    base_time = struct.unpack_from(">Q", buf, s2 + 4)[0]
                else:
                    base_time = struct.unpack_from(">I", buf, s2 + 4)[0]
            elif k2 == b"trun":
                flags = int.from_bytes(buf[s2 + 1 : s2 + 4], "big")
                count = struct.unpack_from(">I", buf, s2 + 4)[0]
                pos = s2 + 8
                if flags & 0x001:
                    pos += 4
                if flags & 0x004:
                    pos += 4
                per_sample = 4 * bin(flags & 0xF00).count("1")
                if flags & 0x100:
                    for i in range(count):
                        duration += struct.unpack_from(">I", buf, pos + i * per_sample)[0]
                else:
                    duration += count * default_duration
                samples += count
        runs.append(TrackRun(track_id, base_time, samples, duration))
    return runs


@dataclass(slots=True)
class TrackSummary:
    handler: str
    timescale: int
    codec: str = ""
    width: int = 0
    height: int = 0
    samples: int = 0
    first_time: int | None = None  # tfdt of the first fragment, track timescale
    end_time: int = 0  # tfdt + durations of the last fragment, track timescale

    @property
    def duration_us(self) -> int:
        if self.first_time is None or self.timescale <= 0:
            return 0
        return round((self.end_time - self.first_time) * 1_000_000 / self.timescale)


@dataclass(slots=True)
class FragmentScan:
    """What a fragmented MP4 contains up to ``valid_end``."""

    file_size: int
    valid_end: int  # bytes worth keeping: header + complete fragments (+ complete trailer)
    header_end: int  # end of moov, 0 when ftyp/moov are missing or incomplete
    fragments: int
    tracks: dict[int, TrackSummary] = field(default_factory=dict)
    complete: bool = False  # a clean trailer (mfra) follows the last fragment

    @property
    def samples(self) -> int:
        return sum(t.samples for t in self.tracks.values())

    def track(self, handler: str) -> TrackSummary | None:
        for t in self.tracks.values():
            if t.handler == handler:
                return t
        return None

    @property
    def video_duration_us(self) -> int:
        t = self.track("vide")
        return t.duration_us if t is not None else 0


def _read_box(f: BinaryIO, box: Box) -> bytes:
    if box.size > _MAX_HEADER_BOX:
        raise ValueError(f"{box.type!r} box of {box.size} bytes is implausibly large")
    f.seek(box.start + box.header)
    return f.read(box.size - box.header)


def scan_fragments(f: BinaryIO, size: int) -> FragmentScan:
    """Walk the top-level boxes of a (possibly truncated) fragmented MP4.

    ``valid_end`` is the offset after the last complete ``moof``+``mdat`` pair (or after a
    complete trailer that follows it); a file cut there plays, and nothing after it does.
    """
    scan = FragmentScan(file_size=size, valid_end=0, header_end=0, fragments=0)
    tracks: dict[int, TrackHeader] = {}
    saw_ftyp = False
    group_start: int | None = None  # start of the fragment being assembled
    pending_runs: list[TrackRun] = []
    moof_seen = False
    for box, complete in iter_boxes(f, 0, size):
        if not complete:
            break
        if not saw_ftyp:
            if box.type not in (b"ftyp", b"styp"):
                break
            saw_ftyp = True
            continue
        if scan.header_end == 0:
            if box.type == b"moov":
                try:
                    tracks = parse_moov(_read_box(f, box))
                except (struct.error, IndexError) as exc:
                    # Not something we wrote: refuse rather than cut a file we misread.
                    raise ValueError(f"unreadable moov box: {exc}") from exc
                scan.tracks = {
                    tid: TrackSummary(t.handler, t.timescale, t.codec, t.width, t.height)
                    for tid, t in tracks.items()
                }
                scan.header_end = box.end
                scan.valid_end = box.end
            continue  # free/uuid/etc. before moov
        if box.type in _FRAGMENT_PREFIX:
            if group_start is None:
                group_start = box.start
        elif box.type == b"moof":
            if moof_seen:  # two moofs in a row: the first has no data, stop there
                break
            if group_start is None:
                group_start = box.start
            defaults = {tid: t.default_duration for tid, t in tracks.items()}
            try:
                pending_runs = parse_moof(_read_box(f, box), defaults)
            except (struct.error, IndexError, ValueError):
                break  # a damaged fragment ends the valid part of the file
            moof_seen = True
        elif box.type == b"mdat":
            if not moof_seen:
                break
            for run in pending_runs:
                t = scan.tracks.get(run.track_id)
                if t is None:
                    continue
                t.samples += run.samples
                if t.first_time is None:
                    t.first_time = run.base_decode_time
                t.end_time = max(t.end_time, run.base_decode_time + run.duration)
            scan.fragments += 1
            scan.valid_end = box.end
            group_start = None
            moof_seen = False
            pending_runs = []
        elif box.type in _TRAILER_BOXES and group_start is None and not moof_seen:
            scan.valid_end = box.end
            if box.type == b"mfra":
                scan.complete = True
        else:
            break
    return scan
