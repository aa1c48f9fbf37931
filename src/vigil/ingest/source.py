"""Opening a camera stream with PyAV: URL with credentials, FFmpeg options, classification.

Security notes, because the URL and FFmpeg options are where NVRs get this wrong:

* Credentials live in the configuration's ``credentials`` block and are inserted into the URL
  only here, at open time, percent-encoded (FFmpeg decodes them for Basic and Digest auth),
  and the password is registered with :func:`register_secret` so it is scrubbed from any
  log line or message, even bare. The URL with credentials is never stored in an object's
  ``repr``, a health snapshot or an exception.
* ``protocol_whitelist`` limits FFmpeg to the protocols the scheme needs, so a URL (or a
  playlist or redirect it fetches) cannot reach ``file:``, ``concat:``, ``subfile:``,
  ``pipe:`` and the like. Local files get ``file`` only, network sources never get it.
* ``format_whitelist`` limits HTTP sources to streaming container formats, so a server
  cannot make FFmpeg run a concat script or an image-sequence pattern.
* Timeouts are set twice: FFmpeg's socket timeouts (``timeout`` for RTSP/HTTP/TCP,
  ``rw_timeout`` for HTTP, microseconds; the old ``stimeout`` is gone in FFmpeg 8) and
  PyAV's ``timeout=(open, read)``, which installs an interrupt callback that also covers
  the parts of the handshake that have no socket timeout (a server that accepts the TCP
  connection and then says nothing).
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from vigil.config.model import Credentials, StreamSource
from vigil.ingest.errors import MESSAGES, IngestError, classify
from vigil.util.redact import redact_url, register_secret

Scheme = Literal["rtsp", "rtsps", "http", "https", "file"]

PROTOCOL_WHITELIST: dict[str, str] = {
    "rtsp": "rtsp,rtp,udp,tcp",
    "rtsps": "rtsp,rtsps,rtp,srtp,udp,tcp,tls",
    "http": "http,tcp",
    "https": "https,http,tls,tcp,crypto",
    "file": "file",
}

# Streaming formats a camera may serve over HTTP. Matched by FFmpeg against each demuxer's
# name list, so "mov" admits the mov,mp4,m4a,3gp,3g2,mj2 demuxer.
HTTP_FORMAT_WHITELIST = "mpjpeg,mjpeg,jpeg_pipe,mpegts,flv,matroska,mov,h264,hevc,rtsp"
FILE_FORMAT_WHITELIST = "mov,matroska,mpegts,flv,avi,h264,hevc,mjpeg,mpjpeg,jpeg_pipe"


@dataclass(frozen=True, slots=True)
class OpenTarget:
    """Everything needed to open one source. ``url`` may contain the password: it is
    excluded from ``repr`` and must never be logged; use ``display``."""

    scheme: Scheme
    url: str = field(repr=False)
    display: str
    options: dict[str, str] = field(repr=False)
    format: str | None = None
    host: str = ""
    port: int | None = None

    @property
    def is_file(self) -> bool:
        return self.scheme == "file"


def _us(seconds: float) -> str:
    return str(max(1, int(seconds * 1_000_000)))


def display_url(url: str) -> str:
    """The URL as shown to people: no userinfo at all, secret-looking query values masked."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        hostport = f"[{host}]" if ":" in host else host
        if parts.port is not None:
            hostport += f":{parts.port}"
    except ValueError:
        return redact_url(url)
    return redact_url(urlunsplit((parts.scheme.lower(), hostport, parts.path, parts.query, "")))


