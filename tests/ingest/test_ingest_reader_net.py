"""CameraReader against network sources that need no real camera: MJPEG over HTTP, an
MPEG-TS over HTTP, misbehaving HTTP/RTSP servers and closed ports."""

from __future__ import annotations

import itertools
import logging
import random
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from tests.ingest.ingest_helpers import (
    FakeRtspServer,
    RecordingSink,
    free_port,
    http_server,
    wait_until,
)
from vigil.config.model import Credentials, IngestConfig, StreamSource
from vigil.ingest.backoff import Backoff
from vigil.ingest.reader import CameraReader

PASSWORD = "Sup3r$ecret/pw@1"


def creds() -> Credentials:
    return Credentials(username="admin", password=SecretStr(PASSWORD))


def assert_no_secret(*texts: str) -> None:
    for t in texts:
        assert PASSWORD not in t
        assert "Sup3r%24ecret" not in t


def test_mjpeg_over_http(jpegs: list[bytes], fast_cfg: IngestConfig) -> None:
    with http_server(jpegs) as srv:
        sink = RecordingSink()
        url = f"http://127.0.0.1:{srv.server_address[1]}/mjpeg"
        reader = CameraReader("cam1", StreamSource(url=url), [sink], config=fast_cfg)
        reader.start()
        try:
            assert sink.wait_for(lambda s: len(s.packets) >= 20, 10)
            h = reader.health()
        finally:
            assert reader.stop()
    s = sink.sessions[0]
    assert (s.video.codec, s.video.width, s.video.height) == ("mjpeg", 160, 120)
    pkts = sink.packets_of(s.session_id)
    assert all(p.keyframe and p.kind == "video" for p in pkts)
    dts = [p.dts_us for p in pkts]
    assert all(b > a for a, b in itertools.pairwise(dts))
    assert h.state == "online" and 5 < h.fps < 15 and h.bitrate_bps > 0
    assert sink.ended[-1][1] == "stopped"


def test_mpegts_over_http_then_server_ends_stream(
    jpegs: list[bytes], media: dict[str, Path], fast_cfg: IngestConfig
) -> None:
    with http_server(jpegs, ts_file=media["h264_ts"]) as srv:
        sink = RecordingSink()
        url = f"http://127.0.0.1:{srv.server_address[1]}/ts"
        reader = CameraReader("cam1", StreamSource(url=url), [sink], config=fast_cfg)
        reader.start()
        try:
            # the whole file arrives at once, ends, and the reader reconnects
            assert sink.wait_for(lambda s: len(s.sessions) >= 2, 10)
        finally:
            assert reader.stop()
    assert sink.ended[0][1] == "eof"
    assert sink.sessions[0].video.codec == "h264"
    assert reader.health().reconnects >= 1


def test_closed_port_backs_off_with_jitter() -> None:
    cfg = IngestConfig(open_timeout=1, stall_timeout=1, backoff_initial=0.05, backoff_max=0.4)
    backoff = Backoff(cfg.backoff_initial, cfg.backoff_max, rng=random.Random(5))
    reader = CameraReader(
        "cam1",
        StreamSource(url=f"rtsp://127.0.0.1:{free_port()}/stream"),
        [RecordingSink()],
        config=cfg,
        backoff=backoff,
    )
    reader.start()
    try:
        assert wait_until(lambda: len(reader.delays) >= 8, 10)
        h = reader.health()
    finally:
        assert reader.stop()
    assert h.state in ("offline", "connecting")
    assert h.last_error_kind == "refused" and h.consecutive_failures >= 7
    assert h.reconnects == 0 and h.session_id is None
    delays = list(reader.delays)[:8]
    caps = [min(0.4, 0.05 * 2**i) for i in range(8)]
    assert all(d <= c + 1e-9 for d, c in zip(delays, caps, strict=True))
    assert all(d >= 0.005 - 1e-9 for d in delays)  # the floor
    assert len({round(d, 6) for d in delays}) == len(delays)  # jittered, not fixed
    assert max(delays[4:]) > max(delays[:2])  # grows


def test_stop_interrupts_a_hanging_open() -> None:
    cfg = IngestConfig(open_timeout=30, stall_timeout=30)
    with FakeRtspServer("silent") as srv:
        reader = CameraReader("cam1", StreamSource(url=srv.url), [RecordingSink()], config=cfg)
        reader.start()
        assert wait_until(lambda: srv.connections >= 1, 5)
        time.sleep(0.3)
        t = time.monotonic()
        assert reader.stop(timeout=2.0)
        assert time.monotonic() - t < 2.0
    assert reader.health().state == "stopped"


def test_silent_rtsp_server_fails_within_open_timeout(fast_cfg: IngestConfig) -> None:
    with FakeRtspServer("silent") as srv:
        reader = CameraReader("cam1", StreamSource(url=srv.url), [RecordingSink()], config=fast_cfg)
        t = time.monotonic()
        reader.start()
        try:
            assert wait_until(lambda: reader.health().consecutive_failures >= 1, 6)
            elapsed = time.monotonic() - t
        finally:
            assert reader.stop()
    assert elapsed < fast_cfg.open_timeout + 1.0
    assert reader.health().last_error_kind == "timeout"


