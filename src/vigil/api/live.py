"""Live view routes: fragmented MP4 over a WebSocket, and MJPEG for codecs a browser's MSE
cannot play.

``GET /api/cameras/{camera}/live?stream=main|sub&format=mp4|mjpeg`` (WebSocket)
    ``format=mp4`` (default): a JSON text message
    ``{"type": "init", "mime": "video/mp4; codecs=\\"avc1.64001f,mp4a.40.2\\"", ...}``
    followed by one binary message with the init segment, then one binary message per
    media fragment. A camera session ending sends ``{"type": "ended", "detail": ...}``;
    when it comes back a new ``init`` follows (media time keeps increasing, so a client
    may keep appending to the same ``SourceBuffer`` when the MIME type is unchanged).
    ``format=mjpeg``: ``{"type": "init", "mime": "image/jpeg", ...}`` once, then for every
    picture ``{"type": "frame", "wall_us": ...}`` followed by one binary JPEG.
``GET /api/cameras/{camera}/live.mjpeg?stream=main|sub``
    ``multipart/x-mixed-replace`` JPEG stream (an ``<img>`` can show it).
``POST /api/cameras/{camera}/webrtc?stream=main|sub`` (JSON ``{"type": "offer", "sdp"}``)
    WebRTC: answers a browser's SDP offer (non-trickle: every candidate in the SDP, both
    ways) with a peer connection that sends the camera's H.264 as it came (see
    :mod:`vigil.live.webrtc`); ``{"id", "type": "answer", "sdp", ...}``. 409
    ``unsupported_codec`` for a camera that does not send H.264 (the page then uses the
    WebSocket), 429 ``too_many_peers`` over the configured limits, 503
    ``webrtc_disabled`` when ``api.webrtc.enabled`` is off.
``DELETE /api/cameras/{camera}/webrtc?peer=<id>``
    Closes a peer of the caller (an administrator may close anyone's). Peers also close
    when the browser closes its side, fails to connect, or its session ends.

All need the ``view_live`` permission on the camera (checked by the API's WebSocket
helper before the socket is accepted, by ``camera_access`` for HTTP; the view is audited
as ``live.view``; the WebRTC routes change state, so a browser session needs the CSRF
header). A viewer that
does not read fast enough is disconnected with close code 1013 (try again later) instead
of slowing anyone else; the session is re-checked every 5 s and the socket closed with
4401 once it is no longer valid (logout, expiry, disabled account).

The live hubs come from the running NVR (``ctx.nvr.live``, a
:class:`~vigil.live.LiveRegistry`); an API without a recorder has no live view and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Query, Request, Response, WebSocket
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect, WebSocketState

from vigil.api.auth import authorize_websocket, principal_still_valid
from vigil.api.authz import Principal
from vigil.api.errors import ApiError
from vigil.api.routes.common import ERROR_RESPONSES, Auth, CameraName, State, camera_access
from vigil.api.state import ApiState, get_state
from vigil.live.hub import LiveHub, LiveRegistry
from vigil.live.viewer import LatestSlot, LiveFragment, LiveInit, LiveNotice, LiveViewer
from vigil.live.webrtc import IceServer, RtcError, RtcPeers


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Close the app's WebRTC peers (their UDP sockets) when the server stops."""
    try:
        yield
    finally:
        peers = getattr(app.state, "webrtc_peers", None)
        if isinstance(peers, RtcPeers):
            await peers.close_all()


router = APIRouter(tags=["live"], lifespan=_lifespan)

STREAMS = ("main", "sub")
FORMATS = ("mp4", "mjpeg")
REVALIDATE_S = 5.0  # a logout or a disabled account ends live views within this
MJPEG_BOUNDARY = "vigilframe"
CLOSE_TOO_SLOW = 1013
CLOSE_UNAUTHORIZED = 4401
CLOSE_BAD_REQUEST = 4400
CLOSE_UNAVAILABLE = 4503


