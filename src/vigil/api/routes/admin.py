"""Accounts, roles, per-camera permissions, API tokens and the audit log.

Account and audit routes are for administrators. Tokens: anyone may manage their own
(within what their role allows); administrators may see and revoke everyone's.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from vigil.api.accounts import AccountError, Grant, TokenInfo, UserInfo
from vigil.api.audit import csv_rows
from vigil.api.auth import current_principal
from vigil.api.authz import (
    CAMERA_ACTIONS,
    ROLE_CAMERA_CEILING,
    ROLE_DESCRIPTIONS,
    ROLE_SCOPES,
    ROLES,
    SCOPE_ACTIONS,
    SCOPES,
    Principal,
    Role,
    Scope,
    authorize,
    can,
)
from vigil.api.errors import ApiError
from vigil.api.params import TIME_DESCRIPTION, parse_time
from vigil.api.passwords import WeakPasswordError
from vigil.api.routes.auth_routes import account_error
from vigil.api.routes.common import ERROR_RESPONSES, Auth, State
from vigil.api.state import ApiState
from vigil.config.model import CAMERA_NAME_RE

router = APIRouter(
    prefix="/api",
    tags=["admin"],
    dependencies=[Depends(current_principal)],
    responses=ERROR_RESPONSES,
)

Username = Annotated[
    str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$", description="User name.")
]
TokenId = Annotated[str, Path(pattern=r"^[0-9a-f]{12}$", description="Token id.")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GrantModel(_Body):
    camera: str = Field(
        pattern=rf"{CAMERA_NAME_RE.pattern}|^\*$",
        max_length=63,
        description="Camera name, or * for every camera.",
    )
    view_live: bool = Field(default=False, description="Watch live.")
    view_recordings: bool = Field(default=False, description="Timeline, playback, events.")
    export: bool = Field(default=False, description="Evidence exports (operators).")
    configure: bool = Field(default=False, description="Zones, lines, masks (operators).")

    def grant(self) -> Grant:
        return Grant(self.camera, frozenset(a for a in CAMERA_ACTIONS if getattr(self, a)))


class GrantsBody(_Body):
    grants: list[GrantModel] = Field(max_length=1000, description="All grants (replaced).")


class UserCreate(_Body):
    username: str = Field(min_length=1, max_length=64, description="User name.")
    password: str = Field(min_length=1, max_length=1024, description="Initial password.")
    role: Role = Field(default="viewer", description="admin, operator or viewer.")
    grants: list[GrantModel] = Field(
        default_factory=list, max_length=1000, description="Camera permissions."
    )


class UserUpdate(_Body):
    role: Role | None = Field(default=None, description="New role.")
    disabled: bool | None = Field(default=None, description="Disable or enable the account.")


class PasswordSet(_Body):
    password: str = Field(min_length=1, max_length=1024, description="New password.")


class TokenCreate(_Body):
    name: str = Field(min_length=1, max_length=64, description="What the token is for.")
    scopes: list[Scope] = Field(min_length=1, max_length=4, description="Scopes.")
    expires_in_days: float | None = Field(
        default=None, gt=0, le=36600, description="Lifetime (default: api.token_default_expiry)."
    )
    username: str | None = Field(
        default=None,
        max_length=64,
        description="Owner (administrators only; default: yourself).",
    )


def _user_json(state: ApiState, u: UserInfo) -> dict[str, Any]:
    grants = state.accounts.grants(u.id)
    return {
        **u.to_json(),
        "grants": [Grant(c, a).to_json() for c, a in sorted(grants.items())],
    }


def _user_or_404(state: ApiState, username: str) -> UserInfo:
    u = state.accounts.get(username)
    if u is None:
        raise ApiError(404, "not_found", f"no user {username!r}")
    return u


def _admin(principal: Principal) -> None:
    authorize(principal, "admin")


# -- roles -----------------------------------------------------------------------------------


@router.get("/roles", summary="Roles, permissions and token scopes")
def roles(principal: Auth) -> dict[str, Any]:
    """What each role may do, the per-camera permissions and the API token scopes."""
    authorize(principal, "account.read")
    return {
        "roles": [
            {
                "name": r,
                "description": ROLE_DESCRIPTIONS[r],
                "camera_permissions": [a for a in CAMERA_ACTIONS if a in ROLE_CAMERA_CEILING[r]],
                "token_scopes": [s for s in SCOPES if s in ROLE_SCOPES[r]],
            }
            for r in ROLES
        ],
        "camera_permissions": list(CAMERA_ACTIONS),
        "scopes": {s: sorted(SCOPE_ACTIONS[s]) for s in SCOPES},
    }


# -- users -----------------------------------------------------------------------------------


@router.get("/users", summary="List users")
def list_users(state: State, principal: Auth) -> dict[str, Any]:
    _admin(principal)
    return {"users": [_user_json(state, u) for u in state.accounts.list_users()]}


@router.post("/users", status_code=201, summary="Create a user")
def create_user(
    request: Request, state: State, principal: Auth, body: Annotated[UserCreate, Body()]
) -> dict[str, Any]:
    _admin(principal)
    try:
        u = state.accounts.create_user(body.username, body.password, body.role)
        if body.grants:
            state.accounts.set_grants(u.username, [g.grant() for g in body.grants])
    except (AccountError, WeakPasswordError) as exc:
        raise account_error(exc) from None
    state.audit_as(
        principal,
        request,
        "user.create",
        target=u.username,
        detail={"role": u.role, "grants": [g.grant().to_json() for g in body.grants]},
    )
    return _user_json(state, u)


@router.get("/users/{username}", summary="One user")
def get_user(state: State, principal: Auth, username: Username) -> dict[str, Any]:
    _admin(principal)
    return _user_json(state, _user_or_404(state, username))


@router.patch("/users/{username}", summary="Change role or disable")
def update_user(
    request: Request,
    state: State,
    principal: Auth,
    username: Username,
    body: Annotated[UserUpdate, Body()],
) -> dict[str, Any]:
    """Change the role or disable/enable an account (disabling ends its sessions; its
    tokens stop working). The last enabled administrator cannot be demoted or disabled."""
    _admin(principal)
    try:
        u = state.accounts.update_user(username, role=body.role, disabled=body.disabled)
    except AccountError as exc:
        raise account_error(exc) from None
    state.audit_as(
        principal,
        request,
        "user.update",
        target=u.username,
        detail=body.model_dump(exclude_none=True),
    )
    return _user_json(state, u)


@router.delete("/users/{username}", summary="Delete a user")
def delete_user(
    request: Request, state: State, principal: Auth, username: Username
) -> dict[str, Any]:
    _admin(principal)
    try:
        u = state.accounts.delete_user(username)
    except AccountError as exc:
        raise account_error(exc) from None
    state.audit_as(principal, request, "user.delete", target=u.username)
    return {"deleted": u.username}


@router.put("/users/{username}/password", summary="Set a user's password")
def set_user_password(
    request: Request,
    state: State,
    principal: Auth,
    username: Username,
    body: Annotated[PasswordSet, Body()],
) -> dict[str, Any]:
    """Set a new password (strength-checked); ends all of that user's sessions."""
    _admin(principal)
    try:
        u = state.accounts.set_password(username, body.password)
    except (AccountError, WeakPasswordError) as exc:
        raise account_error(exc) from None
    state.audit_as(principal, request, "user.password", target=u.username)
    return {"changed": True, "username": u.username}


