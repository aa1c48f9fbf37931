from __future__ import annotations

import pytest

from vigil.util.timefmt import format_bytes, parse_time


def test_parse_absolute_utc() -> None:
    assert parse_time("2026-01-01T00:00:00Z") == 1767225600 * 1_000_000
    assert parse_time("2026-01-01T01:00:00+01:00") == 1767225600 * 1_000_000


def test_parse_relative_and_now() -> None:
    assert parse_time("now", now_us=10**12) == 10**12
    assert parse_time("-2h", now_us=10**12) == 10**12 - 7200 * 10**6


def test_parse_garbage_is_clear() -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_time("yesterday-ish")


def test_format_bytes() -> None:
    assert format_bytes(999) == "999 B"
    assert format_bytes(1_500_000) == "1.5 MB"
