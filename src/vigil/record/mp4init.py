"""An fMP4 init segment (``ftyp`` + ``moov``) written by hand for H.264, H.265 and AAC.

Why not always FFmpeg's muxer (``vigil.record.fmp4.build_init_segment``)? It needs codec
parameters in a PyAV stream, and the only way to get one is a stream of a PyAV *input*
container. Cameras read by Vigil's own RTSP client (``vigil.ingest.rtsp``) have none: their
parameters come from the SDP and the bitstream. For the three codecs such cameras send,
the sample entries are small and fully specified (ISO/IEC 14496-12 and 14496-15:
``avc1``+``avcC``, ``hev1``+``hvcC``; ISO/IEC 14496-14: ``mp4a``+``esds``), so they are
written here from the decoder configuration we already hold. The layout follows what
FFmpeg writes for ``empty_moov`` fragmented files (same fourccs, ``trex`` per track, empty
sample tables), so readers see no difference.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from vigil.ingest.bitstream import BitstreamError, ParameterSets, parse_sps
from vigil.record import bitstream as bs

# seconds between 1904-01-01 (MP4 epoch) and 1970-01-01
_MP4_EPOCH_OFFSET = 2_082_844_800
_MATRIX = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)
_LANGUAGE_UND = 0x55C4
HAND_CODECS_VIDEO = frozenset({"h264", "hevc"})
HAND_CODECS_AUDIO = frozenset({"aac"})


class InitError(ValueError):
    """The track cannot be described by hand (unknown codec, no usable configuration)."""


@dataclass(frozen=True, slots=True)
class HandTrack:
    """What a sample entry needs: codec, decoder configuration and dimensions/rate."""

    kind: str  # "video" / "audio"
    codec: str
    config: bytes  # avcC / hvcC record, or AudioSpecificConfig
    timescale: int
    width: int = 0
    height: int = 0
    sample_rate: int = 0
    channels: int = 0


def _box(typ: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), typ) + body


def _full(typ: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return _box(typ, struct.pack(">I", (version << 24) | flags), *payload)


def video_track(
    codec: str, extradata: bytes | None, timescale: int, width: int = 0, height: int = 0
) -> HandTrack:
    """A video track from an avcC/hvcC record or from Annex-B parameter sets."""
    if codec not in HAND_CODECS_VIDEO:
        raise InitError(f"no hand-written sample entry for {codec!r}")
    if not extradata:
        raise InitError(f"{codec} without parameter sets")
    if bs.is_config_record(extradata):
        try:
            _size, nals = bs.parse_config_record(codec, extradata)
        except (ValueError, IndexError) as exc:
            raise InitError(f"unreadable {codec} configuration record: {exc}") from exc
        record = extradata
    else:
        nals = bs.split_annexb(extradata)
    sets = ParameterSets.from_nals(codec, nals)
    if not sets.complete:
        raise InitError(f"{codec} parameter sets are incomplete")
    if not bs.is_config_record(extradata):
        record = sets.record(4)
    if width <= 0 or height <= 0:
        try:
            info = parse_sps(codec, sets.sps[0])
            width, height = info.width, info.height
        except (BitstreamError, IndexError) as exc:
            raise InitError(f"unreadable {codec} SPS: {exc}") from exc
    return HandTrack("video", codec, record, timescale, width=width, height=height)


def audio_track(codec: str, asc: bytes | None, sample_rate: int, channels: int) -> HandTrack:
    """An AAC track from its AudioSpecificConfig."""
    if codec not in HAND_CODECS_AUDIO:
        raise InitError(f"no hand-written sample entry for {codec!r}")
    if not asc or len(asc) < 2:
        raise InitError("AAC without an AudioSpecificConfig")
    if sample_rate <= 0:
        raise InitError("AAC without a sample rate")
    return HandTrack(
        "audio", codec, asc, sample_rate, sample_rate=sample_rate, channels=max(1, channels)
    )


def _descriptor(tag: int, body: bytes) -> bytes:
    """An MPEG-4 descriptor with the 4-byte size form FFmpeg uses."""
    n = len(body)
    size = bytes(
        (0x80 | (n >> 21) & 0x7F, 0x80 | (n >> 14) & 0x7F, 0x80 | (n >> 7) & 0x7F, n & 0x7F)
    )
    return bytes((tag,)) + size + body


def _esds(asc: bytes) -> bytes:
    decoder_specific = _descriptor(0x05, asc)
    # objectTypeIndication 0x40 (MPEG-4 audio), streamType 5 (audio) << 2 | reserved 1,
    # bufferSizeDB, maxBitrate, avgBitrate (0: unknown)
    decoder_config = _descriptor(
        0x04, bytes((0x40, 0x15)) + b"\0\0\0" + b"\0" * 8 + decoder_specific
    )
    sl_config = _descriptor(0x06, b"\x02")
    es = _descriptor(0x03, struct.pack(">HB", 0, 0) + decoder_config + sl_config)
    return _full(b"esds", 0, 0, es)


def _sample_entry(t: HandTrack) -> bytes:
    if t.kind == "video":
        fourcc, config_box = (b"avc1", b"avcC") if t.codec == "h264" else (b"hev1", b"hvcC")
        return _box(
            fourcc,
            b"\0" * 6,
            struct.pack(">H", 1),  # data_reference_index
            b"\0" * 16,  # pre_defined, reserved, pre_defined[3]
            struct.pack(">HHIIIH", t.width, t.height, 0x00480000, 0x00480000, 0, 1),
            b"\0" * 32,  # compressorname
            struct.pack(">Hh", 0x0018, -1),
            _box(config_box, t.config),
        )
    rate = t.sample_rate << 16 if t.sample_rate < 65536 else 0
    return _box(
        b"mp4a",
        b"\0" * 6,
        struct.pack(">H", 1),
        b"\0" * 8,
        struct.pack(">HHHHI", t.channels, 16, 0, 0, rate),
        _esds(t.config),
    )


def _trak(t: HandTrack, track_id: int, created: int) -> bytes:
    video = t.kind == "video"
    tkhd = _full(
        b"tkhd",
        0,
        0x3,  # enabled, in movie
        struct.pack(">IIIII", created, created, track_id, 0, 0),
        b"\0" * 8,
        struct.pack(">hhhH", 0, 0 if video else 1, 0 if video else 0x0100, 0),
        _MATRIX,
        struct.pack(">II", (t.width << 16) if video else 0, (t.height << 16) if video else 0),
    )
    mdhd = _full(
        b"mdhd", 0, 0, struct.pack(">IIIIHH", created, created, t.timescale, 0, _LANGUAGE_UND, 0)
    )
    handler, name = (b"vide", b"VideoHandler\0") if video else (b"soun", b"SoundHandler\0")
    hdlr = _full(b"hdlr", 0, 0, b"\0" * 4, handler, b"\0" * 12, name)
    media_header = _full(b"vmhd", 0, 1, b"\0" * 8) if video else _full(b"smhd", 0, 0, b"\0" * 4)
    dinf = _box(b"dinf", _full(b"dref", 0, 0, struct.pack(">I", 1), _full(b"url ", 0, 1)))
    stbl = _box(
        b"stbl",
        _full(b"stsd", 0, 0, struct.pack(">I", 1), _sample_entry(t)),
        _full(b"stts", 0, 0, b"\0" * 4),
        _full(b"stsc", 0, 0, b"\0" * 4),
        _full(b"stsz", 0, 0, b"\0" * 8),
        _full(b"stco", 0, 0, b"\0" * 4),
    )
    minf = _box(b"minf", media_header, dinf, stbl)
    return _box(b"trak", tkhd, _box(b"mdia", mdhd, hdlr, minf))


def build_hand_init(tracks: list[HandTrack], created_unix_s: int = 0) -> bytes:
    """``ftyp`` + ``moov`` for ``tracks`` (track ids 1, 2, ... in order), empty sample
    tables and a ``trex`` per track, ready for ``moof``/``mdat`` fragments."""
    if not tracks or tracks[0].kind != "video":
        raise InitError("the first track must be video")
    created = (created_unix_s + _MP4_EPOCH_OFFSET) & 0xFFFFFFFF if created_unix_s else 0
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isomiso2avc1iso6mp41")
    mvhd = _full(
        b"mvhd",
        0,
        0,
        struct.pack(">IIII", created, created, 1000, 0),
        struct.pack(">IH", 0x00010000, 0x0100),
        b"\0" * 10,
        _MATRIX,
        b"\0" * 24,
        struct.pack(">I", len(tracks) + 1),
    )
    traks = [_trak(t, i, created) for i, t in enumerate(tracks, 1)]
    mvex = _box(
        b"mvex",
        *(
            _full(b"trex", 0, 0, struct.pack(">IIIII", i, 1, 0, 0, 0))
            for i in range(1, len(tracks) + 1)
        ),
    )
    return ftyp + _box(b"moov", mvhd, *traks, mvex)
