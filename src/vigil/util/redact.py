"""Keeping camera credentials out of every log line, error message, CLI output and index row.

Credential leaks through printed RTSP URLs are a recurring bug in NVRs (Frigate, go2rtc,
Moonfire issues); FFmpeg itself prints URLs in its errors. So redaction is applied both to
URLs we format and, as a last line of defence, to every log record (see ``vigil.util.log``).
"""

from __future__ import annotations

import re
import threading
from urllib.parse import urlsplit, urlunsplit

# scheme://user:pass@host or scheme://user@host
_USERINFO_RE = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/@\s]+)@")
# query parameters that commonly carry secrets on cameras (?password=, &pwd=, ?auth=, &token=)
_QUERY_SECRET_RE = re.compile(
    r"(?P<key>[?&;](?:password|passwd|pwd|pass|auth|token|key|secret|signature)=)[^&#\s]*",
    re.IGNORECASE,
)
REDACTED = "***"

_secrets_lock = threading.Lock()
_known_secrets: set[str] = set()


def register_secret(value: str) -> None:
    """Remember a secret so it is scrubbed from any text, even when it appears bare."""
    if value and len(value) >= 3:
        with _secrets_lock:
            _known_secrets.add(value)


def redact_url(url: str) -> str:
    """rtsp://admin:hunter2@cam/stream -> rtsp://***@cam/stream."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = REDACTED + "@" + netloc.rsplit("@", 1)[1]
    query = _QUERY_SECRET_RE.sub(lambda m: m.group("key") + REDACTED, "?" + parts.query)[1:]
    return redact_text(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))


def redact_text(text: str) -> str:
    """Scrub URL userinfo, secret-looking query parameters and registered secrets."""
    text = _USERINFO_RE.sub(lambda m: m.group("scheme") + REDACTED + "@", text)
    text = _QUERY_SECRET_RE.sub(lambda m: m.group("key") + REDACTED, text)
    with _secrets_lock:
        secrets = sorted(_known_secrets, key=len, reverse=True)
    for s in secrets:
        if s in text:
            text = text.replace(s, REDACTED)
    return text
