"""`vigil user ...` and `vigil token ...`: accounts and API tokens from the command line.

The command line is the other way to create the first administrator (besides the web
setup, which only works from this machine): whoever can run it already controls the
installation. Passwords are always prompted for, twice and hidden, never taken from the
command line (where they would sit in shell history and be visible in the process list).
Everything done here is written to the audit log as the operating-system user.
"""

from __future__ import annotations

import getpass
from typing import Annotated

import typer
from rich.table import Table

from vigil.api.accounts import AccountError, Accounts, Grant
from vigil.api.audit import AuditLog
from vigil.api.authz import CAMERA_ACTIONS, ROLE_CAMERA_CEILING, ROLES, SCOPES
from vigil.api.passwords import WeakPasswordError, check_password_strength, default_hasher
from vigil.cli.common import DEFAULT_CONFIG, ConfigOption, console, fail, load_or_exit
from vigil.config.model import VigilConfig
from vigil.index.db import Database
from vigil.index.repository import now_us
from vigil.util.timefmt import format_time

app = typer.Typer(help="User accounts of the web interface and API.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens (for scripts and integrations).", no_args_is_help=True)


class _Env:
    """The database, accounts and audit log of a configuration."""

    def __init__(self, cfg: VigilConfig) -> None:
        cfg.storage.path.mkdir(parents=True, exist_ok=True)
        self.db = Database(cfg.database_url())
        self.accounts = Accounts(self.db, default_hasher())
        keys = None
        try:
            from vigil.evidence.keys import KeyStore

            keys = KeyStore(cfg.key_dir())  # signs the audit log's head, like the recorder
        except Exception as exc:
            fail(f"cannot open the instance key in {cfg.key_dir()}: {exc}")
        self.audit = AuditLog(self.db, keys)
        try:
            self.actor = getpass.getuser()
        except (KeyError, OSError):
            self.actor = "unknown"

    def log(self, action: str, target: str, **detail: object) -> None:
        self.audit.append(
            action, actor=self.actor, actor_kind="cli", target=target, detail=dict(detail)
        )

    def close(self) -> None:
        self.db.close()


def _prompt_password(username: str) -> str:
    """Ask twice, hidden; re-ask (up to three times) when the password is too weak."""
    for _attempt in range(3):
        pw = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        try:
            check_password_strength(pw, username)
            return str(pw)
        except WeakPasswordError as exc:
            console.print(f"[yellow]{exc}[/]", highlight=False)
    fail("no acceptable password given", 2)


def _error(exc: AccountError | WeakPasswordError) -> None:
    fail(str(exc), 2 if not isinstance(exc, AccountError) or exc.status < 404 else 1)


@app.command("add")
def add_user(
    name: Annotated[str, typer.Argument(help="User name (a-z, 0-9, '_', '.', '@', '-').")],
    config: ConfigOption = DEFAULT_CONFIG,
    admin: Annotated[bool, typer.Option("--admin", help="Make an administrator.")] = False,
    role: Annotated[
        str, typer.Option(help=f"Role when not --admin: {', '.join(ROLES)}.")
    ] = "viewer",
    camera: Annotated[
        list[str] | None,
        typer.Option(
            "--camera",
            help="Grant this camera ('*' for all) with every permission the role allows; "
            "repeat for several.",
        ),
    ] = None,
) -> None:
    """Create a user; the password is prompted for (twice)."""
    cfg = load_or_exit(config)
    the_role = "admin" if admin else role
    if the_role not in ROLES:
        fail(f"role must be one of {', '.join(ROLES)}", 2)
    env = _Env(cfg)
    try:
        if env.accounts.get(name) is not None:
            fail(f"user {name.strip().lower()!r} already exists", 1)
        password = _prompt_password(name.strip().lower())
        try:
            user = env.accounts.create_user(name, password, the_role)
            grants = [Grant(c, ROLE_CAMERA_CEILING[the_role]) for c in camera or []]
            if grants and the_role != "admin":
                env.accounts.set_grants(user.username, grants)
        except (AccountError, WeakPasswordError) as exc:
            _error(exc)
            return
        env.log("user.create", user.username, role=user.role, cameras=list(camera or []))
        console.print(f"created {user.role} [bold]{user.username}[/]", highlight=False)
    finally:
        env.close()


