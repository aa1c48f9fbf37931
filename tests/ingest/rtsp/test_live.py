"""The native client against a real RTSP server (GStreamer, through Vigil's camera
simulator): H.264 + AAC, H.265, Basic authentication, a camera that refuses TCP, G.711
audio, and CameraReader reading through the native container."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import av
import pytest

from tests.ingest.ingest_helpers import GstRtspServer, RecordingSink, have_gst_rtsp
from vigil.config.model import IngestConfig, StreamSource
from vigil.ingest import reader as reader_module
from vigil.ingest.errors import IngestError
from vigil.ingest.reader import CameraReader
from vigil.ingest.rtsp import NativeInput, NativePacket, NativeUnsupported, open_native
from vigil.record.bitstream import is_config_record, is_length_prefixed
from vigil.sim.controller import SimCamera, Simulator

SMALL: dict[str, Any] = {
    "source": "testsrc",
    "width": 320,
    "height": 240,
    "fps": 15.0,
    "bitrate_kbps": 400,
    "duration": 2.0,
}
PASSWORD = "s3cret pw!"


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    if not have_gst_rtsp():  # installed by scripts/setup.sh: its absence is a set-up bug
        pytest.fail("GStreamer RTSP server not available: run scripts/setup.sh", pytrace=False)
    cams = [
        SimCamera("av", audio=True, **SMALL),
        SimCamera("hevc", codec="h265", **SMALL),
        SimCamera("auth", username="admin", password=PASSWORD, **SMALL),
        SimCamera("udp", transport="udp_only", **SMALL),
    ]
    with Simulator(linger=1.0) as simulator:
        simulator.start(cams)
        yield simulator


def read_for(inp: NativeInput, seconds: float) -> list[NativePacket]:
    out: list[NativePacket] = []
    end = time.monotonic() + seconds
    for pkt in inp.demux():
        out.append(pkt)
        if time.monotonic() >= end:
            break
    return out


def check_video(inp: NativeInput, packets: list[NativePacket], codec: str) -> None:
    (video,) = inp.streams.video
    cc = video.codec_context
    assert (cc.name, cc.width, cc.height) == (codec, 320, 240)
    assert cc.extradata is not None and is_config_record(cc.extradata)  # avcC / hvcC
    vp = [p for p in packets if p.stream is video]
    assert all(b.pts > a.pts for a, b in itertools.pairwise(vp)), "video pts must increase"
    assert 24 <= len(vp) <= 36, len(vp)  # ~2 s at 15 fps
    step = round(90000 / 15)
    assert all(abs((b.pts - a.pts) - step) <= 2 for a, b in itertools.pairwise(vp))
    assert all(is_length_prefixed(bytes(p), 4) for p in vp)
    key = next(p for p in vp if p.is_keyframe)
    decoder = av.CodecContext.create(codec, "r")
    decoder.extradata = cc.extradata
    frames = decoder.decode(av.Packet(bytes(key)))
    assert [(f.width, f.height) for f in frames] == [(320, 240)]


def test_h264_with_aac(sim: Simulator) -> None:
    inp = open_native(sim.url("av"), "av", open_timeout=5, stall_timeout=3)
    try:
        packets = read_for(inp, 2.0)
    finally:
        inp.close()
    check_video(inp, packets, "h264")
    (audio,) = inp.streams.audio
    acc = audio.codec_context
    assert (acc.name, acc.sample_rate, acc.channels, acc.frame_size) == ("aac", 16000, 1, 1024)
    ap = [p for p in packets if p.stream is audio]
    # the simulator's 2 s clip holds 1.152 s of audio (19 AAC frames) per loop: FFmpeg sees
    # the same gap of 0.912 s at each loop point
    assert 12 <= len(ap) <= 40, len(ap)
    steps = [b.pts - a.pts for a, b in itertools.pairwise(ap)]
    assert all(d > 0 for d in steps), steps
    assert sum(d != 1024 for d in steps) <= 2, steps
    decoder = av.CodecContext.create("aac", "r")
    decoder.extradata = acc.extradata
    samples = sum(f.samples for p in ap[:5] for f in decoder.decode(av.Packet(bytes(p))))
    assert samples >= 3 * 1024  # (the decoder may hold back a frame or two)
    s = inp.stats
    assert s.lost_packets == s.dropped_units == s.malformed_packets == 0
    assert s.rtp_packets > s.recv_calls / 4 and s.units == len(packets)


def test_h265(sim: Simulator) -> None:
    inp = open_native(sim.url("hevc"), "hevc", open_timeout=5, stall_timeout=3)
    try:
        packets = read_for(inp, 2.0)
    finally:
        inp.close()
    assert inp.streams.audio == []
    check_video(inp, packets, "hevc")


def test_basic_auth_wrong_and_right_password(sim: Simulator) -> None:
    wrong = sim.url("auth").replace("rtsp://", "rtsp://admin:not-the-password@")
    with pytest.raises(IngestError) as info:
        open_native(wrong, "auth", open_timeout=5, stall_timeout=3)
    assert info.value.kind == "unauthorized"
    assert "not-the-password" not in str(info.value)
    with pytest.raises(IngestError) as info:
        open_native(sim.url("auth"), "auth", open_timeout=5, stall_timeout=3)
    assert info.value.kind == "unauthorized"
    inp = open_native(sim.url("auth", credentials=True), "auth", open_timeout=5, stall_timeout=3)
    try:
        first = next(iter(inp.demux()))
    finally:
        inp.close()
    assert first.size > 0


def test_udp_only_camera_is_native_unsupported(sim: Simulator) -> None:
    with pytest.raises(NativeUnsupported) as info:
        open_native(sim.url("udp"), "udp", open_timeout=5, stall_timeout=3)
    assert info.value.kind == "protocol" and "461" in str(info.value)


def test_pcmu_audio() -> None:
    with GstRtspServer(audio=True) as srv:
        inp = open_native(srv.url, "pcmu", open_timeout=5, stall_timeout=3)
        try:
            packets = read_for(inp, 1.0)
        finally:
            inp.close()
    (audio,) = inp.streams.audio
    acc = audio.codec_context
    assert (acc.name, acc.sample_rate, acc.channels, acc.extradata) == ("pcm_mulaw", 8000, 1, None)
    ap = [p for p in packets if p.stream is audio]
    assert len(ap) >= 5  # GStreamer sends 1024 samples (128 ms) per packet
    assert all(b.pts > a.pts for a, b in itertools.pairwise(ap))
    # raw G.711: one byte per sample, the pts step is the previous packet's size
    assert all(b.pts - a.pts == a.size for a, b in itertools.pairwise(ap))


def test_camera_reader_reads_the_native_container(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CameraReader, unchanged, fed a NativeInput instead of a PyAV container."""
    cfg = IngestConfig(stall_timeout=3.0, open_timeout=5.0, backoff_initial=0.2, backoff_max=0.5)

    def native_open_input(target: Any, *, open_timeout: float, **_: Any) -> NativeInput:
        return open_native(
            target.url, target.display, open_timeout=open_timeout, stall_timeout=cfg.stall_timeout
        )

    monkeypatch.setattr(reader_module, "open_input", native_open_input)
    sink = RecordingSink(keep_data=False)
    reader = CameraReader("native1", StreamSource(url=sim.url("av")), [sink], config=cfg)
    reader.start()
    try:
        assert sink.wait_for(lambda s: sum(p.kind == "video" for _, p in s.packets) >= 20, 10)
        t = time.monotonic()
    finally:
        assert reader.stop()
    assert time.monotonic() - t < 1.0
    s = sink.sessions[0]
    assert (s.video.codec, s.video.width, s.video.height) == ("h264", 320, 240)
    assert s.video.extradata is not None and is_config_record(s.video.extradata)
    assert s.audio is not None and (s.audio.codec, s.audio.sample_rate) == ("aac", 16000)
    pkts = sink.packets_of(s.session_id)
    assert pkts[0].kind == "video" and pkts[0].keyframe and pkts[0].dts_us == 0
    for kind in ("video", "audio"):
        dts = [p.dts_us for p in pkts if p.kind == kind]
        assert dts and all(b > a for a, b in itertools.pairwise(dts)), kind
    assert sink.ended == [(s.session_id, "stopped")]
