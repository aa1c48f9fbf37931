"""Just enough ISO-BMFF (MP4) box handling to serve recorded fragmented MP4 without remuxing.

Vigil's segments are fragmented MP4 files: ``ftyp`` + an empty ``moov`` (the init segment)
followed by ``moof``/``mdat`` pairs of about a second, each starting on a keyframe. Because
every fragment is self-contained, HLS parts and "play from here" streams can be produced by
copying fragment bytes and rewriting a handful of header fields (decode time, sequence
number, data offsets) instead of demuxing and remuxing every packet. That keeps the first
byte fast and the CPU cost close to a file copy.

What is parsed: top-level box layout, ``moov`` (track ids, handler, timescale, edit list,
``trex`` defaults, sample description bytes) and each ``moof`` (``mfhd``, ``tfhd``, ``tfdt``,
``trun``). Anything else inside a ``traf`` is carried through untouched.

Scanning never trusts sizes: a box that runs past the end of the file (a segment truncated
behind Vigil's back, or still being written) ends the scan, and only complete fragments are
reported. Plain reads are used, not ``mmap``, because a file truncated while mapped raises
SIGBUS and would kill the process.
"""

from __future__ import annotations

import hashlib
import os
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

# Boxes whose payload is only other boxes (the ones we need to walk or rebuild).
_CONTAINERS = frozenset(
    {
        b"moov",
        b"trak",
        b"mdia",
        b"minf",
        b"stbl",
        b"mvex",
        b"edts",
        b"moof",
        b"traf",
        b"dinf",
        b"udta",
    }
)

# tfhd flags
_TFHD_BASE_DATA_OFFSET = 0x000001
_TFHD_SAMPLE_DESCRIPTION_INDEX = 0x000002
_TFHD_DEFAULT_DURATION = 0x000008
_TFHD_DEFAULT_SIZE = 0x000010
_TFHD_DEFAULT_FLAGS = 0x000020
_TFHD_DEFAULT_BASE_IS_MOOF = 0x020000
# trun flags
_TRUN_DATA_OFFSET = 0x000001
_TRUN_FIRST_SAMPLE_FLAGS = 0x000004
_TRUN_DURATION = 0x000100
_TRUN_SIZE = 0x000200
_TRUN_FLAGS = 0x000400
_TRUN_CTO = 0x000800
# sample flags
_SAMPLE_NON_SYNC = 0x00010000

NTP_UNIX_OFFSET_S = 2_208_988_800  # seconds from 1900-01-01 (NTP era 0) to 1970-01-01
PRFT_FLAGS_CAPTURED = 24  # ISO/IEC 14496-12: ntp_timestamp is the capture time of the sample

_MAX_INIT_BYTES = 16 * 1024 * 1024  # a moov bigger than this is not an empty fMP4 init
_MAX_MOOF_BYTES = 16 * 1024 * 1024


class BmffError(ValueError):
    """The bytes are not a fragmented MP4 this module can handle."""


@dataclass(frozen=True, slots=True)
class Box:
    type: bytes
    offset: int  # of the box header, relative to whatever buffer/file it was read from
    size: int  # whole box including header
    header: int  # header length (8 or 16)

    @property
    def payload(self) -> int:
        return self.offset + self.header

    @property
    def end(self) -> int:
        return self.offset + self.size


def iter_boxes(
    buf: bytes | bytearray | memoryview, start: int = 0, end: int | None = None
) -> Iterator[Box]:
    """Boxes laid end to end in ``buf[start:end]``; stops (silently) at a truncated box."""
    stop = len(buf) if end is None else end
    pos = start
    while pos + 8 <= stop:
        size, typ = struct.unpack_from(">I4s", buf, pos)
        header = 8
        if size == 1:
            if pos + 16 > stop:
                return
            (size,) = struct.unpack_from(">Q", buf, pos + 8)
            header = 16
        elif size == 0:
            size = stop - pos
        if size < header or pos + size > stop:
            return
        yield Box(bytes(typ), pos, size, header)
        pos += size


def _child(buf: bytes, parent: Box, typ: bytes) -> Box | None:
    for b in iter_boxes(buf, parent.payload, parent.end):
        if b.type == typ:
            return b
    return None


def _children(buf: bytes, parent: Box, typ: bytes) -> list[Box]:
    return [b for b in iter_boxes(buf, parent.payload, parent.end) if b.type == typ]


