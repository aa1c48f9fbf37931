"""The configuration schema: one YAML file, validated strictly.

Every model forbids unknown keys, because a misspelt option that is silently ignored is how
retention limits end up not applying. Field descriptions double as the documentation that
``docs/configuration.md`` and the generated JSON schema carry.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from vigil.config.analytics_model import CameraAnalytics, EvidenceConfig
from vigil.config.api_model import ApiConfig
from vigil.config.events_model import EventsConfig
from vigil.config.units import parse_bytes, parse_duration

CAMERA_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ALLOWED_URL_SCHEMES = ("rtsp", "rtsps", "http", "https")
# RFC 3986 unreserved + reserved + '%'. Anything else (spaces, quotes, backticks, '|', '<',
# '>', '\\', '{', '}', '^', control characters) has no business in a camera URL.
_URL_CHARS_RE = re.compile(r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+$")


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


ByteSize = Annotated[int, Field(ge=0)]
Seconds = Annotated[float, Field(gt=0)]


def _bytes(value: object) -> object:
    return parse_bytes(value) if isinstance(value, str) else value


def _duration(value: object) -> object:
    return parse_duration(value) if isinstance(value, str) else value


class Credentials(StrictModel):
    """Camera login. The password may be inline or, better, read from an environment
    variable so the YAML file can be shared without the secret."""

    username: str = Field(min_length=1, max_length=128, description="Camera user name.")
    password: SecretStr | None = Field(default=None, description="Inline password.")
    password_env: str | None = Field(
        default=None, description="Name of an environment variable holding the password."
    )

    @field_validator("password_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and not ENV_NAME_RE.match(v):
            raise ValueError("must be an environment variable name such as CAM1_PASSWORD")
        return v

    @model_validator(mode="after")
    def _one_password(self) -> Credentials:
        if self.password is not None and self.password_env is not None:
            raise ValueError("give either password or password_env, not both")
        if self.password is None and self.password_env is None:
            raise ValueError("a password or password_env is required")
        return self

    def resolve_password(self) -> str:
        """The password, read from the environment at use time (never cached in logs)."""
        if self.password is not None:
            return self.password.get_secret_value()
        assert self.password_env is not None
        value = os.environ.get(self.password_env)
        if value is None:
            raise LookupError(f"environment variable {self.password_env} is not set")
        return value


class StreamSource(StrictModel):
    """One stream of a camera: a network URL or, for tests and imports, a local file."""

    url: str | None = Field(
        default=None,
        description="rtsp://, rtsps://, http(s):// (MJPEG or other). No credentials inline "
        "is preferred; use the camera's credentials block.",
    )
    file: Path | None = Field(
        default=None, description="Absolute path of a local video file (looped is not implied)."
    )
    transport: Literal["tcp", "udp"] = Field(
        default="tcp", description="RTSP lower transport. Some cameras refuse TCP."
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not _URL_CHARS_RE.fullmatch(v):
            raise ValueError(
                "contains characters not allowed in a URL (spaces, quotes, backticks, "
                "pipes, angle brackets or control characters)"
            )
        parts = urlsplit(v)
        if parts.scheme.lower() not in ALLOWED_URL_SCHEMES:
            raise ValueError(
                f"scheme {parts.scheme or '(none)'!r} is not allowed; use one of "
                f"{', '.join(ALLOWED_URL_SCHEMES)} (local files go in 'file:')"
            )
        if not parts.hostname:
            raise ValueError("has no host")
        try:
            _ = parts.port
        except ValueError as exc:
            raise ValueError("has an invalid port") from exc
        return v

    @field_validator("file")
    @classmethod
    def _check_file(cls, v: Path | None) -> Path | None:
        if v is not None and not v.is_absolute():
            raise ValueError("must be an absolute path")
        return v

    @model_validator(mode="after")
    def _one_source(self) -> StreamSource:
        if (self.url is None) == (self.file is None):
            raise ValueError("give exactly one of url or file")
        return self


class RetentionPolicy(StrictModel):
    """Limits on how much footage is kept. Whichever limit is hit first applies; held
    segments (events, evidence) are never deleted by retention."""

    max_age: float | None = Field(
        default=None,
        gt=0,
        description="Delete footage older than this (seconds, or '72h', '7d').",
    )
    max_bytes: ByteSize | None = Field(
        default=None, description="Delete the oldest footage beyond this size ('50GB')."
    )

    _parse_age = field_validator("max_age", mode="before")(classmethod(lambda c, v: _duration(v)))
    _parse_bytes = field_validator("max_bytes", mode="before")(classmethod(lambda c, v: _bytes(v)))


class CameraRecording(StrictModel):
    """Continuous recording of the camera's main stream."""

    enabled: bool = Field(default=True, description="Record the main stream continuously.")
    audio: bool = Field(default=True, description="Keep the audio track when there is one.")


