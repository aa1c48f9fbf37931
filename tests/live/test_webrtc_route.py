"""The WebRTC signalling routes over the real API app: authorization (401, 403, 404, CSRF),
the JSON error shape for bad offers, H.265 refusal, limits, audit, and closing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from fastapi.testclient import TestClient

from tests.live.test_live_route import PASSWORD, api, login  # noqa: F401 - fixture
from tests.record.feeder import feed_file
from vigil.api.accounts import Accounts, Grant
from vigil.api.app import create_app
from vigil.api.live import router as live_router
from vigil.api.passwords import fast_hasher
from vigil.config.api_model import ApiConfig

ORIGIN = {"Origin": "http://testserver"}


def browser_offer() -> str:
    """A real offer (aiortc as the browser: a recvonly video transceiver)."""
    from aiortc import RTCConfiguration, RTCPeerConnection

    async def make() -> str:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        await pc.close()
        return str(sdp)

    return asyncio.run(make())


def session_headers(client: TestClient, user: str) -> dict[str, str]:
    r = client.post("/api/auth/login", json={"username": user, "password": PASSWORD},
                    headers=ORIGIN)
    assert r.status_code == 200, r.text
    return {**ORIGIN, "X-CSRF-Token": r.json()["csrf_token"]}


def error_code(r: Any) -> str:
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return str(body["error"]["code"])


def test_offer_refused_without_credentials_permission_or_csrf(api: SimpleNamespace) -> None:  # noqa: F811
    offer = {"type": "offer", "sdp": "v=0\r\n"}
    r = api.client.post("/api/cameras/door/webrtc", json=offer)
    assert r.status_code == 401 and error_code(r) == "unauthorized"
    r = api.client.delete("/api/cameras/door/webrtc", params={"peer": "abc"})
    assert r.status_code == 401
    # a viewer who may see the door's recordings but not its live view
    accounts = Accounts(api.index.db, fast_hasher())
    accounts.create_user("recs", PASSWORD, "viewer")
    accounts.set_grants("recs", [Grant("door", frozenset({"view_recordings"}))])
    h = session_headers(api.client, "recs")
    r = api.client.post("/api/cameras/door/webrtc", json=offer, headers=h)
    assert r.status_code == 403 and error_code(r) == "forbidden"
    h = session_headers(api.client, "guest")  # yard only
    r = api.client.post("/api/cameras/door/webrtc", json=offer, headers=h)
    assert r.status_code == 404  # not visible: indistinguishable from unknown
    r = api.client.post("/api/cameras/yard/webrtc", json=offer, headers=ORIGIN)
    assert r.status_code == 403 and error_code(r) == "csrf_failed"
    assert api.hubs["door"]._rtc is None and api.hubs["yard"]._rtc is None


def test_bad_offers_get_400_json(api: SimpleNamespace) -> None:  # noqa: F811
    h = session_headers(api.client, "boss")
    for sdp in ("garbage", "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nnonsense\r\n"):
        r = api.client.post("/api/cameras/door/webrtc", json={"type": "offer", "sdp": sdp},
                            headers=h)
        assert r.status_code == 400, r.text
        assert error_code(r) == "bad_offer"
    r = api.client.post("/api/cameras/door/webrtc", json={"type": "answer", "sdp": "x"},
                        headers=h)
    assert r.status_code == 422 and error_code(r) == "validation_error"
    r = api.client.post("/api/cameras/door/webrtc?stream=side",
                        json={"type": "offer", "sdp": "x"}, headers=h)
    assert r.status_code == 422
    assert api.hubs["door"]._rtc is None or api.hubs["door"]._rtc.peer_count == 0


def test_offer_answered_audited_and_closed(api: SimpleNamespace) -> None:  # noqa: F811
    h = session_headers(api.client, "guest")
    offer = browser_offer()
    r = api.client.post("/api/cameras/yard/webrtc?stream=sub",
                        json={"type": "offer", "sdp": offer}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["type"] == "answer" and body["camera"] == "yard" and body["stream"] == "main"
    assert "H264/90000" in body["sdp"] and "a=candidate:" in body["sdp"]
    assert "typ srflx" not in body["sdp"]  # no STUN server was asked
    assert api.hubs["yard"]._rtc.peer_count == 1
    rows, _ = api.client.app.state.vigil.audit.search(action="live.view", limit=10)
    assert [(r.actor, r.camera, r.detail.get("format")) for r in rows] == [
        ("guest", "yard", "webrtc")
    ]
    # the per-user limit (default 4) and the JSON shape of its refusal
    peers = api.client.app.state.webrtc_peers
    peers.max_peers_per_user = 1
    r2 = api.client.post("/api/cameras/yard/webrtc",
                         json={"type": "offer", "sdp": offer}, headers=h)
    assert r2.status_code == 429 and error_code(r2) == "too_many_peers"
    # someone else's peer cannot be closed, even with its id
    accounts = Accounts(api.index.db, fast_hasher())
    accounts.create_user("neighbour", PASSWORD, "viewer")
    accounts.set_grants("neighbour", [Grant("yard", frozenset({"view_live"}))])
    other = TestClient(api.client.app, base_url="http://testserver")  # own cookies
    r = other.delete("/api/cameras/yard/webrtc", params={"peer": body["id"]},
                     headers=session_headers(other, "neighbour"))
    assert r.status_code == 404
    assert len(peers) == 1
    r = api.client.delete("/api/cameras/yard/webrtc", params={"peer": body["id"]}, headers=h)
    assert r.status_code == 204
    assert api.hubs["yard"]._rtc.peer_count == 0 and len(peers) == 0
    # closing twice is fine (a page's DELETE may race the peer's own close); an id that
    # never was is not
    r = api.client.delete("/api/cameras/yard/webrtc", params={"peer": body["id"]}, headers=h)
    assert r.status_code == 204
    r = api.client.delete("/api/cameras/yard/webrtc", params={"peer": "nope"}, headers=h)
    assert r.status_code == 404 and error_code(r) == "not_found"


def test_peer_closes_when_the_session_is_logged_out(api: SimpleNamespace) -> None:  # noqa: F811
    import time

    from vigil.live.webrtc import RtcPeers

    # re-checked every 0.2 s here instead of every minute
    api.client.app.state.webrtc_peers = RtcPeers(revalidate=0.2)
    h = session_headers(api.client, "guest")
    r = api.client.post("/api/cameras/yard/webrtc",
                        json={"type": "offer", "sdp": browser_offer()}, headers=h)
    assert r.status_code == 200, r.text
    peers = api.client.app.state.webrtc_peers
    time.sleep(1.0)
    assert len(peers) == 1  # still valid: kept
    assert api.client.post("/api/auth/logout", headers=h).status_code in (200, 204)
    deadline = time.monotonic() + 10
    while len(peers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(peers) == 0
    assert api.hubs["yard"]._rtc.peer_count == 0


def test_h265_camera_is_refused_with_409(api: SimpleNamespace, live_clips: dict[str, Path]) -> None:  # noqa: F811
    feed_file(api.hubs["door"], live_clips["hevc"], max_seconds=0.3, end_reason=None)
    h = session_headers(api.client, "boss")
    r = api.client.post("/api/cameras/door/webrtc",
                        json={"type": "offer", "sdp": browser_offer()}, headers=h)
    assert r.status_code == 409 and error_code(r) == "unsupported_codec"
    assert r.json()["error"]["details"] == {"codec": "hevc"}


def test_disabled_webrtc_answers_503(api: SimpleNamespace, tmp_path: Path) -> None:  # noqa: F811
    ctx = api.client.app.state.vigil.ctx
    ctx.api = ApiConfig.model_validate(
        {"tls": {"enabled": False}, "export_dir": str(tmp_path / "exp2"),
         "cache_dir": str(tmp_path / "cache2"), "webrtc": {"enabled": False}}
    )
    app = create_app(ctx, routers=[live_router])
    with TestClient(app, base_url="http://testserver") as client:
        h = session_headers(client, "boss")
        r = client.post("/api/cameras/door/webrtc",
                        json={"type": "offer", "sdp": browser_offer()}, headers=h)
    assert r.status_code == 503 and error_code(r) == "webrtc_disabled"


def _fuzz_runner(op: Any, explicit: dict[str, Any], checks: list[Any],
                 headers: dict[str, str]) -> Any:
    from hypothesis import HealthCheck, given, settings

    @settings(max_examples=25, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy(**explicit))
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=checks)

    return run


def test_fuzzed_webrtc_requests_get_no_server_error(api: SimpleNamespace) -> None:  # noqa: F811
    """Schemathesis on the two WebRTC operations (the API's fuzz test covers the app
    without the live router): schema-violating and generated offers, bodies and peer ids
    must get documented 4xx answers, never a 500."""
    import time

    import schemathesis
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        status_code_conformance,
    )

    accounts = Accounts(api.index.db, fast_hasher())
    secret, _ = accounts.create_token("boss", "fuzz", ["admin"],
                                      int((time.time() + 3600) * 1_000_000))
    headers = {"Authorization": f"Bearer {secret}"}
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", api.client.app,
                                            headers=headers)
    ops = [r.ok() for r in schema.get_all_operations() if "webrtc" in r.ok().path]
    assert {(o.method.upper(), o.path) for o in ops} == {
        ("POST", "/api/cameras/{camera}/webrtc"),
        ("DELETE", "/api/cameras/{camera}/webrtc"),
    }
    real = {"type": "offer", "sdp": browser_offer()}  # a real offer: the answering path too
    failures = {}
    for op in ops:
        for n, explicit in enumerate(
            [{"generation_mode": GenerationMode.NEGATIVE}, {},
             {"path_parameters": {"camera": "door"}}]
            + ([{"path_parameters": {"camera": "door"}, "body": real}] if op.method == "post"
               else [])
        ):
            checks = [not_a_server_error] if n == 0 else [
                not_a_server_error, status_code_conformance, content_type_conformance]

            run = _fuzz_runner(op, explicit, checks, headers)

            try:
                run()
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # collected (schemathesis raises exception groups)
                failures[f"{op.label} (pass {n})"] = f"{type(exc).__name__}: {str(exc)[:2000]}"
    assert not failures, "\n\n".join(f"{k}\n{v}" for k, v in failures.items())
