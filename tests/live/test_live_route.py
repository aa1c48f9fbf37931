"""The live WebSocket and MJPEG routes over the real API app (no browser): authorization,
the message protocol, audit, and the MJPEG multipart stream."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import av
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from tests.record.feeder import feed_file
from vigil.api.accounts import Accounts, Grant
from vigil.api.app import create_app
from vigil.api.live import router as live_router
from vigil.api.passwords import fast_hasher
from vigil.api.state import AppContext
from vigil.config.api_model import ApiConfig
from vigil.config.loader import parse_config
from vigil.index.db import Database
from vigil.index.repository import Index
from vigil.live import LiveRegistry

PASSWORD = "plenty-Long-passphrase-31"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[SimpleNamespace]:
    cfg = parse_config(
        {
            "storage": {"path": str(tmp_path / "store")},
            "cameras": [
                {"name": "door", "main": {"url": "rtsp://127.0.0.1:1/door"}},
                {"name": "yard", "main": {"url": "rtsp://127.0.0.1:1/yard"}},
            ],
        }
    )
    (tmp_path / "store").mkdir()
    index = Index(Database(cfg.database_url()), tmp_path / "store")
    registry = LiveRegistry()
    hubs = {name: registry.create(name, "main") for name in ("door", "yard")}
    ctx = AppContext(
        config=cfg,
        index=index,
        nvr=SimpleNamespace(live=registry),
        api=ApiConfig.model_validate(
            {"tls": {"enabled": False}, "export_dir": str(tmp_path / "exp"),
             "cache_dir": str(tmp_path / "cache")}
        ),
        hasher=fast_hasher(),
    )
    app = create_app(ctx, routers=[live_router])
    accounts = Accounts(index.db, fast_hasher())
    accounts.create_user("boss", PASSWORD, "admin")
    accounts.create_user("guest", PASSWORD, "viewer")
    accounts.set_grants("guest", [Grant("yard", frozenset({"view_live"}))])
    with TestClient(app, base_url="http://testserver") as client:
        yield SimpleNamespace(client=client, hubs=hubs, registry=registry, index=index)
    registry.close()


def login(client: TestClient, user: str) -> None:
    r = client.post("/api/auth/login", json={"username": user, "password": PASSWORD},
                    headers={"Origin": "http://testserver"})
    assert r.status_code == 200, r.text


def feed_when_watched(hub: Any, clip: Path, viewers: int = 1) -> threading.Thread:
    def run() -> None:
        deadline = time.monotonic() + 10
        while hub.viewer_count + hub.stats().mjpeg_viewers < viewers:
            if time.monotonic() > deadline:
                return
            time.sleep(0.02)
        feed_file(hub, clip, speed=4.0)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_websocket_sends_mime_then_init_then_fragments(
    api: SimpleNamespace, live_clips: dict[str, Path]
) -> None:
    login(api.client, "boss")
    feeder = feed_when_watched(api.hubs["door"], live_clips["h264"])
    with api.client.websocket_connect(
        "/api/cameras/door/live?stream=sub", headers={"Origin": "http://testserver"}
    ) as ws:
        hello = json.loads(ws.receive_text())
        assert hello["type"] == "init"
        assert hello["mime"].startswith('video/mp4; codecs="avc1.')
        assert hello["stream"] == "main"  # no substream: the main stream serves the grid
        data = ws.receive_bytes()
        assert data[4:8] == b"ftyp"
        frags = []
        while True:
            msg = ws.receive()
            if msg.get("text"):
                assert json.loads(msg["text"]) == {"type": "ended", "detail": "eof"}
                break
            frags.append(msg["bytes"])
    feeder.join(10)
    with av.open(io.BytesIO(data + b"".join(frags))) as c:
        frames = sum(len(p.decode()) for p in c.demux(c.streams.video[0]))
    assert frames == len(frags) == 100  # 4 s at 25 fps, one fragment per frame
    rows, _ = api.client.app.state.vigil.audit.search(action="live.view", limit=10)
    assert [(r.actor, r.camera) for r in rows] == [("boss", "door")]


def test_websocket_refused_without_login_or_permission(api: SimpleNamespace) -> None:
    with pytest.raises(WebSocketDisconnect) as exc:  # noqa: SIM117
        with api.client.websocket_connect("/api/cameras/door/live"):
            pass
    assert exc.value.code == 4401
    login(api.client, "guest")
    with pytest.raises(WebSocketDisconnect) as exc:  # noqa: SIM117
        with api.client.websocket_connect(
            "/api/cameras/door/live", headers={"Origin": "http://testserver"}
        ):
            pass
    assert exc.value.code == 4404  # not visible at all: indistinguishable from unknown
    with pytest.raises(WebSocketDisconnect) as exc:  # noqa: SIM117
        with api.client.websocket_connect(
            "/api/cameras/yard/live", headers={"Origin": "http://evil.example"}
        ):
            pass
    assert exc.value.code == 4403  # cross-site WebSocket hijacking
    assert api.hubs["door"].viewer_count == 0
    r = api.client.get("/api/cameras/door/live.mjpeg")
    assert r.status_code == 404


def test_mjpeg_websocket_and_multipart(
    api: SimpleNamespace, live_clips: dict[str, Path]
) -> None:
    login(api.client, "guest")
    hub = api.hubs["yard"]
    feeder = feed_when_watched(hub, live_clips["hevc"])
    with api.client.websocket_connect(
        "/api/cameras/yard/live?format=mjpeg", headers={"Origin": "http://testserver"}
    ) as ws:
        hello = json.loads(ws.receive_text())
        assert hello["mime"] == "image/jpeg" and hello["format"] == "mjpeg"
        frame = json.loads(ws.receive_text())
        assert frame["type"] == "frame" and frame["wall_us"] > 1_600_000_000_000_000
        jpeg = ws.receive_bytes()
        assert jpeg[:2] == b"\xff\xd8"
    feeder.join(10)

    feeder = feed_when_watched(hub, live_clips["hevc"])
    with api.client.stream("GET", "/api/cameras/yard/live.mjpeg") as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("multipart/x-mixed-replace")
        buf = b""
        for chunk in r.iter_bytes():
            buf += chunk
            if buf.count(b"--vigilframe") >= 2:
                break
    assert b"Content-Type: image/jpeg" in buf and b"\xff\xd8" in buf
    feeder.join(10)


def test_websocket_bad_parameter(api: SimpleNamespace) -> None:
    login(api.client, "boss")
    with pytest.raises(WebSocketDisconnect) as exc:  # noqa: SIM117
        with api.client.websocket_connect(
            "/api/cameras/door/live?stream=fisheye", headers={"Origin": "http://testserver"}
        ):
            pass
    assert exc.value.code == 4400
