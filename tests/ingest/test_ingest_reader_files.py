"""CameraReader on local files generated with ffmpeg: sessions, codec parameters,
timestamps, codec changes, pacing, sink isolation and stopping."""

from __future__ import annotations

import itertools
import logging
import time
from pathlib import Path

import pytest

from tests.ingest.ingest_helpers import RecordingSink, wait_until
from vigil.config.model import IngestConfig, StreamSource
from vigil.ingest.bitstream import parse_extradata
from vigil.ingest.reader import CameraReader
from vigil.ingest.types import StreamSession, TimedPacket


def run_file(
    path: Path, *, realtime: bool = False, timeout: float = 30.0, **kw: object
) -> tuple[CameraReader, RecordingSink]:
    sink = RecordingSink()
    reader = CameraReader("cam1", StreamSource(file=path), [sink], realtime=realtime, **kw)  # type: ignore[arg-type]
    reader.start()
    assert reader.join(timeout), "reader did not finish"
    return reader, sink


def check_session_packets(packets: list[TimedPacket]) -> None:
    assert packets, "no packets"
    first = packets[0]
    assert first.kind == "video" and first.keyframe
    assert first.dts_us == 0
    for kind in ("video", "audio"):
        dts = [p.dts_us for p in packets if p.kind == kind]
        assert all(b > a for a, b in itertools.pairwise(dts)), f"{kind} dts not increasing"
        assert all(p.pts_us >= p.dts_us for p in packets if p.kind == kind)
        assert all(d >= 0 for d in dts)
    assert all(p.duration_us > 0 and p.data for p in packets)


def test_h264_aac_mp4(media: dict[str, Path]) -> None:
    reader, sink = run_file(media["h264_aac_mp4"])
    assert len(sink.sessions) == 1
    s = sink.sessions[0]
    assert s.camera == "cam1" and s.source == "h264_aac.mp4"
    v = s.video
    assert (v.kind, v.codec, v.width, v.height) == ("video", "h264", 320, 240)
    assert v.extradata is not None and v.extradata[0] == 1  # avcC: packets length-prefixed
    assert v.time_base > 0
    assert s.audio is not None
    assert (s.audio.codec, s.audio.sample_rate, s.audio.channels) == ("aac", 16000, 1)
    assert s.audio.extradata  # AudioSpecificConfig
    assert s.video_template is not None and s.audio_template is not None
    pkts = sink.packets_of(s.session_id)
    check_session_packets(pkts)
    assert sum(p.kind == "video" for p in pkts) == 30
    assert sum(p.kind == "audio" for p in pkts) >= 30
    assert sink.ended == [(s.session_id, "eof")]
    h = reader.health()
    assert h.state == "stopped" and h.codec == "h264" and h.width == 320
    assert h.audio_codec == "aac" and h.session_id == s.session_id
    assert h.packets == len(pkts) and h.last_error is None


@pytest.mark.parametrize(("key", "codec"), [("hevc_ts", "hevc"), ("h264_ts", "h264")])
def test_annexb_sources_carry_annexb_extradata(
    media: dict[str, Path], key: str, codec: str
) -> None:
    _, sink = run_file(media[key])
    assert len(sink.sessions) == 1
    v = sink.sessions[0].video
    assert v.codec == codec and (v.width, v.height) == (320, 240)
    assert v.extradata is not None
    assert v.extradata.startswith((b"\x00\x00\x01", b"\x00\x00\x00\x01"))
    check_session_packets(sink.packets_of(sink.sessions[0].session_id))


def test_hevc_mp4_keeps_container_record(media: dict[str, Path]) -> None:
    _, sink = run_file(media["hevc_mp4"])
    v = sink.sessions[0].video
    assert v.codec == "hevc" and v.extradata is not None and v.extradata[0] == 1


def test_resolution_change_starts_a_new_session(media: dict[str, Path]) -> None:
    _, sink = run_file(media["reschange_ts"])
    assert [(s.video.width, s.video.height) for s in sink.sessions] == [(320, 240), (640, 360)]
    a, b = sink.sessions
    assert b.session_id > a.session_id
    assert sink.ended == [(a.session_id, "codec_change"), (b.session_id, "eof")]
    # the new session's extradata describes the new parameters
    parsed = parse_extradata("h264", b.video.extradata)
    assert parsed is not None
    info = parsed.sets.sps_info()
    assert info is not None and (info.width, info.height) == (640, 360)
    pa, pb = sink.packets_of(a.session_id), sink.packets_of(b.session_id)
    check_session_packets(pa)
    check_session_packets(pb)
    assert sum(p.kind == "video" for p in pa) == 21  # 1.4 s at 15 fps
    assert sum(p.kind == "video" for p in pb) == 21
    # wall time continues across the cut (no overlap, no hole beyond a frame or two)
    assert a.started_wall_us == pa[0].wall_us and b.started_wall_us == pb[0].wall_us
    last_a = max(p.wall_us for p in pa if p.kind == "video")
    assert -10_000 < b.started_wall_us - last_a < 150_000


