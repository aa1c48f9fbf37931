"""Bitstream helpers, checked against what FFmpeg itself produces for real encodes."""

from __future__ import annotations

import contextlib
import random
from pathlib import Path

import av
import pytest

from vigil.ingest.bitstream import (
    BitReader,
    BitstreamError,
    ParameterSets,
    build_avcc,
    detect_framing,
    extradata_for,
    jpeg_dimensions,
    leading_parameter_sets,
    parse_extradata,
    parse_h264_sps,
    parse_hevc_sps,
    split_annexb,
    split_length_prefixed,
    unescape_rbsp,
)


def _video(path: Path) -> tuple[str, bytes, bytes]:
    """codec, extradata, first keyframe of a file."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        cc = v.codec_context
        for pkt in c.demux(v):
            if pkt.is_keyframe and pkt.size:
                return cc.name, bytes(cc.extradata or b""), bytes(pkt)
    raise AssertionError("no keyframe")


def test_bitreader_exp_golomb() -> None:
    # bits: 1 | 010 | 011 | 00100 | 00101 -> ue: 0, 1, 2, 3 ; then se(00101)=-2
    r = BitReader(bytes([0b10100110, 0b01000010, 0b10000000]))
    assert [r.ue(), r.ue(), r.ue(), r.ue()] == [0, 1, 2, 3]
    assert r.se() == -2
    with pytest.raises(BitstreamError):
        BitReader(b"\x00").ue()


def test_unescape_and_split() -> None:
    assert unescape_rbsp(b"\x00\x00\x03\x01\x00\x00\x03") == b"\x00\x00\x01\x00\x00"
    data = b"\x00\x00\x00\x01\x67\xaa\x00\x00\x01\x68\xbb\x00\x00\x00\x00\x01\x65\xcc"
    assert split_annexb(data) == [b"\x67\xaa", b"\x68\xbb", b"\x65\xcc"]
    assert detect_framing(data) == "annexb"
    lp = b"\x00\x00\x00\x02\x67\xaa\x00\x00\x00\x01\x68"
    assert detect_framing(lp) == "length"
    assert split_length_prefixed(lp) == [b"\x67\xaa", b"\x68"]
    assert split_length_prefixed(b"\x00\x00\x00\x09\x67") == []  # truncated: nothing


@pytest.mark.parametrize(
    ("key", "codec", "size", "framing"),
    [
        ("h264_aac_mp4", "h264", (320, 240), "length"),
        ("odd_mp4", "h264", (330, 250), "length"),  # needs frame cropping
        ("h264_ts", "h264", (320, 240), "annexb"),
        ("big_ts", "h264", (640, 360), "annexb"),
        ("hevc_mp4", "hevc", (320, 240), "length"),
        ("odd_hevc_mp4", "hevc", (330, 250), "length"),  # conformance window
        ("hevc_ts", "hevc", (320, 240), "annexb"),
    ],
)
def test_extradata_and_sps_match_ffmpeg(
    media: dict[str, Path], key: str, codec: str, size: tuple[int, int], framing: str
) -> None:
    name, extradata, keyframe = _video(media[key])
    assert name == codec
    parsed = parse_extradata(codec, extradata)
    assert parsed is not None
    assert parsed.framing == framing
    assert parsed.sets.complete
    info = parsed.sets.sps_info()
    assert info is not None
    assert (info.width, info.height) == size
    assert info.bit_depth_luma == 8 and info.chroma_format_idc == 1
    inband = leading_parameter_sets(codec, keyframe, parsed.framing, parsed.length_size)
    if framing == "annexb":
        # MPEG-TS repeats the parameter sets in every keyframe, identical to extradata
        assert inband
        assert parsed.sets.merged(inband) == parsed.sets
        assert ParameterSets.from_nals(codec, inband) == parsed.sets
        assert extradata_for(parsed.sets, "annexb").startswith(b"\x00\x00\x00\x01")
    else:
        assert inband == []
        record = parsed.sets.record(parsed.length_size)
        if codec == "h264":
            assert record == extradata  # byte-identical avcC
        else:
            # FFmpeg's hvcC also carries x265's SEI array; the 22-byte header and our
            # parameter sets must agree
            assert record[:22] == extradata[:22]
            again = parse_extradata(codec, record)
            assert again is not None and again.sets == parsed.sets


def test_parameter_sets_merge_by_id() -> None:
    _, extradata, _ = _video_or_synthetic()
    base = ParameterSets.from_nals("h264", split_annexb(extradata))
    sps = base.sps[0]
    # same ids, different content -> replaced, compares different
    changed_pps = base.pps[0][:-1] + bytes([base.pps[0][-1] ^ 0x01])
    merged = base.merged([changed_pps])
    assert merged != base
    assert merged.sps == [sps] and merged.pps == [changed_pps]
    assert base.merged([sps]) == base  # repeating the same set changes nothing


def _video_or_synthetic() -> tuple[str, bytes, bytes]:
    # x264 baseline-ish SPS/PPS for 320x240 (from a real encode), Annex-B
    sps = bytes.fromhex("6764000cacd94141fb0110000003001000000301e0f1429960")
    pps = bytes.fromhex("68ebe3cb22c0")
    return "h264", b"\x00\x00\x00\x01" + sps + b"\x00\x00\x00\x01" + pps, b""


def test_parse_known_sps() -> None:
    _, extradata, _ = _video_or_synthetic()
    info = parse_h264_sps(split_annexb(extradata)[0])
    assert (info.width, info.height, info.profile_idc, info.level_idc) == (320, 240, 100, 12)
    avcc = build_avcc([split_annexb(extradata)[0]], [split_annexb(extradata)[1]])
    assert avcc[:5] == bytes([1, 100, 0, 12, 0xFF])


def test_malformed_input_raises_bitstream_error_only() -> None:
    rng = random.Random(3)
    with pytest.raises(BitstreamError):
        parse_h264_sps(b"\x67\x64")
    with pytest.raises(BitstreamError):
        parse_hevc_sps(b"\x42\x01\x01")
    for _ in range(300):
        blob = rng.randbytes(rng.randint(0, 60))
        for fn in (parse_h264_sps, parse_hevc_sps):
            with contextlib.suppress(BitstreamError):
                fn(bytes([0x67]) + blob if fn is parse_h264_sps else b"\x42\x01" + blob)
        for codec in ("h264", "hevc"):
            with contextlib.suppress(BitstreamError):
                parse_extradata(codec, b"\x01" + blob)
            leading_parameter_sets(codec, blob, "annexb")
            leading_parameter_sets(codec, blob, "length")
        jpeg_dimensions(b"\xff\xd8" + blob)


def test_jpeg_dimensions(jpegs: list[bytes]) -> None:
    assert jpeg_dimensions(jpegs[0]) == (160, 120)
    assert jpeg_dimensions(b"not a jpeg") is None
    assert jpeg_dimensions(jpegs[0][:20]) is None