def live_registry(conn: Request | WebSocket) -> LiveRegistry | None:
    """The live hubs of the recorder behind this API, if it runs one."""
    ctx = get_state(conn).ctx
    for owner in (ctx, getattr(ctx, "nvr", None)):
        reg = getattr(owner, "live", None) if owner is not None else None
        if isinstance(reg, LiveRegistry):
            return reg
    return None


def init_message(init: LiveInit) -> str:
    return json.dumps(
        {
            "type": "init",
            "format": "mp4",
            "camera": init.camera,
            "stream": init.stream,
            "session": init.session_id,
            "mime": init.mime,
            "codecs": init.codecs,
            "video_codec": init.video_codec,
            "width": init.width,
            "height": init.height,
            "audio": init.has_audio,
            "media_us": init.media_us,
            "wall_us": init.wall_us,
        }
    )


def _query(ws: WebSocket | Request, name: str, allowed: tuple[str, ...], default: str) -> str:
    value = ws.query_params.get(name, default)
    if value not in allowed:
        raise ApiError(
            400, "bad_request", f"{name} must be one of {', '.join(allowed)}", {"parameter": name}
        )
    return value


@router.websocket("/api/cameras/{camera}/live")
async def live_socket(websocket: WebSocket, camera: str) -> None:
    """Live fMP4 (or JPEG pictures) of one camera over a WebSocket (see module docs)."""
    try:  # before authorization, so a malformed request is not audited as a view
        stream = _query(websocket, "stream", STREAMS, "main")
        fmt = _query(websocket, "format", FORMATS, "mp4")
    except ApiError as exc:
        await websocket.close(code=CLOSE_BAD_REQUEST, reason=exc.message[:120])
        return
    principal = await authorize_websocket(websocket, "view_live", camera)
    if principal is None:
        return
    registry = live_registry(websocket)
    hub = registry.get(camera, stream) if registry is not None else None
    await websocket.accept()
    if hub is None:
        await websocket.send_text(
            json.dumps(
                {
                    "type": "error",
                    "code": "unavailable",
                    "message": "live view is not available for this camera (not running here)",
                }
            )
        )
        await websocket.close(code=CLOSE_UNAVAILABLE, reason="unavailable")
        return
    if fmt == "mjpeg":
        await _serve_jpeg(websocket, hub, principal)
    else:
        await _serve_mp4(websocket, hub, principal)


async def _watch(websocket: WebSocket, principal: Principal) -> str:
    """Returns when the client goes away ("gone") or the credentials lapse ("expired").
    Reading is also what lets the server notice a closed socket promptly."""

    async def receive() -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            while True:
                msg = await websocket.receive()
                if msg["type"] == "websocket.disconnect":
                    return

    reader = asyncio.ensure_future(receive())
    try:
        while True:
            done, _ = await asyncio.wait({reader}, timeout=REVALIDATE_S)
            if done:
                return "gone"
            if not await principal_still_valid(websocket, principal):
                return "expired"
    finally:
        reader.cancel()


async def _pump(
    websocket: WebSocket,
    principal: Principal,
    send: Any,
) -> None:
    """Run ``send()`` (the coroutine that forwards the hub's output) against the watcher;
    whichever ends first ends the connection with the right close code."""
    sender = asyncio.ensure_future(send())
    watcher = asyncio.ensure_future(_watch(websocket, principal))
    try:
        done, _ = await asyncio.wait({sender, watcher}, return_when=asyncio.FIRST_COMPLETED)
        code, reason = 1000, ""
        if watcher in done and watcher.result() == "expired":
            code, reason = CLOSE_UNAUTHORIZED, "session_expired"
        elif sender in done and not sender.cancelled() and sender.exception() is None:
            code, reason = sender.result()
        if watcher in done and watcher.result() == "gone":
            return
        if websocket.client_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await websocket.close(code=code, reason=reason)
    finally:
        for t in (sender, watcher):
            t.cancel()
        for t in (sender, watcher):
            with contextlib.suppress(BaseException):
                await t


