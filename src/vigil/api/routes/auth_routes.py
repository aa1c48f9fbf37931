"""Liveness, first-run setup, login and logout, the caller's own account.

The only routes reachable without credentials are on ``public``: liveness, the setup
status and setup itself (localhost only, only until an administrator exists), and login.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from vigil.api.accounts import AccountError, SessionInfo, csrf_for, sha256_hex
from vigil.api.auth import (
    check_origin,
    clear_session_cookies,
    current_principal,
    principal_json,
    session_cookie_value,
    set_session_cookie,
)
from vigil.api.authz import CAMERA_ACTIONS, authorize, visible_cameras
from vigil.api.errors import ApiError
from vigil.api.netutil import client_ip, is_local_request
from vigil.api.passwords import WeakPasswordError
from vigil.api.routes.common import ERROR_RESPONSES, Auth, State
from vigil.api.state import ApiState

public = APIRouter(prefix="/api", tags=["public"], responses=ERROR_RESPONSES)
router = APIRouter(
    prefix="/api",
    tags=["auth"],
    dependencies=[Depends(current_principal)],
    responses=ERROR_RESPONSES,
)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Credentials(_Body):
    username: str = Field(min_length=1, max_length=128, description="User name.")
    password: str = Field(min_length=1, max_length=1024, description="Password.")


class PasswordChange(_Body):
    current_password: str = Field(min_length=1, max_length=1024, description="Current one.")
    new_password: str = Field(min_length=1, max_length=1024, description="New password.")


def account_error(exc: AccountError | WeakPasswordError) -> ApiError:
    if isinstance(exc, WeakPasswordError):
        return ApiError(400, "weak_password", str(exc))
    return ApiError(exc.status, exc.code, str(exc))


def _session_response(
    state: ApiState, request: Request, raw: str, session: SessionInfo, status: int
) -> JSONResponse:
    body = {
        "username": session.user.username,
        "role": session.user.role,
        "csrf_token": csrf_for(raw),
        "expires_us": session.expires_us,
        "idle_timeout_s": state.cfg.session_idle_timeout,
    }
    response = JSONResponse(body, status_code=status)
    set_session_cookie(state, request, response, raw)
    return response


@public.get("/health/live", summary="Liveness (public)")
def live() -> dict[str, str]:
    """Answers as long as the process serves HTTP: for load balancers and watchdogs. Says
    nothing else (no version, no camera count) to anyone unauthenticated."""
    return {"status": "ok"}


@public.get("/setup", summary="First-run setup status (public)")
def setup_status(request: Request, state: State) -> dict[str, bool]:
    """Whether an administrator still has to be created, and whether this client may do
    it (only from this machine)."""
    required = not state.accounts.admin_exists()
    return {
        "required": required,
        "allowed_here": required and is_local_request(request, state.proxies),
    }


@public.post("/setup", status_code=201, summary="Create the first administrator (localhost)")
def setup(request: Request, state: State, body: Annotated[Credentials, Body()]) -> JSONResponse:
    """Create the first administrator with a password of the operator's choosing, and log
    them in. Refused (403) from anywhere but this machine, and (409) once an
    administrator exists: there is no default account and no way to make a second
    "first" one."""
    check_origin(state, request)
    if state.accounts.admin_exists():
        raise ApiError(409, "setup_done", "setup is already done: an administrator exists")
    if not is_local_request(request, state.proxies):
        state.audit_as(
            None,
            request,
            "auth.setup",
            outcome="denied",
            actor=body.username[:64],
            detail={"reason": "not from localhost"},
        )
        raise ApiError(
            403,
            "setup_not_local",
            "setup is only possible from the machine Vigil runs on (or use "
            "`vigil user add --admin`)",
        )
    try:
        user = state.accounts.create_user(
            body.username, body.password, "admin", only_if_no_admin=True
        )
    except (AccountError, WeakPasswordError) as exc:
        raise account_error(exc) from None
    state.audit_as(None, request, "auth.setup", actor=user.username, target=user.username)
    raw, session = state.accounts.create_session(
        user.id,
        client_ip(request, state.proxies),
        request.headers.get("user-agent", ""),
        int(state.cfg.session_max_age * 1e6),
    )
    return _session_response(state, request, raw, session, 201)


@public.post("/auth/login", summary="Log in (public)")
def login(request: Request, state: State, body: Annotated[Credentials, Body()]) -> JSONResponse:
    """Check a user name and password; on success set the session cookie and return the
    CSRF token to send as ``X-CSRF-Token`` with every state-changing request.

    Wrong password and unknown user give the same answer in about the same time. After
    ``login_max_failures`` failures in a row the account (and, after more, the address)
    is locked for ``login_lockout``, doubling with each further lockout: 429 with
    ``Retry-After`` until then, whatever the password."""
    check_origin(state, request)
    ip = client_ip(request, state.proxies)
    name = body.username.strip().lower()[:64]
    keys = (f"user:{name}", f"ip:{ip}")
    wait = state.throttle.locked_for(keys)
    if wait > 0:
        state.audit_as(
            None,
            request,
            "auth.login",
            outcome="denied",
            actor=name,
            detail={"reason": "locked out"},
        )
        raise ApiError(
            429,
            "locked_out",
            "too many failed logins; try again later",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
    user = state.accounts.check_login(body.username, body.password)
    if user is None:
        state.throttle.failure(keys)
        state.audit_as(
            None,
            request,
            "auth.login",
            outcome="failed",
            actor=name,
            detail={"reason": "invalid credentials"},
        )
        raise ApiError(401, "invalid_credentials", "invalid credentials")
    state.throttle.success(keys)
    previous = session_cookie_value(request)
    if previous is not None:  # no session fixation: a login never continues an old session
        state.accounts.delete_session(sha256_hex(previous))
    raw, session = state.accounts.create_session(
        user.id, ip, request.headers.get("user-agent", ""), int(state.cfg.session_max_age * 1e6)
    )
    state.audit_as(None, request, "auth.login", actor=user.username, target=user.username)
    return _session_response(state, request, raw, session, 200)


@router.post("/auth/logout", summary="Log out")
def logout(request: Request, state: State, principal: Auth) -> JSONResponse:
    """End this session (server-side: the cookie is worthless afterwards)."""
    if principal.session_hash is not None:
        state.accounts.delete_session(principal.session_hash)
    state.audit_as(principal, request, "auth.logout")
    response = JSONResponse({"logged_out": True})
    clear_session_cookies(state, request, response)
    return response


@router.get("/auth/me", summary="Who am I")
def me(state: State, principal: Auth) -> dict[str, Any]:
    """The caller, their role, the cameras they may see with what permissions, and (for a
    session) the CSRF token, so a reloaded page can carry on."""
    authorize(principal, "account.read")
    cams = visible_cameras(principal, state.camera_names())
    return {
        **principal_json(principal),
        "cameras": {
            c: [a for a in CAMERA_ACTIONS if a in principal.camera_actions(c)] for c in cams
        },
    }


@router.post("/auth/password", summary="Change my password")
def change_password(
    request: Request, state: State, principal: Auth, body: Annotated[PasswordChange, Body()]
) -> dict[str, Any]:
    """Change the caller's own password (the current one is required). Every other
    session of the account is ended."""
    authorize(principal, "account.manage")
    if not state.accounts.verify_password_of(principal.user_id, body.current_password):
        state.audit_as(principal, request, "account.password", outcome="failed")
        raise ApiError(403, "invalid_credentials", "the current password is wrong")
    try:
        state.accounts.set_password(principal.username, body.new_password)
    except (AccountError, WeakPasswordError) as exc:
        raise account_error(exc) from None
    state.audit_as(principal, request, "account.password", target=principal.username)
    return {"changed": True, "sessions_ended": True}
