"""Credentials never survive redaction, in URLs, free text or log records."""

from __future__ import annotations

import logging

import pytest

from vigil.util.log import RedactingFilter
from vigil.util.redact import redact_text, redact_url, register_secret


@pytest.mark.parametrize(
    "url",
    [
        "rtsp://admin:hunter2@10.0.0.5:554/stream",
        "rtsp://admin:hunter2@[::1]/s",
        "http://cam/snap.cgi?user=admin&password=hunter2",
        "http://cam/ISAPI?auth=hunter2",
        "rtsps://u:hunter2@cam/x?token=hunter2",
    ],
)
def test_redact_url(url: str) -> None:
    out = redact_url(url)
    assert "hunter2" not in out and "***" in out


def test_redact_text_in_ffmpeg_style_message() -> None:
    msg = "[rtsp @ 0x55] method DESCRIBE failed: 401 Unauthorized rtsp://admin:p%40ss@cam/1"
    assert "p%40ss" not in redact_text(msg)


def test_registered_secret_scrubbed_anywhere() -> None:
    register_secret("S3cr3t-Value")
    assert "S3cr3t-Value" not in redact_text("password was S3cr3t-Value, oops")


def test_log_filter_scrubs_args_and_exceptions() -> None:
    rec = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "open %s failed", ("rtsp://a:pw123@h/",), None
    )
    try:
        raise RuntimeError("rtsp://a:pw123@h/ refused")
    except RuntimeError:
        import sys

        rec.exc_info = sys.exc_info()
    RedactingFilter().filter(rec)
    assert "pw123" not in rec.getMessage()
    assert rec.exc_text is not None and "pw123" not in rec.exc_text