@router.get("/users/{username}/permissions", summary="A user's camera permissions")
def get_permissions(state: State, principal: Auth, username: Username) -> dict[str, Any]:
    _admin(principal)
    u = _user_or_404(state, username)
    grants = state.accounts.grants(u.id)
    return {
        "username": u.username,
        "role": u.role,
        "grants": [Grant(c, a).to_json() for c, a in sorted(grants.items())],
    }


@router.put("/users/{username}/permissions", summary="Replace a user's camera permissions")
def put_permissions(
    request: Request,
    state: State,
    principal: Auth,
    username: Username,
    body: Annotated[GrantsBody, Body()],
) -> dict[str, Any]:
    """Replace every camera grant of the user. Flags beyond the role's ceiling (export or
    configure for a viewer) are stored but have no effect while the role stays."""
    _admin(principal)
    u = _user_or_404(state, username)
    try:
        grants = state.accounts.set_grants(u.username, [g.grant() for g in body.grants])
    except AccountError as exc:
        raise account_error(exc) from None
    state.audit_as(
        principal,
        request,
        "user.permissions",
        target=u.username,
        detail={"grants": [g.to_json() for g in grants]},
    )
    return {"username": u.username, "role": u.role, "grants": [g.to_json() for g in grants]}


# -- tokens ----------------------------------------------------------------------------------


@router.get("/tokens", summary="API tokens")
def list_tokens(
    state: State,
    principal: Auth,
    all_users: Annotated[
        bool, Query(alias="all", description="Everyone's tokens (administrators).")
    ] = False,
) -> dict[str, Any]:
    """The caller's tokens (never the secrets, which are not stored)."""
    if all_users:
        _admin(principal)
        tokens = state.accounts.list_tokens()
    else:
        authorize(principal, "account.read")
        tokens = state.accounts.list_tokens(principal.username)
    return {"tokens": [t.to_json() for t in tokens]}


