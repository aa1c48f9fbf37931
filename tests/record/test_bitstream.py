"""Framing helpers: Annex B / length-prefixed detection and conversion, avcC/hvcC, ADTS."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import pytest

from vigil.ingest.types import CodecParams
from vigil.record import bitstream as bs
from vigil.record.tracks import PlanError, plan_audio, plan_video

SPS = bytes.fromhex("6742c01eda0280bfe5c04400000300040000030c83c58ba8")
PPS = bytes.fromhex("68ce3c80")
IDR = bytes.fromhex("65888400") + b"\x11" * 300  # 304 bytes: prefix 00 00 01 30


def test_split_and_join_round_trip() -> None:
    nals = [SPS, PPS, IDR]
    annexb = bs.join_annexb(nals)
    lp = bs.join_length_prefixed(nals)
    assert bs.split_annexb(annexb) == nals
    assert bs.split_length_prefixed(lp) == nals
    assert bs.split_nals(annexb) == (nals, True)
    assert bs.split_nals(lp) == (nals, False)
    # 3-byte start codes and trailing zeros are Annex B too.
    assert bs.split_annexb(b"\x00\x00\x01" + SPS + b"\x00\x00\x00\x01" + PPS) == [SPS, PPS]


def test_length_prefixed_that_looks_like_a_start_code() -> None:
    """A 256-511 byte first NAL gives a prefix 00 00 01 xx: still length-prefixed."""
    lp = bs.join_length_prefixed([IDR])
    assert lp[:3] == b"\x00\x00\x01"
    assert bs.is_length_prefixed(lp)
    assert bs.split_nals(lp) == ([IDR], False)
    assert not bs.is_length_prefixed(bs.join_annexb([IDR]))


def test_avcc_parse_matches_ffmpeg(clips: dict[str, Path]) -> None:
    with av.open(str(clips["h264_aac"])) as c:
        record = bytes(c.streams.video[0].codec_context.extradata)
    size, ps = bs.parse_avcc(record)
    assert size == 4 and [bs.nal_type("h264", n) for n in ps] == [7, 8]
    with av.open(str(clips["hevc"])) as c:
        record = bytes(c.streams.video[0].codec_context.extradata)
    size, ps = bs.parse_hvcc(record)
    assert size == 4
    assert {32, 33, 34} <= {bs.nal_type("hevc", n) for n in ps}  # x265 adds an SEI array
    assert bs.has_all_parameter_sets("hevc", ps)


def test_adts() -> None:
    # AAC-LC, 48 kHz (index 3), stereo, frame of 7 + 4 bytes, no CRC.
    length = 11
    header = bytes([0xFF, 0xF1, (1 << 6) | (3 << 2), (2 << 6) | (length >> 11),
                    (length >> 3) & 0xFF, ((length & 7) << 5) | 0x1F, 0xFC])
    pkt = header + b"abcd"
    assert bs.is_adts(pkt)
    assert bs.strip_adts(pkt) == b"abcd"
    assert bs.adts_to_asc(header) == bytes.fromhex("1190")
    assert bs.lc_asc(48000, 2) == bytes.fromhex("1190")
    assert bs.adts_sample_rate(header) == 48000
    assert bs.strip_adts(b"raw aac") == b"raw aac"


def _video(codec: str, extradata: bytes | None) -> CodecParams:
    return CodecParams("video", codec, Fraction(1, 90000), extradata, 640, 360)


def test_plans() -> None:
    annexb = bs.join_annexb([SPS, PPS])
    keyframe = bs.join_annexb([SPS, PPS, IDR])
    # Annex B extradata with a template: the muxer converts.
    p = plan_video(_video("h264", annexb), template=object())
    assert p is not None and p.framing == "annexb" and p.inband_parameter_sets is None
    # Length-prefixed packets under an Annex B plan are converted to Annex B.
    assert p.convert(bs.join_length_prefixed([IDR]), False) == bs.join_annexb([IDR])
    # No extradata: wait for a keyframe carrying the parameter sets.
    assert plan_video(_video("h264", None), None) is None
    assert plan_video(_video("h264", None), None, bs.join_annexb([IDR])) is None
    p = plan_video(_video("h264", None), None, keyframe)
    assert p is not None and p.extradata == annexb and p.inband_parameter_sets == annexb
    # Without a template the first packet of a segment carries the parameter sets.
    assert p.convert(bs.join_annexb([IDR]), True) == annexb + bs.join_annexb([IDR])
    assert p.convert(keyframe, True) == keyframe
    with pytest.raises(PlanError):
        plan_video(_video("rawvideo", None), None)
    with pytest.raises(PlanError):
        plan_audio(CodecParams("audio", "pcm_mulaw", Fraction(1, 8000), None, 0, 0, 8000, 1),
                   object())
    prov = plan_audio(CodecParams("audio", "aac", Fraction(1, 48000), None, 0, 0, 48000, 2),
                      object())
    assert prov is not None and prov.provisional and prov.extradata == bs.lc_asc(48000, 2)
