"""Serving the web UI: ``/`` is the single page, ``/ui/...`` its modules, styles and icons.

Why each header:

* ``Content-Security-Policy``: scripts, styles, fonts and connections only from this
  origin; no inline script or style, no ``eval``; media and images may also be ``blob:``
  (MSE live view and MJPEG frames are fed through object URLs). ``require-trusted-types-for
  'script'`` with no policy allowed turns every ``innerHTML``-style sink into an error, so a
  camera or zone name can only ever reach the page as text. ``frame-ancestors 'none'``
  stops click-jacking.
* ``X-Content-Type-Options: nosniff`` and explicit types: a file is only ever run as what
  its extension says.
* ``Cache-Control: no-cache`` (revalidate) for everything: a new Vigil version must never
  be mixed with cached modules of the old one; ETags keep revalidation cheap.

Only files that exist inside the package directory are served (the path is resolved and
checked to stay inside it); anything else is a 404.
"""

from __future__ import annotations

import hashlib
import mimetypes
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, Response

STATIC_DIR = Path(__file__).with_name("static")

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    ]
)

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
}

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def _etag(path: Path) -> str:
    st = path.stat()
    return '"' + hashlib.sha256(f"{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:20] + '"'


def _serve(path: Path, request: Request) -> Response:
    etag = _etag(path)
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache", "ETag": etag}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    media_type = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
    return FileResponse(path, media_type=media_type or "application/octet-stream",
                        headers=headers)


def _not_found() -> Response:
    return Response(
        '{"error": {"code": "not_found", "message": "not found", "details": null}}',
        status_code=404,
        media_type="application/json",
        headers={"X-Content-Type-Options": "nosniff"},
    )


def resolve_static(rel: str, root: Path = STATIC_DIR) -> Path | None:
    """The file ``rel`` names under ``root``, or None (missing, a directory, a dot-file,
    or anything that would resolve outside ``root``)."""
    if not rel or "\x00" in rel or "\\" in rel:
        return None
    parts = rel.split("/")
    if any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        return None
    base = root.resolve()
    path = (base / rel).resolve()
    if not path.is_relative_to(base) or not path.is_file():
        return None
    return path


def web_router(root: Path = STATIC_DIR) -> APIRouter:
    """The UI routes: ``GET /`` (the page) and ``GET /ui/{path}`` (its files). Public on
    purpose: they hold no data (everything the page shows comes from the authenticated
    API), and the login page must load before anyone is logged in. Pass it to
    ``create_app(ctx, routers=[...])`` or use :func:`mount_web`."""
    router = APIRouter(include_in_schema=False)

    async def index(request: Request) -> Response:
        return _serve(root / "index.html", request)

    async def asset(path: str, request: Request) -> Response:
        file = resolve_static(path, root)
        if file is None:
            return _not_found()
        return _serve(file, request)

    router.add_api_route("/", index, methods=["GET", "HEAD"])
    router.add_api_route("/ui/{path:path}", asset, methods=["GET", "HEAD"])
    return router


def mount_web(app: FastAPI, *, root: Path = STATIC_DIR) -> None:
    """Add the UI routes to ``app`` (after the API routes; nothing under ``/api``)."""
    app.include_router(web_router(root))
