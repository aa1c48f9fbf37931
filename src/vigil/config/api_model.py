"""Configuration of the HTTP API (``api:`` in the root configuration).

Defaults are the safe choice, not the convenient one: the API listens on localhost only,
speaks HTTPS (with a self-signed certificate generated at first start unless you give
your own), trusts no reverse proxy, and keeps sessions short. Exposing it on the network
is a deliberate ``host: 0.0.0.0``; putting it behind a proxy is a deliberate
``trusted_proxies`` entry (see ``docs/api.md``).

Like every other model, unknown keys are errors and every field is documented.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from vigil.config.units import parse_bytes, parse_duration


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _duration(value: object) -> object:
    return parse_duration(value) if isinstance(value, str) else value


def _bytes(value: object) -> object:
    return parse_bytes(value) if isinstance(value, str) else value


class ApiTlsConfig(_Strict):
    """HTTPS for the API. Give ``cert_file`` and ``key_file`` (PEM) to use your own
    certificate; give neither and a self-signed one is generated at first start (browsers
    warn until you trust it). Turn TLS off only behind a TLS-terminating reverse proxy."""

    enabled: bool = Field(
        default=True,
        description="Serve HTTPS. Off only when a reverse proxy in front terminates TLS.",
    )
    cert_file: Path | None = Field(default=None, description="Certificate chain (PEM).")
    key_file: Path | None = Field(default=None, description="Private key (PEM), mode 0600.")
    self_signed_dir: Path | None = Field(
        default=None,
        description="Where the generated self-signed certificate and key are kept (0700, "
        "files 0600). Default: '.tls' in the storage directory.",
    )
    hostnames: list[str] = Field(
        default_factory=lambda: ["localhost"],
        description="Names (and IP addresses) the self-signed certificate is valid for.",
    )

    @model_validator(mode="after")
    def _pair(self) -> ApiTlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("give both cert_file and key_file, or neither (self-signed)")
        return self


class ApiIceServer(_Strict):
    """A STUN or TURN server for WebRTC live view, used by the NVR's side of the peer
    connection. None is used unless listed here."""

    urls: list[str] = Field(
        min_length=1,
        max_length=8,
        description="URIs of the server, e.g. 'stun:stun.example.org:3478' or "
        "'turn:turn.example.org:3478?transport=udp'.",
    )
    username: str | None = Field(
        default=None, max_length=255, description="TURN user name (TURN only)."
    )
    credential: SecretStr | None = Field(
        default=None,
        description="TURN password (TURN only). Never logged or shown; keep the "
        "configuration file private (mode 0600).",
    )

    @field_validator("urls")
    @classmethod
    def _uris(cls, v: list[str]) -> list[str]:
        for item in v:
            if not item.startswith(("stun:", "stuns:", "turn:", "turns:")):
                raise ValueError(f"{item!r} is not a stun:, stuns:, turn: or turns: URI")
        return v

    @model_validator(mode="after")
    def _turn_login(self) -> ApiIceServer:
        turn = any(u.startswith(("turn:", "turns:")) for u in self.urls)
        if turn and (self.username is None or self.credential is None):
            raise ValueError("a TURN server needs username and credential")
        return self


class ApiWebRtcConfig(_Strict):
    """WebRTC live view (the single-camera page; H.264 passed through, never transcoded).
    The NVR contacts no STUN or TURN server unless one is listed in ``ice_servers``; its
    peers use ephemeral UDP ports on every address of the machine (aiortc offers no port
    range or bind address), so a firewall that allows only the API port makes browsers
    fall back to the WebSocket live view."""

    enabled: bool = Field(
        default=True,
        description="Offer WebRTC live view. Off: browsers use the WebSocket (MSE) view.",
    )
    ice_servers: list[ApiIceServer] = Field(
        default_factory=list,
        max_length=8,
        description="STUN/TURN servers for the NVR's side of WebRTC connections. Empty "
        "(the default): host candidates only, no outbound connection to any server.",
    )
    max_peers: int = Field(
        default=16,
        ge=1,
        le=1000,
        description="WebRTC viewers at once, all users together; more are refused (429) "
        "and the browser uses the WebSocket view.",
    )
    max_peers_per_user: int = Field(
        default=4, ge=1, le=100, description="WebRTC viewers at once per account."
    )
    connect_timeout: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="A WebRTC peer not connected this long after its offer is closed "
        "(seconds, or e.g. '30s').",
    )

    _d = field_validator("connect_timeout", mode="before")(classmethod(lambda c, v: _duration(v)))

    @model_validator(mode="after")
    def _limits(self) -> ApiWebRtcConfig:
        if self.max_peers_per_user > self.max_peers:
            raise ValueError("max_peers_per_user cannot be more than max_peers")
        return self


class ApiConfig(_Strict):
    """The HTTP API and web interface served by the recorder process."""

    enabled: bool = Field(default=True, description="Serve the API from `vigil run`.")
    host: str = Field(
        default="127.0.0.1",
        min_length=1,
        max_length=255,
        description="Address to listen on. The default is this machine only; use 0.0.0.0 "
        "(or ::) to accept connections from the network.",
    )
    port: int = Field(default=8443, ge=1, le=65535, description="TCP port.")
    tls: ApiTlsConfig = Field(default=ApiTlsConfig(), description="HTTPS settings.")
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Reverse proxies (IP addresses or CIDR networks) whose X-Forwarded-For "
        "and X-Forwarded-Proto headers are believed. Empty: such headers are ignored, and "
        "first-run setup is refused for requests carrying them.",
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Extra origins (scheme://host[:port]) allowed to make state-changing "
        "requests, when the public address differs from the Host header the API sees.",
    )
    session_idle_timeout: float = Field(
        default=3600.0,
        gt=0,
        description="A session unused for this long expires (seconds, or '30m', '1h').",
    )
    session_max_age: float = Field(
        default=12 * 3600.0,
        gt=0,
        description="A session expires this long after login, however active (e.g. '12h').",
    )
    login_max_failures: int = Field(
        default=5,
        ge=1,
        le=100,
        description="Failed logins in a row that lock an account (and, times four, an "
        "address) temporarily.",
    )
    login_lockout: float = Field(
        default=900.0,
        gt=0,
        description="First lockout duration; each further lockout doubles it (e.g. '15m').",
    )
    login_lockout_max: float = Field(
        default=86400.0, gt=0, description="Longest lockout (e.g. '24h')."
    )
    token_default_expiry: float = Field(
        default=90 * 86400.0,
        gt=0,
        description="Lifetime of an API token when the request does not say (e.g. '90d').",
    )
    token_max_expiry: float = Field(
        default=366 * 86400.0,
        gt=0,
        description="Longest lifetime an API token may be given (e.g. '366d').",
    )
    max_body_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        le=16 * 1024 * 1024,
        description="Largest request body accepted; larger ones get 413 (e.g. '64KiB').",
    )
    max_playback_range: float = Field(
        default=4 * 3600.0,
        gt=0,
        description="Longest range one playback, HLS or clip request may cover (e.g. '4h').",
    )
    export_dir: Path | None = Field(
        default=None,
        description="Where evidence packages made through the API are written. Default: "
        "'vigil-exports' next to the storage directory (never inside it).",
    )
    cache_dir: Path | None = Field(
        default=None,
        description="Where progressive-MP4 renderings of recorded ranges are cached for "
        "HTTP range requests. Default: a private temporary directory.",
    )
    cache_max_bytes: int = Field(
        default=2 * 1000**3,
        ge=0,
        description="Size cap of the playback cache; oldest files are removed first.",
    )
    webrtc: ApiWebRtcConfig = Field(
        default=ApiWebRtcConfig(), description="WebRTC live view."
    )

    _d = field_validator(
        "session_idle_timeout",
        "session_max_age",
        "login_lockout",
        "login_lockout_max",
        "token_default_expiry",
        "token_max_expiry",
        "max_playback_range",
        mode="before",
    )(classmethod(lambda c, v: _duration(v)))
    _b = field_validator("max_body_bytes", "cache_max_bytes", mode="before")(
        classmethod(lambda c, v: _bytes(v))
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        for item in v:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"{item!r} is not an IP address or CIDR network") from exc
        return v

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, v: list[str]) -> list[str]:
        for item in v:
            scheme, sep, rest = item.partition("://")
            if scheme not in ("http", "https") or not sep or not rest or "/" in rest:
                raise ValueError(f"{item!r} is not an origin such as https://nvr.example.org")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ApiConfig:
        if self.session_idle_timeout > self.session_max_age:
            raise ValueError("session_idle_timeout cannot be longer than session_max_age")
        if self.token_default_expiry > self.token_max_expiry:
            raise ValueError("token_default_expiry cannot be longer than token_max_expiry")
        if self.login_lockout > self.login_lockout_max:
            raise ValueError("login_lockout cannot be longer than login_lockout_max")
        return self
