"""Fragmented MP4: an init segment from FFmpeg, fragments written by hand.

Used by the recorder (``vigil.record.writer``: one file per segment) and by the live hub
(``vigil.live.hub``: a stream per viewer).

Why the split. The init segment (``ftyp`` + ``moov``) is the hard part: sample entries with
the right ``avcC``/``hvcC``/``esds`` for whatever the camera sends. FFmpeg's mp4 muxer gets
that right, once per segment or viewer, from the stream set-up in ``vigil.record.tracks``
plans (:func:`add_stream`). The fragments, on the other hand, are trivial (``moof`` with one
``traf`` per track + ``mdat``) and writing them here costs a few microseconds of Python per
packet instead of a trip through FFmpeg's muxer and a Python write callback per packet,
which measured as the largest part of recording's CPU beyond reading the stream. For live
viewers it also means a fragment leaves the moment its packet arrives: FFmpeg's muxer only
emits a fragment when the *next* packet starts one, interleaves audio and video with its own
buffering, and offers no way from Python to flush on demand.

Fragments use ``default-base-is-moof`` (data offsets relative to the ``moof``) and a
version-1 ``tfdt`` (64-bit decode times), which is what Media Source Extensions expect, and
every sample carries its own duration, size, flags and composition offset.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vigil.evidence.playback_bmff import Box, iter_boxes, parse_moov
from vigil.record import bitstream as bs
from vigil.record.mp4init import (
    HAND_CODECS_AUDIO,
    HAND_CODECS_VIDEO,
    HandTrack,
    InitError,
    audio_track,
    build_hand_init,
    video_track,
)
from vigil.record.tracks import TrackPlan

# ISO/IEC 14496-12 sample flags: a sync sample depends on nothing (sample_depends_on=2);
# any other sample depends on others (1) and is flagged non-sync.
SYNC_SAMPLE_FLAGS = 0x02000000
NON_SYNC_SAMPLE_FLAGS = 0x01010000

_TFHD_DEFAULT_BASE_IS_MOOF = 0x020000
_TFHD_DEFAULT_DURATION = 0x000008
_TFHD_DEFAULT_FLAGS = 0x000020
_TRUN_FIRST_FLAGS = 0x000004
_TRUN_DATA_OFFSET = 0x000001
_TRUN_DURATION = 0x000100
_TRUN_SIZE = 0x000200
_TRUN_FLAGS = 0x000400
_TRUN_CTO = 0x000800


class Fmp4Error(ValueError):
    """An init segment could not be made for the stream (codec the muxer refuses...)."""


@dataclass(frozen=True, slots=True)
class TrackLayout:
    """What fragment writing needs to know about one track of the init segment."""

    track_id: int
    timescale: int
    kind: str  # "video" / "audio"


@dataclass(frozen=True, slots=True)
class InitSegment:
    """``ftyp`` + ``moov`` bytes, the tracks they declare and the RFC 6381 codec string."""

    data: bytes
    video: TrackLayout
    audio: TrackLayout | None
    codecs: str  # e.g. 'avc1.64001f,mp4a.40.2'

    @property
    def mime(self) -> str:
        return f'video/mp4; codecs="{self.codecs}"'


@dataclass(frozen=True, slots=True)
class Sample:
    """One access unit ready for an ``mdat``: MP4 framing, times in the track timescale."""

    data: bytes
    decode_time: int
    duration: int
    cto: int  # composition time offset (pts - dts), may be negative
    sync: bool


class ByteCollector:
    """Write-only, non-seekable file object for PyAV's muxer: collects what it writes (with
    no ``seek`` PyAV treats the output as a stream, so nothing is ever rewritten)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out = b"".join(self.chunks)
        self.chunks.clear()
        return out


