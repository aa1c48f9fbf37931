"""ASGI middleware applied to every response and request, whatever route (or no route)
handles it: security headers, the request body size limit, and refusal of credentials in
query strings.

Written as plain ASGI (not ``BaseHTTPMiddleware``) so streaming responses (video) pass
through without buffering and WebSocket handshakes are untouched.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Strict: only this origin's scripts, styles, media and connections; nothing inline
# (XSS through a camera or zone name cannot run even if the UI slipped), no framing
# (clickjacking), no plugins, no <base> games. blob: for media (MSE/hls.js) and workers.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; worker-src 'self' blob:; font-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; "
    # DOM sinks that parse HTML (innerHTML, ...) are refused outright; the UI builds every
    # node with DOM APIs and textContent, and its browser tests run under this policy.
    "require-trusted-types-for 'script'; trusted-types 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
)
# Query parameters that look like credentials. Never read anywhere; refused so that a
# client (or an attacker testing for CVE-2017-7921-style bypasses) learns it at once.
CREDENTIAL_PARAMS = frozenset(
    {"auth", "token", "access_token", "api_key", "apikey", "key", "password", "session", "sid"}
)


def _error(status: int, code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "details": None}}).encode()


class SecurityMiddleware:
    """Adds the security headers (and ``Cache-Control: no-store`` under ``/api``, plus
    HSTS over HTTPS) to every HTTP response; enforces ``max_body_bytes`` (413) both from
    ``Content-Length`` and while a chunked body streams in; refuses credential-looking
    query parameters on ``/api`` (400)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, hsts: bool = False) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        is_api = path == "/api" or path.startswith("/api/")
        secure = scope.get("scheme") == "https"
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() not in {h for h, _ in SECURITY_HEADERS}
                    and not (is_api and k.lower() in (b"cache-control", b"pragma"))
                ]
                headers.extend(SECURITY_HEADERS)
                if is_api:
                    headers.append((b"cache-control", b"no-store"))
                    headers.append((b"pragma", b"no-cache"))
                if secure and self.hsts:
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
                message["headers"] = headers
            await send(message)

        async def respond(status: int, code: str, text: str) -> None:
            body = _error(status, code, text)
            await send_with_headers(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})

        if is_api:
            query = scope.get("query_string", b"").decode("latin-1")
            names = {k.lower() for k, _ in parse_qsl(query, keep_blank_values=True)}
            if names & CREDENTIAL_PARAMS:
                await respond(
                    400,
                    "credentials_in_query",
                    "credentials are never accepted in the query string; use the session "
                    "cookie or an Authorization: Bearer header",
                )
                return

        length = None
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    length = int(v)
                except ValueError:
                    await respond(400, "bad_request", "invalid Content-Length")
                    return
        if length is not None and length > self.max_body:
            await respond(
                413, "payload_too_large", f"request body larger than {self.max_body} bytes"
            )
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    # Raised into whoever reads the body; FastAPI re-raises HTTPException,
                    # and the error handlers answer it in the usual shape.
                    raise HTTPException(413, f"request body larger than {self.max_body} bytes")
            return message

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except HTTPException as exc:
            if exc.status_code != 413 or started:
                raise
            await respond(413, "payload_too_large", str(exc.detail))
        except Exception:
            # Reached for bugs only. Answered here, inside this middleware, so that even a
            # 500 carries the security headers and the stable error shape.
            if started:
                raise
            log.exception("unhandled error in %s %s", scope.get("method"), path)
            await respond(500, "internal_error", "internal error (see the server log)")