@router.post("/tokens", status_code=201, summary="Create an API token (shown once)")
def create_token(
    request: Request, state: State, principal: Auth, body: Annotated[TokenCreate, Body()]
) -> dict[str, Any]:
    """Create a token for yourself (administrators: for anyone). The secret is in the
    answer and nowhere else: it is stored only as a hash."""
    owner = principal.username
    if body.username is not None and body.username.strip().lower() != principal.username:
        _admin(principal)
        owner = body.username
    else:
        authorize(principal, "account.manage")
    days = body.expires_in_days
    lifetime_s = days * 86400 if days is not None else state.cfg.token_default_expiry
    if lifetime_s > state.cfg.token_max_expiry:
        raise ApiError(
            400,
            "invalid_expiry",
            f"tokens may live at most {state.cfg.token_max_expiry / 86400:.0f} days",
        )
    try:
        secret, info = state.accounts.create_token(
            owner, body.name, body.scopes, state.ctx.clock() + int(lifetime_s * 1e6)
        )
    except AccountError as exc:
        raise account_error(exc) from None
    state.audit_as(
        principal,
        request,
        "token.create",
        target=f"{info.username}/{info.id}",
        detail={"scopes": list(info.scopes), "expires_us": info.expires_us, "name": info.name},
    )
    return {**info.to_json(), "token": secret}


def _token_or_404(state: ApiState, principal: Principal, token_id: str) -> TokenInfo:
    t = state.accounts.get_token(token_id)
    if t is None or (t.username != principal.username and not can(principal, "admin")):
        raise ApiError(404, "not_found", "no such token")
    return t


@router.delete("/tokens/{token_id}", summary="Revoke an API token")
def revoke_token(
    request: Request, state: State, principal: Auth, token_id: TokenId
) -> dict[str, Any]:
    t = _token_or_404(state, principal, token_id)
    if t.username != principal.username:
        _admin(principal)
    else:
        authorize(principal, "account.manage")
    info = state.accounts.revoke_token(token_id)
    state.audit_as(principal, request, "token.revoke", target=f"{info.username}/{info.id}")
    return info.to_json()


# -- audit -----------------------------------------------------------------------------------

Actor = Annotated[str | None, Query(max_length=64, description="Exactly this actor.")]
ActionQ = Annotated[
    str | None,
    Query(max_length=64, description="Exactly this action, or a prefix ending in *."),
]
CameraQ = Annotated[str | None, Query(max_length=63, description="Only this camera.")]
OutcomeQ = Annotated[
    Literal["ok", "failed", "denied"] | None, Query(description="Only this outcome.")
]
TimeQ = Annotated[str | None, Query(min_length=1, max_length=64, description=TIME_DESCRIPTION)]


def _audit_filters(
    actor: str | None,
    action: str | None,
    camera: str | None,
    outcome: str | None,
    start: str | None,
    end: str | None,
) -> dict[str, Any]:
    return {
        "actor": actor,
        "action": action,
        "camera": camera,
        "outcome": outcome,
        "start_us": parse_time(start, "start") if start is not None else None,
        "end_us": parse_time(end, "end") if end is not None else None,
    }


@router.get("/audit", summary="Search the audit log")
def search_audit(
    state: State,
    principal: Auth,
    actor: Actor = None,
    action: ActionQ = None,
    camera: CameraQ = None,
    outcome: OutcomeQ = None,
    start: TimeQ = None,
    end: TimeQ = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size.")] = 100,
    cursor: Annotated[
        int | None, Query(ge=1, le=2**62, description="next_cursor of the previous page.")
    ] = None,
) -> dict[str, Any]:
    """Records newest first; pass ``next_cursor`` back as ``cursor`` for older ones."""
    _admin(principal)
    filters = _audit_filters(actor, action, camera, outcome, start, end)
    rows, nxt = state.audit.search(before_seq=cursor, limit=limit, **filters)
    return {"records": [r.to_json() for r in rows], "next_cursor": nxt}


@router.get(
    "/audit/export.csv",
    summary="Audit log as CSV",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
def export_audit(
    request: Request,
    state: State,
    principal: Auth,
    actor: Actor = None,
    action: ActionQ = None,
    camera: CameraQ = None,
    outcome: OutcomeQ = None,
    start: TimeQ = None,
    end: TimeQ = None,
) -> StreamingResponse:
    """Every matching record, newest first, as CSV (cells that a spreadsheet would read
    as a formula are prefixed with an apostrophe)."""
    _admin(principal)
    filters = _audit_filters(actor, action, camera, outcome, start, end)
    state.audit_as(
        principal,
        request,
        "audit.export",
        detail={k: v for k, v in filters.items() if v is not None},
    )
    return StreamingResponse(
        csv_rows(state.audit.iter_all(**filters)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="vigil-audit.csv"'},
    )


@router.get("/audit/verify", summary="Verify the audit log's hash chain")
def verify_audit(state: State, principal: Auth) -> dict[str, Any]:
    """Recompute the chain: edited, deleted or reordered records and a truncated end
    (against the signed head) are reported with their position."""
    _admin(principal)
    return state.audit.verify().to_json()