def _path(buf: bytes, parent: Box, *types: bytes) -> Box | None:
    cur: Box | None = parent
    for t in types:
        if cur is None:
            return None
        cur = _child(buf, cur, t)
    return cur


# -- moov ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrackInfo:
    track_id: int
    handler: str  # "vide", "soun", ...
    timescale: int
    edit_media_time: int  # media time of the first non-empty edit (0 without an edit list)
    default_duration: int  # trex defaults, used when tfhd/trun do not override
    default_size: int
    default_flags: int


def parse_moov(buf: bytes, moov: Box) -> list[TrackInfo]:
    """Tracks of an init segment, with what fragment parsing needs from the moov."""
    trex: dict[int, tuple[int, int, int]] = {}
    mvex = _child(buf, moov, b"mvex")
    if mvex is not None:
        for tx in _children(buf, mvex, b"trex"):
            tid, _sdi, dur, size, flags = struct.unpack_from(">IIIII", buf, tx.payload + 4)
            trex[tid] = (dur, size, flags)
    tracks: list[TrackInfo] = []
    for trak in _children(buf, moov, b"trak"):
        tkhd = _child(buf, trak, b"tkhd")
        mdhd = _path(buf, trak, b"mdia", b"mdhd")
        hdlr = _path(buf, trak, b"mdia", b"hdlr")
        if tkhd is None or mdhd is None or hdlr is None:
            continue
        v = buf[tkhd.payload]
        (tid,) = struct.unpack_from(">I", buf, tkhd.payload + (20 if v == 1 else 12))
        v = buf[mdhd.payload]
        (timescale,) = struct.unpack_from(">I", buf, mdhd.payload + (20 if v == 1 else 12))
        handler = buf[hdlr.payload + 8 : hdlr.payload + 12].decode("latin-1")
        edit = 0
        elst = _path(buf, trak, b"edts", b"elst")
        if elst is not None:
            v = buf[elst.payload]
            (count,) = struct.unpack_from(">I", buf, elst.payload + 4)
            pos = elst.payload + 8
            for _ in range(count):
                if v == 1:
                    _dur, media_time = struct.unpack_from(">Qq", buf, pos)
                    pos += 20
                else:
                    _dur32, media_time = struct.unpack_from(">Ii", buf, pos)
                    pos += 12
                if media_time >= 0:
                    edit = media_time
                    break
        d, s, f = trex.get(tid, (0, 0, 0))
        tracks.append(TrackInfo(tid, handler, timescale, edit, d, s, f))
    return tracks


def init_signature(buf: bytes, moov: Box) -> bytes:
    """What must be equal for fragments of one file to be decodable with another file's init
    segment: sample descriptions (codec, size, parameter sets), timescales, edit lists and
    fragment defaults. Creation times and durations are deliberately left out."""
    h = hashlib.sha256()
    for trak in _children(buf, moov, b"trak"):
        for p in ((b"mdia", b"hdlr"), (b"mdia", b"minf", b"stbl", b"stsd"), (b"edts",)):
            b = _path(buf, trak, *p)
            h.update(bytes(buf[b.offset : b.end]) if b is not None else b"-")
        mdhd = _path(buf, trak, b"mdia", b"mdhd")
        if mdhd is not None:
            v = buf[mdhd.payload]
            h.update(
                buf[mdhd.payload + (20 if v == 1 else 12) : mdhd.payload + (24 if v == 1 else 16)]
            )
        tkhd = _child(buf, trak, b"tkhd")
        if tkhd is not None:
            v = buf[tkhd.payload]
            h.update(
                buf[tkhd.payload + (20 if v == 1 else 12) : tkhd.payload + (24 if v == 1 else 16)]
            )
    mvex = _child(buf, moov, b"mvex")
    if mvex is not None:
        for tx in _children(buf, mvex, b"trex"):
            h.update(buf[tx.offset : tx.end])
    return h.digest()


# -- moof ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrafInfo:
    """One track's run of samples in a fragment, times in the track's timescale."""

    track_id: int
    decode_time: int  # tfdt: decode time of the first sample
    duration: int  # sum of sample durations
    samples: int
    first_sync: bool  # the first sample is a sync sample (keyframe)
    first_cts: int  # composition time of the first sample (decode_time + offset)
    min_cts: int  # earliest composition time in the run


