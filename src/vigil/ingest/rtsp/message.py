"""RTSP/1.0 message syntax (RFC 2326): building requests, parsing answers and the few
header values the client needs (Session, Transport, Public).

Everything here is bounded, because the other end may be anything that listens on port
554: a head (start line + headers) is at most 64 KiB and a body at most 64 KiB; beyond that,
or when the start line is not RTSP, it is :class:`MessageError` (reported as "invalid
data"). Requests are checked for CR/LF in every field so that a URL or header value taken
from a camera's answer cannot inject request lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024
RESPONSE_PREFIX = b"RTSP/1."


class MessageError(ValueError):
    """Not an RTSP message, or one over the limits."""


@dataclass(slots=True)
class Message:
    """A parsed RTSP message head (response or server request) and its body.

    ``status`` is 0 for a request; ``headers`` keeps repeats (WWW-Authenticate) in order,
    names lowercased.
    """

    start_line: str
    status: int = 0
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def is_response(self) -> bool:
        return self.status > 0

    def get(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.headers if key == name]

    @property
    def cseq(self) -> int | None:
        try:
            return int(self.get("cseq") or "")
        except ValueError:
            return None

    @property
    def content_length(self) -> int:
        value = self.get("content-length")
        if value is None:
            return 0
        try:
            n = int(value.strip())
        except ValueError:
            raise MessageError("bad Content-Length") from None
        if n < 0 or n > MAX_BODY_BYTES:
            raise MessageError(f"Content-Length {n} out of range")
        return n


def head_end(data: bytes | bytearray, start: int, end: int) -> int:
    """Offset just past the blank line ending the head that starts at ``start``, or -1 if
    it is not complete yet. Bare-LF line ends are accepted (some cameras send them)."""
    crlf = data.find(b"\r\n\r\n", start, end)
    lf = data.find(b"\n\n", start, end)
    if crlf < 0:
        return lf + 2 if lf >= 0 else -1
    if lf < 0 or crlf + 2 <= lf:
        return crlf + 4
    return lf + 2


def could_be_message(prefix: bytes | bytearray) -> bool:
    """Whether ``prefix`` (the first bytes of a message, any length) may still turn out to
    be an RTSP response (``RTSP/1.``) or a request from the server (``METHOD SP``): lets
    garbage be recognised after a few bytes instead of after 64 KiB or a timeout."""
    n = min(len(prefix), len(RESPONSE_PREFIX))
    if bytes(prefix[:n]) == RESPONSE_PREFIX[:n]:
        return True
    for i, b in enumerate(prefix[:33]):
        if b == 0x20:
            return i > 0
        if not (0x41 <= b <= 0x5A or b in (0x5F, 0x2D)):  # A-Z _ -
            return False
    return len(prefix) < 33


def parse_head(head: bytes | bytearray | memoryview) -> Message:
    """Parse a message head (without body). Raises :class:`MessageError` for anything
    that is neither an RTSP response nor an RTSP request."""
    if len(head) > MAX_HEAD_BYTES:
        raise MessageError("RTSP message head too large")
    text = bytes(head).decode("latin-1")
    lines = text.replace("\r\n", "\n").split("\n")
    start = lines[0].strip()
    msg = Message(start)
    if start.startswith("RTSP/1."):
        parts = start.split(" ", 2)
        try:
            msg.status = int(parts[1])
        except (IndexError, ValueError):
            raise MessageError("bad RTSP status line") from None
        if not 100 <= msg.status <= 999:
            raise MessageError("bad RTSP status code")
        msg.reason = parts[2].strip() if len(parts) > 2 else ""
    else:
        words = start.split(" ")
        method_ok = words[0].replace("_", "").replace("-", "").isalpha()
        if len(words) != 3 or not words[2].startswith("RTSP/1.") or not method_ok:
            raise MessageError("not an RTSP message")
    for line in lines[1:]:
        if not line.strip():
            continue
        if line[0] in " \t" and msg.headers:  # obsolete line folding
            key, value = msg.headers[-1]
            msg.headers[-1] = (key, value + " " + line.strip())
            continue
        key, sep, value = line.partition(":")
        if sep:
            msg.headers.append((key.strip().lower(), value.strip()))
    return msg


def build_request(
    method: str, url: str, cseq: int, headers: Sequence[tuple[str, str]] = ()
) -> bytes:
    """An RTSP/1.0 request. Raises ValueError if any field contains CR or LF."""
    lines = [f"{method} {url} RTSP/1.0", f"CSeq: {cseq}"]
    lines += [f"{k}: {v}" for k, v in headers]
    for line in lines:
        if "\r" in line or "\n" in line:
            raise ValueError("line break in an RTSP request field")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def parse_session(value: str) -> tuple[str, float | None]:
    """``Session: id[;timeout=N]`` -> (id, timeout in seconds or None)."""
    ident, _, rest = value.partition(";")
    timeout: float | None = None
    for param in rest.split(";"):
        key, _, val = param.partition("=")
        if key.strip().lower() == "timeout":
            try:
                t = float(val.strip())
            except ValueError:
                continue
            if 0 < t < 86400:
                timeout = t
    return ident.strip(), timeout


def parse_transport(value: str) -> tuple[str, dict[str, str]]:
    """``Transport:`` -> (protocol spec such as ``RTP/AVP/TCP``, parameters with lowercased
    keys). Only the first transport of a comma-separated list is considered: a server
    answers with exactly one."""
    first = value.split(",", 1)[0]
    items = [p.strip() for p in first.split(";") if p.strip()]
    if not items:
        return "", {}
    params: dict[str, str] = {}
    for item in items[1:]:
        key, _, val = item.partition("=")
        params[key.strip().lower()] = val.strip()
    return items[0].upper(), params


def parse_channels(value: str) -> tuple[int, int] | None:
    """``interleaved=2-3`` value -> (2, 3); a single channel N means (N, N+1)."""
    lo, sep, hi = value.partition("-")
    try:
        a = int(lo)
        b = int(hi) if sep else a + 1
    except ValueError:
        return None
    if not (0 <= a <= 255 and 0 <= b <= 255):
        return None
    return a, b


def parse_public(value: str | None) -> frozenset[str]:
    """``Public: OPTIONS, DESCRIBE, ...`` -> the set of method names, upper-case."""
    if not value:
        return frozenset()
    return frozenset(m.strip().upper() for m in value.split(",") if m.strip())
