"""``serve()`` runs the API over HTTPS with a generated self-signed certificate, and
``authorize_websocket`` guards WebSocket routes (the live view's) like HTTP routes."""

from __future__ import annotations

import os
import ssl
import stat
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from tests.api.conftest import ADMIN, Api
from vigil.api import authorize_websocket, create_app, principal_still_valid, serve
from vigil.api.tls import ensure_self_signed


def test_serve_https_self_signed(api: Api) -> None:
    tls_dir = api.tmp / "tls"
    api.ctx.api = api.ctx.api_config().model_copy(
        update={
            "tls": api.ctx.api_config().tls.model_copy(
                update={"enabled": True, "self_signed_dir": tls_dir}
            )
        }
    )
    server = serve(api.ctx, "127.0.0.1", 0)
    try:
        assert server.url.startswith("https://127.0.0.1:")
        assert server.cert == tls_dir / "cert.pem"
        assert stat.S_IMODE(os.stat(tls_dir / "key.pem").st_mode) == 0o600
        assert stat.S_IMODE(os.stat(tls_dir).st_mode) == 0o700
        ctx = ssl.create_default_context(cafile=str(server.cert))
        with httpx.Client(verify=ctx, timeout=10) as c:
            r = c.get(server.url.replace("127.0.0.1", "localhost") + "/api/health/live")
            assert r.status_code == 200 and r.json() == {"status": "ok"}
            assert "strict-transport-security" in r.headers
            assert "server" not in r.headers
            r = c.post(
                server.url.replace("127.0.0.1", "localhost") + "/api/auth/login",
                json={"username": ADMIN[0], "password": ADMIN[1]},
            )
            assert r.status_code == 200
            assert r.headers["set-cookie"].startswith("__Host-vigil_session=")
    finally:
        server.stop()
    assert not server.thread.is_alive()


def test_self_signed_cert_reused_and_renewed_for_new_names(tmp_path: Path) -> None:
    cert, _key = ensure_self_signed(tmp_path / "t", ["localhost"])
    first = cert.read_bytes()
    assert ensure_self_signed(tmp_path / "t", ["localhost"])[0].read_bytes() == first
    ensure_self_signed(tmp_path / "t", ["localhost", "nvr.lan", "192.168.1.10"])
    assert cert.read_bytes() != first


def _ws_app(api: Api) -> object:
    router = APIRouter()

    @router.websocket("/api/live/{camera}/ws")
    async def live(websocket: WebSocket, camera: str) -> None:
        principal = await authorize_websocket(websocket, "view_live", camera)
        if principal is None:
            return
        await websocket.accept()
        ok = await principal_still_valid(websocket, principal)
        await websocket.send_json({"user": principal.username, "valid": ok})
        await websocket.close()

    return create_app(api.ctx, routers=[router])


def test_authorize_websocket(api: Api) -> None:
    from fastapi.testclient import TestClient

    app = _ws_app(api)
    viewer = api.viewer()
    cookie = viewer.cookies.get("__Host-vigil_session")
    with TestClient(app, base_url="https://testserver") as c:  # type: ignore[arg-type]
        c.cookies.set("__Host-vigil_session", cookie)
        with c.websocket_connect("/api/live/cam1/ws") as ws:
            assert ws.receive_json() == {"user": "alice", "valid": True}
        for url, headers in (
            ("/api/live/cam2/ws", {}),  # not her camera
            ("/api/live/nocam/ws", {}),
            ("/api/live/cam1/ws", {"Origin": "https://evil.example"}),  # hijacking attempt
        ):
            with pytest.raises(WebSocketDisconnect) as e, c.websocket_connect(url, headers=headers):
                pass
            assert e.value.code in (4403, 4404)
    with TestClient(app, base_url="https://testserver") as anon:  # type: ignore[arg-type]
        with pytest.raises(WebSocketDisconnect) as e, anon.websocket_connect("/api/live/cam1/ws"):
            pass
        assert e.value.code == 4401
        token = api.token(ADMIN, ["read"])
        with anon.websocket_connect(
            "/api/live/cam2/ws", headers={"Authorization": f"Bearer {token}"}
        ) as ws:
            assert ws.receive_json()["user"] == "admin"
    audit = api.app.state.vigil.audit
    views = audit.search(action="live.view")[0]
    assert {(r.actor, r.camera) for r in views} == {("alice", "cam1"), ("admin", "cam2")}
    denied = audit.search(action="deny.view_live")[0]
    assert {r.camera for r in denied} == {"cam2", "nocam"}