class CameraConfig(StrictModel):
    """One camera: a main stream that is recorded and an optional substream."""

    name: str = Field(
        description="Identifier used in paths, topics and URLs: lower-case letters, digits, "
        "'-' and '_', at most 63 characters."
    )
    title: str | None = Field(default=None, max_length=200, description="Display name.")
    enabled: bool = Field(default=True, description="A disabled camera is not connected.")
    main: StreamSource = Field(description="The full-resolution stream that is recorded.")
    sub: StreamSource | None = Field(
        default=None, description="Low-resolution stream for analytics and grid view."
    )
    credentials: Credentials | None = Field(
        default=None, description="Login for both streams (kept out of logs)."
    )
    recording: CameraRecording = Field(default=CameraRecording(), description="Recording.")
    retention: RetentionPolicy | None = Field(
        default=None, description="Overrides the global retention policy for this camera."
    )
    analytics: CameraAnalytics = Field(
        default=CameraAnalytics(), description="Motion and object detection (off by default)."
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        if not CAMERA_NAME_RE.match(v):
            raise ValueError(
                "must be 1-63 characters of a-z, 0-9, '-' and '_', starting with a letter "
                "or digit (it becomes part of file paths)"
            )
        return v


class StorageConfig(StrictModel):
    """Local storage for segment files."""

    path: Path = Field(description="Directory for segment files. Created if missing.")
    min_free_bytes: ByteSize = Field(
        default=1024**3,
        description="Global free-space watermark: below it, the oldest unheld footage of any "
        "camera is deleted; if nothing can be deleted, recording pauses.",
    )
    min_free_percent: float = Field(
        default=5.0, ge=0, le=90, description="Watermark as a percentage of the filesystem."
    )
    retention_interval: float = Field(
        default=30.0, gt=0, description="Seconds between retention passes."
    )

    _parse_bytes = field_validator("min_free_bytes", mode="before")(
        classmethod(lambda c, v: _bytes(v))
    )


class DatabaseConfig(StrictModel):
    """The index database (segments, gaps, holds, health)."""

    url: str | None = Field(
        default=None,
        description="SQLAlchemy URL. Default: SQLite file 'vigil.db' in the storage "
        "directory. PostgreSQL: postgresql+psycopg://user@host/db",
    )


class RecordingConfig(StrictModel):
    """How footage is cut into files."""

    segment_seconds: float = Field(
        default=60.0, ge=2, le=3600, description="Target segment length; cut at a keyframe."
    )
    fragment_seconds: float = Field(
        default=1.0,
        ge=0.1,
        le=10,
        description="fMP4 fragment length: at most this much is lost on a crash.",
    )


class IngestConfig(StrictModel):
    """Connection behaviour for every camera."""

    stall_timeout: float = Field(
        default=10.0, gt=0, description="Seconds without a packet before a stream is stalled."
    )
    open_timeout: float = Field(default=10.0, gt=0, description="Connect/handshake timeout.")
    backoff_initial: float = Field(default=1.0, gt=0, description="First retry delay, seconds.")
    backoff_max: float = Field(default=60.0, gt=0, description="Longest retry delay, seconds.")
    rtsp_client: Literal["native", "ffmpeg"] = Field(
        default="native",
        description="Who reads rtsp:// streams over TCP: 'native' (Vigil's own RTSP client: "
        "H.264/H.265 video, AAC/G.711 audio, at about half FFmpeg's CPU) or 'ffmpeg'. "
        "Cameras the native client cannot read (UDP only, other codecs) fall back to "
        "FFmpeg by themselves; rtsps://, UDP and HTTP sources always use FFmpeg.",
    )
    shared_read_thread: bool = Field(
        default=True,
        description="Read every camera that the native RTSP client reads from one shared "
        "thread (epoll) instead of a thread per camera: less CPU per camera. Packet sinks "
        "(recorder, live view) then run on that thread for all those cameras.",
    )
    read_batch_ms: int = Field(
        default=40,
        ge=0,
        le=200,
        description="With shared_read_thread: after each wake-up the shared thread lets "
        "packets gather this long before it waits again, so that one wake-up serves many "
        "cameras. Larger saves CPU, adds at most this much latency to live view; 0 reads "
        "each packet as soon as it arrives.",
    )


class LoggingConfig(StrictModel):
    """Logs go to standard error; credentials are redacted from every record."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Least severe level written."
    )
    format: Literal["json", "console"] = Field(
        default="console", description="'json' for one JSON object per line."
    )


class VigilConfig(StrictModel):
    """Root of the configuration file."""

    storage: StorageConfig = Field(description="Where footage and the embedded index live.")
    database: DatabaseConfig = Field(default=DatabaseConfig(), description="The index.")
    recording: RecordingConfig = Field(
        default=RecordingConfig(), description="Segment and fragment lengths."
    )
    retention: RetentionPolicy = Field(
        default=RetentionPolicy(max_age=7 * 86400),
        description="Default retention for every camera (7 days unless set).",
    )
    ingest: IngestConfig = Field(default=IngestConfig(), description="Camera connections.")
    logging: LoggingConfig = Field(default=LoggingConfig(), description="Log output.")
    evidence: EvidenceConfig = Field(
        default=EvidenceConfig(), description="Signing key and export limits."
    )
    events: EventsConfig = Field(
        default=EventsConfig(), description="Event retention, MQTT and webhooks."
    )
    api: ApiConfig = Field(
        default=ApiConfig(), description="The HTTP API and web UI served by `vigil run`."
    )
    cameras: list[CameraConfig] = Field(default_factory=list, description="The cameras.")

    @model_validator(mode="after")
    def _unique_names(self) -> VigilConfig:
        seen: set[str] = set()
        for cam in self.cameras:
            if cam.name in seen:
                raise ValueError(f"duplicate camera name {cam.name!r}")
            seen.add(cam.name)
        return self

    def camera(self, name: str) -> CameraConfig:
        for cam in self.cameras:
            if cam.name == name:
                return cam
        raise KeyError(name)

    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite:///{self.storage.path / 'vigil.db'}"

    def key_dir(self) -> Path:
        return self.evidence.key_dir or self.storage.path / ".keys"

    def retention_for(self, camera: str) -> RetentionPolicy:
        cam = self.camera(camera)
        return cam.retention if cam.retention is not None else self.retention
