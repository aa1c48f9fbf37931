"""The PyAV-container look-alike: stream parameters from the SDP, packets, demux selection,
interrupt before open."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from fractions import Fraction

import pytest

from tests.ingest.ingest_helpers import RecordingSink
from tests.ingest.rtsp.fake_camera import H264_SDP, FakeCamera, ServerConn, h264_frame
from tests.ingest.rtsp.rtp import aac_hbr, interleaved, rtp
from vigil.config.model import IngestConfig, StreamSource
from vigil.ingest.errors import IngestError
from vigil.ingest.reader import CameraReader
from vigil.ingest.rtsp import NativeInput, NativePacket, open_native
from vigil.record.bitstream import parse_config_record

AAC_SDP = (
    "m=audio 0 RTP/AVP 97\r\n"
    "a=rtpmap:97 MPEG4-GENERIC/16000/1\r\n"
    "a=fmtp:97 streamtype=5;profile-level-id=2;mode=AAC-hbr;config=140856e500;"
    "sizelength=13;indexlength=3;indexdeltalength=3\r\n"
    "a=control:trackID=2\r\n"
)
HEVC_SDP = (
    "v=0\r\ns=x\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H265/90000\r\n"
    "a=fmtp:96 sprop-vps=QAEMAf//AWAAAAMAkAAAAwAAAwA8ugJA;"
    "sprop-sps=QgEBAWAAAAMAkAAAAwAAAwA8oAoIDxZbqSTK8BaAgAAAAwCAAAAHhA==;"
    "sprop-pps=RAHBcrRiQA==\r\n"
    "a=control:trackID=1\r\n"
)


def av_stream(conn: ServerConn, cam: FakeCamera) -> None:
    """10 video frames at 15 fps and AAC packets of two frames each, interleaved."""
    for i in range(10):
        conn.send(h264_frame(i, i))
        if i % 2 == 0:
            payload = aac_hbr([bytes([0x21, i]) * 10, bytes([0x22, i]) * 12])
            conn.send(interleaved(2, rtp(i // 2, 7 + i * 1024, payload, marker=True, pt=97)))


@pytest.fixture
def av_cam() -> Iterator[FakeCamera]:
    with FakeCamera(sdp=H264_SDP + AAC_SDP, stream=av_stream) as cam:
        yield cam


def test_streams_look_like_pyav(av_cam: FakeCamera) -> None:
    inp = open_native(av_cam.url(), "cam1", open_timeout=2, stall_timeout=2)
    try:
        assert inp.format.name == "rtsp"
        (video,) = inp.streams.video
        (audio,) = inp.streams.audio
        assert list(inp.streams) == [video, audio] and len(inp.streams) == 2
        assert (video.type, video.index, video.time_base) == ("video", 0, Fraction(1, 90000))
        assert video.average_rate == video.guessed_rate == video.base_rate == Fraction(15)
        cc = video.codec_context
        sps = base64.b64decode("Z01ADdoFB+wEQAAAAwBAAAAHg8UKqA==")
        pps = base64.b64decode("aO88gA==")
        assert cc.name == "h264" and cc.extradata is not None
        # an avcC record with 4-byte lengths, like the packets
        assert parse_config_record("h264", cc.extradata) == (4, [sps, pps])
        assert (cc.width, cc.height, cc.frame_size) == (320, 240, 0)
        assert (audio.type, audio.index, audio.time_base) == ("audio", 1, Fraction(1, 16000))
        assert audio.average_rate is None
        acc = audio.codec_context
        assert (acc.name, acc.extradata) == ("aac", bytes.fromhex("140856e500"))
        assert (acc.sample_rate, acc.channels, acc.frame_size) == (16000, 1, 1024)

        packets: list[NativePacket] = []
        with pytest.raises(IngestError) as info:
            packets.extend(inp.demux(video, audio))
        assert info.value.kind == "eof"
    finally:
        inp.close()
    v = [p for p in packets if p.stream is video]
    a = [p for p in packets if p.stream is audio]
    assert len(v) == 10 and len(a) == 10
    assert [p.pts for p in a] == [i * 1024 for i in range(10)]
    p = v[1]
    assert p.pts == p.dts == 6000 and p.duration is None and p.time_base == Fraction(1, 90000)
    assert p.size == len(bytes(p)) and bytes(p)[4] == 0x61  # length-prefixed slice
    assert int.from_bytes(bytes(p)[:4], "big") == p.size - 4
    assert not p.is_keyframe and v[0].is_keyframe
    assert not p.has_sidedata("new_extradata")
    assert bytes(a[1]) == bytes([0x22, 0]) * 12 and a[1].is_keyframe
    assert "cam1" in repr(inp) and "pts=6000" in repr(p)


def test_demux_only_the_given_streams(av_cam: FakeCamera) -> None:
    inp = open_native(av_cam.url(), "cam1", open_timeout=2, stall_timeout=2)
    packets: list[NativePacket] = []
    with pytest.raises(IngestError):
        packets.extend(inp.demux(inp.streams.video[0]))
    inp.close()
    assert len(packets) == 10 and all(p.stream.type == "video" for p in packets)
    # the audio channel was not even depacketized
    assert inp.stats.skipped_packets == 5 and inp.stats.units == 10


def test_without_audio(av_cam: FakeCamera) -> None:
    inp = open_native(av_cam.url(), "cam1", open_timeout=2, stall_timeout=2, audio=False)
    inp.close()
    assert len(inp.streams.video) == 1 and inp.streams.audio == []
    assert [r.method for r in av_cam.requests].count("SETUP") == 1


def test_hevc_parameters() -> None:
    with FakeCamera(sdp=HEVC_SDP) as cam:
        inp = open_native(cam.url(), "cam2", open_timeout=2, stall_timeout=2)
        inp.close()
    cc = inp.streams.video[0].codec_context
    assert cc.name == "hevc" and (cc.width, cc.height) == (320, 240)
    assert cc.extradata is not None
    length_size, nals = parse_config_record("hevc", cc.extradata)
    assert length_size == 4
    assert [(n[0] >> 1) & 0x3F for n in nals] == [32, 33, 34]  # an hvcC: VPS, SPS, PPS
    assert inp.streams.video[0].average_rate is None


def test_no_parameter_sets_in_sdp() -> None:
    sdp = "v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
    with FakeCamera(sdp=sdp) as cam:
        inp = open_native(cam.url(), "cam3", open_timeout=2, stall_timeout=2)
        inp.close()
    cc = inp.streams.video[0].codec_context
    assert cc.extradata is None and (cc.width, cc.height) == (0, 0)


def test_interrupt_before_open_and_close_is_safe() -> None:
    with FakeCamera() as cam:
        inp = NativeInput(cam.url(), "cam4", open_timeout=2, stall_timeout=2)
        inp.interrupt()
        with pytest.raises(IngestError) as info:
            inp.open()
        assert info.value.kind == "stopped"
        inp.close()
        inp.interrupt()
        assert cam.connections == 0


def test_reader_falls_back_to_ffmpeg_without_idr(monkeypatch: pytest.MonkeyPatch) -> None:
    """A camera whose stream never has an IDR picture (intra refresh) would never start a
    session with the native client: the reader gives up on it and uses FFmpeg."""

    def no_idr(conn: ServerConn, cam: FakeCamera) -> None:
        for i in range(1, 400):
            if i % 15:  # h264_frame makes every 15th frame an IDR: skip those
                conn.send(h264_frame(i, i))
            if conn.stop.wait(0.02):
                return

    monkeypatch.setattr(CameraReader, "native_keyframe_wait", 0.8)
    sink = RecordingSink(keep_data=False)
    cfg = IngestConfig(stall_timeout=2, open_timeout=2, backoff_initial=0.2, backoff_max=0.5)
    with FakeCamera(stream=no_idr) as cam:
        reader = CameraReader("intra", StreamSource(url=cam.url()), [sink], config=cfg)
        reader.start()
        try:
            deadline = time.monotonic() + 10
            while not reader._native_refused and time.monotonic() < deadline:
                time.sleep(0.05)
            health = reader.health()
        finally:
            assert reader.stop()
    assert reader._native_refused
    assert not sink.sessions  # nothing was delivered without a keyframe
    assert "reading this camera through FFmpeg" in (health.last_error or "")
