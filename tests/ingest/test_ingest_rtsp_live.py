"""CameraReader against a real RTSP server (GStreamer, in a subprocess): packet flow,
reconnect after the server dies, stall detection, authentication, probing."""

from __future__ import annotations

import itertools
import time

import pytest
from pydantic import SecretStr

from tests.ingest.ingest_helpers import (
    GstRtspServer,
    RecordingSink,
    free_port,
    have_gst_rtsp,
    wait_until,
)
from vigil.config.model import Credentials, IngestConfig, StreamSource
from vigil.ingest.probe import probe
from vigil.ingest.reader import CameraReader
from vigil.record.bitstream import is_config_record

if not have_gst_rtsp():  # installed by scripts/setup.sh: its absence is a set-up bug
    pytest.fail("GStreamer RTSP server not available: run scripts/setup.sh", pytrace=False)

CFG = IngestConfig(stall_timeout=2.0, open_timeout=5.0, backoff_initial=0.2, backoff_max=0.5)


def monotonic_per_kind(sink: RecordingSink, session_id: int) -> None:
    pkts = sink.packets_of(session_id)
    assert pkts[0].kind == "video" and pkts[0].keyframe and pkts[0].dts_us == 0
    for kind in ("video", "audio"):
        dts = [p.dts_us for p in pkts if p.kind == kind]
        assert all(b > a for a, b in itertools.pairwise(dts)), kind


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_packets_flow_with_audio(transport: str) -> None:
    with GstRtspServer(audio=True) as srv:
        sink = RecordingSink(keep_data=False)
        reader = CameraReader(
            "live1", StreamSource(url=srv.url, transport=transport), [sink], config=CFG
        )
        reader.start()
        try:
            assert sink.wait_for(lambda s: sum(p.kind == "video" for _, p in s.packets) >= 30, 15)
            h = reader.health()
        finally:
            assert reader.stop()
    s = sink.sessions[0]
    assert (s.video.codec, s.video.width, s.video.height) == ("h264", 320, 240)
    extradata = s.video.extradata
    assert extradata is not None
    if transport == "tcp":  # Vigil's RTSP client: an avcC record, length-prefixed packets
        assert is_config_record(extradata)
    else:  # FFmpeg: Annex B parameter sets
        assert extradata.startswith(b"\x00\x00")
    assert s.audio is not None and s.audio.codec == "pcm_mulaw"
    assert s.audio.sample_rate == 8000 and s.audio.channels == 1
    monotonic_per_kind(sink, s.session_id)
    assert h.state == "online" and 10 < h.fps < 20
    # Wall clock follows real time: never in the future (the packets FFmpeg buffered while
    # probing arrive in a burst and must not push the anchor late), and the live packets at
    # the end are stamped within a frame or two of their arrival.
    lags = [seen - p.wall_us for (_, p), seen in zip(sink.packets, sink.seen_us, strict=True)]
    assert min(lags) > -50_000, min(lags)
    assert max(lags[-10:]) < 300_000, lags[-10:]
    assert sink.ended[-1] == (s.session_id, "stopped")


def test_hevc_stream() -> None:
    with GstRtspServer(codec="h265") as srv:
        sink = RecordingSink(keep_data=False)
        reader = CameraReader("live6", StreamSource(url=srv.url), [sink], config=CFG)
        reader.start()
        try:
            assert sink.wait_for(lambda s: len(s.packets) >= 20, 15)
        finally:
            assert reader.stop()
    v = sink.sessions[0].video
    assert (v.codec, v.width, v.height) == ("hevc", 320, 240)
    assert v.extradata is not None and is_config_record(v.extradata)  # native client: hvcC
    assert len(sink.sessions) == 1  # repeated in-band VPS/SPS/PPS are not a "change"
    monotonic_per_kind(sink, sink.sessions[0].session_id)


