"""Dependencies and helpers shared by the routers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Request
from pydantic import BaseModel, Field

from vigil.api.auth import current_principal
from vigil.api.authz import Action, Principal, authorize
from vigil.api.errors import ApiError
from vigil.api.state import ApiState, get_state
from vigil.config.model import CAMERA_NAME_RE


def state_dep(request: Request) -> ApiState:
    return get_state(request)


State = Annotated[ApiState, Depends(state_dep)]
Auth = Annotated[Principal, Depends(current_principal)]
CameraName = Annotated[
    str,
    Path(
        pattern=CAMERA_NAME_RE.pattern,
        max_length=63,
        description="Camera name (a-z, 0-9, '-', '_').",
    ),
]


def camera_access(state: ApiState, principal: Principal, camera: str, action: Action) -> str:
    """Authorize ``action`` on ``camera`` and check the camera exists. Authorization comes
    first, so a camera the principal cannot see is a 404 whether or not it exists."""
    authorize(principal, action, camera)
    if not state.camera_known(camera):
        raise ApiError(404, "not_found", f"unknown camera {camera!r}")
    return camera


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, machine-readable error code.")
    message: str = Field(description="What went wrong, for people.")
    details: Any = Field(default=None, description="Structured extras, or null.")


class ErrorResponse(BaseModel):
    """The one shape of every error the API returns."""

    error: ErrorDetail


_ERROR_TEXT = {
    400: "Bad request (malformed time, range, cursor...)",
    401: "No or invalid credentials",
    403: "Not permitted (role, camera permission, token scope, CSRF, origin)",
    404: "Not found (or not visible to the caller)",
    409: "Conflict with the current state",
    410: "Gone from disk",
    413: "Request body too large",
    416: "Range not satisfiable",
    422: "Request validation failed",
    429: "Locked out after failed logins",
    503: "Temporarily unavailable",
}
# Documented on every router, so clients (and schemathesis) know the error responses.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text} for code, text in _ERROR_TEXT.items()
}
