"""How the native RTSP client reports failures: as :class:`IngestError` kinds, like the
FFmpeg path (so health pages and back-off behave the same), plus
:class:`NativeUnsupported` for what this client deliberately does not do.

``NativeUnsupported`` is a signal to the caller, not a camera fault: the camera may be fine,
only this client cannot read it (it refuses RTP over TCP, or sends a codec other than
H.264/H.265). The caller is expected to read that camera through FFmpeg instead.
"""

from __future__ import annotations

import errno
import socket

from vigil.ingest.errors import MESSAGES, ErrorKind, IngestError


class NativeUnsupported(IngestError):
    """The native client cannot read this camera; fall back to FFmpeg. Kind ``protocol``."""

    def __init__(self, message: str, *, source: str = "") -> None:
        super().__init__("protocol", message, source=source)


_UNREACHABLE_ERRNOS = frozenset(
    {
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.EADDRNOTAVAIL,
        errno.ENETDOWN,
        errno.EHOSTDOWN,
    }
)


def connect_error(exc: OSError, *, source: str, timeout: float) -> IngestError:
    """Classify a failed TCP connect (no exception text: it may name the address)."""
    if isinstance(exc, ConnectionRefusedError):
        return IngestError("refused", MESSAGES["refused"], source=source)
    if isinstance(exc, TimeoutError):
        return IngestError("timeout", MESSAGES["timeout"].format(timeout=timeout), source=source)
    if isinstance(exc, socket.gaierror) or exc.errno in _UNREACHABLE_ERRNOS:
        return IngestError("unreachable", MESSAGES["unreachable"], source=source)
    name = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
    return IngestError("error", f"cannot connect: {name}", source=source)


def status_error(status: int, reason: str, method: str, *, source: str) -> IngestError:
    """The error for a non-2xx RTSP answer to ``method``."""
    kind: ErrorKind
    if status == 401:
        kind = "unauthorized"
    elif status == 403:
        kind = "forbidden"
    elif status == 404:
        kind = "not_found"
    else:
        return IngestError("protocol", f"{method} failed: RTSP {status} {reason}", source=source)
    return IngestError(kind, MESSAGES[kind], source=source)


def sanitize_reason(reason: str) -> str:
    """A server's reason phrase, safe to show: printable ASCII, at most 80 characters."""
    text = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in reason.strip())
    return text[:80]