@dataclass(frozen=True, slots=True)
class Fragment:
    offset: int  # file offset of the moof
    moof_size: int
    size: int  # moof plus the mdat box(es) that follow it
    sequence: int
    trafs: tuple[TrafInfo, ...]

    @property
    def end(self) -> int:
        return self.offset + self.size

    def traf(self, track_id: int) -> TrafInfo | None:
        for t in self.trafs:
            if t.track_id == track_id:
                return t
        return None


def _parse_traf(
    buf: bytes,
    traf: Box,
    tracks: dict[int, TrackInfo],
    samples_out: list[tuple[int, int, int]] | None = None,
) -> TrafInfo | None:
    tfhd = tfdt = None
    truns: list[Box] = []
    for b in iter_boxes(buf, traf.payload, traf.end):  # one pass over the children
        if b.type == b"tfhd":
            tfhd = b
        elif b.type == b"tfdt":
            tfdt = b
        elif b.type == b"trun":
            truns.append(b)
    if tfhd is None:
        return None
    (vf,) = struct.unpack_from(">I", buf, tfhd.payload)
    flags = vf & 0xFFFFFF
    (tid,) = struct.unpack_from(">I", buf, tfhd.payload + 4)
    t = tracks.get(tid)
    d_dur, d_flags = (t.default_duration, t.default_flags) if t else (0, 0)
    pos = tfhd.payload + 8
    if flags & _TFHD_BASE_DATA_OFFSET:
        pos += 8
    if flags & _TFHD_SAMPLE_DESCRIPTION_INDEX:
        pos += 4
    if flags & _TFHD_DEFAULT_DURATION:
        (d_dur,) = struct.unpack_from(">I", buf, pos)
        pos += 4
    if flags & _TFHD_DEFAULT_SIZE:
        pos += 4
    if flags & _TFHD_DEFAULT_FLAGS:
        (d_flags,) = struct.unpack_from(">I", buf, pos)
    base = 0
    if tfdt is not None:
        if buf[tfdt.payload] == 1:
            (base,) = struct.unpack_from(">Q", buf, tfdt.payload + 4)
        else:
            (base,) = struct.unpack_from(">I", buf, tfdt.payload + 4)
    dts = base
    n = 0
    first_sync = False
    first_cts = min_cts = base
    for trun in truns:
        (vf,) = struct.unpack_from(">I", buf, trun.payload)
        version, tflags = vf >> 24, vf & 0xFFFFFF
        (count,) = struct.unpack_from(">I", buf, trun.payload + 4)
        pos = trun.payload + 8
        if tflags & _TRUN_DATA_OFFSET:
            pos += 4
        first_flags: int | None = None
        if tflags & _TRUN_FIRST_SAMPLE_FLAGS:
            (first_flags,) = struct.unpack_from(">I", buf, pos)
            pos += 4
        fields = [f for f in (_TRUN_DURATION, _TRUN_SIZE, _TRUN_FLAGS, _TRUN_CTO) if tflags & f]
        rec = 4 * len(fields)
        if pos + rec * count > trun.end:
            raise BmffError("trun sample table runs past its box")
        i_dur = fields.index(_TRUN_DURATION) if _TRUN_DURATION in fields else -1
        i_flags = fields.index(_TRUN_FLAGS) if _TRUN_FLAGS in fields else -1
        i_cto = fields.index(_TRUN_CTO) if _TRUN_CTO in fields else -1
        fmt = ">" + "".join("i" if (f == _TRUN_CTO and version) else "I" for f in fields)
        table = struct.iter_unpack(fmt, buf[pos : pos + rec * count]) if rec else iter([()] * count)
        for i, vals in enumerate(table):
            dur = vals[i_dur] if i_dur >= 0 else d_dur
            cts = dts + (vals[i_cto] if i_cto >= 0 else 0)
            if samples_out is not None:
                samples_out.append((dts, cts, dur))
            if n == 0:
                sflags = vals[i_flags] if i_flags >= 0 else d_flags
                if i == 0 and first_flags is not None:
                    sflags = first_flags
                first_sync = not (sflags & _SAMPLE_NON_SYNC)
                first_cts = min_cts = cts
            elif cts < min_cts:
                min_cts = cts
            dts += dur
            n += 1
    return TrafInfo(tid, base, dts - base, n, first_sync, first_cts, min_cts)