def build_target(
    source: StreamSource,
    credentials: Credentials | None = None,
    *,
    open_timeout: float = 10.0,
    read_timeout: float = 10.0,
) -> OpenTarget:
    """Resolve a configured source into a URL (with percent-encoded credentials) and the
    FFmpeg options for its scheme. Raises :class:`IngestError` (kind ``config``) when the
    password cannot be resolved."""
    if source.file is not None:
        path = Path(source.file)
        return OpenTarget(
            scheme="file",
            url=str(path),
            display=path.name,
            options={
                "protocol_whitelist": PROTOCOL_WHITELIST["file"],
                "format_whitelist": FILE_FORMAT_WHITELIST,
            },
        )
    assert source.url is not None
    return build_url_target(
        source.url,
        credentials,
        transport=source.transport,
        open_timeout=open_timeout,
        read_timeout=read_timeout,
    )


def build_url_target(
    url: str,
    credentials: Credentials | None = None,
    *,
    transport: Literal["tcp", "udp"] = "tcp",
    open_timeout: float = 10.0,
    read_timeout: float = 10.0,
) -> OpenTarget:
    """Like :func:`build_target` for a bare URL (``vigil cameras test URL``)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("rtsp", "rtsps", "http", "https"):
        raise IngestError("config", f"unsupported URL scheme {scheme!r}", source=redact_url(url))
    host = parts.hostname or ""
    if not host:
        raise IngestError("config", "URL has no host", source=redact_url(url))
    # inline userinfo (discouraged) is respected unless a credentials block overrides it
    user: str | None = unquote(parts.username) if parts.username else None
    password: str | None = unquote(parts.password) if parts.password else None
    if credentials is not None:
        user = credentials.username
        try:
            password = credentials.resolve_password()
        except LookupError as exc:
            raise IngestError("config", str(exc), source=redact_url(url)) from None
    if password:
        register_secret(password)
        register_secret(quote(password, safe=""))
    hostport = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        hostport += f":{parts.port}"
    netloc = hostport
    if user:
        auth = quote(user, safe="")
        if password:
            auth += ":" + quote(password, safe="")
        netloc = f"{auth}@{hostport}"
    full = urlunsplit((scheme, netloc, parts.path, parts.query, parts.fragment))
    display = display_url(url)

    options: dict[str, str] = {
        "protocol_whitelist": PROTOCOL_WHITELIST[scheme],
        # Probe for at most a second: everything read while probing is handed over in one
        # burst afterwards (see reader._Settle), and we parse sizes from the SPS ourselves.
        "analyzeduration": "1000000",
    }
    fmt: str | None = None
    sock_timeout = _us(max(open_timeout, read_timeout))
    if scheme in ("rtsp", "rtsps"):
        fmt = "rtsp"
        options.update(
            {
                "rtsp_transport": transport,
                "timeout": sock_timeout,  # socket I/O timeout, µs (FFmpeg >= 5)
                "allowed_media_types": "video+audio",  # skip ONVIF metadata tracks
                "user_agent": "vigil",
            }
        )
        if transport == "udp":
            options["buffer_size"] = str(1 << 20)
    else:
        options.update(
            {
                "timeout": sock_timeout,
                "rw_timeout": sock_timeout,
                "reconnect": "0",  # ingest reconnects itself, with back-off
                "format_whitelist": HTTP_FORMAT_WHITELIST,
                "user_agent": "vigil",
            }
        )
    return OpenTarget(
        scheme=scheme,  # type: ignore[arg-type]
        url=full,
        display=display,
        options=options,
        format=fmt,
        host=host,
        port=parts.port,
    )


def reads_natively(target: OpenTarget, rtsp_client: str = "native") -> bool:
    """Whether Vigil's own RTSP client (``vigil.ingest.rtsp``) reads ``target``: plain
    ``rtsp://`` over TCP, unless configured otherwise. Everything else is FFmpeg's."""
    return (
        rtsp_client == "native"
        and target.scheme == "rtsp"
        and target.options.get("rtsp_transport") == "tcp"
    )


