"""The whole recorder against a real RTSP server: faulty cameras never disturb the others.

One run covers the issue's bad-input list at system level: wrong credentials (401), an
unreachable host, a URL that is not video, a camera that goes away and comes back, one
that stalls, one that changes resolution mid-stream, a UDP-only camera, and audio.
"""

from __future__ import annotations

import http.server
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.runtime.conftest import check_storage_consistent, make_config, sim_camera
from vigil.runtime.nvr import NVR
from vigil.sim.controller import Simulator

PASSWORD = "Sup3r-Secret-pw"


class _TextHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<html>this is not a video</html>" * 50
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def text_server() -> Iterator[str]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TextHandler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/video"
    srv.shutdown()
    srv.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(cond, timeout: float, step: float = 0.2) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


def test_faulty_cameras_do_not_disturb_others(
    tmp_path: Path, simulator: Simulator, text_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    simulator.start(
        [
            sim_camera("steady"),
            sim_camera("flaky"),
            sim_camera("switcher"),
            sim_camera("staller"),
            sim_camera("locked", username="admin", password=PASSWORD),
            sim_camera("udponly", transport="udp_only"),
            sim_camera("talker", audio=True),
        ]
    )
    url = simulator.url
    cams = [
        {"name": "steady", "main": {"url": url("steady")}},
        {"name": "flaky", "main": {"url": url("flaky")}},
        {"name": "switcher", "main": {"url": url("switcher")}},
        {"name": "staller", "main": {"url": url("staller")}},
        {
            "name": "locked-ok",
            "main": {"url": url("locked")},
            "credentials": {"username": "admin", "password": PASSWORD},
        },
        {
            "name": "locked-bad",
            "main": {"url": url("locked")},
            "credentials": {"username": "admin", "password": "wrong-" + PASSWORD},
        },
        {"name": "udponly", "main": {"url": url("udponly"), "transport": "udp"}},
        {"name": "talker", "main": {"url": url("talker")}},
        {"name": "unreachable", "main": {"url": f"rtsp://127.0.0.1:{_closed_port()}/x"}},
        {"name": "notvideo", "main": {"url": text_server}},
    ]
    cfg = make_config(tmp_path, cams)
    nvr = NVR(cfg)
    nvr.open()
    nvr.start()
    try:
        assert _wait(lambda: nvr.units["steady"].reader.health().state == "online", 15)
        time.sleep(2)
        simulator.stop_camera("flaky")
        simulator.stall("staller")
        simulator.switch("switcher", sim_camera("switcher", width=480, height=272))
        time.sleep(5)
        simulator.start_camera("flaky")
        simulator.unstall("staller")
        assert _wait(lambda: nvr.units["flaky"].reader.health().reconnects >= 1, 15)
        time.sleep(4)
        nvr.write_status()
        health = {n: u.reader.health() for n, u in nvr.units.items()}
    finally:
        nvr.stop()

    index = check_storage_consistent(cfg)
    segs: dict[str, list] = {}
    for name, seg in index.segments():
        segs.setdefault(name, []).append(seg)
    for good in ("steady", "flaky", "switcher", "staller", "locked-ok", "udponly", "talker"):
        assert segs.get(good), f"{good} recorded nothing"
    for bad in ("locked-bad", "unreachable", "notvideo"):
        assert bad not in segs
        assert health[bad].state in ("offline", "connecting"), health[bad]

    # The steady camera recorded the whole run without a gap.
    steady = segs["steady"]
    for a, b in itertools.pairwise(steady):
        assert b.start_us - a.end_us < 200_000, "steady camera has a hole"

    # Resolution change mid-stream: a new segment with the new size, no crash.
    sizes = {(s.width, s.height) for s in segs["switcher"]}
    assert sizes == {(320, 240), (480, 272)}, sizes

    # Audio kept.
    assert all(s.audio_codec == "aac" for s in segs["talker"])

    # Outages are explicit gaps with a reason.
    reasons = {n: {g.reason for m, g in index.gaps() if m == n} for n in segs}
    assert "offline" in reasons["flaky"], reasons
    assert "stalled" in reasons["staller"], reasons
    assert health["flaky"].reconnects >= 1

    # Clear, classified errors without the password anywhere.
    assert "401" in (health["locked-bad"].last_error or "") or "unauthorized" in (
        health["locked-bad"].last_error_kind or ""
    ), health["locked-bad"]
    assert health["unreachable"].last_error_kind in ("refused", "unreachable", "timeout")
    assert health["notvideo"].last_error, health["notvideo"]
    statuses = {r.camera: r for r in index.statuses()}
    assert statuses["locked-bad"].detail
    everything = caplog.text + repr(health) + repr(statuses)
    assert PASSWORD not in everything