def add_stream(container: Any, plan: TrackPlan) -> Any:
    """Add ``plan``'s track to an mp4 output container, copying the codec parameters.

    With a template (a PyAV input stream) everything is copied and the plan's extradata and
    size override it; without one only video can be set up, and the muxer then finds the
    parameter sets in the first keyframe."""
    p = plan.params
    if plan.template is not None:
        stream = container.add_stream_from_template(plan.template, opaque=True)
        ctx = stream.codec_context
        ctx.extradata = plan.extradata
        if p.kind == "video":
            if p.width > 0 and p.height > 0:
                ctx.width = p.width
                ctx.height = p.height
        elif p.sample_rate > 0:
            ctx.sample_rate = p.sample_rate
        stream.time_base = plan.time_base
        return stream
    if p.kind != "video":
        raise ValueError("audio streams need a template")
    return container.add_mux_stream(
        p.codec, width=p.width, height=p.height, time_base=plan.time_base
    )


def _hand_tracks(video: TrackPlan, audio: TrackPlan | None) -> list[HandTrack] | None:
    """The tracks as hand-written sample entries, when some track has no template stream
    (so FFmpeg cannot be given its parameters) and every codec is one we describe."""
    if video.template is not None and (audio is None or audio.template is not None):
        return None
    if video.codec not in HAND_CODECS_VIDEO or (
        audio is not None and audio.codec not in HAND_CODECS_AUDIO
    ):
        return None
    p = video.params
    tracks = [video_track(p.codec, video.extradata, video.time_base.denominator, p.width, p.height)]
    if audio is not None:
        a = audio.params
        tracks.append(audio_track(a.codec, audio.extradata, a.sample_rate, a.channels))
    return tracks


def _ffmpeg_init(
    video: TrackPlan,
    audio: TrackPlan | None,
    first_keyframe: bytes | None,
    metadata: dict[str, str] | None,
) -> bytes:
    import av  # only here: hand-written init segments (native RTSP streams) need no PyAV

    sink = ByteCollector()
    options = {"movflags": "+frag_keyframe+empty_moov+default_base_moof"}
    try:
        container = av.open(sink, "w", format="mp4", options=options)
    except av.FFmpegError as exc:  # pragma: no cover - FFmpeg without the mp4 muxer
        raise Fmp4Error(f"cannot open the mp4 muxer: {exc}") from exc
    try:
        for key, value in (metadata or {}).items():
            container.metadata[key] = value
        vstream = add_stream(container, video)
        if audio is not None:
            add_stream(container, audio)
        if video.template is not None and (audio is None or audio.template is not None):
            container.start_encoding()
        else:
            if first_keyframe is None:
                raise Fmp4Error("a stream without template needs its first keyframe")
            pkt = av.Packet(video.convert(first_keyframe, True))
            pkt.stream = vstream
            pkt.time_base = video.time_base
            pkt.pts = pkt.dts = 0
            pkt.is_keyframe = True
            container.mux(pkt)
    except (av.FFmpegError, ValueError, TypeError) as exc:
        raise Fmp4Error(f"the mp4 muxer refused the stream: {exc}") from exc
    finally:
        with contextlib.suppress(av.FFmpegError):
            container.close()
    return sink.take()


def build_init_segment(
    video: TrackPlan,
    audio: TrackPlan | None,
    first_keyframe: bytes | None = None,
    metadata: dict[str, str] | None = None,
    created_unix_s: int = 0,
) -> InitSegment:
    """``ftyp`` + ``moov`` for these plans.

    With template streams FFmpeg's mp4 muxer is run just far enough to write the header
    (``metadata`` goes into its ``moov``: ``creation_time``, ``comment``...). Tracks
    without a template are H.264/H.265/AAC from Vigil's own RTSP client, written by hand
    (:mod:`vigil.record.mp4init`; ``created_unix_s`` sets the boxes' creation time);
    other template-less video (MJPEG) goes through the muxer, which finds its parameters
    in the first keyframe, muxed and thrown away: only the ``moov`` before it is kept.
    """
    try:
        hand = _hand_tracks(video, audio)
    except InitError as exc:
        raise Fmp4Error(str(exc)) from exc
    if hand is not None:
        raw = build_hand_init(hand, created_unix_s)
    else:
        raw = _ffmpeg_init(video, audio, first_keyframe, metadata)
    boxes = {b.type: b for b in iter_boxes(raw) if b.type in (b"ftyp", b"moov")}
    if b"moov" not in boxes:
        raise Fmp4Error("the mp4 muxer wrote no moov")
    moov = boxes[b"moov"]
    ftyp = boxes.get(b"ftyp")
    data = (raw[ftyp.offset : ftyp.end] if ftyp else b"") + raw[moov.offset : moov.end]
    tracks = parse_moov(raw, moov)
    vt = next((t for t in tracks if t.handler == "vide"), None)
    at = next((t for t in tracks if t.handler == "soun"), None)
    if vt is None:
        raise Fmp4Error("the init segment has no video track")
    codecs = [sample_entry_codec(raw, moov, vt.track_id)]
    if at is not None and audio is not None:
        codecs.append(sample_entry_codec(raw, moov, at.track_id))
    return InitSegment(
        data=data,
        video=TrackLayout(vt.track_id, vt.timescale, "video"),
        audio=TrackLayout(at.track_id, at.timescale, "audio") if at and audio else None,
        codecs=",".join(c for c in codecs if c),
    )