def open_input(
    target: OpenTarget,
    *,
    open_timeout: float,
    read_timeout: float,
    stopping: Any = None,
) -> Any:
    """Open ``target`` and return the PyAV input container, or raise :class:`IngestError`.

    ``stopping`` is an optional zero-argument callable telling whether the caller is being
    stopped, so an interrupted open is reported as "stopped" rather than as a timeout.

    For plain RTSP a slice of ``open_timeout`` is kept back for :func:`diagnose_rtsp`, so a
    silent or garbage-talking server is reported within ``open_timeout`` (plus the TCP
    connect of the diagnosis). PyAV applies the open timeout to the handshake and to the
    stream probing separately, so a server that completes the handshake and then sends
    nothing takes up to twice that.
    """
    import av  # FFmpeg's reader only: natively read cameras never load PyAV

    from vigil.ingest import interrupt

    interrupt.install()  # patches PyAV's clock now that it is loaded (see interrupt.py)
    start = time.monotonic()
    diag_budget = min(_DIAGNOSE_BUDGET, open_timeout * 0.25) if target.scheme == "rtsp" else 0.0
    ff_timeout = open_timeout - diag_budget
    try:
        container = av.open(
            target.url,
            mode="r",
            format=target.format,
            options=dict(target.options),
            timeout=(ff_timeout, read_timeout),
        )
    except Exception as exc:
        err = classify(
            exc,
            source=target.display,
            timeout=ff_timeout,
            elapsed=time.monotonic() - start,
            stopping=bool(stopping and stopping()),
        )
        if err.kind == "timeout":  # report the configured figure, not our internal split
            err = IngestError(
                "timeout", MESSAGES["timeout"].format(timeout=open_timeout), source=target.display
            )
        if diag_budget and err.kind in _VAGUE and not (stopping and stopping()):
            better = diagnose_rtsp(target, budget=diag_budget)
            if better is not None:
                err = better
        raise err from None
    # NB: PyAV keeps the full URL as the (read-only) container name and appends it to every
    # exception it raises: callers classify exceptions, they never show them.
    return container


# FFmpeg's RTSP client reports garbage, silence and some network errors alike ("invalid
# data", EIO, or our timeout): when that happens a plain socket tells them apart.
_VAGUE = {"invalid_data", "timeout", "error", "unreachable"}
_DIAGNOSE_BUDGET = 0.5


def diagnose_rtsp(target: OpenTarget, *, budget: float = _DIAGNOSE_BUDGET) -> IngestError | None:
    """Look at an RTSP server that FFmpeg failed to open with an unspecific error: can we
    connect, and does it answer an OPTIONS request (sent without credentials or path) with
    something that looks like RTSP? Returns a precise error, or None if the server looks
    like a working RTSP server (then FFmpeg's classification stands)."""
    port = target.port or 554
    src = target.display
    try:
        sock = socket.create_connection((target.host, port), timeout=budget)
    except ConnectionRefusedError:
        return IngestError("refused", MESSAGES["refused"], source=src)
    except TimeoutError:
        return IngestError(
            "timeout",
            f"no answer to a TCP connection within {budget:g} s (host down or firewalled)",
            source=src,
        )
    except socket.gaierror:
        return IngestError("unreachable", "host name does not resolve (check DNS)", source=src)
    except OSError:
        return IngestError("unreachable", MESSAGES["unreachable"], source=src)
    with sock:
        hostport = f"[{target.host}]" if ":" in target.host else target.host
        request = (
            f"OPTIONS rtsp://{hostport}:{port}/ RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: vigil\r\n\r\n"
        )
        try:
            sock.sendall(request.encode("ascii", "replace"))
            data = sock.recv(64)
        except TimeoutError:
            return IngestError(
                "timeout",
                "the server accepted the connection but never answered the RTSP handshake "
                "(not an RTSP server, or overloaded)",
                source=src,
            )
        except OSError:
            return None
    if not data:
        return IngestError(
            "protocol", "the server closed the connection without answering", source=src
        )
    if not data.startswith(b"RTSP/"):
        return IngestError(
            "invalid_data",
            "the server's answer is not RTSP (garbage, or another protocol on that port)",
            source=src,
        )
    return None
