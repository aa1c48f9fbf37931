"""Configuration of events and notifications: event retention and pre/post roll, MQTT
(with Home Assistant discovery) and signed webhooks.

Kept apart from ``vigil.config.model`` so that the event subsystem can evolve without
touching the root schema; the root config embeds :class:`EventsConfig`. The models follow
the same rules as the rest of the configuration: unknown keys are errors (a misspelt
``post_roll`` silently ignored is footage silently lost) and every field is documented.

Nothing in here opens a connection: MQTT is off unless an ``mqtt`` block is given, and no
webhook is called unless listed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vigil.config.units import parse_duration

_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# An MQTT topic level we generate from: no wildcards, no separators, no NUL.
_TOPIC_PREFIX_RE = re.compile(r"^[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
# RFC 3986 characters only: no spaces, quotes, control characters in a webhook URL.
_URL_CHARS_RE = re.compile(r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+$")

EventType = Literal["new", "update", "end"]


def _default_event_types() -> list[EventType]:
    return ["new", "end"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _duration(value: object) -> object:
    return parse_duration(value) if isinstance(value, str) else value


def _check_env_name(value: str | None) -> str | None:
    if value is not None and not _ENV_NAME_RE.match(value):
        raise ValueError("must be an environment variable name such as VIGIL_MQTT_PASSWORD")
    return value


def read_secret_env(name: str) -> str:
    """The value of a secret-holding environment variable, read at use time so it never
    sits in the config object (which is printed by ``vigil config show``)."""
    value = os.environ.get(name)
    if value is None or value == "":
        raise LookupError(f"environment variable {name} is not set")
    return value


class MqttTlsConfig(_Strict):
    """TLS towards the broker. The system trust store is used unless ``ca_file`` is given."""

    ca_file: Path | None = Field(
        default=None, description="PEM file of the CA(s) that signed the broker certificate."
    )
    cert_file: Path | None = Field(
        default=None, description="PEM client certificate, for brokers that require one."
    )
    key_file: Path | None = Field(
        default=None, description="PEM private key of the client certificate."
    )
    insecure: bool = Field(
        default=False,
        description="Skip certificate and host name verification. Only for testing: it makes "
        "the connection open to interception.",
    )

    @model_validator(mode="after")
    def _pair(self) -> MqttTlsConfig:
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("key_file needs cert_file")
        return self


class MqttConfig(_Strict):
    """Publishing events, counts and motion to an MQTT broker (e.g. for Home Assistant)."""

    host: str = Field(min_length=1, max_length=253, description="Broker host name or address.")
    port: int = Field(default=1883, ge=1, le=65535, description="Broker port (8883 for TLS).")
    client_id: str | None = Field(
        default=None,
        max_length=64,
        description="MQTT client identifier. Default: 'vigil-' followed by the host name.",
    )
    username: str | None = Field(
        default=None, min_length=1, max_length=128, description="Broker user name."
    )
    password_env: str | None = Field(
        default=None,
        description="Name of an environment variable holding the broker password (never "
        "written inline in the file, never logged).",
    )
    tls: MqttTlsConfig | None = Field(default=None, description="Enable TLS with these options.")
    topic_prefix: str = Field(
        default="vigil",
        description="First topic level(s): '<prefix>/events', '<prefix>/<camera>/<label>', "
        "'<prefix>/available'.",
    )
    qos: Literal[0, 1] = Field(
        default=1,
        description="QoS of published messages. 1 waits for the broker's acknowledgement, so "
        "a message is only dropped from the queue once the broker has it.",
    )
    keepalive: int = Field(
        default=30, ge=5, le=3600, description="Seconds between keep-alive pings."
    )
    queue_max: int = Field(
        default=1000,
        ge=1,
        le=1_000_000,
        description="Event messages kept while the broker is unreachable; beyond it the "
        "oldest are dropped (and counted). Retained state (counts, motion, availability) is "
        "not queued: its latest value is re-sent on reconnect.",
    )
    publish_timeout: float = Field(
        default=10.0, gt=0, description="Seconds to wait for the broker to acknowledge."
    )
    reconnect_initial: float = Field(
        default=1.0, gt=0, description="First reconnect delay, seconds (doubles per failure)."
    )
    reconnect_max: float = Field(
        default=60.0, gt=0, description="Longest reconnect delay, seconds."
    )
    discovery: bool = Field(
        default=True, description="Publish Home Assistant MQTT discovery configs (retained)."
    )
    discovery_prefix: str = Field(
        default="homeassistant", description="Home Assistant discovery topic prefix."
    )
    discovery_labels: list[str] = Field(
        default_factory=lambda: ["person", "car"],
        description="Object labels announced as count sensors for every camera at start-up; "
        "other labels are announced when first seen.",
    )
    motion_off_delay: float = Field(
        default=30.0,
        gt=0,
        description="Seconds without motion before '<prefix>/<camera>/motion' turns OFF.",
    )

    _parse_durations = field_validator(
        "publish_timeout", "reconnect_initial", "reconnect_max", "motion_off_delay", mode="before"
    )(classmethod(lambda c, v: _duration(v)))

    @field_validator("password_env")
    @classmethod
    def _env(cls, v: str | None) -> str | None:
        return _check_env_name(v)

    @field_validator("topic_prefix", "discovery_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not _TOPIC_PREFIX_RE.match(v):
            raise ValueError(
                "must be topic levels of letters, digits, '_' and '-' separated by '/' "
                "(no wildcards, no leading or trailing '/')"
            )
        return v

    @model_validator(mode="after")
    def _creds(self) -> MqttConfig:
        if self.password_env is not None and self.username is None:
            raise ValueError("password_env needs username")
        return self

    def resolve_password(self) -> str | None:
        """The broker password from the environment, or None when no login is configured."""
        return read_secret_env(self.password_env) if self.password_env else None


class WebhookConfig(_Strict):
    """One HTTP endpoint that receives event changes as signed JSON POSTs."""

    name: str = Field(
        description="Identifier of the webhook (in logs and the dead-letter table); 1-63 "
        "letters, digits, '_', '-', '.'."
    )
    url: str = Field(
        description="http:// or https:// URL to POST to. No credentials inside the URL: the "
        "receiver authenticates requests by their HMAC signature."
    )
    secret_env: str | None = Field(
        default=None,
        description="Environment variable holding the HMAC-SHA256 secret. Without it requests "
        "are not signed (not recommended).",
    )
    cameras: list[str] | None = Field(
        default=None, description="Only events of these cameras (default: all)."
    )
    labels: list[str] | None = Field(
        default=None, description="Only events of these object labels (default: all)."
    )
    zones: list[str] | None = Field(
        default=None,
        description="Only events that entered at least one of these zones (default: any).",
    )
    event_types: list[EventType] = Field(
        default_factory=_default_event_types,
        min_length=1,
        description="Which changes are sent: 'new', 'update', 'end'. Updates can be frequent, "
        "so they are off by default.",
    )
    connect_timeout: float = Field(
        default=5.0, gt=0, description="Seconds to establish the connection."
    )
    timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds for the whole request (connect, send, response) before it "
        "counts as a failed attempt.",
    )
    max_attempts: int = Field(
        default=5, ge=1, le=100, description="Attempts (first try included) before dead-letter."
    )
    backoff_initial: float = Field(
        default=1.0, gt=0, description="Delay before the first retry, seconds (doubles)."
    )
    backoff_max: float = Field(default=60.0, gt=0, description="Longest retry delay, seconds.")

    _parse_durations = field_validator(
        "connect_timeout", "timeout", "backoff_initial", "backoff_max", mode="before"
    )(classmethod(lambda c, v: _duration(v)))

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise ValueError("must be 1-63 characters of letters, digits, '_', '-', '.'")
        return v

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return validate_webhook_url(v)

    @field_validator("secret_env")
    @classmethod
    def _env(cls, v: str | None) -> str | None:
        return _check_env_name(v)

    def resolve_secret(self) -> bytes | None:
        """The HMAC key from the environment, or None when signing is not configured."""
        return read_secret_env(self.secret_env).encode() if self.secret_env else None


def validate_webhook_url(url: str) -> str:
    """Accept only absolute http(s) URLs with a host and no user info.

    Other schemes (file:, gopher:, ...) have no business in a webhook and are a classic
    request-forgery vector; credentials in the URL would end up in logs and the dead-letter
    table.
    """
    if not _URL_CHARS_RE.fullmatch(url):
        raise ValueError("contains characters not allowed in a URL")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(f"scheme {parts.scheme or '(none)'!r} is not allowed; use http or https")
    if not parts.hostname:
        raise ValueError("has no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not contain credentials; requests are signed instead")
    try:
        _ = parts.port
    except ValueError as exc:
        raise ValueError("has an invalid port") from exc
    return url


class WebhooksConfig(_Strict):
    """Delivery settings shared by all webhooks."""

    endpoints: list[WebhookConfig] = Field(
        default_factory=list, description="The webhooks. None: nothing is sent."
    )
    concurrency: int = Field(
        default=4, ge=1, le=64, description="Deliveries in progress at once (all endpoints)."
    )
    queue_max: int = Field(
        default=1000,
        ge=1,
        le=1_000_000,
        description="Deliveries waiting to be sent; beyond it the oldest are dead-lettered.",
    )

    @model_validator(mode="after")
    def _unique(self) -> WebhooksConfig:
        names = [e.name for e in self.endpoints]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"duplicate webhook name(s): {', '.join(sorted(dup))}")
        return self


class EventsConfig(_Strict):
    """Object events: how much footage around them is protected, for how long, and where
    they are announced."""

    pre_roll: float = Field(
        default=5.0,
        ge=0,
        le=3600,
        description="Seconds of footage before an event that are kept with it (seconds or '10s').",
    )
    post_roll: float = Field(
        default=5.0, ge=0, le=3600, description="Seconds of footage kept after an event ends."
    )
    retention: float = Field(
        default=30 * 86400.0,
        gt=0,
        description="How long events, their snapshots and the footage they hold are kept "
        "after the event ends ('30d'). Footage outside events follows the normal retention.",
    )
    open_hold: float = Field(
        default=3600.0,
        gt=0,
        description="While an event is ongoing its footage is held this far past its start; "
        "the hold is trimmed to the real end (plus post_roll) when the event ends.",
    )
    snapshots: bool = Field(
        default=True, description="Store each event's best snapshot as a JPEG file."
    )
    queue_max: int = Field(
        default=10_000,
        ge=10,
        le=1_000_000,
        description="Analytics results waiting to be stored. When full, pending updates and "
        "motion samples are dropped first (each event change carries the full state).",
    )
    mqtt: MqttConfig | None = Field(default=None, description="MQTT publishing (off if absent).")
    webhooks: WebhooksConfig = Field(
        default_factory=WebhooksConfig, description="Signed HTTP notifications."
    )

    _parse_durations = field_validator(
        "pre_roll", "post_roll", "retention", "open_hold", mode="before"
    )(classmethod(lambda c, v: _duration(v)))
