"""Byte-level helpers for the elementary streams the recorder copies into MP4.

Cameras and demuxers disagree on how H.264/H.265 is framed: RTSP depacketizers hand out
Annex B (start codes) with Annex B parameter sets, MP4/MKV demuxers hand out length-prefixed
NAL units with an avcC/hvcC configuration record, and a few ingest paths mix the two. FFmpeg's
mp4 muxer converts Annex B to the MP4 form itself, but only when *both* the extradata and the
packets are Annex B; a mix produces files that do not play. These helpers let the recorder
make every session consistent before muxing, without decoding anything: they only move
start codes and length prefixes around, and read NAL unit headers.

AAC arrives either raw (RTSP, MP4) with an AudioSpecificConfig, or with ADTS headers
(MPEG-TS, some cameras). MP4 wants raw frames plus the AudioSpecificConfig, so ADTS headers
are stripped and, if needed, the config is built from the first header.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

START_CODE = b"\x00\x00\x00\x01"

# NAL unit types that carry parameter sets, per codec.
_H264_PARAM_SETS = frozenset({7, 8})  # SPS, PPS
_HEVC_PARAM_SETS = frozenset({32, 33, 34})  # VPS, SPS, PPS
NAL_CODECS = frozenset({"h264", "hevc"})


def nal_type(codec: str, nal: bytes) -> int:
    """The NAL unit type from its header (first one or two bytes)."""
    if not nal:
        return -1
    if codec == "hevc":
        return (nal[0] >> 1) & 0x3F
    return nal[0] & 0x1F


def is_parameter_set(codec: str, nal: bytes) -> bool:
    kinds = _HEVC_PARAM_SETS if codec == "hevc" else _H264_PARAM_SETS
    return nal_type(codec, nal) in kinds


def starts_with_start_code(data: bytes) -> bool:
    return data[:3] == b"\x00\x00\x01" or data[:4] == START_CODE


def split_annexb(data: bytes) -> list[bytes]:
    """NAL units of an Annex B buffer, without start codes.

    Trailing zero bytes before a start code (``trailing_zero_8bits``) are dropped; empty
    units are skipped.
    """
    out: list[bytes] = []
    n = len(data)
    i = data.find(b"\x00\x00\x01")
    if i < 0:
        return [data] if data else []
    i += 3
    while i < n:
        j = data.find(b"\x00\x00\x01", i)
        end = n if j < 0 else j
        nal = data[i:end]
        if j >= 0:
            nal = nal.rstrip(b"\x00")
        if nal:
            out.append(nal)
        if j < 0:
            break
        i = j + 3
    return out


def split_length_prefixed(data: bytes, length_size: int = 4) -> list[bytes] | None:
    """NAL units of a length-prefixed buffer, or ``None`` when the buffer is not one.

    The check is structural: the prefixes must tile the buffer exactly and every unit must
    have a valid NAL header (forbidden_zero_bit clear). A buffer that starts with a
    start code almost never passes, which is how Annex B is told apart from a
    length-prefixed packet whose first unit happens to be 256-511 bytes long
    (``00 00 01 xx``).
    """
    if length_size not in (1, 2, 4):
        return None
    out: list[bytes] = []
    i, n = 0, len(data)
    while i < n:
        if i + length_size > n:
            return None
        size = int.from_bytes(data[i : i + length_size], "big")
        i += length_size
        if size == 0 or i + size > n or data[i] & 0x80:
            return None
        out.append(data[i : i + size])
        i += size
    return out if out else None


def is_length_prefixed(data: bytes, length_size: int = 4) -> bool:
    """Like :func:`split_length_prefixed` but without copying: True when the prefixes tile
    ``data`` exactly and every unit has a valid NAL header."""
    if length_size not in (1, 2, 4) or not data or data[:4] == START_CODE:
        return False
    i, n = 0, len(data)
    while i < n:
        if i + length_size > n:
            return False
        size = int.from_bytes(data[i : i + length_size], "big")
        i += length_size
        if size == 0 or i + size > n or data[i] & 0x80:
            return False
        i += size
    return True


def split_nals(data: bytes, length_size: int = 4) -> tuple[list[bytes], bool]:
    """NAL units of a packet in either framing; the flag is True when it was Annex B.

    A four-byte start code wins outright (as a length prefix it would announce a one-byte
    first unit, which no encoder emits); otherwise a buffer whose prefixes tile it exactly
    is length-prefixed, and anything else is parsed as Annex B.
    """
    if data[:4] == START_CODE:
        return split_annexb(data), True
    units = split_length_prefixed(data, length_size)
    if units is not None:
        return units, False
    return split_annexb(data), True


def join_annexb(nals: Iterable[bytes]) -> bytes:
    return b"".join(START_CODE + nal for nal in nals)


def join_length_prefixed(nals: Iterable[bytes], length_size: int = 4) -> bytes:
    return b"".join(len(nal).to_bytes(length_size, "big") + nal for nal in nals)


def is_config_record(extradata: bytes | None) -> bool:
    """True for an avcC/hvcC record (configurationVersion 1), False for Annex B or nothing.

    This is the same test FFmpeg's mp4 muxer applies to decide whether to convert.
    """
    return bool(extradata) and extradata is not None and extradata[0] == 1


def _read_u16(buf: bytes, pos: int) -> int:
    if pos + 2 > len(buf):
        raise ValueError("truncated configuration record")
    return int.from_bytes(buf[pos : pos + 2], "big")


def parse_avcc(record: bytes) -> tuple[int, list[bytes]]:
    """(NAL length size, parameter-set NAL units) of an avcC record."""
    if len(record) < 7 or record[0] != 1:
        raise ValueError("not an avcC record")
    length_size = (record[4] & 0x03) + 1
    nals: list[bytes] = []
    pos = 5
    count = record[pos] & 0x1F
    pos += 1
    for _ in range(count):
        size = _read_u16(record, pos)
        nals.append(record[pos + 2 : pos + 2 + size])
        pos += 2 + size
    if pos >= len(record):
        raise ValueError("truncated avcC record")
    count = record[pos]
    pos += 1
    for _ in range(count):
        size = _read_u16(record, pos)
        nals.append(record[pos + 2 : pos + 2 + size])
        pos += 2 + size
    if any(not nal for nal in nals):
        raise ValueError("empty parameter set in avcC")
    return length_size, nals


def parse_hvcc(record: bytes) -> tuple[int, list[bytes]]:
    """(NAL length size, parameter-set NAL units) of an hvcC record."""
    if len(record) < 23 or record[0] != 1:
        raise ValueError("not an hvcC record")
    length_size = (record[21] & 0x03) + 1
    arrays = record[22]
    pos = 23
    nals: list[bytes] = []
    for _ in range(arrays):
        if pos + 3 > len(record):
            raise ValueError("truncated hvcC record")
        count = _read_u16(record, pos + 1)
        pos += 3
        for _ in range(count):
            size = _read_u16(record, pos)
            nals.append(record[pos + 2 : pos + 2 + size])
            pos += 2 + size
    if pos > len(record) or any(not nal for nal in nals):
        raise ValueError("truncated hvcC record")
    return length_size, nals


def parse_config_record(codec: str, record: bytes) -> tuple[int, list[bytes]]:
    return parse_hvcc(record) if codec == "hevc" else parse_avcc(record)


def parameter_sets(codec: str, nals: Iterable[bytes]) -> list[bytes]:
    """The parameter-set units among ``nals``, in order, without duplicates."""
    seen: set[bytes] = set()
    out: list[bytes] = []
    for nal in nals:
        if is_parameter_set(codec, nal) and nal not in seen:
            seen.add(nal)
            out.append(nal)
    return out


def has_all_parameter_sets(codec: str, nals: Iterable[bytes]) -> bool:
    kinds = {nal_type(codec, nal) for nal in nals}
    need = _HEVC_PARAM_SETS if codec == "hevc" else _H264_PARAM_SETS
    return need <= kinds


# --- AAC -------------------------------------------------------------------------------

_ADTS_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025,
               8000, 7350)


def is_adts(data: bytes) -> bool:
    return len(data) >= 7 and data[0] == 0xFF and (data[1] & 0xF6) == 0xF0


def iter_adts_frames(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(header, raw payload) of each ADTS frame in a packet (usually exactly one)."""
    pos = 0
    while pos + 7 <= len(data) and is_adts(data[pos:]):
        protection_absent = data[pos + 1] & 0x01
        header_len = 7 if protection_absent else 9
        frame_len = ((data[pos + 3] & 0x03) << 11) | (data[pos + 4] << 3) | (data[pos + 5] >> 5)
        if frame_len < header_len or pos + frame_len > len(data):
            break
        yield data[pos : pos + header_len], data[pos + header_len : pos + frame_len]
        pos += frame_len