def test_reconnects_after_server_restart() -> None:
    port = free_port()
    srv = GstRtspServer(port)
    srv.start()
    sink = RecordingSink(keep_data=False)
    reader = CameraReader("live2", StreamSource(url=srv.url), [sink], config=CFG)
    reader.start()
    try:
        assert sink.wait_for(lambda s: len(s.packets) >= 10, 15)
        first_id = sink.sessions[0].session_id
        srv.stop()
        assert sink.wait_for(lambda s: len(s.ended) >= 1, 10)
        assert wait_until(lambda: reader.health().state in ("offline", "stalled"), 5)
        assert reader.health().last_error is not None
        srv = GstRtspServer(port)
        srv.start()
        assert sink.wait_for(lambda s: len(s.sessions) >= 2 and len(s.packets) >= 20, 20)
        h = reader.health()
    finally:
        reader.stop()
        srv.stop()
    assert sink.ended[0][0] == first_id
    assert sink.ended[0][1] in ("eof", "disconnected", "stalled")
    assert sink.sessions[1].session_id > first_id
    assert h.reconnects >= 1 and h.session_id == sink.sessions[-1].session_id
    assert h.state == "online"
    monotonic_per_kind(sink, sink.sessions[1].session_id)


def test_stall_is_detected_and_recovered() -> None:
    with GstRtspServer() as srv:
        sink = RecordingSink(keep_data=False)
        reader = CameraReader("live3", StreamSource(url=srv.url), [sink], config=CFG)
        reader.start()
        try:
            assert sink.wait_for(lambda s: len(s.packets) >= 10, 15)
            srv.pause()  # connection stays open, nothing flows
            paused = time.monotonic()
            assert sink.wait_for(lambda s: len(s.ended) >= 1, CFG.stall_timeout + 3)
            detected = time.monotonic() - paused
            assert sink.ended[0][1] == "stalled"
            assert wait_until(lambda: reader.health().state in ("stalled", "connecting"), 2)
            assert reader.health().last_error_kind == "stalled"
            srv.resume()
            assert sink.wait_for(lambda s: len(s.sessions) >= 2, 20)
        finally:
            srv.resume()
            assert reader.stop()
    assert CFG.stall_timeout - 0.3 <= detected <= CFG.stall_timeout + 2.0


def test_stop_while_stalled_is_prompt() -> None:
    cfg = IngestConfig(stall_timeout=30, open_timeout=5)
    with GstRtspServer() as srv:
        sink = RecordingSink(keep_data=False)
        reader = CameraReader("live4", StreamSource(url=srv.url), [sink], config=cfg)
        reader.start()
        try:
            assert sink.wait_for(lambda s: len(s.packets) >= 5, 15)
            srv.pause()
            time.sleep(0.5)
            t = time.monotonic()
            assert reader.stop(timeout=2.0)
            assert time.monotonic() - t < 2.0
        finally:
            srv.resume()
    assert sink.ended == [(sink.sessions[0].session_id, "stopped")]


def test_authentication_wrong_and_right_password() -> None:
    password = "c@m:p/ss%word"
    with GstRtspServer(user="admin", password=password) as srv:
        bad = CameraReader(
            "live5",
            StreamSource(url=srv.url),
            [RecordingSink()],
            credentials=Credentials(username="admin", password=SecretStr("wrong-one")),
            config=CFG,
        )
        bad.start()
        try:
            assert wait_until(lambda: bad.health().consecutive_failures >= 1, 10)
        finally:
            assert bad.stop()
        assert bad.health().last_error_kind == "unauthorized"
        assert "wrong-one" not in repr(bad.health())

        sink = RecordingSink(keep_data=False)
        good = CameraReader(
            "live5",
            StreamSource(url=srv.url),
            [sink],
            credentials=Credentials(username="admin", password=SecretStr(password)),
            config=CFG,
        )
        good.start()
        try:
            assert sink.wait_for(lambda s: len(s.packets) >= 5, 15)
        finally:
            assert good.stop()


def test_probe_live_and_errors() -> None:
    with GstRtspServer(audio=True) as srv:
        r = probe(srv.url, timeout=5, max_seconds=2.5)
    assert r.ok, r
    assert (r.video_codec, r.width, r.height) == ("h264", 320, 240)
    assert r.fps is not None and 13 <= r.fps <= 17
    assert r.audio is not None and r.audio.codec == "pcm_mulaw"
    assert r.keyframe_interval_s is not None and 0.2 < r.keyframe_interval_s <= 1.5
    bad = probe(f"rtsp://u:pw-secret-1@127.0.0.1:{free_port()}/x", timeout=2)
    assert not bad.ok and bad.error_kind == "refused"
    assert "pw-secret-1" not in repr(bad)
