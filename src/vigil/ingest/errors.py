"""Turning FFmpeg's failures into messages an operator can act on, with no secret in them.

FFmpeg reports most camera problems as a handful of generic errors ("Invalid data found",
"Input/output error", "Immediate exit requested") and PyAV appends the URL, password
included, to every exception message. So ingest never shows an FFmpeg exception as is: it
classifies it into an :class:`IngestError` whose message is ours, names the source by its
redacted URL, and is passed through :func:`redact_text` once more for good measure.

PyAV is not imported here: a recorder whose cameras are all read by Vigil's own RTSP client
never loads it (~29 MB), and an exception can only be one of PyAV's if PyAV is loaded.
"""

from __future__ import annotations

import errno as _errno
import sys
from typing import Any, Literal

from vigil.util.redact import redact_text

ErrorKind = Literal[
    "refused",  # nothing listening on the port
    "unreachable",  # no route, DNS failure, network down
    "timeout",  # no answer within the open timeout
    "unauthorized",  # 401: wrong or missing credentials
    "forbidden",  # 403
    "not_found",  # 404 / no such file
    "not_video",  # a stream, but no video track in it
    "invalid_data",  # garbage: the answer is not a recognisable stream
    "protocol",  # other protocol-level failure (4xx/5xx, unsupported transport)
    "stalled",  # connection open but no packet for stall_timeout
    "eof",  # the server ended the stream
    "config",  # bad source definition, missing password variable, disallowed protocol
    "stopped",  # interrupted by stop()
    "error",  # anything else
]

MESSAGES: dict[str, str] = {
    "refused": "connection refused (nothing is listening on that host and port)",
    "unreachable": "host unreachable (check the address, DNS and network)",
    "timeout": "no answer within {timeout:g} s (host down, firewalled or not a stream server)",
    "unauthorized": "401 Unauthorized: the camera rejected the username or password",
    "forbidden": "403 Forbidden: the account is not allowed to view this stream",
    "not_found": "404 Not Found: no stream at that path (check the URL path)",
    "not_video": "the stream has no video track",
    "invalid_data": "the server's answer is not a recognisable video stream (garbage or an "
    "unsupported protocol)",
    "stalled": "no packet for {timeout:g} s",
    "eof": "the server ended the stream",
    "stopped": "stopped",
}


def ffmpeg_errors(*others: type[BaseException]) -> tuple[type[BaseException], ...]:
    """``others`` plus ``av.FFmpegError`` once PyAV is loaded (before, nothing can have
    raised it): for ``except ffmpeg_errors(ValueError)`` in code that must not import PyAV."""
    av = sys.modules.get("av")
    return (*others, av.FFmpegError) if av is not None else others


def _av_error(exc: BaseException, *names: str) -> bool:
    """Whether ``exc`` is one of PyAV's exception classes ``names`` (False without PyAV)."""
    av: Any = sys.modules.get("av")
    return av is not None and isinstance(exc, tuple(getattr(av, n) for n in names))


class IngestError(Exception):
    """A classified, redacted ingest failure. ``str()`` is safe to log and show."""

    def __init__(self, kind: ErrorKind, message: str, *, source: str = "") -> None:
        self.kind: ErrorKind = kind
        self.message = redact_text(message)
        self.source = redact_text(source)
        super().__init__(f"{self.source}: {self.message}" if self.source else self.message)


def classify(
    exc: BaseException,
    *,
    source: str,
    timeout: float,
    elapsed: float,
    stopping: bool = False,
    during_open: bool = True,
) -> IngestError:
    """Classify an exception raised by PyAV while opening or reading ``source`` (a redacted
    URL). ``elapsed`` is how long the failing call ran: FFmpeg reports an interrupted RTSP
    handshake as "invalid data", so a failure at the timeout is a timeout whatever its type.
    """
    if isinstance(exc, IngestError):
        return exc
    if stopping:
        return IngestError("stopped", MESSAGES["stopped"], source=source)
    detail = _detail(exc)
    kind: ErrorKind
    if _av_error(exc, "HTTPUnauthorizedError"):
        kind = "unauthorized"
    elif _av_error(exc, "HTTPForbiddenError"):
        kind = "forbidden"
    elif isinstance(exc, FileNotFoundError) or _av_error(exc, "HTTPNotFoundError"):
        kind = "not_found"
    elif _av_error(exc, "HTTPError", "HTTPClientError"):
        return IngestError("protocol", f"HTTP/RTSP error: {detail}", source=source)
    elif isinstance(exc, ConnectionRefusedError):
        kind = "refused"
    elif elapsed >= timeout * 0.9 or isinstance(exc, TimeoutError) or _av_error(exc, "ExitError"):
        kind = "timeout" if during_open else "stalled"
    elif _av_error(exc, "ProtocolNotFoundError"):
        return IngestError(
            "config", f"protocol not allowed or not supported: {detail}", source=source
        )
    elif isinstance(exc, OSError) and exc.errno in (
        _errno.EHOSTUNREACH,
        _errno.ENETUNREACH,
        _errno.EADDRNOTAVAIL,
    ):
        kind = "unreachable"
    elif _av_error(exc, "InvalidDataError"):
        kind = "invalid_data"
    elif _av_error(exc, "EOFError"):
        kind = "eof"
    elif isinstance(exc, ConnectionError):
        return IngestError("error", f"connection lost: {detail}", source=source)
    elif isinstance(exc, OSError) and exc.errno == _errno.EIO and during_open:
        # FFmpeg's catch-all for failed name resolution and broken handshakes.
        kind = "unreachable"
    else:
        return IngestError("error", detail, source=source)
    return IngestError(kind, MESSAGES.get(kind, detail).format(timeout=timeout), source=source)


def _detail(exc: BaseException) -> str:
    """The exception's own text without the file name PyAV appends (it is the URL)."""
    if _av_error(exc, "FFmpegError"):
        text = getattr(exc, "strerror", None) or type(exc).__name__
    else:
        text = str(exc) or type(exc).__name__
    return redact_text(f"{type(exc).__name__}: {text}")