def strip_adts(data: bytes) -> bytes:
    """Raw AAC payload of an ADTS packet; non-ADTS input is returned unchanged."""
    if not is_adts(data):
        return data
    frames = list(iter_adts_frames(data))
    if not frames:
        return data
    return b"".join(payload for _, payload in frames)


def adts_to_asc(header: bytes) -> bytes:
    """AudioSpecificConfig (2 bytes) equivalent to an ADTS header."""
    profile = (header[2] >> 6) & 0x03
    freq_index = (header[2] >> 2) & 0x0F
    channels = ((header[2] & 0x01) << 2) | (header[3] >> 6)
    object_type = profile + 1
    value = (object_type << 11) | (freq_index << 7) | (channels << 3)
    return value.to_bytes(2, "big")


def adts_sample_rate(header: bytes) -> int:
    index = (header[2] >> 2) & 0x0F
    return _ADTS_RATES[index] if index < len(_ADTS_RATES) else 0


def lc_asc(sample_rate: int, channels: int) -> bytes | None:
    """AudioSpecificConfig for AAC-LC at a standard rate, or None when it cannot be
    expressed in the short form. Used only as a provisional config (see ``tracks``)."""
    if sample_rate not in _ADTS_RATES or not 1 <= channels <= 7:
        return None
    value = (2 << 11) | (_ADTS_RATES.index(sample_rate) << 7) | (channels << 3)
    return value.to_bytes(2, "big")
