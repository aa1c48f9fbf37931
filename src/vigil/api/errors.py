"""One error shape for every failure the API returns.

Clients (the web UI, scripts, Home Assistant integrations) should never have to guess
whether an error body is HTML, plain text or JSON, or where the message is. Every error,
whether raised by a route, by request validation (422), by routing itself (404/405) or
by a bug (500), is answered as::

    {"error": {"code": "not_found", "message": "unknown camera 'x'", "details": null}}

``code`` is stable and machine-readable; ``message`` is for people; ``details`` carries
structured extras (validation problems, gaps of a range without footage) or null.
A 500 never leaks a traceback or exception text: the detail goes to the log only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    410: "gone",
    413: "payload_too_large",
    415: "unsupported_media_type",
    416: "range_not_satisfiable",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(Exception):
    """An error with an HTTP status, a stable code and a message fit for the client.

    ``audit`` names an audit action to record as ``denied`` when the error is answered (an
    authorization refusal is worth knowing about, a typo in a date is not)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
        audit: str | None = None,
        camera: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = dict(headers or {})
        self.audit = audit
        self.camera = camera


def not_found(message: str = "not found") -> ApiError:
    return ApiError(404, "not_found", message)


def bad_request(message: str, code: str = "bad_request", details: Any = None) -> ApiError:
    return ApiError(400, code, message, details)


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code=status, headers=headers)


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Location, message and type of each problem; never the rejected input itself (it may
    be a password, or megabytes), nor exception objects (not JSON)."""
    out: list[dict[str, Any]] = []
    for err in exc.errors()[:50]:
        loc = [p if isinstance(p, int | str) else str(p) for p in err.get("loc", ())]
        out.append({"loc": loc, "message": str(err.get("msg", "")), "type": str(err.get("type"))})
    return out


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every exception into the stable error shape."""

    async def api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        if exc.audit is not None:
            from vigil.api.state import audit_denied

            await audit_denied(request, exc.audit, exc.camera, exc.message)
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _STATUS_CODES.get(exc.status_code, f"http_{exc.status_code}")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        if exc.status_code == 404 and message == "Not Found":
            message = "no such resource"
        if exc.status_code == 405:
            message = f"method {request.method} is not allowed here"
        return error_response(exc.status_code, code, message, None, exc.headers)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        details = _validation_details(exc)
        first = details[0] if details else None
        where = ".".join(str(p) for p in first["loc"]) if first else "request"
        message = f"invalid {where}: {first['message']}" if first else "invalid request"
        return error_response(422, "validation_error", message, details)

    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal_error", "internal error (see the server log)")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, internal_error)
