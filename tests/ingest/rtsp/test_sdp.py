"""SDP parsing: media, codecs, fmtp, frame rate and control URL resolution."""

from __future__ import annotations

from fractions import Fraction

import pytest

from vigil.ingest.rtsp.sdp import (
    MAX_SDP_BYTES,
    SdpError,
    parse_sdp,
    resolve_control,
    strip_userinfo,
)

CAMERA_SDP = """v=0
o=- 1109162014219182 1109162014219192 IN IP4 x.y.z.w
s=Media Presentation
e=NONE
b=AS:5050
t=0 0
a=control:rtsp://192.168.1.64:554/Streaming/Channels/101/
m=video 0 RTP/AVP 96
c=IN IP4 0.0.0.0
b=AS:5000
a=recvonly
a=x-dimensions:1920,1080
a=control:rtsp://192.168.1.64:554/Streaming/Channels/101/trackID=1
a=rtpmap:96 H264/90000
a=fmtp:96 profile-level-id=420029; packetization-mode=1; sprop-parameter-sets={sprop}
a=framerate:25.000000
m=audio 0 RTP/AVP 8
c=IN IP4 0.0.0.0
b=AS:50
a=recvonly
a=control:rtsp://192.168.1.64:554/Streaming/Channels/101/trackID=2
a=rtpmap:8 PCMA/8000
a=Media_header:MEDIAINFO=494D4B48010100000400010010710110401F000000FA000000000000000000000000000000000000;
a=appversion:1.0
m=application 0 RTP/AVP 107
a=control:trackID=3
a=rtpmap:107 isapi.metadata/90000
""".format(sprop="Z00AKp2oHgCJ+WbgICAoAAADAAgAAAMBlCA=,aO48gA==")


def test_camera_sdp() -> None:
    sdp = parse_sdp(CAMERA_SDP, request_url="rtsp://192.168.1.64/Streaming/Channels/101")
    assert sdp.control == "rtsp://192.168.1.64:554/Streaming/Channels/101/"
    video, audio, meta = sdp.media
    assert (video.kind, video.payload_type, video.encoding, video.clock_rate) == (
        "video", 96, "H264", 90000,
    )  # fmt: skip
    assert video.control == "rtsp://192.168.1.64:554/Streaming/Channels/101/trackID=1"
    assert video.framerate == Fraction(25)
    assert video.fmtp["packetization-mode"] == "1"
    # base64 padding survives: values are split on the first '=' only
    assert video.fmtp["sprop-parameter-sets"].endswith("AAMBlCA=,aO48gA==")
    assert (audio.kind, audio.encoding, audio.clock_rate, audio.channels) == (
        "audio",
        "PCMA",
        8000,
        1,
    )
    assert audio.framerate is None
    assert meta.kind == "other" and meta.media == "application"
    # relative control: appended to the base (no Content-Base: the request URL)
    assert meta.control == "rtsp://192.168.1.64/Streaming/Channels/101/trackID=3"
    assert sdp.first("audio") is audio and sdp.first("video") is video


def test_content_base_then_location_then_request_url() -> None:
    text = "v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H265/90000\r\na=control:stream=0\r\n"
    req = "rtsp://cam/live"
    assert parse_sdp(text, request_url=req).media[0].control == "rtsp://cam/live/stream=0"
    assert (
        parse_sdp(text, request_url=req, content_location="rtsp://cam/loc/").media[0].control
        == "rtsp://cam/loc/stream=0"
    )
    sdp = parse_sdp(
        text, request_url=req, content_base="rtsp://cam/base/", content_location="rtsp://x/"
    )
    assert sdp.media[0].control == "rtsp://cam/base/stream=0"
    assert sdp.control == "rtsp://cam/base/"  # no session control: the base


def test_resolve_control() -> None:
    base = "rtsp://cam:554/live?ch=1"
    assert resolve_control("*", base) == base
    assert resolve_control("", base) == base
    assert resolve_control("track1", base) == "rtsp://cam:554/live?ch=1/track1"
    assert resolve_control("track1", "rtsp://cam/live/") == "rtsp://cam/live/track1"
    assert resolve_control("/other/x?y=1", base) == "rtsp://cam:554/other/x?y=1"
    assert resolve_control("rtsp://other:8554/t", base) == "rtsp://other:8554/t"
    # a camera echoing credentials back must not make us send them
    assert resolve_control("t", "rtsp://admin:pw@cam/live/") == "rtsp://cam/live/t"
    assert resolve_control("rtsp://u:p@cam/t", base) == "rtsp://cam/t"
    assert strip_userinfo("rtsp://u:p@[::1]:554/x") == "rtsp://[::1]:554/x"


def test_session_level_control_and_framerate() -> None:
    text = (
        "v=0\na=control:rtsp://cam/agg\na=framerate:29.97\n"
        "m=video 0 RTP/AVP 96\na=rtpmap:96 H264/90000\n"
        "m=audio 0 RTP/AVP 0\n"
    )
    sdp = parse_sdp(text, request_url="rtsp://cam/x")
    assert sdp.control == "rtsp://cam/agg"
    assert sdp.media[0].framerate == Fraction(2997, 100)
    assert sdp.media[0].control == "rtsp://cam/x"  # no media control: the base
    # static payload type without rtpmap
    a = sdp.media[1]
    assert (a.encoding, a.clock_rate, a.channels, a.framerate) == ("PCMU", 8000, 1, None)


def test_fmtp_keys_lowercased_and_channels() -> None:
    text = (
        "v=0\nm=audio 0 RTP/AVP 97\na=rtpmap:97 mpeg4-generic/48000/2\n"
        "a=fmtp:97 streamType=5; profile-level-id=15; mode=AAC-hbr; config=1190;"
        "SizeLength=13; IndexLength=3; IndexDeltaLength=3; flag\n"
    )
    m = parse_sdp(text, request_url="rtsp://cam/").media[0]
    assert (m.encoding, m.clock_rate, m.channels) == ("MPEG4-GENERIC", 48000, 2)
    assert m.fmtp == {
        "streamtype": "5", "profile-level-id": "15", "mode": "AAC-hbr", "config": "1190",
        "sizelength": "13", "indexlength": "3", "indexdeltalength": "3", "flag": "",
    }  # fmt: skip


def test_malformed_lines_are_skipped() -> None:
    text = (
        "v=0\ngarbage line\nm=video\na=rtpmap:xx H264/90000\n"
        "m=video 0 RTP/AVP 96\na=rtpmap:96 H264/notanumber\na=framerate:-5\n"
        "m=application 0 TCP/WSP mpeg-dash\n"
    )
    sdp = parse_sdp(text, request_url="rtsp://cam/")
    assert len(sdp.media) == 1  # the m= line without formats and the non-RTP one are dropped
    m = sdp.media[0]
    assert (m.encoding, m.clock_rate, m.framerate) == ("H264", 0, None)


def test_rejects_oversized_and_non_sdp() -> None:
    with pytest.raises(SdpError):
        parse_sdp("v=0\n" + "a=x\n" * (MAX_SDP_BYTES // 4), request_url="rtsp://cam/")
    with pytest.raises(SdpError):
        parse_sdp(b"<html><body>hello</body></html>", request_url="rtsp://cam/")