def test_rtsp_401_is_clear_and_never_leaks_the_password(
    caplog: pytest.LogCaptureFixture, fast_cfg: IngestConfig
) -> None:
    caplog.set_level(logging.DEBUG)
    with FakeRtspServer("401") as srv:
        sink = RecordingSink()
        reader = CameraReader(
            "cam1", StreamSource(url=srv.url), [sink], credentials=creds(), config=fast_cfg
        )
        reader.start()
        try:
            assert wait_until(lambda: reader.health().consecutive_failures >= 2, 10)
            h = reader.health()
        finally:
            assert reader.stop()
        assert f"admin:{PASSWORD}" in srv.auth_headers  # the right password was sent
    assert h.last_error_kind == "unauthorized"
    assert h.last_error is not None and "401" in h.last_error
    assert "username or password" in h.last_error
    assert not sink.sessions
    texts = [caplog.text, repr(h), str(h.last_error)]
    texts += [str(r.msg) + repr(r.args) + repr(r.__dict__) for r in caplog.records]
    assert_no_secret(*texts)
    assert any("401" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("path", ["/garbage", "/notvideo"])
def test_http_garbage_is_a_clear_error_not_a_crash(
    jpegs: list[bytes], fast_cfg: IngestConfig, path: str
) -> None:
    with http_server(jpegs) as srv:
        url = f"http://127.0.0.1:{srv.server_address[1]}{path}"
        reader = CameraReader("cam1", StreamSource(url=url), [RecordingSink()], config=fast_cfg)
        reader.start()
        try:
            assert wait_until(lambda: reader.health().consecutive_failures >= 2, 10)
            assert reader.running
        finally:
            assert reader.stop()
    h = reader.health()
    assert h.last_error_kind == "invalid_data"
    assert "not a recognisable video stream" in (h.last_error or "")


def test_rtsp_garbage_is_a_clear_error(fast_cfg: IngestConfig) -> None:
    with FakeRtspServer("garbage") as srv:
        reader = CameraReader("cam1", StreamSource(url=srv.url), [RecordingSink()], config=fast_cfg)
        reader.start()
        try:
            assert wait_until(lambda: reader.health().consecutive_failures >= 1, 8)
        finally:
            assert reader.stop()
    assert reader.health().last_error_kind == "invalid_data"


def test_inline_password_in_url_is_redacted_everywhere(
    caplog: pytest.LogCaptureFixture, fast_cfg: IngestConfig
) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"rtsp://admin:Sup3r%24ecret%2Fpw%401@127.0.0.1:{free_port()}/stream"
    reader = CameraReader("cam1", StreamSource(url=url), [RecordingSink()], config=fast_cfg)
    reader.start()
    try:
        assert wait_until(lambda: reader.health().consecutive_failures >= 1, 5)
        h = reader.health()
    finally:
        assert reader.stop()
    assert h.source == f"rtsp://127.0.0.1:{url.rsplit(':', 1)[1]}"
    assert_no_secret(caplog.text, repr(h))


def test_mjpeg_resolution_change_starts_new_session(
    jpegs: list[bytes], jpegs_big: list[bytes], fast_cfg: IngestConfig
) -> None:
    with http_server(jpegs, jpegs2=jpegs_big) as srv:
        sink = RecordingSink(keep_data=False)
        url = f"http://127.0.0.1:{srv.server_address[1]}/mjpeg-switch"
        reader = CameraReader("cam1", StreamSource(url=url), [sink], config=fast_cfg)
        reader.start()
        try:
            assert sink.wait_for(lambda s: len(s.sessions) >= 2 and len(s.packets) >= 15, 10)
        finally:
            assert reader.stop()
    assert [(s.video.width, s.video.height) for s in sink.sessions[:2]] == [
        (160, 120),
        (320, 240),
    ]
    assert sink.ended[0] == (sink.sessions[0].session_id, "codec_change")
    assert len(sink.packets_of(sink.sessions[0].session_id)) == 10
    assert reader.health().width == 320


def test_http_stall_is_detected(jpegs: list[bytes]) -> None:
    cfg = IngestConfig(stall_timeout=1.0, open_timeout=2.0, backoff_initial=0.2, backoff_max=0.4)
    with http_server(jpegs) as srv:
        sink = RecordingSink(keep_data=False)
        url = f"http://127.0.0.1:{srv.server_address[1]}/mjpeg-stall"
        reader = CameraReader("cam1", StreamSource(url=url), [sink], config=cfg)
        reader.start()
        try:
            assert sink.wait_for(lambda s: len(s.packets) >= 10, 10)
            t_last = time.monotonic()
            assert sink.wait_for(lambda s: len(s.ended) >= 1, 5)
            detected = time.monotonic() - t_last
            h = reader.health()  # updated before sinks hear of the end
        finally:
            assert reader.stop()
    assert sink.ended[0][1] == "stalled"
    assert 0.7 <= detected <= cfg.stall_timeout + 1.5
    assert h.last_error_kind == "stalled" and h.state in ("stalled", "connecting", "online")


@pytest.mark.parametrize(("healthy_reset", "resets"), [(0.5, True), (60.0, False)])
def test_backoff_resets_after_a_healthy_connection(
    jpegs: list[bytes], healthy_reset: float, resets: bool
) -> None:
    """Each connection delivers 10 frames over a second, then stalls. When a second counts
    as healthy, every retry starts from the initial delay again."""
    cfg = IngestConfig(stall_timeout=0.6, open_timeout=2.0, backoff_initial=0.1, backoff_max=5)
    with http_server(jpegs) as srv:
        sink = RecordingSink(keep_data=False)
        url = f"http://127.0.0.1:{srv.server_address[1]}/mjpeg-stall"
        reader = CameraReader(
            "cam1", StreamSource(url=url), [sink], config=cfg, healthy_reset=healthy_reset
        )
        reader.start()
        try:
            assert sink.wait_for(lambda s: len(s.ended) >= 3, 15)
        finally:
            assert reader.stop()
    attempts = reader.backoff.attempt
    if resets:
        assert attempts <= 1
        assert all(d <= 0.1 for d in reader.delays)
    else:
        assert attempts >= 2  # the third wait may be cut short by stop()
