"""Times as people type and read them. Input: ISO 8601 (naive = the machine's local zone),
'now', or relative '-90m'/'-2h'/'-1d'. Output: local time with its UTC offset, so nobody
has to guess which zone a timeline is in (a recurring complaint about other NVRs)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

_REL = re.compile(r"^-(\d+(?:\.\d+)?)([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(text: str, now_us: int | None = None) -> int:
    """Parse to microseconds since the epoch; raises ValueError with a usable message."""
    now = time.time_ns() // 1000 if now_us is None else now_us
    t = text.strip()
    if t == "now":
        return now
    m = _REL.match(t)
    if m:
        return now - int(float(m.group(1)) * _UNIT[m.group(2)] * 1_000_000)
    try:
        dt = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: use ISO 8601 (2026-11-26T14:30, with optional +01:00), "
            "'now' or a relative time like -2h"
        ) from None
    if dt.tzinfo is None:
        dt = dt.astimezone()  # naive means local time
    return int(dt.timestamp() * 1_000_000)


def format_time(us: int | None) -> str:
    if us is None:
        return "-"
    dt = datetime.fromtimestamp(us / 1e6, tz=UTC).astimezone()
    return dt.isoformat(timespec="seconds")


def format_duration(us: int) -> str:
    s = us / 1e6
    if s < 120:
        return f"{s:.1f}s"
    if s < 7200:
        return f"{s / 60:.1f}m"
    return f"{s / 3600:.1f}h"


def format_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"
