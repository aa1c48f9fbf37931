"""Index tables of the HTTP API (see ``vigil.api``): accounts, per-camera permissions,
server-side sessions, API tokens, the hash-chained audit log, and per-camera analytics
settings (zones, masks, lines) edited through the API.

Why these shapes:

* **Secrets are stored hashed.** Passwords as argon2id strings; session ids and API tokens
  (256 bits of randomness each) as SHA-256, so a copy of the database lets nobody log in.
* **Permissions name cameras, not camera ids.** A camera row is created the first time
  something is recorded, but an administrator grants access to configured cameras before
  that; ``"*"`` means every camera.
* **The audit log is append-only.** ``seq`` is assigned by the writer (last + 1) and is the
  primary key, so two writers racing for the same position collide instead of forking the
  chain; each row carries the previous row's hash (see ``vigil.api.audit``).

Imported at the bottom of ``vigil.index.models`` so ``Base.metadata`` (and the migration
check) always sees them. Times are integer microseconds since the Unix epoch.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vigil.index.models import Base


class User(Base):
    """An account. ``role`` is ``admin``, ``operator`` or ``viewer``; a disabled account
    keeps its row (the audit log names it) but cannot log in or use its tokens."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_us: Mapped[int] = mapped_column(BigInteger)
    updated_us: Mapped[int] = mapped_column(BigInteger)
    password_changed_us: Mapped[int] = mapped_column(BigInteger)


class UserCameraPermission(Base):
    """What one user may do with one camera (``camera="*"``: every camera). The role caps
    what a grant can give: a viewer's ``export`` or ``configure`` flag has no effect."""

    __tablename__ = "user_camera_permissions"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    camera: Mapped[str] = mapped_column(String(63), primary_key=True)
    view_live: Mapped[bool] = mapped_column(Boolean, default=False)
    view_recordings: Mapped[bool] = mapped_column(Boolean, default=False)
    export: Mapped[bool] = mapped_column(Boolean, default=False)
    configure: Mapped[bool] = mapped_column(Boolean, default=False)


class AuthSession(Base):
    """A browser login. The cookie holds a random 256-bit id; only its SHA-256 is stored.
    ``last_seen_us`` drives the idle expiry, ``expires_us`` is the absolute one."""

    __tablename__ = "auth_sessions"
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_us: Mapped[int] = mapped_column(BigInteger)
    last_seen_us: Mapped[int] = mapped_column(BigInteger)
    expires_us: Mapped[int] = mapped_column(BigInteger)
    ip: Mapped[str] = mapped_column(String(64))
    user_agent: Mapped[str] = mapped_column(String(256))

    __table_args__ = (Index("ix_auth_sessions_user", "user_id"),)


class ApiToken(Base):
    """A bearer token for scripts and integrations: shown once, stored as SHA-256, limited
    to ``scopes`` (on top of its owner's own permissions) and to ``expires_us``."""

    __tablename__ = "api_tokens"
    id: Mapped[str] = mapped_column(String(16), primary_key=True)  # public handle
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_us: Mapped[int] = mapped_column(BigInteger)
    expires_us: Mapped[int] = mapped_column(BigInteger)
    last_used_us: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    revoked_us: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    __table_args__ = (Index("ix_api_tokens_user", "user_id"),)


class AuditEntry(Base):
    """One audit record. ``hash`` = SHA-256 over the canonical form of every other field
    including ``prev_hash`` (the previous record's ``hash``), so editing or deleting any
    row breaks the chain at that point. There is no code path that updates or deletes."""

    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at_us: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(64))
    actor_kind: Mapped[str] = mapped_column(String(16))  # user, token, cli, system, anonymous
    action: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))  # ok, failed, denied
    camera: Mapped[str | None] = mapped_column(String(63), nullable=True)
    target: Mapped[str] = mapped_column(String(256))
    ip: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text)  # canonical JSON object
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_audit_log_at", "at_us"),
        Index("ix_audit_log_actor_at", "actor", "at_us"),
        Index("ix_audit_log_action_at", "action", "at_us"),
        Index("ix_audit_log_camera_at", "camera", "at_us"),
    )


class CameraSettings(Base):
    """Analytics settings of one camera edited through the API (zones, motion and object
    masks, counting lines), as one validated JSON document the runtime reads."""

    __tablename__ = "camera_settings"
    camera: Mapped[str] = mapped_column(String(63), primary_key=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer)
    updated_us: Mapped[int] = mapped_column(BigInteger)
    updated_by: Mapped[str] = mapped_column(String(64))