def parse_moof(buf: bytes, moof: Box, tracks: dict[int, TrackInfo]) -> tuple[int, list[TrafInfo]]:
    mfhd = _child(buf, moof, b"mfhd")
    seq = struct.unpack_from(">I", buf, mfhd.payload + 4)[0] if mfhd is not None else 0
    trafs = [t for b in _children(buf, moof, b"traf") if (t := _parse_traf(buf, b, tracks))]
    return seq, trafs


def fragment_samples(path: Path, frag: Fragment, track: TrackInfo) -> list[tuple[int, int, int]]:
    """(decode time, composition time, duration) of every sample of ``track`` in ``frag``,
    re-read from the file. Layouts keep only per-fragment summaries to stay small in the
    cache; the per-sample view is needed only to snap a start instant to a frame."""
    with open(path, "rb") as f:
        data = _read_exact(f, frag.offset, frag.moof_size)
    if len(data) != frag.moof_size:
        raise BmffError("fragment vanished while reading")
    moof = Box(b"moof", 0, frag.moof_size, 8)
    out: list[tuple[int, int, int]] = []
    for b in _children(data, moof, b"traf"):
        tfhd = _child(data, b, b"tfhd")
        if (
            tfhd is not None
            and struct.unpack_from(">I", data, tfhd.payload + 4)[0] == track.track_id
        ):
            _parse_traf(data, b, {track.track_id: track}, out)
    return out


# -- file layout -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Layout:
    """Where everything is in one fragmented MP4 file, as far as it is complete."""

    path: Path
    file_size: int
    init: bytes  # ftyp + moov, usable as an HLS/MSE init segment
    tracks: tuple[TrackInfo, ...]
    fragments: tuple[Fragment, ...]
    complete_end: int  # end of the last complete fragment (or of the init if none)
    truncated: bool  # trailing bytes that do not form a complete box/fragment
    signature: bytes = field(repr=False)

    @property
    def video(self) -> TrackInfo | None:
        return next((t for t in self.tracks if t.handler == "vide"), None)

    @property
    def audio(self) -> TrackInfo | None:
        return next((t for t in self.tracks if t.handler == "soun"), None)

    def video_fragments(self) -> list[tuple[Fragment, TrafInfo]]:
        v = self.video
        if v is None:
            return []
        out = []
        for f in self.fragments:
            t = f.traf(v.track_id)
            if t is not None and t.samples:
                out.append((f, t))
        return out


def _read_exact(f: BinaryIO, offset: int, n: int) -> bytes:
    f.seek(offset)
    data = f.read(n)
    return data if len(data) == n else b""