def test_leading_non_keyframes_are_dropped(media: dict[str, Path], tmp_path: Path) -> None:
    data = media["h264_ts"].read_bytes()
    cut = tmp_path / "cut.ts"
    cut.write_bytes(data[(len(data) // 188 // 3) * 188 :])  # starts mid-GOP
    reader, sink = run_file(cut)
    pkts = sink.packets_of(sink.sessions[0].session_id)
    check_session_packets(pkts)
    assert reader.health().dropped_packets > 0
    assert len(pkts) < 30


def test_realtime_pacing_and_prompt_stop(media: dict[str, Path]) -> None:
    sink = RecordingSink()
    reader = CameraReader("cam1", StreamSource(file=media["h264_ts"]), [sink])  # realtime
    start = time.monotonic()
    reader.start()
    assert sink.wait_for(lambda s: len(s.packets) >= 15, 5)
    elapsed = time.monotonic() - start
    assert 0.6 < elapsed < 2.0  # 15 frames at 15 fps: about a second, not instantly
    walls = [p.wall_us for _, p in sink.packets]
    assert (walls[-1] - walls[0]) / 1e6 == pytest.approx(elapsed, abs=0.5)
    t = time.monotonic()
    assert reader.stop()
    assert time.monotonic() - t < 2.0
    assert sink.ended[-1][1] == "stopped"
    assert reader.health().state == "stopped"


def test_loop_reopens_the_file(media: dict[str, Path]) -> None:
    sink = RecordingSink(keep_data=False)
    reader = CameraReader(
        "cam1", StreamSource(file=media["small_ts"]), [sink], realtime=False, loop=True
    )
    reader.start()
    try:
        assert sink.wait_for(lambda s: len(s.sessions) >= 3, 10)
    finally:
        assert reader.stop()
    ids = [s.session_id for s in sink.sessions]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


class ExplodingSink:
    def __init__(self) -> None:
        self.calls = 0

    def session_started(self, session: StreamSession) -> None:
        raise RuntimeError("boom in session_started")

    def packet(self, session: StreamSession, pkt: TimedPacket) -> None:
        self.calls += 1
        raise ValueError("boom in packet")

    def session_ended(self, session: StreamSession, reason: str) -> None:
        raise RuntimeError("boom in session_ended")


def test_failing_sink_does_not_stop_others(
    media: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    bad, good = ExplodingSink(), RecordingSink()
    reader = CameraReader("cam1", StreamSource(file=media["h264_ts"]), [bad, good], realtime=False)
    reader.start()
    assert reader.join(20)
    assert bad.calls == 30
    assert len(good.sessions) == 1 and len(good.packets) == 30 and len(good.ended) == 1
    sink_logs = [r for r in caplog.records if "sink ExplodingSink" in r.getMessage()]
    assert 3 <= len(sink_logs) <= 10  # logged, but not once per packet
    assert any("boom in packet" in r.getMessage() for r in sink_logs)


def test_audio_can_be_ignored(media: dict[str, Path]) -> None:
    _, sink = run_file(media["h264_aac_mp4"], audio=False)
    assert sink.sessions[0].audio is None
    assert all(p.kind == "video" for _, p in sink.packets)


def test_missing_file_goes_offline_and_retries(tmp_path: Path) -> None:
    cfg = IngestConfig(backoff_initial=0.05, backoff_max=0.2)
    reader = CameraReader(
        "cam1", StreamSource(file=tmp_path / "nope.mp4"), [RecordingSink()], config=cfg
    )
    reader.start()
    try:
        assert wait_until(lambda: reader.health().consecutive_failures >= 3, 5)
        h = reader.health()
        assert h.state in ("offline", "connecting")
        assert h.last_error_kind == "not_found"
    finally:
        assert reader.stop()


def test_session_ids_increase_across_readers(media: dict[str, Path]) -> None:
    _, s1 = run_file(media["small_ts"])
    _, s2 = run_file(media["small_ts"])
    assert s2.sessions[0].session_id > s1.sessions[0].session_id


def test_logs_name_the_source_without_secrets(
    media: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="vigil.ingest")
    run_file(media["small_ts"])
    assert any("session" in r.getMessage() and "small.ts" in r.getMessage() for r in caplog.records)


def test_hevc_resolution_change(media: dict[str, Path]) -> None:
    _, sink = run_file(media["hevc_reschange_ts"])
    sizes = [(s.video.codec, s.video.width, s.video.height) for s in sink.sessions]
    assert sizes == [("hevc", 320, 240), ("hevc", 480, 272)]
    assert [r for _, r in sink.ended] == ["codec_change", "eof"]
    second = sink.sessions[1].video.extradata
    assert second is not None and second.startswith(b"\x00\x00\x00\x01\x40")  # VPS first
    for s in sink.sessions:
        check_session_packets(sink.packets_of(s.session_id))


def test_audio_only_source_is_not_video(media: dict[str, Path]) -> None:
    cfg = IngestConfig(backoff_initial=0.05, backoff_max=0.1)
    reader = CameraReader(
        "cam1", StreamSource(file=media["audio_only"]), [RecordingSink()], config=cfg
    )
    reader.start()
    try:
        assert wait_until(lambda: reader.health().consecutive_failures >= 1, 5)
    finally:
        assert reader.stop()
    h = reader.health()
    assert h.last_error_kind == "not_video" and "no video" in (h.last_error or "")


def test_internal_error_reconnects_instead_of_dying(
    media: dict[str, Path], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = IngestConfig(backoff_initial=0.05, backoff_max=0.1)
    sink = RecordingSink(keep_data=False)
    reader = CameraReader(
        "cam1", StreamSource(file=media["small_ts"]), [sink], config=cfg, realtime=False
    )
    original = reader._keyframe_params
    calls = {"n": 0}

    def flaky(*args: object, **kw: object) -> object:
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyError("simulated bug")
        return original(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(reader, "_keyframe_params", flaky)
    reader.start()
    assert reader.join(10)
    assert len(sink.sessions) == 1 and sink.ended[-1][1] == "eof"
    assert any("internal error" in r.getMessage() for r in caplog.records)
