"""Just enough H.264/H.265/JPEG bitstream parsing to notice codec changes without decoding.

Cameras change resolution or encoder settings mid-stream by sending new parameter sets
(SPS/PPS, plus VPS for H.265) in a keyframe. A stream-copy recorder that keeps writing into
the old file produces video that no player can decode, so ingest compares the parameter sets
of each keyframe with those in force and starts a new session when they differ. Everything
here works on the compressed bytes: splitting NAL units, removing emulation-prevention bytes,
a small exp-Golomb reader for the SPS fields we need (size, profile, chroma format, bit
depth) and builders for the ISO/IEC 14496-15 ``avcC``/``hvcC`` records.

Framing. Packets arrive either in Annex-B form (start codes; RTSP, MPEG-TS, raw files) or in
length-prefixed form (MP4, Matroska, FLV). FFmpeg's MP4 muxer decides which one it is being
fed by looking at the extradata: a record starting with byte 1 (avcC/hvcC) means "packets are
length-prefixed", anything else means "Annex-B, convert for me". Ingest therefore always
produces extradata *in the same framing as the packets* (see :func:`extradata_for`).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

Framing = Literal["annexb", "length"]

H264_SPS, H264_PPS = 7, 8
HEVC_VPS, HEVC_SPS, HEVC_PPS = 32, 33, 34

_START3 = b"\x00\x00\x01"
_START4 = b"\x00\x00\x00\x01"


class BitstreamError(ValueError):
    """A parameter set or record is truncated or malformed."""


# --------------------------------------------------------------------------- NAL units


def split_annexb(data: bytes) -> list[bytes]:
    """NAL units of an Annex-B byte stream, without start codes or trailing zero bytes."""
    out: list[bytes] = []
    i = data.find(_START3)
    while i >= 0:
        start = i + 3
        j = data.find(_START3, start)
        end = len(data) if j < 0 else j
        nal = data[start:end].rstrip(b"\x00")
        if nal:
            out.append(nal)
        i = j
    return out


def iter_annexb(data: bytes) -> Iterator[tuple[int, int]]:
    """(start, end) offsets of NAL units, lazily: lets callers stop at the first slice
    without scanning a multi-hundred-kilobyte keyframe to the end."""
    i = data.find(_START3)
    while i >= 0:
        start = i + 3
        j = data.find(_START3, start)
        end = len(data) if j < 0 else j
        yield start, end
        i = j


def split_length_prefixed(data: bytes, length_size: int = 4) -> list[bytes]:
    """NAL units of a length-prefixed (AVCC/HVCC) access unit."""
    return [data[s:e] for s, e in iter_length_prefixed(data, length_size)]


def iter_length_prefixed(data: bytes, length_size: int = 4) -> Iterator[tuple[int, int]]:
    pos, n = 0, len(data)
    while pos + length_size <= n:
        size = int.from_bytes(data[pos : pos + length_size], "big")
        pos += length_size
        if size == 0 or pos + size > n:
            return  # truncated or padding: stop rather than misparse
        yield pos, pos + size
        pos += size


def detect_framing(data: bytes) -> Framing:
    """Annex-B if the buffer starts with a start code, length-prefixed otherwise."""
    return "annexb" if data.startswith(_START3) or data.startswith(_START4) else "length"


def unescape_rbsp(nal: bytes) -> bytes:
    """Remove emulation-prevention bytes (00 00 03 -> 00 00)."""
    if b"\x00\x00\x03" not in nal:
        return nal
    out = bytearray()
    zeros = 0
    for b in nal:
        if zeros >= 2 and b == 3:
            zeros = 0
            continue
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


def nal_type(codec: str, nal: bytes) -> int:
    if not nal:
        return -1
    if codec == "h264":
        return nal[0] & 0x1F
    return (nal[0] >> 1) & 0x3F


def is_vcl(codec: str, ntype: int) -> bool:
    """Slice data: parameter sets that matter for a picture come before its first slice."""
    if codec == "h264":
        return 1 <= ntype <= 5
    return 0 <= ntype <= 31


# --------------------------------------------------------------------------- bit reader


class BitReader:
    """MSB-first bit reader with Exp-Golomb codes (H.264 7.2 / H.265 7.2)."""

    __slots__ = ("_data", "_len", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0
        self._len = len(data) * 8

    @property
    def bits_left(self) -> int:
        return self._len - self._pos

    def u(self, n: int) -> int:
        if n == 0:
            return 0
        if self._pos + n > self._len:
            raise BitstreamError("parameter set truncated")
        value = 0
        for _ in range(n):
            byte = self._data[self._pos >> 3]
            value = (value << 1) | ((byte >> (7 - (self._pos & 7))) & 1)
            self._pos += 1
        return value

    def flag(self) -> bool:
        return self.u(1) == 1

    def skip(self, n: int) -> None:
        if self._pos + n > self._len:
            raise BitstreamError("parameter set truncated")
        self._pos += n

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise BitstreamError("invalid Exp-Golomb code")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


# --------------------------------------------------------------------------- SPS parsing


@dataclass(frozen=True, slots=True)
class SpsInfo:
    """The SPS fields ingest and the configuration records need."""

    codec: str
    sps_id: int
    width: int
    height: int
    chroma_format_idc: int
    bit_depth_luma: int
    bit_depth_chroma: int
    profile_idc: int
    level_idc: int
    # H.264: constraint_set flags byte. H.265: the 12 raw bytes of general_profile_tier_level
    # (profile_space/tier/profile_idc, compatibility flags, constraint flags, level).
    profile_bytes: bytes = b""
    max_sub_layers: int = 1
    temporal_id_nesting: bool = True


_H264_HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}


def _skip_h264_scaling_list(r: BitReader, size: int) -> None:
    last, nxt = 8, 8
    for _ in range(size):
        if nxt != 0:
            nxt = (last + r.se() + 256) % 256
        last = nxt if nxt != 0 else last


def parse_h264_sps(nal: bytes) -> SpsInfo:
    """Parse an H.264 SPS NAL unit (header byte included) far enough for the picture size."""
    if not nal or nal[0] & 0x1F != H264_SPS:
        raise BitstreamError("not an H.264 SPS")
    rbsp = unescape_rbsp(nal[1:])
    if len(rbsp) < 4:
        raise BitstreamError("H.264 SPS truncated")
    r = BitReader(rbsp)
    profile_idc = r.u(8)
    constraints = r.u(8)
    level_idc = r.u(8)
    sps_id = r.ue()
    chroma_format_idc, separate_planes, depth_l, depth_c = 1, False, 8, 8
    if profile_idc in _H264_HIGH_PROFILES:
        chroma_format_idc = r.ue()
        if chroma_format_idc == 3:
            separate_planes = r.flag()
        depth_l = r.ue() + 8
        depth_c = r.ue() + 8
        r.skip(1)  # qpprime_y_zero_transform_bypass_flag
        if r.flag():  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format_idc != 3 else 12):
                if r.flag():
                    _skip_h264_scaling_list(r, 16 if i < 6 else 64)
    r.ue()  # log2_max_frame_num_minus4
    poc_type = r.ue()
    if poc_type == 0:
        r.ue()  # log2_max_pic_order_cnt_lsb_minus4
    elif poc_type == 1:
        r.skip(1)  # delta_pic_order_always_zero_flag
        r.se()  # offset_for_non_ref_pic
        r.se()  # offset_for_top_to_bottom_field
        for _ in range(r.ue()):
            r.se()
    r.ue()  # max_num_ref_frames
    r.skip(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = r.ue() + 1
    height_map_units = r.ue() + 1
    frame_mbs_only = r.flag()
    if not frame_mbs_only:
        r.skip(1)  # mb_adaptive_frame_field_flag
    r.skip(1)  # direct_8x8_inference_flag
    crop = (0, 0, 0, 0)
    if r.flag():  # frame_cropping_flag
        crop = (r.ue(), r.ue(), r.ue(), r.ue())
    chroma_array_type = 0 if separate_planes else chroma_format_idc
    if chroma_array_type == 0:
        crop_x, crop_y = 1, 2 - int(frame_mbs_only)
    else:
        sub_w = 1 if chroma_format_idc == 3 else 2
        sub_h = 2 if chroma_format_idc == 1 else 1
        crop_x, crop_y = sub_w, sub_h * (2 - int(frame_mbs_only))
    width = width_mbs * 16 - crop_x * (crop[0] + crop[1])
    height = (2 - int(frame_mbs_only)) * height_map_units * 16 - crop_y * (crop[2] + crop[3])
    if width <= 0 or height <= 0:
        raise BitstreamError("H.264 SPS has an invalid picture size")
    return SpsInfo(
        codec="h264",
        sps_id=sps_id,
        width=width,
        height=height,
        chroma_format_idc=chroma_format_idc,
        bit_depth_luma=depth_l,
        bit_depth_chroma=depth_c,
        profile_idc=profile_idc,
        level_idc=level_idc,
        profile_bytes=bytes([constraints]),
    )


def parse_hevc_sps(nal: bytes) -> SpsInfo:
    """Parse an H.265 SPS NAL unit (2-byte header included) far enough for the picture
    size and the hvcC header fields."""
    if len(nal) < 3 or (nal[0] >> 1) & 0x3F != HEVC_SPS:
        raise BitstreamError("not an H.265 SPS")
    rbsp = unescape_rbsp(nal[2:])
    r = BitReader(rbsp)
    r.u(4)  # sps_video_parameter_set_id
    max_sub_layers_minus1 = r.u(3)
    nesting = r.flag()
    # general_profile_tier_level: 2+1+5 + 32 + 48 + 8 bits = 12 bytes, byte aligned here
    # (the SPS starts with 4+3+1 = 8 bits).
    if len(rbsp) < 13:
        raise BitstreamError("H.265 SPS truncated")
    ptl = rbsp[1:13]
    r.skip(96)
    profile_idc = ptl[0] & 0x1F
    level_idc = ptl[11]
    sub_profile_present: list[bool] = []
    sub_level_present: list[bool] = []
    for _ in range(max_sub_layers_minus1):
        sub_profile_present.append(r.flag())
        sub_level_present.append(r.flag())
    if max_sub_layers_minus1 > 0:
        for _ in range(max_sub_layers_minus1, 8):
            r.skip(2)
    for i in range(max_sub_layers_minus1):
        if sub_profile_present[i]:
            r.skip(88)
        if sub_level_present[i]:
            r.skip(8)
    sps_id = r.ue()
    chroma_format_idc = r.ue()
    if chroma_format_idc == 3:
        r.skip(1)  # separate_colour_plane_flag
    width = r.ue()
    height = r.ue()
    if r.flag():  # conformance_window_flag
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
        sub_w = 2 if chroma_format_idc in (1, 2) else 1
        sub_h = 2 if chroma_format_idc == 1 else 1
        width -= sub_w * (left + right)
        height -= sub_h * (top + bottom)
    depth_l = r.ue() + 8
    depth_c = r.ue() + 8
    if width <= 0 or height <= 0 or width > 65535 or height > 65535:
        raise BitstreamError("H.265 SPS has an invalid picture size")
    return SpsInfo(
        codec="hevc",
        sps_id=sps_id,
        width=width,
        height=height,
        chroma_format_idc=chroma_format_idc,
        bit_depth_luma=depth_l,
        bit_depth_chroma=depth_c,
        profile_idc=profile_idc,
        level_idc=level_idc,
        profile_bytes=bytes(ptl),
        max_sub_layers=max_sub_layers_minus1 + 1,
        temporal_id_nesting=nesting,
    )


def parse_sps(codec: str, nal: bytes) -> SpsInfo:
    return parse_h264_sps(nal) if codec == "h264" else parse_hevc_sps(nal)


def _ps_id(codec: str, ntype: int, nal: bytes) -> int:
    """The id a parameter set is referenced by; sets with the same id replace each other."""
    try:
        if codec == "h264":
            r = BitReader(unescape_rbsp(nal[1:16]))
            if ntype == H264_SPS:
                r.skip(24)
            return r.ue()
        if ntype == HEVC_VPS:
            return nal[2] >> 4
        if ntype == HEVC_SPS:
            return parse_hevc_sps(nal).sps_id
        return BitReader(unescape_rbsp(nal[2:16])).ue()
    except BitstreamError:
        return -1


# --------------------------------------------------------------------------- parameter sets


@dataclass(frozen=True, slots=True)
class ParameterSets:
    """The VPS/SPS/PPS in force, keyed by (nal type, id), in a canonical order so that two
    instances compare equal exactly when a decoder would be configured the same way."""

    codec: str
    sets: tuple[tuple[int, int, bytes], ...] = ()  # (nal type, id, nal bytes), sorted

    @classmethod
    def from_nals(cls, codec: str, nals: Iterable[bytes]) -> ParameterSets:
        return cls(codec).merged(nals)

    def merged(self, nals: Iterable[bytes]) -> ParameterSets:
        """These sets updated with ``nals`` (non-parameter-set NAL units are ignored)."""
        table = {(t, i): n for t, i, n in self.sets}
        wanted = _ps_types(self.codec)
        for nal in nals:
            nal = nal.rstrip(b"\x00")
            t = nal_type(self.codec, nal)
            if t in wanted:
                table[(t, _ps_id(self.codec, t, nal))] = nal
        ordered = tuple(sorted(((t, i, n) for (t, i), n in table.items()), key=_ps_sort_key))
        return ParameterSets(self.codec, ordered)

    def of_type(self, ntype: int) -> list[bytes]:
        return [n for t, _, n in self.sets if t == ntype]

    @property
    def vps(self) -> list[bytes]:
        return self.of_type(HEVC_VPS) if self.codec == "hevc" else []

    @property
    def sps(self) -> list[bytes]:
        return self.of_type(H264_SPS if self.codec == "h264" else HEVC_SPS)

    @property
    def pps(self) -> list[bytes]:
        return self.of_type(H264_PPS if self.codec == "h264" else HEVC_PPS)

    @property
    def complete(self) -> bool:
        """Enough to configure a decoder (H.265 also needs a VPS)."""
        return bool(self.sps and self.pps and (self.codec == "h264" or self.vps))

    def sps_info(self) -> SpsInfo | None:
        """The first SPS parsed, or None when there is none or it does not parse."""
        for nal in self.sps:
            try:
                return parse_sps(self.codec, nal)
            except BitstreamError:
                continue
        return None

    def annexb(self) -> bytes:
        """Annex-B extradata: each set behind a 4-byte start code, VPS, SPS, PPS order."""
        return b"".join(_START4 + n for _, _, n in self.sets)

    def record(self, length_size: int = 4) -> bytes:
        """avcC (H.264) or hvcC (H.265) decoder configuration record."""
        if self.codec == "h264":
            return build_avcc(self.sps, self.pps, length_size)
        return build_hvcc(self.vps, self.sps, self.pps, length_size)


def _ps_types(codec: str) -> tuple[int, ...]:
    return (H264_SPS, H264_PPS) if codec == "h264" else (HEVC_VPS, HEVC_SPS, HEVC_PPS)


def _ps_sort_key(item: tuple[int, int, bytes]) -> tuple[int, int]:
    return item[0], item[1]


# --------------------------------------------------------------------------- records


def build_avcc(sps: list[bytes], pps: list[bytes], length_size: int = 4) -> bytes:
    """AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1)."""
    if not sps or not pps:
        raise BitstreamError("avcC needs at least one SPS and one PPS")
    if not 1 <= length_size <= 4 or length_size == 3:
        raise BitstreamError("NAL length size must be 1, 2 or 4")
    first = sps[0]
    if len(first) < 4:
        raise BitstreamError("H.264 SPS truncated")
    out = bytearray([1, first[1], first[2], first[3], 0xFC | (length_size - 1)])
    out.append(0xE0 | len(sps))
    for s in sps:
        out += struct.pack(">H", len(s)) + s
    out.append(len(pps))
    for p in pps:
        out += struct.pack(">H", len(p)) + p
    if first[1] in (100, 110, 122, 144):
        info = parse_h264_sps(first)
        out.append(0xFC | (info.chroma_format_idc & 3))
        out.append(0xF8 | ((info.bit_depth_luma - 8) & 7))
        out.append(0xF8 | ((info.bit_depth_chroma - 8) & 7))
        out.append(0)  # numOfSequenceParameterSetExt
    return bytes(out)


def build_hvcc(vps: list[bytes], sps: list[bytes], pps: list[bytes], length_size: int = 4) -> bytes:
    """HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 8.3.3.1). Fields that need the VUI
    (min_spatial_segmentation, parallelism, frame rate) are written as 'unknown' (0)."""
    if not vps or not sps or not pps:
        raise BitstreamError("hvcC needs a VPS, an SPS and a PPS")
    if length_size not in (1, 2, 4):
        raise BitstreamError("NAL length size must be 1, 2 or 4")
    info = parse_hevc_sps(sps[0])
    out = bytearray([1])
    out += info.profile_bytes  # profile space/tier/idc, compat, constraints, level
    out += struct.pack(">H", 0xF000)  # reserved + min_spatial_segmentation_idc = 0
    out.append(0xFC)  # reserved + parallelismType = 0 (unknown)
    out.append(0xFC | (info.chroma_format_idc & 3))
    out.append(0xF8 | ((info.bit_depth_luma - 8) & 7))
    out.append(0xF8 | ((info.bit_depth_chroma - 8) & 7))
    out += struct.pack(">H", 0)  # avgFrameRate unknown
    out.append(
        ((info.max_sub_layers & 7) << 3) | (int(info.temporal_id_nesting) << 2) | (length_size - 1)
    )
    arrays = [(HEVC_VPS, vps), (HEVC_SPS, sps), (HEVC_PPS, pps)]
    out.append(len(arrays))
    for ntype, nals in arrays:
        out.append(0x80 | ntype)  # array_completeness = 1
        out += struct.pack(">H", len(nals))
        for n in nals:
            out += struct.pack(">H", len(n)) + n
    return bytes(out)


@dataclass(frozen=True, slots=True)
class ParsedExtradata:
    framing: Framing
    length_size: int
    sets: ParameterSets


def parse_extradata(codec: str, extradata: bytes | None) -> ParsedExtradata | None:
    """Parameter sets and framing from container extradata (avcC, hvcC or Annex-B).

    Returns None for codecs other than h264/hevc or when there is no extradata.
    """
    if codec not in ("h264", "hevc") or not extradata:
        return None
    if extradata[0] == 1 and detect_framing(extradata) == "length":
        try:
            if codec == "h264":
                return _parse_avcc(extradata)
            return _parse_hvcc(extradata)
        except (IndexError, struct.error) as exc:
            raise BitstreamError(f"{codec} configuration record truncated") from exc
    return ParsedExtradata("annexb", 4, ParameterSets.from_nals(codec, split_annexb(extradata)))


def _parse_avcc(data: bytes) -> ParsedExtradata:
    length_size = (data[4] & 3) + 1
    pos = 5
    nals: list[bytes] = []
    for count_mask in (0x1F, 0xFF):
        count = data[pos] & count_mask
        pos += 1
        for _ in range(count):
            (n,) = struct.unpack_from(">H", data, pos)
            pos += 2
            if pos + n > len(data):
                raise IndexError
            nals.append(data[pos : pos + n])
            pos += n
    return ParsedExtradata("length", length_size, ParameterSets.from_nals("h264", nals))


def _parse_hvcc(data: bytes) -> ParsedExtradata:
    length_size = (data[21] & 3) + 1
    num_arrays = data[22]
    pos = 23
    nals: list[bytes] = []
    for _ in range(num_arrays):
        pos += 1  # completeness + type: the NAL header says the type anyway
        (count,) = struct.unpack_from(">H", data, pos)
        pos += 2
        for _ in range(count):
            (n,) = struct.unpack_from(">H", data, pos)
            pos += 2
            if pos + n > len(data):
                raise IndexError
            nals.append(data[pos : pos + n])
            pos += n
    return ParsedExtradata("length", length_size, ParameterSets.from_nals("hevc", nals))


def leading_parameter_sets(
    codec: str, data: bytes, framing: Framing, length_size: int = 4
) -> list[bytes]:
    """Parameter-set NAL units of an access unit that come before its first slice."""
    wanted = _ps_types(codec)
    out: list[bytes] = []
    spans = iter_annexb(data) if framing == "annexb" else iter_length_prefixed(data, length_size)
    for start, end in spans:
        if start >= end:
            continue
        t = nal_type(codec, data[start : start + 1])
        if is_vcl(codec, t):
            break
        if t in wanted:
            out.append(data[start:end].rstrip(b"\x00"))
    return out


def extradata_for(sets: ParameterSets, framing: Framing, length_size: int = 4) -> bytes | None:
    """Extradata matching the packets' framing: Annex-B start-code-prefixed parameter sets
    for Annex-B packets, an avcC/hvcC record for length-prefixed packets. None when the sets
    are incomplete."""
    if not sets.complete:
        return None
    if framing == "annexb":
        return sets.annexb()
    return sets.record(length_size)


# --------------------------------------------------------------------------- JPEG


_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def jpeg_dimensions(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's start-of-frame marker, or None if not found."""
    if len(data) < 4 or data[0] != 0xFF or data[1] != 0xD8:
        return None
    pos, n = 2, len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        (seg_len,) = struct.unpack_from(">H", data, pos + 2)
        if marker in _SOF_MARKERS:
            if pos + 9 > n:
                return None
            height, width = struct.unpack_from(">HH", data, pos + 5)
            return (width, height) if width and height else None
        if marker in (0xDA, 0xD9):  # start of scan / end of image before any SOF
            return None
        pos += 2 + seg_len
    return None