async def _serve_mp4(websocket: WebSocket, hub: LiveHub, principal: Principal) -> None:
    viewer: LiveViewer = hub.subscribe(asyncio.get_running_loop())

    async def send() -> tuple[int, str]:
        while True:
            item = await viewer.next()
            if item is None:
                if viewer.closed_reason == "slow":
                    return CLOSE_TOO_SLOW, "too_slow"
                return 1001, "stream_closed"
            if isinstance(item, LiveInit):
                await websocket.send_text(init_message(item))
                await websocket.send_bytes(item.data)
            elif isinstance(item, LiveFragment):
                await websocket.send_bytes(item.data)
            elif isinstance(item, LiveNotice):
                await websocket.send_text(json.dumps({"type": item.kind, "detail": item.detail}))

    try:
        await _pump(websocket, principal, send)
    finally:
        hub.unsubscribe(viewer)


async def _serve_jpeg(websocket: WebSocket, hub: LiveHub, principal: Principal) -> None:
    slot: LatestSlot = hub.subscribe_jpeg(asyncio.get_running_loop())

    async def send() -> tuple[int, str]:
        init = hub.current_init
        await websocket.send_text(
            json.dumps(
                {
                    "type": "init",
                    "format": "mjpeg",
                    "mime": "image/jpeg",
                    "camera": hub.camera,
                    "stream": hub.stream,
                    "fps": hub.mjpeg_fps,
                    "video_codec": init.video_codec if init is not None else None,
                }
            )
        )
        while True:
            got = await slot.next()
            if got is None:
                return 1001, "stream_closed"
            wall_us, jpeg = got
            await websocket.send_text(json.dumps({"type": "frame", "wall_us": wall_us}))
            await websocket.send_bytes(jpeg)

    try:
        await _pump(websocket, principal, send)
    finally:
        hub.unsubscribe_jpeg(slot)


async def _audit_view(
    state: ApiState, principal: Principal, request: Request, camera: str, detail: dict[str, Any]
) -> None:
    """Audit a live view started over plain HTTP (the WebSocket path audits in
    ``authorize_websocket``)."""
    await run_in_threadpool(
        state.audit_as,
        principal,
        request,
        "live.view",
        camera=camera,
        target=request.url.path[:256],
        detail=detail,
    )


@router.get(
    "/api/cameras/{camera}/live.mjpeg",
    response_class=StreamingResponse,
    responses={200: {"content": {f"multipart/x-mixed-replace; boundary={MJPEG_BOUNDARY}": {}}}},
)
async def live_mjpeg(
    camera: CameraName, request: Request, state: State, principal: Auth
) -> StreamingResponse:
    """Live JPEG pictures of one camera as ``multipart/x-mixed-replace`` (the fallback for
    codecs a browser cannot play; an ``<img>`` element shows it as it arrives)."""
    camera_access(state, principal, camera, "view_live")
    stream = _query(request, "stream", STREAMS, "main")
    registry = live_registry(request)
    hub = registry.get(camera, stream) if registry is not None else None
    if hub is None:
        raise ApiError(503, "unavailable", "live view is not available for this camera")
    await _audit_view(state, principal, request, camera, {"format": "mjpeg"})
    slot = hub.subscribe_jpeg(asyncio.get_running_loop())

    async def body() -> AsyncIterator[bytes]:
        try:
            while True:
                got = await slot.next()
                if got is None:
                    return
                wall_us, jpeg = got
                yield (
                    (
                        f"--{MJPEG_BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                        f"Content-Length: {len(jpeg)}\r\nX-Wall-Us: {wall_us}\r\n\r\n"
                    ).encode()
                    + jpeg
                    + b"\r\n"
                )
        finally:
            hub.unsubscribe_jpeg(slot)

    return StreamingResponse(
        body(),
        media_type=f"multipart/x-mixed-replace; boundary={MJPEG_BOUNDARY}",
        headers={"X-Accel-Buffering": "no"},
    )


# -- WebRTC ------------------------------------------------------------------------------------


class WebRtcOffer(BaseModel):
    """A browser's SDP offer with its ICE candidates already gathered (non-trickle)."""

    type: Literal["offer"] = Field(description="Always 'offer'.")
    sdp: str = Field(min_length=1, max_length=60_000, description="The SDP offer.")