# -- codec strings (RFC 6381) ----------------------------------------------------------------


def _child(buf: bytes, parent: Box, typ: bytes, start: int | None = None) -> Box | None:
    for b in iter_boxes(buf, parent.payload if start is None else start, parent.end):
        if b.type == typ:
            return b
    return None


def _track_box(buf: bytes, moov: Box, track_id: int) -> Box | None:
    for trak in iter_boxes(buf, moov.payload, moov.end):
        if trak.type != b"trak":
            continue
        tkhd = _child(buf, trak, b"tkhd")
        if tkhd is None:
            continue
        v = buf[tkhd.payload]
        (tid,) = struct.unpack_from(">I", buf, tkhd.payload + (20 if v == 1 else 12))
        if tid == track_id:
            return trak
    return None


def sample_entry_codec(buf: bytes, moov: Box, track_id: int) -> str:
    """The RFC 6381 codec string of a track's first sample entry ('' when unknown)."""
    trak = _track_box(buf, moov, track_id)
    stsd: Box | None = trak
    for t in (b"mdia", b"minf", b"stbl", b"stsd"):
        stsd = _child(buf, stsd, t) if stsd is not None else None
    if stsd is None:
        return ""
    # stsd: full box header (4) + entry count (4), then sample entries
    entry = next(iter(iter_boxes(buf, stsd.payload + 8, stsd.end)), None)
    if entry is None:
        return ""
    fourcc = entry.type.decode("latin-1")
    if fourcc in ("avc1", "avc3", "hvc1", "hev1", "av01", "vp09"):
        # VisualSampleEntry: 8 (SampleEntry) + 70 bytes of fields before child boxes
        children = entry.payload + 78
        if fourcc in ("avc1", "avc3"):
            cfg = _child(buf, entry, b"avcC", children)
            if cfg is None:
                return fourcc
            return avc_codec_string(buf[cfg.payload : cfg.end], fourcc)
        if fourcc in ("hvc1", "hev1"):
            cfg = _child(buf, entry, b"hvcC", children)
            if cfg is None:
                return fourcc
            return hevc_codec_string(buf[cfg.payload : cfg.end], fourcc)
        return fourcc
    if fourcc == "mp4a":
        # AudioSampleEntry: 8 (SampleEntry) + 20 bytes of fields before child boxes
        esds = _child(buf, entry, b"esds", entry.payload + 28)
        if esds is None:
            return "mp4a.40.2"
        return mp4a_codec_string(buf[esds.payload + 4 : esds.end])
    if fourcc == "Opus":
        return "opus"
    if fourcc == "fLaC":
        return "flac"
    return fourcc


def avc_codec_string(avcc: bytes, fourcc: str = "avc1") -> str:
    """``avc1.PPCCLL`` from an AVCDecoderConfigurationRecord (profile, constraints, level)."""
    if len(avcc) < 4:
        return fourcc
    return f"{fourcc}.{avcc[1]:02x}{avcc[2]:02x}{avcc[3]:02x}"


