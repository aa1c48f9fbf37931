"""The FastAPI application factory.

``create_app(ctx)`` builds the whole API around an :class:`~vigil.api.state.AppContext`;
nothing is global, so tests build as many apps as they like and ``vigil run`` builds one
around its live recorder. The interactive docs UI is off (it would need inline scripts
that the Content-Security-Policy forbids, and it is an attack surface); the OpenAPI
document is served at ``/api/openapi.json`` to authenticated clients only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import JSONResponse

import vigil
from vigil.api.auth import current_principal
from vigil.api.errors import install_error_handlers
from vigil.api.middleware import SecurityMiddleware
from vigil.api.routes import admin, auth_routes, cameras, events, exports, media
from vigil.api.state import ApiState, AppContext

OPENAPI_PATH = "/api/openapi.json"
# Routes reachable without credentials (method, path). Everything else answers 401.
PUBLIC_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/api/health/live"),
        ("GET", "/api/setup"),
        ("POST", "/api/setup"),
        ("POST", "/api/auth/login"),
    }
)


def create_app(ctx: AppContext, *, routers: Sequence[APIRouter] = ()) -> FastAPI:
    """Build the API for ``ctx``. ``routers`` are mounted too (e.g. the live view's
    WebSocket router; such routes must authenticate with ``authorize_websocket`` or
    ``current_principal`` themselves)."""
    state = ApiState.build(ctx)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            state.close()

    app = FastAPI(
        title="Vigil API",
        version=vigil.__version__,
        description="HTTP API of the Vigil network video recorder. Authenticate with the "
        "session cookie from POST /api/auth/login (plus X-CSRF-Token on state-changing "
        "requests) or with 'Authorization: Bearer <API token>'.",
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.vigil = state
    install_error_handlers(app)
    app.add_middleware(
        SecurityMiddleware,
        max_body_bytes=state.cfg.max_body_bytes,
        hsts=state.cfg.tls.enabled,
    )
    app.include_router(auth_routes.public)
    app.include_router(auth_routes.router)
    app.include_router(cameras.router)
    app.include_router(media.router)
    app.include_router(events.router)
    app.include_router(exports.router)
    app.include_router(admin.router)
    for r in routers:
        app.include_router(r)

    @app.get(OPENAPI_PATH, include_in_schema=False, dependencies=[Depends(current_principal)])
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    _add_security_scheme(app)
    return app


def _add_security_scheme(app: FastAPI) -> None:
    """Describe the two credentials in the OpenAPI document (and mark public routes)."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = original()
        comps = schema.setdefault("components", {})
        comps["securitySchemes"] = {
            "session": {"type": "apiKey", "in": "cookie", "name": "vigil_session"},
            "bearer": {"type": "http", "scheme": "bearer"},
        }
        schema["security"] = [{"session": []}, {"bearer": []}]
        for path, ops in schema.get("paths", {}).items():
            for method, op in ops.items():
                if (method.upper(), path) in PUBLIC_ROUTES:
                    op["security"] = []
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
