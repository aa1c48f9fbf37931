"""Parsing of times and ranges in query strings, with errors a client can act on.

A time is either an integer of microseconds since the Unix epoch (what every response
carries, so a client can echo it back exactly) or an ISO 8601 date-time with a zone
(``2026-11-26T14:30:00Z``, ``...+01:00``). A time without a zone is refused rather than
guessed: the server's zone is not the viewer's, and an hour's offset in evidence is the
timezone complaint every NVR gets.
"""

from __future__ import annotations

import re
from datetime import datetime

from vigil.api.errors import ApiError

_INT = re.compile(r"^-?\d{1,19}$")
# 0001-01-01 .. 9999-12-31 in µs; anything outside cannot be a recording time.
MIN_US = 0
MAX_US = 253_402_300_799_999_999
TIME_DESCRIPTION = (
    "Microseconds since the Unix epoch, or ISO 8601 with a zone (2026-11-26T14:30:00Z)."
)


def parse_time(value: str, name: str) -> int:
    """µs since the epoch, or ``ApiError`` 400 ``invalid_time`` naming the parameter."""
    text = value.strip()
    if _INT.match(text):
        us = int(text)
    else:
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ApiError(
                400,
                "invalid_time",
                f"{name} {value[:64]!r} is not a time: give microseconds since the epoch or "
                "ISO 8601 with a zone, e.g. 2026-11-26T14:30:00Z",
                {"parameter": name},
            ) from None
        if dt.tzinfo is None:
            raise ApiError(
                400,
                "invalid_time",
                f"{name} {value[:64]!r} has no time zone; add Z or an offset like +01:00",
                {"parameter": name},
            )
        us = _epoch_us(dt)
    if not MIN_US <= us <= MAX_US:
        raise ApiError(400, "invalid_time", f"{name} {us} is out of range", {"parameter": name})
    return us


def _epoch_us(dt: datetime) -> int:
    delta = dt - datetime.fromtimestamp(0, dt.tzinfo)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def parse_range(
    start: str, end: str, max_us: int | None = None, *, names: tuple[str, str] = ("start", "end")
) -> tuple[int, int]:
    """A half-open range [start, end): both parsed, ordered and, with ``max_us``, bounded."""
    a = parse_time(start, names[0])
    b = parse_time(end, names[1])
    if b <= a:
        raise ApiError(
            400,
            "invalid_range",
            f"{names[1]} must be after {names[0]} (the range is [start, end))",
            {"start_us": a, "end_us": b},
        )
    if max_us is not None and b - a > max_us:
        raise ApiError(
            400,
            "range_too_long",
            f"the range is {(b - a) / 3.6e9:.2f} h; at most {max_us / 3.6e9:.2f} h may be "
            "requested at once",
            {"start_us": a, "end_us": b, "max_us": max_us},
        )
    return a, b