def hevc_codec_string(hvcc: bytes, fourcc: str = "hvc1") -> str:
    """``hvc1.<space><profile>.<compat>.<tier><level>.<constraints>`` per ISO/IEC 14496-15
    Annex E, from an HEVCDecoderConfigurationRecord."""
    if len(hvcc) < 13:
        return fourcc
    space = (hvcc[1] >> 6) & 0x3
    tier = "H" if (hvcc[1] >> 5) & 0x1 else "L"
    profile = hvcc[1] & 0x1F
    compat = int.from_bytes(hvcc[2:6], "big")
    # the 32 compatibility flags are written in reverse bit order, as hex without zeros
    reversed_compat = int(f"{compat:032b}"[::-1], 2)
    constraints = list(hvcc[6:12])
    while constraints and constraints[-1] == 0:
        constraints.pop()
    level = hvcc[12]
    parts = [
        fourcc,
        ("", "A", "B", "C")[space] + str(profile),
        f"{reversed_compat:X}",
        f"{tier}{level}",
    ]
    parts += [f"{c:02X}" for c in constraints]
    return ".".join(parts)


def _descriptor(buf: bytes, pos: int) -> tuple[int, int, int] | None:
    """(tag, payload start, payload end) of an MPEG-4 descriptor at ``pos``."""
    if pos >= len(buf):
        return None
    tag = buf[pos]
    pos += 1
    size = 0
    for _ in range(4):
        if pos >= len(buf):
            return None
        b = buf[pos]
        pos += 1
        size = (size << 7) | (b & 0x7F)
        if not b & 0x80:
            break
    return tag, pos, min(len(buf), pos + size)


def mp4a_codec_string(es: bytes) -> str:
    """``mp4a.<OTI>[.<AOT>]`` from an ES_Descriptor (the payload of ``esds``)."""
    d = _descriptor(es, 0)
    if d is None or d[0] != 0x03:
        return "mp4a.40.2"
    _, pos, end = d
    flags = es[pos + 2] if pos + 2 < end else 0
    pos += 3
    if flags & 0x80:
        pos += 2
    if flags & 0x40:
        pos += 1 + (es[pos] if pos < end else 0)
    if flags & 0x20:
        pos += 2
    dcd = _descriptor(es, pos)
    if dcd is None or dcd[0] != 0x04:
        return "mp4a.40.2"
    _, dpos, dend = dcd
    oti = es[dpos] if dpos < dend else 0x40
    if oti != 0x40:
        return f"mp4a.{oti:02X}"
    dsi = _descriptor(es, dpos + 13)
    if dsi is None or dsi[0] != 0x05 or dsi[1] >= dsi[2]:
        return "mp4a.40.2"
    return f"mp4a.40.{aac_object_type(es[dsi[1] : dsi[2]])}"


def aac_object_type(asc: bytes) -> int:
    """The audio object type of an AudioSpecificConfig (2 = AAC-LC, 5 = HE-AAC...)."""
    if not asc:
        return 2
    aot = asc[0] >> 3
    if aot == 31 and len(asc) >= 2:
        aot = 32 + (((asc[0] & 0x07) << 3) | (asc[1] >> 5))
    return aot


# -- fragments --------------------------------------------------------------------------------


def _box(typ: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), typ) + payload


def _full_box(typ: bytes, version: int, flags: int, payload: bytes) -> bytes:
    return _box(typ, struct.pack(">I", (version << 24) | flags) + payload)