def scan(path: Path) -> Layout:
    """Walk the top-level boxes of ``path``. Raises ``OSError`` if the file cannot be read and
    ``BmffError`` if it is not a fragmented MP4 with an init segment."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        pos = 0
        ftyp = b""
        moov_bytes = b""
        tracks: list[TrackInfo] = []
        by_id: dict[int, TrackInfo] = {}
        signature = b""
        frags: list[Fragment] = []
        pending: tuple[int, int, int, list[TrafInfo]] | None = None  # moof off, size, seq, trafs
        pending_end = 0
        complete_end = 0
        truncated = False
        while pos < size:
            head = _read_exact(f, pos, 16 if pos + 16 <= size else 8)
            if len(head) < 8:
                truncated = True
                break
            bsize, typ = struct.unpack_from(">I4s", head)
            header = 8
            if bsize == 1:
                if len(head) < 16:
                    truncated = True
                    break
                (bsize,) = struct.unpack_from(">Q", head, 8)
                header = 16
            elif bsize == 0:
                bsize = size - pos
            if bsize < header or pos + bsize > size:
                truncated = True
                break
            if typ in (b"ftyp", b"moov"):
                if bsize > _MAX_INIT_BYTES:
                    raise BmffError(f"{typ.decode()} box of {bsize} bytes is not an fMP4 init")
                data = _read_exact(f, pos, bsize)
                if typ == b"ftyp":
                    ftyp = data
                else:
                    moov_bytes = data
                    moov = Box(b"moov", 0, bsize, header)
                    tracks = parse_moov(data, moov)
                    by_id = {t.track_id: t for t in tracks}
                    signature = init_signature(data, moov)
                complete_end = pos + bsize
            elif typ == b"moof":
                if not moov_bytes:
                    raise BmffError("moof before moov")
                if pending is not None and pending_end > pending[0] + pending[1]:
                    frags.append(
                        Fragment(
                            pending[0],
                            pending[1],
                            pending_end - pending[0],
                            pending[2],
                            tuple(pending[3]),
                        )
                    )
                    complete_end = pending_end
                if bsize > _MAX_MOOF_BYTES:
                    raise BmffError("implausibly large moof")
                data = _read_exact(f, pos, bsize)
                seq, trafs = parse_moof(data, Box(b"moof", 0, bsize, header), by_id)
                pending = (pos, bsize, seq, trafs)
                pending_end = pos + bsize
            elif typ == b"mdat" and pending is not None and pending_end == pos:
                pending_end = pos + bsize
            elif pending is not None:
                # Anything else (prft, styp, sidx, free, mfra) closes the current fragment.
                if pending_end > pending[0] + pending[1]:
                    frags.append(
                        Fragment(
                            pending[0],
                            pending[1],
                            pending_end - pending[0],
                            pending[2],
                            tuple(pending[3]),
                        )
                    )
                    complete_end = pending_end
                pending = None
            pos += bsize
        if pending is not None and pending_end > pending[0] + pending[1]:
            frags.append(
                Fragment(
                    pending[0], pending[1], pending_end - pending[0], pending[2], tuple(pending[3])
                )
            )
            complete_end = pending_end
        if not moov_bytes:
            raise BmffError("no moov box (not an MP4, or truncated before its init segment)")
        if pos < size or (pending is not None and pending_end == pending[0] + pending[1]):
            truncated = True  # a trailing partial box, or a moof whose mdat never arrived
        return Layout(
            path,
            size,
            ftyp + moov_bytes,
            tuple(tracks),
            tuple(frags),
            complete_end,
            truncated,
            signature,
        )


class LayoutCache:
    """Layouts keyed by (path, size, mtime): a segment is immutable once indexed, and any
    change behind our back (truncation, replacement) changes the key. Thread-safe LRU."""

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._data: OrderedDict[tuple[str, int, int], Layout] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path) -> Layout:
        st = os.stat(path)
        key = (str(path), st.st_size, st.st_mtime_ns)
        with self._lock:
            hit = self._data.get(key)
            if hit is not None:
                self._data.move_to_end(key)
                return hit
        layout = scan(path)
        with self._lock:
            self._data[key] = layout
            while len(self._data) > self.capacity:
                self._data.popitem(last=False)
        return layout

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


layouts = LayoutCache()


# -- rewriting fragments -----------------------------------------------------------------------


def _box(typ: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), typ) + payload


def rewrite_fragment(
    data: bytes,
    frag: Fragment,
    decode_times: dict[int, int],
    sequence: int | None = None,
) -> bytes:
    """Copy one fragment (``data`` = its moof + mdat bytes, ``frag`` = its layout, whose
    offsets are absolute in the source file) with new decode times per track.

    The moof is rebuilt rather than patched so that a 32-bit ``tfdt`` can grow to 64 bits
    and an absolute ``base_data_offset`` (meaningless once the bytes move) can be replaced
    by default-base-is-moof offsets. Sample data is copied byte for byte."""
    if len(data) != frag.size:
        raise BmffError("fragment bytes do not match the layout")
    moof = Box(b"moof", 0, frag.moof_size, 8)
    if data[4:8] != b"moof":
        raise BmffError("fragment does not start with a moof")
    # First pass: rebuilt trafs with placeholder data offsets; remember where to patch.
    pieces: list[bytes] = []
    patches: list[tuple[int, int]] = []  # (position in new moof payload, source abs data pos)
    prev_data_end = frag.offset  # for trafs with neither base flag (ISO default rule)
    out_len = 8  # moof header
    for child in iter_boxes(data, moof.payload, moof.end):
        raw = data[child.offset : child.end]
        if child.type == b"mfhd" and sequence is not None:
            raw = _box(b"mfhd", struct.pack(">II", 0, sequence))
        if child.type != b"traf":
            pieces.append(raw)
            out_len += len(raw)
            continue
        tfhd = _child(data, child, b"tfhd")
        if tfhd is None:
            raise BmffError("traf without tfhd")
        (vf,) = struct.unpack_from(">I", data, tfhd.payload)
        tflags = vf & 0xFFFFFF
        (tid,) = struct.unpack_from(">I", data, tfhd.payload + 4)
        rest = data[tfhd.payload + 8 : tfhd.end]
        if tflags & _TFHD_BASE_DATA_OFFSET:
            (base,) = struct.unpack_from(">Q", rest)
            rest = rest[8:]
        elif tflags & _TFHD_DEFAULT_BASE_IS_MOOF:
            base = frag.offset
        else:
            base = prev_data_end
        new_flags = (tflags & ~_TFHD_BASE_DATA_OFFSET) | _TFHD_DEFAULT_BASE_IS_MOOF
        traf_pieces = [_box(b"tfhd", struct.pack(">II", new_flags, tid) + rest)]
        traf_patches: list[tuple[int, int]] = []
        traf_len = 8 + len(traf_pieces[0])
        had_tfdt = False
        run_pos: int | None = None  # where the previous run's data ended (ISO default rule)
        for sub in iter_boxes(data, child.payload, child.end):
            if sub.type == b"tfhd":
                continue
            sraw = data[sub.offset : sub.end]
            if sub.type == b"tfdt":
                had_tfdt = True
                if tid in decode_times:
                    sraw = _box(b"tfdt", struct.pack(">IQ", 1 << 24, decode_times[tid]))
            elif sub.type == b"trun":
                (vfl,) = struct.unpack_from(">I", data, sub.payload)
                rflags = vfl & 0xFFFFFF
                (count,) = struct.unpack_from(">I", data, sub.payload + 4)
                body = data[sub.payload + 8 : sub.end]
                if rflags & _TRUN_DATA_OFFSET:
                    (doff,) = struct.unpack_from(">i", body)
                    body = body[4:]
                    src_pos = base + doff
                else:
                    src_pos = base if run_pos is None else run_pos
                # where this run's data ends: the default start of the next run / traf
                run_pos = src_pos + _trun_data_size(data, sub, tflags, rest)
                prev_data_end = run_pos
                sraw = (
                    struct.pack(
                        ">I4sII", 16 + 4 + len(body), b"trun", vfl | _TRUN_DATA_OFFSET, count
                    )
                    + b"\0\0\0\0"
                    + body
                )
                traf_patches.append((traf_len + 16, src_pos))
            traf_pieces.append(sraw)
            traf_len += len(sraw)
        if not had_tfdt and tid in decode_times:
            sraw = _box(b"tfdt", struct.pack(">IQ", 1 << 24, decode_times[tid]))
            # insert right after tfhd; shift the patch positions accordingly
            traf_pieces.insert(1, sraw)
            traf_patches = [(p + len(sraw), s) for p, s in traf_patches]
            traf_len += len(sraw)
        traf_raw = struct.pack(">I4s", traf_len, b"traf") + b"".join(traf_pieces)
        patches.extend((out_len + p, s) for p, s in traf_patches)
        pieces.append(traf_raw)
        out_len += len(traf_raw)
    new_moof = bytearray(struct.pack(">I4s", out_len, b"moof") + b"".join(pieces))
    src_moof_end = frag.offset + frag.moof_size
    for pos, src in patches:
        rel = src - src_moof_end + out_len
        struct.pack_into(">i", new_moof, pos, rel)
    return bytes(new_moof) + data[frag.moof_size :]


def _trun_data_size(data: bytes, trun: Box, tflags: int, tfhd_rest: bytes) -> int:
    """Bytes of sample data described by one trun (sizes from the run or the defaults)."""
    (vfl,) = struct.unpack_from(">I", data, trun.payload)
    rflags = vfl & 0xFFFFFF
    (count,) = struct.unpack_from(">I", data, trun.payload + 4)
    if not rflags & _TRUN_SIZE:
        default = 0
        pos = 0
        if tflags & _TFHD_SAMPLE_DESCRIPTION_INDEX:
            pos += 4
        if tflags & _TFHD_DEFAULT_DURATION:
            pos += 4
        if tflags & _TFHD_DEFAULT_SIZE:
            (default,) = struct.unpack_from(">I", tfhd_rest, pos)
        return int(default) * int(count)
    pos = trun.payload + 8
    if rflags & _TRUN_DATA_OFFSET:
        pos += 4
    if rflags & _TRUN_FIRST_SAMPLE_FLAGS:
        pos += 4
    fields = [f for f in (_TRUN_DURATION, _TRUN_SIZE, _TRUN_FLAGS, _TRUN_CTO) if rflags & f]
    rec = 4 * len(fields)
    idx = fields.index(_TRUN_SIZE) * 4
    return sum(int(struct.unpack_from(">I", data, pos + i * rec + idx)[0]) for i in range(count))


# -- producer reference time (wall clock) ------------------------------------------------------


def ntp_from_us(wall_us: int) -> int:
    """64-bit NTP timestamp (seconds since 1900 . 32-bit fraction) for a Unix time in µs."""
    secs, rem = divmod(wall_us, 1_000_000)
    return ((secs + NTP_UNIX_OFFSET_S) << 32) | ((rem << 32) // 1_000_000)


def us_from_ntp(ntp: int) -> int:
    secs = (ntp >> 32) - NTP_UNIX_OFFSET_S
    return secs * 1_000_000 + (((ntp & 0xFFFFFFFF) * 1_000_000 + (1 << 31)) >> 32)


def prft_box(track_id: int, wall_us: int, media_time: int) -> bytes:
    """A version-1 ``prft``: sample at ``media_time`` (composition time in the track's
    timescale, before any edit list) of ``track_id`` was captured at ``wall_us``."""
    payload = struct.pack(">I", (1 << 24) | PRFT_FLAGS_CAPTURED)
    payload += struct.pack(">IQQ", track_id, ntp_from_us(wall_us), media_time)
    return _box(b"prft", payload)


@dataclass(frozen=True, slots=True)
class Prft:
    track_id: int
    wall_us: int
    media_time: int


def parse_prft(buf: bytes, box: Box) -> Prft:
    v = buf[box.payload]
    tid, ntp = struct.unpack_from(">IQ", buf, box.payload + 4)
    if v == 1:
        (mt,) = struct.unpack_from(">Q", buf, box.payload + 16)
    else:
        (mt,) = struct.unpack_from(">I", buf, box.payload + 16)
    return Prft(tid, us_from_ntp(ntp), mt)


# (composition time of a fragment's first video sample, video track) -> wall µs, or None
WallOf = Callable[[int, TrackInfo], int | None]


class FragmentStamper:
    """Streaming filter over muxer output: passes top-level boxes through and puts a ``prft``
    in front of every ``moof``, computed by a callback from the fragment's first video
    composition time. Used on FFmpeg's fMP4 output because its own ``write_prft`` can only
    stamp the current wall clock or the raw pts, neither of which is the recording time."""

    def __init__(self, wall_of: WallOf) -> None:
        self._buf = bytearray()
        self._wall_of = wall_of
        self._tracks: dict[int, TrackInfo] = {}
        self._video: TrackInfo | None = None

    def feed(self, data: bytes) -> bytes:
        self._buf += data
        out: list[bytes] = []
        consumed = 0
        for b in iter_boxes(self._buf):
            raw = bytes(self._buf[b.offset : b.end])
            if b.type == b"moov":
                self._tracks = {
                    t.track_id: t for t in parse_moov(raw, Box(b"moov", 0, b.size, b.header))
                }
                self._video = next((t for t in self._tracks.values() if t.handler == "vide"), None)
            elif b.type == b"moof" and self._video is not None:
                _seq, trafs = parse_moof(raw, Box(b"moof", 0, b.size, b.header), self._tracks)
                vt = next((t for t in trafs if t.track_id == self._video.track_id), None)
                if vt is not None and vt.samples:
                    wall = self._wall_of(vt.first_cts, self._video)
                    if wall is not None:
                        out.append(prft_box(self._video.track_id, wall, vt.first_cts))
            out.append(raw)
            consumed = b.end
        del self._buf[:consumed]
        return b"".join(out)

    def flush(self) -> bytes:
        rest = bytes(self._buf)
        self._buf.clear()
        return rest


def read_prfts(data: bytes) -> tuple[list[TrackInfo], list[Prft]]:
    """Tracks (from the moov) and every prft of a complete fMP4 byte string."""
    tracks: list[TrackInfo] = []
    prfts: list[Prft] = []
    for b in iter_boxes(data):
        if b.type == b"moov":
            tracks = parse_moov(data, b)
        elif b.type == b"prft":
            prfts.append(parse_prft(data, b))
    return tracks, prfts