@app.command("list")
def list_users(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """List users with their role and cameras."""
    env = _Env(load_or_exit(config))
    try:
        table = Table(title="Users")
        for col in ("user", "role", "state", "cameras", "password changed"):
            table.add_column(col, overflow="fold")
        for u in env.accounts.list_users():
            grants = env.accounts.grants(u.id)
            cams = (
                "all"
                if u.role == "admin"
                else ", ".join(
                    f"{c} ({'/'.join(a for a in CAMERA_ACTIONS if a in acts)})"
                    for c, acts in sorted(grants.items())
                )
                or "-"
            )
            table.add_row(
                u.username,
                u.role,
                "disabled" if u.disabled else "enabled",
                cams,
                format_time(u.password_changed_us),
            )
        console.print(table)
    finally:
        env.close()


@app.command("passwd")
def passwd(
    name: Annotated[str, typer.Argument(help="User name.")],
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Set a user's password (prompted twice); ends that user's sessions."""
    env = _Env(load_or_exit(config))
    try:
        if env.accounts.get(name) is None:
            fail(f"no user {name.strip().lower()!r}", 1)
        password = _prompt_password(name.strip().lower())
        try:
            user = env.accounts.set_password(name, password)
        except (AccountError, WeakPasswordError) as exc:
            _error(exc)
            return
        env.log("user.password", user.username)
        console.print(f"password changed for [bold]{user.username}[/]", highlight=False)
    finally:
        env.close()


@token_app.command("create")
def create_token(
    user: Annotated[str, typer.Option("--user", help="Owner of the token.")],
    name: Annotated[str, typer.Option("--name", help="What the token is for.")],
    config: ConfigOption = DEFAULT_CONFIG,
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", help=f"Scope: {', '.join(SCOPES)} (repeat for several)."),
    ] = None,
    days: Annotated[
        float | None, typer.Option(help="Lifetime in days (default: api.token_default_expiry).")
    ] = None,
) -> None:
    """Create an API token and print it (once: only its hash is stored)."""
    cfg = load_or_exit(config)
    from vigil.config.api_model import ApiConfig

    api_cfg = getattr(cfg, "api", None)
    limits = api_cfg if isinstance(api_cfg, ApiConfig) else ApiConfig()
    lifetime = days * 86400 if days is not None else limits.token_default_expiry
    if lifetime <= 0 or lifetime > limits.token_max_expiry:
        fail(f"the lifetime must be 0-{limits.token_max_expiry / 86400:.0f} days", 2)
    env = _Env(cfg)
    try:
        try:
            secret, info = env.accounts.create_token(
                user, name, scope or ["read"], now_us() + int(lifetime * 1e6)
            )
        except AccountError as exc:
            _error(exc)
            return
        env.log(
            "token.create",
            f"{info.username}/{info.id}",
            scopes=list(info.scopes),
            expires_us=info.expires_us,
            name=info.name,
        )
        console.print(
            f"token {info.id} for {info.username} (scopes {', '.join(info.scopes)}, expires "
            f"{format_time(info.expires_us)}); it is shown only now:",
            highlight=False,
        )
        typer.echo(secret)
    finally:
        env.close()


@token_app.command("list")
def list_tokens(
    config: ConfigOption = DEFAULT_CONFIG,
    user: Annotated[str | None, typer.Option("--user", help="Only this user's.")] = None,
) -> None:
    """List API tokens (never their secrets)."""
    env = _Env(load_or_exit(config))
    try:
        table = Table(title="API tokens")
        for col in ("id", "user", "name", "scopes", "expires", "last used", "state"):
            table.add_column(col, overflow="fold")
        now = now_us()
        for t in env.accounts.list_tokens(user):
            state = (
                "revoked"
                if t.revoked_us is not None
                else ("expired" if t.expires_us <= now else "active")
            )
            table.add_row(
                t.id,
                t.username,
                t.name,
                ", ".join(t.scopes),
                format_time(t.expires_us),
                format_time(t.last_used_us),
                state,
            )
        console.print(table)
    finally:
        env.close()


@token_app.command("revoke")
def revoke_token(
    token_id: Annotated[str, typer.Argument(help="Token id (from `vigil token list`).")],
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Revoke an API token at once."""
    env = _Env(load_or_exit(config))
    try:
        try:
            info = env.accounts.revoke_token(token_id)
        except AccountError as exc:
            _error(exc)
            return
        env.log("token.revoke", f"{info.username}/{info.id}")
        console.print(f"token {info.id} of {info.username} revoked", highlight=False)
    finally:
        env.close()