def _traf(track_id: int, samples: Sequence[Sample], data_offset: int) -> bytes:
    """One ``traf``. Values shared by all samples go into ``tfhd`` defaults (and a keyframe
    opening a video run into ``first_sample_flags``), as FFmpeg does: per-sample fields
    would cost 12 bytes per sample, which for a low-bitrate camera with audio is more
    than 1 % of the file."""
    durations = {max(0, s.duration) for s in samples}
    flags = [SYNC_SAMPLE_FLAGS if s.sync else NON_SYNC_SAMPLE_FLAGS for s in samples]
    rest = set(flags[1:])
    has_cto = any(s.cto for s in samples)
    tfhd_flags = _TFHD_DEFAULT_BASE_IS_MOOF
    tfhd_fields = [track_id]
    trun_flags = _TRUN_DATA_OFFSET | _TRUN_SIZE
    if len(durations) == 1:
        tfhd_flags |= _TFHD_DEFAULT_DURATION
        tfhd_fields.append(durations.pop())
    else:
        trun_flags |= _TRUN_DURATION
    first_flags: int | None = None
    if len(rest) <= 1:
        tfhd_flags |= _TFHD_DEFAULT_FLAGS
        default = rest.pop() if rest else flags[0]
        tfhd_fields.append(default)
        if flags[0] != default:
            trun_flags |= _TRUN_FIRST_FLAGS
            first_flags = flags[0]
    else:
        trun_flags |= _TRUN_FLAGS
    if has_cto:
        trun_flags |= _TRUN_CTO
    fmt = (
        ">"
        + "I" * (1 + bool(trun_flags & _TRUN_DURATION) + bool(trun_flags & _TRUN_FLAGS))
        + ("i" if has_cto else "")
    )
    per_duration = bool(trun_flags & _TRUN_DURATION)
    per_flags = bool(trun_flags & _TRUN_FLAGS)
    pack = struct.Struct(fmt).pack
    entries = []
    for s, f in zip(samples, flags, strict=True):
        fields: list[int] = []
        if per_duration:
            fields.append(max(0, s.duration))
        fields.append(len(s.data))
        if per_flags:
            fields.append(f)
        if has_cto:
            fields.append(s.cto)
        entries.append(pack(*fields))
    head = struct.pack(">Ii", len(samples), data_offset)
    if first_flags is not None:
        head += struct.pack(">I", first_flags)
    tfhd = _full_box(
        b"tfhd", 0, tfhd_flags, struct.pack(">" + "I" * len(tfhd_fields), *tfhd_fields)
    )
    tfdt = _full_box(b"tfdt", 1, 0, struct.pack(">Q", samples[0].decode_time))
    trun = _full_box(b"trun", 1 if has_cto else 0, trun_flags, head + b"".join(entries))
    return _box(b"traf", tfhd + tfdt + trun)


def fragment_parts(sequence: int, runs: Sequence[tuple[int, Sequence[Sample]]]) -> list[bytes]:
    """``moof`` + ``mdat`` holding ``runs`` ((track id, samples in decode order) per track)
    as a list of byte strings to write in order: the ``moof``, the ``mdat`` header, then
    the samples themselves, uncopied (a recorder hands the list to ``os.writev``).

    Nothing is taken from the ``moov``'s ``trex`` defaults: each ``traf`` states its own
    (composition offsets, when present, are signed: a version-1 ``trun``)."""
    runs = [(tid, samples) for tid, samples in runs if samples]
    if not runs:
        raise ValueError("a fragment needs at least one sample")
    mfhd = _full_box(b"mfhd", 0, 0, struct.pack(">I", sequence & 0xFFFFFFFF))
    # first pass with zero offsets gives the moof size; offsets do not change any size
    moof_size = 8 + len(mfhd) + sum(len(_traf(tid, samples, 0)) for tid, samples in runs)
    trafs = []
    pos = moof_size + 8  # past the moof and the mdat header
    for tid, samples in runs:
        trafs.append(_traf(tid, samples, pos))
        pos += sum(len(s.data) for s in samples)
    moof = _box(b"moof", mfhd + b"".join(trafs))
    mdat_size = pos - moof_size
    return [moof, struct.pack(">I4s", mdat_size, b"mdat")] + [
        s.data for _t, samples in runs for s in samples
    ]


def build_fragment(sequence: int, runs: Sequence[tuple[int, Sequence[Sample]]]) -> bytes:
    """:func:`fragment_parts` joined into one byte string."""
    return b"".join(fragment_parts(sequence, runs))


def to_mp4_sample(plan: TrackPlan, data: bytes) -> bytes:
    """A packet's bytes as an MP4 sample of ``plan``'s track.

    The recorder hands Annex B packets to FFmpeg, which rewrites them; here nobody does, so
    Annex B is turned into 4-byte length prefixes (FFmpeg's avcC/hvcC made from Annex B
    parameter sets always says 4). Length-prefixed input keeps its record's length size."""
    if plan.framing == "annexb":
        nals, _ = bs.split_nals(data, 4)
        return bs.join_length_prefixed(nals, 4)
    return plan.convert(data, False)
