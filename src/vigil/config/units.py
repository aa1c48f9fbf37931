"""Human units in the config file ('50GB', '7d') so operators need not count zeros."""

from __future__ import annotations

import re

_BYTES = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_DURATION = {"": 1, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_NUM_UNIT = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$")


def parse_bytes(text: str) -> int:
    """'50GB' -> 50_000_000_000; '2GiB' -> 2*1024**3."""
    m = _NUM_UNIT.match(text)
    if not m or m.group(2).lower() not in _BYTES:
        raise ValueError(f"{text!r} is not a size such as 500MB, 2GiB or 1TB")
    return int(float(m.group(1)) * _BYTES[m.group(2).lower()])


def parse_duration(text: str) -> float:
    """'72h' -> 259200.0 seconds; '7d'; '90s'; '15m'."""
    m = _NUM_UNIT.match(text)
    if not m or m.group(2).lower() not in _DURATION:
        raise ValueError(f"{text!r} is not a duration such as 90s, 15m, 72h or 7d")
    return float(m.group(1)) * _DURATION[m.group(2).lower()]
