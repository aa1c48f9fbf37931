"""Accounts, camera grants, sessions and API tokens: every read and write of them.

The API and the CLI (``vigil user``, ``vigil token``) share this module, so a user made
on the command line and one made through the web follow the same rules (user name
syntax, password strength, the last administrator cannot be removed).

Secrets: passwords are stored as argon2id hashes; session ids and API tokens are 256-bit
random values of which only the SHA-256 is stored (a slow hash adds nothing for values
that cannot be guessed, and lookups stay one indexed query).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from vigil.api.authz import ALL_CAMERAS, CAMERA_ACTIONS, ROLE_SCOPES, ROLES, SCOPES
from vigil.api.passwords import (
    check_password_strength,
    dummy_hash,
    hash_password,
    verify_password,
)
from vigil.config.model import CAMERA_NAME_RE
from vigil.index.auth_models import ApiToken, AuthSession, User, UserCameraPermission
from vigil.index.db import Database
from vigil.index.repository import now_us

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.@-]{0,63}$")
TOKEN_PREFIX = "vgl_"  # noqa: S105 (a visible prefix, not a secret)
_TOKEN_RE = re.compile(r"^vgl_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$")
_SESSION_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")


class AccountError(ValueError):
    """A request about accounts that cannot be done; ``code`` is the API error code and
    ``status`` the HTTP status it maps to."""

    def __init__(self, message: str, code: str = "invalid", status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass(frozen=True, slots=True)
class UserInfo:
    id: int
    username: str
    role: str
    disabled: bool
    created_us: int
    updated_us: int
    password_changed_us: int

    def to_json(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "role": self.role,
            "disabled": self.disabled,
            "created_us": self.created_us,
            "updated_us": self.updated_us,
            "password_changed_us": self.password_changed_us,
        }


@dataclass(frozen=True, slots=True)
class Grant:
    camera: str
    actions: frozenset[str]

    def to_json(self) -> dict[str, Any]:
        return {"camera": self.camera, **{a: a in self.actions for a in CAMERA_ACTIONS}}


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: str
    username: str
    name: str
    scopes: tuple[str, ...]
    created_us: int
    expires_us: int
    last_used_us: int | None
    revoked_us: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "name": self.name,
            "scopes": list(self.scopes),
            "created_us": self.created_us,
            "expires_us": self.expires_us,
            "last_used_us": self.last_used_us,
            "revoked_us": self.revoked_us,
        }


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id_hash: str
    user: UserInfo
    created_us: int
    last_seen_us: int
    expires_us: int


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def csrf_for(session_id: str) -> str:
    """The CSRF token of a session: an HMAC of a fixed label keyed with the session id.
    Derived, not stored, so it survives page reloads (``GET /api/auth/me`` returns it)
    without keeping another secret; a page that can read it still cannot learn the
    session id (HttpOnly cookie) from it."""
    mac = hmac.new(session_id.encode(), b"vigil-csrf-v1", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def _user(row: User) -> UserInfo:
    return UserInfo(
        id=row.id,
        username=row.username,
        role=row.role,
        disabled=row.disabled,
        created_us=row.created_us,
        updated_us=row.updated_us,
        password_changed_us=row.password_changed_us,
    )


def normalize_username(name: str) -> str:
    """User names are case-insensitive (stored lower-case): ``Admin`` and ``admin`` are
    one account, so a look-alike cannot be created next to it."""
    return name.strip().lower()


def check_username(name: str) -> str:
    n = normalize_username(name)
    if not USERNAME_RE.match(n):
        raise AccountError(
            "a user name is 1-64 characters of a-z, 0-9, '_', '.', '@' and '-', starting "
            "with a letter or digit",
            code="invalid_username",
        )
    return n


class Accounts:
    """Account storage of one database. ``clock`` returns epoch microseconds (tests move
    it to expire sessions and tokens)."""

    def __init__(
        self,
        db: Database,
        hasher: PasswordHasher,
        clock: Callable[[], int] = now_us,
    ) -> None:
        self.db = db
        self.hasher = hasher
        self.clock = clock
        self._dummy = dummy_hash(hasher)

    # -- users --------------------------------------------------------------------------------
    def admin_exists(self) -> bool:
        with self.db.session() as s:
            q = select(func.count(User.id)).where(User.role == "admin", User.disabled.is_(False))
            return bool(s.scalar(q))

    def any_user_exists(self) -> bool:
        with self.db.session() as s:
            return s.scalar(select(func.count(User.id))) != 0

    def create_user(
        self,
        username: str,
        password: str,
        role: str,
        *,
        only_if_no_admin: bool = False,
    ) -> UserInfo:
        """Create an account. ``only_if_no_admin`` makes first-run setup atomic: the check
        that no administrator exists and the insert happen in one transaction, so two
        concurrent setup requests cannot both succeed."""
        name = check_username(username)
        if role not in ROLES:
            raise AccountError(f"role must be one of {', '.join(ROLES)}", code="invalid_role")
        check_password_strength(password, name)
        hashed = hash_password(self.hasher, password)
        now = self.clock()
        with self.db.session() as s:
            if only_if_no_admin:
                n = s.scalar(
                    select(func.count(User.id)).where(
                        User.role == "admin", User.disabled.is_(False)
                    )
                )
                if n:
                    raise AccountError(
                        "setup is already done: an administrator exists", "setup_done", 409
                    )
            row = User(
                username=name,
                password_hash=hashed,
                role=role,
                disabled=False,
                created_us=now,
                updated_us=now,
                password_changed_us=now,
            )
            s.add(row)
            try:
                s.commit()
            except IntegrityError:
                raise AccountError(f"user {name!r} already exists", "exists", 409) from None
            return _user(row)

    def get(self, username: str) -> UserInfo | None:
        with self.db.session() as s:
            row = s.scalar(select(User).where(User.username == normalize_username(username)))
            return _user(row) if row is not None else None

    def get_by_id(self, user_id: int) -> UserInfo | None:
        with self.db.session() as s:
            row = s.get(User, user_id)
            return _user(row) if row is not None else None

    def list_users(self) -> list[UserInfo]:
        with self.db.session() as s:
            return [_user(r) for r in s.scalars(select(User).order_by(User.username))]

    def check_login(self, username: str, password: str) -> UserInfo | None:
        """The user if the name exists, is enabled and the password matches, else None.
        Costs one argon2 verification in every case (a dummy hash for unknown names), so
        the answer time does not tell whether a name exists. Upgrades the stored hash
        when the hasher's parameters changed."""
        name = normalize_username(username)
        with self.db.session() as s:
            row = s.scalar(select(User).where(User.username == name)) if name else None
            if row is None or row.disabled:
                verify_password(self.hasher, self._dummy, password)
                return None
            if not verify_password(self.hasher, row.password_hash, password):
                return None
            if self.hasher.check_needs_rehash(row.password_hash):
                row.password_hash = hash_password(self.hasher, password)
                s.commit()
            return _user(row)

    def verify_password_of(self, user_id: int, password: str) -> bool:
        with self.db.session() as s:
            row = s.get(User, user_id)
            stored = row.password_hash if row is not None else self._dummy
        return verify_password(self.hasher, stored, password) and row is not None

    def set_password(self, username: str, password: str) -> UserInfo:
        """Change a password (strength-checked) and end every session of the account:
        whoever knew the old password must not stay logged in."""
        name = normalize_username(username)
        check_password_strength(password, name)
        hashed = hash_password(self.hasher, password)
        now = self.clock()
        with self.db.session() as s:
            row = s.scalar(select(User).where(User.username == name))
            if row is None:
                raise AccountError(f"no user {name!r}", "not_found", 404)
            row.password_hash = hashed
            row.password_changed_us = now
            row.updated_us = now
            s.execute(delete(AuthSession).where(AuthSession.user_id == row.id))
            s.commit()
            return _user(row)

    def update_user(
        self, username: str, *, role: str | None = None, disabled: bool | None = None
    ) -> UserInfo:
        name = normalize_username(username)
        if role is not None and role not in ROLES:
            raise AccountError(f"role must be one of {', '.join(ROLES)}", code="invalid_role")
        with self.db.session() as s:
            row = s.scalar(select(User).where(User.username == name))
            if row is None:
                raise AccountError(f"no user {name!r}", "not_found", 404)
            losing_admin = (
                row.role == "admin"
                and not row.disabled
                and ((role is not None and role != "admin") or disabled is True)
            )
            if losing_admin:
                self._keep_an_admin(s, row.id)
            if role is not None:
                row.role = role
            if disabled is not None:
                row.disabled = disabled
                if disabled:
                    s.execute(delete(AuthSession).where(AuthSession.user_id == row.id))
            row.updated_us = self.clock()
            s.commit()
            return _user(row)

    def delete_user(self, username: str) -> UserInfo:
        """Remove an account with its grants, sessions and tokens. The audit log keeps
        naming it (records hold the name, not a reference)."""
        name = normalize_username(username)
        with self.db.session() as s:
            row = s.scalar(select(User).where(User.username == name))
            if row is None:
                raise AccountError(f"no user {name!r}", "not_found", 404)
            if row.role == "admin" and not row.disabled:
                self._keep_an_admin(s, row.id)
            info = _user(row)
            s.execute(delete(AuthSession).where(AuthSession.user_id == row.id))
            s.execute(delete(ApiToken).where(ApiToken.user_id == row.id))
            s.execute(delete(UserCameraPermission).where(UserCameraPermission.user_id == row.id))
            s.delete(row)
            s.commit()
            return info

    @staticmethod
    def _keep_an_admin(s: Any, user_id: int) -> None:
        others = s.scalar(
            select(func.count(User.id)).where(
                User.role == "admin", User.disabled.is_(False), User.id != user_id
            )
        )
        if not others:
            raise AccountError(
                "this is the last enabled administrator; create another one first",
                "last_admin",
                409,
            )

    # -- grants -------------------------------------------------------------------------------
    def grants(self, user_id: int) -> dict[str, frozenset[str]]:
        with self.db.session() as s:
            rows = s.scalars(
                select(UserCameraPermission).where(UserCameraPermission.user_id == user_id)
            )
            return {r.camera: frozenset(a for a in CAMERA_ACTIONS if getattr(r, a)) for r in rows}

    def set_grants(self, username: str, grants: Sequence[Grant]) -> list[Grant]:
        """Replace all camera grants of a user (one transaction)."""
        name = normalize_username(username)
        seen: set[str] = set()
        for g in grants:
            if g.camera != ALL_CAMERAS and not CAMERA_NAME_RE.match(g.camera):
                raise AccountError(f"{g.camera!r} is not a camera name", "invalid_camera")
            if g.camera in seen:
                raise AccountError(f"camera {g.camera!r} is listed twice", "duplicate")
            seen.add(g.camera)
            bad = set(g.actions) - set(CAMERA_ACTIONS)
            if bad:
                raise AccountError(f"unknown permissions {sorted(bad)}", "invalid_permission")
        with self.db.session() as s:
            row = s.scalar(select(User).where(User.username == name))
            if row is None:
                raise AccountError(f"no user {name!r}", "not_found", 404)
            s.execute(delete(UserCameraPermission).where(UserCameraPermission.user_id == row.id))
            for g in grants:
                s.add(
                    UserCameraPermission(
                        user_id=row.id,
                        camera=g.camera,
                        **{a: a in g.actions for a in CAMERA_ACTIONS},
                    )
                )
            row.updated_us = self.clock()
            s.commit()
        return sorted(grants, key=lambda g: g.camera)

    # -- sessions -----------------------------------------------------------------------------
    def create_session(
        self, user_id: int, ip: str, user_agent: str, max_age_us: int
    ) -> tuple[str, SessionInfo]:
        """A new session; returns the raw id (for the cookie, never stored) and its row."""
        raw = secrets.token_urlsafe(32)  # 256 bits
        now = self.clock()
        with self.db.session() as s:
            user = s.get(User, user_id)
            if user is None:
                raise AccountError("no such user", "not_found", 404)
            row = AuthSession(
                id_hash=sha256_hex(raw),
                user_id=user_id,
                created_us=now,
                last_seen_us=now,
                expires_us=now + max_age_us,
                ip=ip[:64],
                user_agent=user_agent[:256],
            )
            s.add(row)
            s.commit()
            return raw, SessionInfo(row.id_hash, _user(user), now, now, row.expires_us)

    def lookup_session(self, raw: str, idle_us: int) -> tuple[SessionInfo | None, str]:
        """The live session for a cookie value, or (None, reason). An expired session is
        deleted on sight; ``last_seen_us`` is refreshed at most every 30 s (one write per
        request would make every media part a database write)."""
        if not _SESSION_RE.match(raw):
            return None, "invalid"
        h = sha256_hex(raw)
        now = self.clock()
        with self.db.session() as s:
            row = s.get(AuthSession, h)
            if row is None:
                return None, "invalid"
            user = s.get(User, row.user_id)
            if now >= row.expires_us or now - row.last_seen_us >= idle_us:
                s.delete(row)
                s.commit()
                return None, "expired"
            if user is None or user.disabled:
                s.delete(row)
                s.commit()
                return None, "invalid"
            if now - row.last_seen_us > 30_000_000:
                row.last_seen_us = now
                s.commit()
            return (
                SessionInfo(h, _user(user), row.created_us, row.last_seen_us, row.expires_us),
                "",
            )

    def delete_session(self, id_hash: str) -> None:
        with self.db.session() as s:
            s.execute(delete(AuthSession).where(AuthSession.id_hash == id_hash))
            s.commit()

    def delete_sessions(self, user_id: int, *, keep: str | None = None) -> int:
        with self.db.session() as s:
            q = delete(AuthSession).where(AuthSession.user_id == user_id)
            if keep is not None:
                q = q.where(AuthSession.id_hash != keep)
            n = s.execute(q).rowcount  # type: ignore[attr-defined]
            s.commit()
            return int(n or 0)

    def purge_sessions(self, idle_us: int) -> int:
        """Delete expired sessions (housekeeping; lookups also delete them on sight)."""
        now = self.clock()
        with self.db.session() as s:
            n = s.execute(
                delete(AuthSession).where(
                    (AuthSession.expires_us <= now) | (AuthSession.last_seen_us <= now - idle_us)
                )
            ).rowcount  # type: ignore[attr-defined]
            s.commit()
            return int(n or 0)

    # -- tokens -------------------------------------------------------------------------------
    def create_token(
        self, username: str, name: str, scopes: Iterable[str], expires_us: int
    ) -> tuple[str, TokenInfo]:
        """A new token: returns the secret (shown once, never stored) and its record.
        Scopes beyond what the owner's role allows are refused."""
        uname = normalize_username(username)
        wanted = sorted(set(scopes))
        if not wanted:
            raise AccountError("a token needs at least one scope", "invalid_scope")
        bad = [sc for sc in wanted if sc not in SCOPES]
        if bad:
            raise AccountError(f"unknown scopes {bad}; use {', '.join(SCOPES)}", "invalid_scope")
        label = name.strip()
        if not label or len(label) > 64 or not label.isprintable():
            raise AccountError("a token name is 1-64 printable characters", "invalid_name")
        now = self.clock()
        if expires_us <= now:
            raise AccountError("the expiry must be in the future", "invalid_expiry")
        with self.db.session() as s:
            user = s.scalar(select(User).where(User.username == uname))
            if user is None:
                raise AccountError(f"no user {uname!r}", "not_found", 404)
            over = [sc for sc in wanted if sc not in ROLE_SCOPES.get(user.role, frozenset())]
            if over:
                raise AccountError(
                    f"role {user.role} cannot hold tokens with scopes {over}", "invalid_scope", 403
                )
            tid = secrets.token_hex(6)
            secret = f"{TOKEN_PREFIX}{tid}_{secrets.token_urlsafe(32)}"
            row = ApiToken(
                id=tid,
                user_id=user.id,
                name=label,
                token_hash=sha256_hex(secret),
                scopes=wanted,
                created_us=now,
                expires_us=expires_us,
                last_used_us=None,
                revoked_us=None,
            )
            s.add(row)
            s.commit()
            return secret, self._token(row, user.username)

    @staticmethod
    def _token(row: ApiToken, username: str) -> TokenInfo:
        return TokenInfo(
            id=row.id,
            username=username,
            name=row.name,
            scopes=tuple(row.scopes or ()),
            created_us=row.created_us,
            expires_us=row.expires_us,
            last_used_us=row.last_used_us,
            revoked_us=row.revoked_us,
        )

    def list_tokens(self, username: str | None = None) -> list[TokenInfo]:
        q = select(ApiToken, User.username).join(User, User.id == ApiToken.user_id)
        if username is not None:
            q = q.where(User.username == normalize_username(username))
        with self.db.session() as s:
            return [self._token(t, u) for t, u in s.execute(q.order_by(ApiToken.created_us)).all()]

    def get_token(self, token_id: str) -> TokenInfo | None:
        with self.db.session() as s:
            got = s.execute(
                select(ApiToken, User.username)
                .join(User, User.id == ApiToken.user_id)
                .where(ApiToken.id == token_id)
            ).first()
            return self._token(got[0], got[1]) if got is not None else None

    def revoke_token(self, token_id: str) -> TokenInfo:
        now = self.clock()
        with self.db.session() as s:
            s.execute(
                update(ApiToken)
                .where(ApiToken.id == token_id, ApiToken.revoked_us.is_(None))
                .values(revoked_us=now)
            )
            s.commit()
        info = self.get_token(token_id)
        if info is None:
            raise AccountError(f"no token {token_id!r}", "not_found", 404)
        return info

    def lookup_token(self, secret: str) -> tuple[TokenInfo | None, UserInfo | None, str]:
        """(token, owner, "") for a usable token, else (None, None, reason)."""
        if not _TOKEN_RE.match(secret):
            return None, None, "invalid"
        now = self.clock()
        with self.db.session() as s:
            row = s.scalar(select(ApiToken).where(ApiToken.token_hash == sha256_hex(secret)))
            if row is None:
                return None, None, "invalid"
            user = s.get(User, row.user_id)
            if row.revoked_us is not None:
                return None, None, "revoked"
            if now >= row.expires_us:
                return None, None, "expired"
            if user is None or user.disabled:
                return None, None, "invalid"
            if row.last_used_us is None or now - row.last_used_us > 60_000_000:
                row.last_used_us = now
                s.commit()
            return self._token(row, user.username), _user(user), ""


def grants_from_json(items: Iterable[Mapping[str, Any]]) -> list[Grant]:
    return [
        Grant(str(it["camera"]), frozenset(a for a in CAMERA_ACTIONS if it.get(a))) for it in items
    ]