class WebRtcAnswer(BaseModel):
    id: str = Field(description="Peer id, for DELETE ...?peer=<id>.")
    type: Literal["answer"] = "answer"
    sdp: str = Field(description="The SDP answer, with the server's ICE candidates.")
    camera: str
    stream: str = Field(description="The stream served ('sub' falls back to 'main').")


def rtc_peers(request: Request, state: ApiState) -> RtcPeers:
    """The WebRTC peers of this app, made on first use from ``api.webrtc``."""
    peers = getattr(request.app.state, "webrtc_peers", None)
    if not isinstance(peers, RtcPeers):
        cfg = state.cfg.webrtc
        peers = RtcPeers(
            [
                IceServer(
                    tuple(s.urls),
                    s.username,
                    s.credential.get_secret_value() if s.credential is not None else None,
                )
                for s in cfg.ice_servers
            ],
            max_peers=cfg.max_peers,
            max_peers_per_user=cfg.max_peers_per_user,
            connect_timeout=cfg.connect_timeout,
            revalidate=REVALIDATE_S,
        )
        request.app.state.webrtc_peers = peers
    return peers


StreamParam = Annotated[
    Literal["main", "sub"],
    Query(description="'sub' (grid) or 'main' (one camera); a missing one falls back."),
]


@router.post("/api/cameras/{camera}/webrtc", response_model=WebRtcAnswer,
             responses=ERROR_RESPONSES)
async def webrtc_offer(
    camera: CameraName,
    offer: WebRtcOffer,
    request: Request,
    state: State,
    principal: Auth,
    stream: StreamParam = "main",
) -> WebRtcAnswer:
    """Answer a WebRTC offer with the camera's live H.264, passed through (see module
    docs). Needs ``view_live`` on the camera."""
    camera_access(state, principal, camera, "view_live")
    if not state.cfg.webrtc.enabled:
        raise ApiError(503, "webrtc_disabled", "WebRTC live view is turned off on this server")
    registry = live_registry(request)
    hub = registry.get(camera, stream) if registry is not None else None
    if hub is None:
        raise ApiError(503, "unavailable", "live view is not available for this camera")
    codec = hub.video_codec
    if codec is not None and codec != "h264":
        raise ApiError(
            409,
            "unsupported_codec",
            f"this camera sends {codec}; WebRTC here carries H.264 only (use the WebSocket "
            "live view)",
            {"codec": codec},
        )
    peers = rtc_peers(request, state)

    async def still_valid() -> bool:
        return await principal_still_valid(request, principal)

    try:
        peer_id, sdp = await peers.answer(
            hub, offer.sdp, owner=principal.user_id, still_valid=still_valid
        )
    except RtcError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc
    await _audit_view(
        state, principal, request, camera, {"format": "webrtc", "stream": hub.stream}
    )
    return WebRtcAnswer(id=peer_id, sdp=sdp, camera=camera, stream=hub.stream)


@router.delete("/api/cameras/{camera}/webrtc", status_code=204, response_class=Response,
               responses=ERROR_RESPONSES)
async def webrtc_close(
    camera: CameraName,
    request: Request,
    state: State,
    principal: Auth,
    peer: Annotated[str, Query(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="Peer id.")],
) -> Response:
    """Close one of the caller's WebRTC peers of this camera."""
    camera_access(state, principal, camera, "view_live")
    peers = getattr(request.app.state, "webrtc_peers", None)
    if not isinstance(peers, RtcPeers):
        raise ApiError(404, "not_found", "no such WebRTC peer")
    found = peers.peer(peer)
    owner, cam = (found.owner, found.camera) if found is not None else (
        peers.closed_peer(peer) or (None, None)
    )
    if owner is None or cam != camera or (owner != principal.user_id and principal.role != "admin"):
        raise ApiError(404, "not_found", "no such WebRTC peer")
    await peers.close(peer)  # already closed (by the browser's side): nothing to do
    return Response(status_code=204)
