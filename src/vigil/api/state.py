"""What the API runs on: :class:`AppContext` (given by the caller) and :class:`ApiState`
(built from it by ``create_app`` and kept on ``app.state.vigil``).

The context holds only what exists independently of HTTP (configuration, index, key
store, event store, the live recorder if there is one), so tests run the API on a
database and a storage directory alone, and ``vigil run`` hands in its live
:class:`~vigil.runtime.nvr.NVR`. The state adds the API's own services (accounts, audit
log, login throttle, export jobs, caches).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from starlette.requests import HTTPConnection

from vigil.api.accounts import Accounts
from vigil.api.audit import ActorKind, AuditLog, Outcome
from vigil.api.authz import Principal
from vigil.api.jobs import ExportJobs
from vigil.api.media import ClipCache, HlsPlans
from vigil.api.netutil import IPNetwork, client_ip, parse_networks
from vigil.api.passwords import default_hasher
from vigil.api.throttle import LoginThrottle
from vigil.config.api_model import ApiConfig
from vigil.config.model import VigilConfig
from vigil.events.store import EventStore
from vigil.evidence.keys import KeyStore
from vigil.index.repository import Index, now_us

# A still JPEG of a camera's live picture, or None (provided by the live-view subsystem).
LiveSnapshot = Callable[[str], bytes | None]


@dataclass
class AppContext:
    """Everything the API needs from the rest of Vigil.

    ``api`` defaults to ``config.api`` when the root configuration has that section, else
    to :class:`ApiConfig` defaults. ``nvr`` is the running recorder (``vigil run``) or None
    (tests, a read-only API over a storage directory). ``hasher`` may be replaced by a
    cheaper one in tests. ``clock`` returns epoch microseconds and drives session and
    token expiry (tests move it)."""

    config: VigilConfig
    index: Index
    keys: KeyStore | None = None
    events: EventStore | None = None
    nvr: Any | None = None
    api: ApiConfig | None = None
    hasher: PasswordHasher | None = None
    live_snapshot: LiveSnapshot | None = None
    clock: Callable[[], int] = now_us

    def api_config(self) -> ApiConfig:
        if self.api is not None:
            return self.api
        found = getattr(self.config, "api", None)
        return found if isinstance(found, ApiConfig) else ApiConfig()

    def export_dir(self) -> Path:
        cfg = self.api_config()
        if cfg.export_dir is not None:
            return cfg.export_dir
        root = self.index.root
        return root.parent / "vigil-exports"


@dataclass
class ApiState:
    ctx: AppContext
    cfg: ApiConfig
    accounts: Accounts
    audit: AuditLog
    throttle: LoginThrottle
    jobs: ExportJobs
    clips: ClipCache
    hls: HlsPlans
    proxies: tuple[IPNetwork, ...]
    started_us: int
    events: EventStore
    _tmp_cache: Path | None = field(default=None, repr=False)

    @classmethod
    def build(cls, ctx: AppContext) -> ApiState:
        cfg = ctx.api_config()
        hasher = ctx.hasher or default_hasher()
        audit = AuditLog(ctx.index.db, ctx.keys)
        tmp_cache: Path | None = None
        if cfg.cache_dir is not None:
            cache_dir = cfg.cache_dir
        else:
            tmp_cache = Path(tempfile.mkdtemp(prefix="vigil-playback-"))
            cache_dir = tmp_cache
        root = ctx.index.root
        for what, d in (("export_dir", ctx.export_dir()), ("cache_dir", cache_dir)):
            resolved = d.resolve()
            if resolved == root or root in resolved.parents:
                raise ValueError(
                    f"api.{what} {d} is inside the storage directory; the recorder would "
                    "take the MP4 files there for footage"
                )
        return cls(
            ctx=ctx,
            cfg=cfg,
            accounts=Accounts(ctx.index.db, hasher, ctx.clock),
            audit=audit,
            throttle=LoginThrottle(
                cfg.login_max_failures, cfg.login_lockout, cfg.login_lockout_max, clock=ctx.clock
            ),
            jobs=ExportJobs(
                ctx.index,
                ctx.keys,
                audit,
                ctx.export_dir(),
                max_range_us=int(ctx.config.evidence.max_export * 1_000_000),
            ),
            clips=ClipCache(cache_dir, cfg.cache_max_bytes),
            hls=HlsPlans(),
            proxies=parse_networks(cfg.trusted_proxies),
            started_us=now_us(),
            events=ctx.events or EventStore(ctx.index),
            _tmp_cache=tmp_cache,
        )

    def close(self) -> None:
        self.jobs.shutdown()
        if self._tmp_cache is not None:
            shutil.rmtree(self._tmp_cache, ignore_errors=True)

    # -- cameras ------------------------------------------------------------------------------
    def camera_names(self) -> list[str]:
        """Configured cameras first (in configuration order), then cameras that only exist
        in the index (recorded once, since removed from the configuration)."""
        names = [c.name for c in self.ctx.config.cameras]
        seen = set(names)
        for n in self.ctx.index.camera_names():
            if n not in seen:
                names.append(n)
                seen.add(n)
        return names

    def camera_known(self, name: str) -> bool:
        return any(c.name == name for c in self.ctx.config.cameras) or (
            name in self.ctx.index.camera_names()
        )

    @property
    def max_playback_us(self) -> int:
        return int(self.cfg.max_playback_range * 1_000_000)

    # -- audit --------------------------------------------------------------------------------
    def audit_as(
        self,
        principal: Principal | None,
        conn: HTTPConnection | None,
        action: str,
        *,
        outcome: Outcome = "ok",
        camera: str | None = None,
        target: str = "",
        detail: dict[str, Any] | None = None,
        actor: str | None = None,
    ) -> None:
        """Append an audit record for the request's principal (or ``actor``)."""
        kind: ActorKind = principal.actor_kind if principal is not None else "anonymous"
        name = principal.username if principal is not None else (actor or "-")
        if principal is not None and principal.token_id is not None:
            detail = {**(detail or {}), "token": principal.token_id}
        ip = client_ip(conn, self.proxies) if conn is not None else ""
        self.audit.append(
            action,
            actor=name,
            actor_kind=kind,
            outcome=outcome,
            camera=camera,
            target=target,
            ip=ip,
            detail=detail,
        )


def get_state(conn: HTTPConnection) -> ApiState:
    """The API state of the app serving ``conn`` (a Request or a WebSocket)."""
    state = conn.app.state.vigil
    assert isinstance(state, ApiState)
    return state


async def audit_denied(conn: HTTPConnection, action: str, camera: str | None, message: str) -> None:
    """Record an authorization refusal (called by the error handler)."""
    from starlette.concurrency import run_in_threadpool

    state = get_state(conn)
    principal = getattr(conn.state, "principal", None)
    await run_in_threadpool(
        state.audit_as,
        principal if isinstance(principal, Principal) else None,
        conn,
        action,
        outcome="denied",
        camera=camera,
        target=conn.url.path[:256],
        detail={"reason": message},
    )
