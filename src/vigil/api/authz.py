"""Authorization: the one function that decides whether a principal may do something.

Every route and every media URL (segments, HLS parts, snapshots, events, event snapshots
and clips, exports) calls :func:`authorize` with the camera it is about, resolved on the
server (an event's or export's camera comes from the database, never from the client),
so a viewer of camera A cannot fetch anything of camera B by guessing identifiers (the
bug class of Frigate CVE-2026-33470). Lists are filtered with :func:`visible_cameras`, so
cameras a user cannot see do not appear at all.

The model:

* **Roles** set a ceiling. ``admin`` may do everything on every camera, plus accounts,
  tokens of others and the audit log. ``operator`` may be granted any camera permission.
  ``viewer`` may only be granted ``view_live`` and ``view_recordings``; an ``export`` or
  ``configure`` flag on a viewer's grant has no effect.
* **Per-camera grants** (table ``user_camera_permissions``; camera ``*`` = all) say which
  cameras an operator or viewer may see and what they may do with each. No grant, no
  access: a new non-admin account sees nothing until an administrator grants cameras.
* **API token scopes** narrow a token further than its owner's rights: a ``read`` token
  of an administrator cannot export.

A camera the principal cannot see at all is answered 404 (indistinguishable from a
camera that does not exist); a visible camera without the needed permission is 403.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from vigil.api.errors import ApiError

Role = Literal["admin", "operator", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "operator", "viewer")
CameraAction = Literal["view_live", "view_recordings", "export", "configure"]
CAMERA_ACTIONS: tuple[CameraAction, ...] = ("view_live", "view_recordings", "export", "configure")
# Actions not about one camera.
GlobalAction = Literal["system", "account.read", "account.manage", "admin"]
Action = CameraAction | GlobalAction
ALL_CAMERAS = "*"

ROLE_CAMERA_CEILING: Mapping[str, frozenset[str]] = {
    "admin": frozenset(CAMERA_ACTIONS),
    "operator": frozenset(CAMERA_ACTIONS),
    "viewer": frozenset({"view_live", "view_recordings"}),
}
ROLE_GLOBAL: Mapping[str, frozenset[str]] = {
    "admin": frozenset({"system", "account.read", "account.manage", "admin"}),
    "operator": frozenset({"system", "account.read", "account.manage"}),
    "viewer": frozenset({"system", "account.read", "account.manage"}),
}
Scope = Literal["read", "export", "configure", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "export", "configure", "admin")
SCOPE_ACTIONS: Mapping[str, frozenset[str]] = {
    "read": frozenset({"view_live", "view_recordings", "system", "account.read"}),
    "export": frozenset({"export"}),
    "configure": frozenset({"configure"}),
    "admin": frozenset(CAMERA_ACTIONS)
    | frozenset({"system", "account.read", "account.manage", "admin"}),
}
# Which scopes a role may put on its tokens (a token never exceeds its owner's rights,
# and this keeps a viewer from minting tokens that would only look more powerful).
ROLE_SCOPES: Mapping[str, frozenset[str]] = {
    "admin": frozenset(SCOPES),
    "operator": frozenset({"read", "export", "configure"}),
    "viewer": frozenset({"read"}),
}
ROLE_DESCRIPTIONS: Mapping[str, str] = {
    "admin": "Everything: all cameras, accounts, API tokens of anyone, the audit log.",
    "operator": "The cameras granted to them, with any of view_live, view_recordings, "
    "export and configure.",
    "viewer": "The cameras granted to them, with view_live and view_recordings only.",
}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is making a request, with everything authorization needs, loaded once per
    request. ``scopes`` is None for a browser session (the user's full rights)."""

    user_id: int
    username: str
    role: str
    via: Literal["session", "token", "cli"]
    grants: Mapping[str, frozenset[str]] = field(default_factory=dict)  # camera -> actions
    scopes: frozenset[str] | None = None
    token_id: str | None = None
    session_hash: str | None = None
    csrf_token: str | None = None
    ip: str = ""

    @property
    def actor_kind(self) -> Literal["user", "token", "cli"]:
        return "token" if self.via == "token" else ("cli" if self.via == "cli" else "user")

    def scope_allows(self, action: str) -> bool:
        if self.scopes is None:
            return True
        return any(action in SCOPE_ACTIONS.get(s, frozenset()) for s in self.scopes)

    def camera_actions(self, camera: str) -> frozenset[str]:
        """What this principal may do with ``camera`` (role ceiling, grants and scopes)."""
        ceiling = ROLE_CAMERA_CEILING.get(self.role, frozenset())
        if self.role == "admin":
            granted = ceiling
        else:
            granted = self.grants.get(camera, frozenset()) | self.grants.get(
                ALL_CAMERAS, frozenset()
            )
        return frozenset(a for a in granted & ceiling if self.scope_allows(a))


def authorize(principal: Principal, action: Action, camera: str | None = None) -> None:
    """Allow or raise. Camera actions need ``camera``; global actions must not get one.

    Raises ``ApiError`` 404 when the camera is not visible to the principal at all (so
    camera names cannot be probed) and 403 when it is visible but the action is not
    allowed, or when a global action is not allowed. Refusals are audited."""
    if action in CAMERA_ACTIONS:
        if camera is None:
            raise ValueError(f"action {action!r} needs a camera")
        allowed = principal.camera_actions(camera)
        if not allowed:
            raise ApiError(
                404,
                "not_found",
                f"unknown camera {camera!r}",
                audit=f"deny.{action}",
                camera=camera,
            )
        if action not in allowed:
            if not principal.scope_allows(action):
                msg = f"this API token's scopes do not permit {action} on camera {camera!r}"
            else:
                msg = f"you do not have the {action} permission on camera {camera!r}"
            raise ApiError(403, "forbidden", msg, audit=f"deny.{action}", camera=camera)
        return
    if camera is not None:
        raise ValueError(f"action {action!r} is not about a camera")
    if action not in ROLE_GLOBAL.get(principal.role, frozenset()):
        raise ApiError(
            403, "forbidden", f"your role does not permit {action}", audit=f"deny.{action}"
        )
    if not principal.scope_allows(action):
        raise ApiError(
            403,
            "forbidden",
            f"this API token's scopes do not permit {action}",
            audit=f"deny.{action}",
        )


def can(principal: Principal, action: Action, camera: str | None = None) -> bool:
    """:func:`authorize` as a predicate (no audit record)."""
    if action in CAMERA_ACTIONS:
        return camera is not None and action in principal.camera_actions(camera)
    return action in ROLE_GLOBAL.get(principal.role, frozenset()) and principal.scope_allows(action)


def visible_cameras(
    principal: Principal, cameras: Iterable[str], action: CameraAction | None = None
) -> list[str]:
    """The subset of ``cameras`` the principal may see (with ``action``, if given), in the
    given order: what every list must be filtered with."""
    out = []
    for cam in cameras:
        allowed = principal.camera_actions(cam)
        if (action is None and allowed) or (action is not None and action in allowed):
            out.append(cam)
    return out
