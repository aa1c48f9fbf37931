"""Authentication of HTTP requests and WebSockets: who is calling.

Two kinds of credentials, and only in headers (never in the query string, where they end
up in proxy logs, browser history and Referer headers: Hikvision CVE-2017-7921):

* **Session cookie** for the web UI: ``HttpOnly``, ``SameSite=Strict``, ``Secure`` (and the
  ``__Host-`` name prefix) over HTTPS. Every state-changing request made with a cookie
  must carry the session's CSRF token in ``X-CSRF-Token`` (synchronizer pattern: the token
  is derived from the session id, returned by login and ``GET /api/auth/me``), and a
  cross-origin ``Origin`` is refused outright.
* **API token** as ``Authorization: Bearer vgl_...``: not sent automatically by browsers,
  so not subject to CSRF.

:func:`current_principal` is the FastAPI dependency every protected route uses;
:func:`authorize_websocket` does the same for WebSocket routes (live view) and then
authorizes the action on the camera, closing the socket before it is accepted if not.
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import Request, WebSocket
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.responses import Response

from vigil.api.accounts import SessionInfo, csrf_for
from vigil.api.authz import Action, Principal, authorize
from vigil.api.errors import ApiError
from vigil.api.netutil import client_host, client_ip, client_scheme
from vigil.api.state import ApiState, get_state

SESSION_COOKIE = "vigil_session"
SECURE_SESSION_COOKIE = "__Host-vigil_session"  # browsers enforce Secure, Path=/, no Domain
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="vigil"'}


def _unauthorized(code: str, message: str) -> ApiError:
    return ApiError(401, code, message, headers=_BEARER_CHALLENGE)


def is_secure(state: ApiState, conn: HTTPConnection) -> bool:
    return client_scheme(conn, state.proxies) == "https"


def session_cookie_value(conn: HTTPConnection) -> str | None:
    return conn.cookies.get(SECURE_SESSION_COOKIE) or conn.cookies.get(SESSION_COOKIE)


def check_origin(state: ApiState, conn: HTTPConnection) -> None:
    """Refuse a request whose ``Origin`` is another site: browsers send it with every
    cross-origin POST and WebSocket handshake, and SameSite cookies alone do not cover
    same-site subdomains or old browsers."""
    origin = conn.headers.get("origin")
    if origin is None:
        return
    if origin in state.cfg.allowed_origins:
        return
    _scheme, sep, netloc = origin.partition("://")
    if sep and netloc.lower() == client_host(conn, state.proxies):
        return
    raise ApiError(403, "cross_origin", "cross-origin request refused")


def authenticate(state: ApiState, conn: HTTPConnection, *, unsafe: bool) -> Principal:
    """The principal of a request or WebSocket, or ``ApiError`` 401 (no or bad
    credentials) / 403 (CSRF or origin failure). Blocking (database): call it from a
    thread, as FastAPI does for sync dependencies."""
    ip = client_ip(conn, state.proxies)
    accounts = state.accounts
    auth = conn.headers.get("authorization")
    if auth is not None:
        scheme, _, credential = auth.strip().partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise _unauthorized(
                "unsupported_authorization", "use 'Authorization: Bearer <API token>'"
            )
        token, user, reason = accounts.lookup_token(credential.strip())
        if token is None or user is None:
            code = {"expired": "token_expired", "revoked": "token_revoked"}.get(
                reason, "invalid_token"
            )
            raise _unauthorized(code, f"the API token is {reason}")
        return Principal(
            user_id=user.id,
            username=user.username,
            role=user.role,
            via="token",
            grants=accounts.grants(user.id),
            scopes=frozenset(token.scopes),
            token_id=token.id,
            ip=ip,
        )
    raw = session_cookie_value(conn)
    if raw is None:
        raise _unauthorized("unauthorized", "authentication required")
    session, reason = accounts.lookup_session(raw, int(state.cfg.session_idle_timeout * 1e6))
    if session is None:
        if reason == "expired":
            raise _unauthorized("session_expired", "the session has expired; log in again")
        raise _unauthorized("unauthorized", "authentication required")
    csrf = csrf_for(raw)
    if unsafe:
        check_origin(state, conn)
        sent = conn.headers.get(CSRF_HEADER, "")
        if not sent or not hmac.compare_digest(sent.encode(), csrf.encode()):
            raise ApiError(
                403, "csrf_failed", f"missing or wrong {CSRF_HEADER} header for this session"
            )
    return _session_principal(state, session, csrf, ip)


def _session_principal(state: ApiState, s: SessionInfo, csrf: str, ip: str) -> Principal:
    return Principal(
        user_id=s.user.id,
        username=s.user.username,
        role=s.user.role,
        via="session",
        grants=state.accounts.grants(s.user.id),
        session_hash=s.id_hash,
        csrf_token=csrf,
        ip=ip,
    )


def current_principal(request: Request) -> Principal:
    """FastAPI dependency: the authenticated principal, also kept on ``request.state``
    (the error handler names it in audit records of refusals)."""
    state = get_state(request)
    principal = authenticate(state, request, unsafe=request.method not in SAFE_METHODS)
    request.state.principal = principal
    return principal


def set_session_cookie(state: ApiState, conn: HTTPConnection, response: Response, raw: str) -> None:
    secure = is_secure(state, conn)
    response.set_cookie(
        SECURE_SESSION_COOKIE if secure else SESSION_COOKIE,
        raw,
        max_age=int(state.cfg.session_max_age),
        path="/",
        secure=secure,
        httponly=True,
        samesite="strict",
    )


def clear_session_cookies(state: ApiState, conn: HTTPConnection, response: Response) -> None:
    secure = is_secure(state, conn)
    response.delete_cookie(
        SECURE_SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict"
    )
    response.delete_cookie(
        SESSION_COOKIE, path="/", secure=secure, httponly=True, samesite="strict"
    )


# -- WebSocket -------------------------------------------------------------------------------


async def authorize_websocket(
    websocket: WebSocket, action: Action, camera: str | None = None
) -> Principal | None:
    """Authenticate a WebSocket handshake (session cookie or ``Authorization: Bearer``;
    the ``Origin`` must be this site) and authorize ``action`` on ``camera``.

    Call it first thing in a WebSocket route, before ``websocket.accept()``. Returns the
    principal when allowed (and, for ``view_live``, records the view in the audit log);
    otherwise closes the socket (the client sees the handshake refused with HTTP 403;
    close code 4401/4403/4404 where the server accepts first) and returns None::

        principal = await authorize_websocket(ws, "view_live", camera)
        if principal is None:
            return
        await ws.accept()

    For long-lived sockets, call :func:`principal_still_valid` now and then to end the
    stream when the session expires, is logged out or the account is disabled.
    """
    state = get_state(websocket)
    try:
        check_origin(state, websocket)
        principal = await run_in_threadpool(authenticate, state, websocket, unsafe=False)
        websocket.state.principal = principal
        authorize(principal, action, camera)
        if camera is not None and not state.camera_known(camera):
            raise ApiError(404, "not_found", f"unknown camera {camera!r}")
    except ApiError as exc:
        if exc.audit is not None:
            from vigil.api.state import audit_denied

            await audit_denied(websocket, exc.audit, exc.camera, exc.message)
        code = {401: 4401, 403: 4403, 404: 4404}.get(exc.status, 4403)
        await websocket.close(code=code, reason=exc.code)
        return None
    if action == "view_live":
        await run_in_threadpool(
            state.audit_as,
            principal,
            websocket,
            "live.view",
            camera=camera,
            target=websocket.url.path[:256],
        )
    return principal


async def principal_still_valid(conn: HTTPConnection, principal: Principal) -> bool:
    """Whether the credentials behind ``principal`` are still good (session not expired
    or logged out, token not revoked or expired, account enabled)."""
    state = get_state(conn)

    def check() -> bool:
        try:
            again = authenticate(state, conn, unsafe=False)
        except ApiError:
            return False
        return again.user_id == principal.user_id

    return await run_in_threadpool(check)


def principal_json(p: Principal) -> dict[str, Any]:
    return {
        "username": p.username,
        "role": p.role,
        "via": p.via,
        "scopes": sorted(p.scopes) if p.scopes is not None else None,
        "token_id": p.token_id,
        "csrf_token": p.csrf_token,
    }
