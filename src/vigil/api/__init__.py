"""Vigil's HTTP API: ``create_app(AppContext(...))`` builds it, ``serve(...)`` runs it
inside the recorder process. See ``docs/api.md``."""

from vigil.api.app import PUBLIC_ROUTES, create_app
from vigil.api.auth import authorize_websocket, current_principal, principal_still_valid
from vigil.api.authz import Principal, authorize, visible_cameras
from vigil.api.server import ApiServer, serve
from vigil.api.state import AppContext, get_state

__all__ = [
    "PUBLIC_ROUTES",
    "ApiServer",
    "AppContext",
    "Principal",
    "authorize",
    "authorize_websocket",
    "create_app",
    "current_principal",
    "get_state",
    "principal_still_valid",
    "serve",
    "visible_cameras",
]
