"""Opening sources: URL building, FFmpeg options, error classification (no media needed
except where a server is spun up)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from tests.ingest.ingest_helpers import FakeRtspServer, free_port, http_server, self_signed_tls
from vigil.config.model import Credentials, StreamSource
from vigil.ingest.errors import IngestError
from vigil.ingest.source import build_target, build_url_target, open_input
from vigil.util.redact import redact_text

PASSWORD = "p@ss:w/rd%&x"


def creds() -> Credentials:
    return Credentials(username="admin", password=SecretStr(PASSWORD))


def test_credentials_are_percent_encoded_and_registered() -> None:
    t = build_target(StreamSource(url="rtsp://cam.local:8554/live?ch=1"), creds())
    assert t.url == "rtsp://admin:p%40ss%3Aw%2Frd%25%26x@cam.local:8554/live?ch=1"
    assert t.display == "rtsp://cam.local:8554/live?ch=1"
    assert PASSWORD not in repr(t) and "p%40ss" not in repr(t)
    # registered: scrubbed even when it appears bare or encoded
    assert PASSWORD not in redact_text(f"oops {PASSWORD} and {t.url}")
    assert "p%40ss%3Aw%2Frd%25%26x" not in redact_text(t.url)


def test_credentials_block_overrides_inline_userinfo() -> None:
    t = build_url_target("rtsp://old:oldpass1@10.0.0.5/s", creds())
    assert t.url.startswith("rtsp://admin:p%40ss")
    assert "oldpass1" not in t.url
    inline = build_url_target("rtsp://user:inl%40ine@10.0.0.5/s")
    assert inline.url == "rtsp://user:inl%40ine@10.0.0.5/s"
    assert "inl" not in inline.display
    assert "inl@ine" not in redact_text("inl@ine")  # registered decoded form


def test_password_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_TEST_CAM_PW", "envsecret9")
    t = build_url_target(
        "rtsp://10.0.0.5/s", Credentials(username="u", password_env="VIGIL_TEST_CAM_PW")
    )
    assert "envsecret9" in t.url
    monkeypatch.delenv("VIGIL_TEST_CAM_PW")
    with pytest.raises(IngestError) as ei:
        build_url_target(
            "rtsp://10.0.0.5/s", Credentials(username="u", password_env="VIGIL_TEST_CAM_PW")
        )
    assert ei.value.kind == "config"


@pytest.mark.parametrize(
    ("url", "whitelist", "fmt"),
    [
        ("rtsp://h/s", "rtsp,rtp,udp,tcp", "rtsp"),
        ("rtsps://h/s", "rtsp,rtsps,rtp,srtp,udp,tcp,tls", "rtsp"),
        ("http://h/mjpeg", "http,tcp", None),
        ("https://h/mjpeg", "https,http,tls,tcp,crypto", None),
    ],
)
def test_protocol_whitelist_per_scheme(url: str, whitelist: str, fmt: str | None) -> None:
    t = build_url_target(url, open_timeout=3, read_timeout=7)
    assert t.options["protocol_whitelist"] == whitelist
    assert "file" not in t.options["protocol_whitelist"].split(",")
    assert t.format == fmt
    assert t.options["timeout"] == "7000000"  # µs, the longer of the two
    if fmt == "rtsp":
        assert t.options["rtsp_transport"] == "tcp"
    else:
        assert t.options["rw_timeout"] == "7000000"
        assert "format_whitelist" in t.options


def test_udp_transport_and_file_source(tmp_path: Path) -> None:
    t = build_target(StreamSource(url="rtsp://h/s", transport="udp"))
    assert t.options["rtsp_transport"] == "udp"
    f = tmp_path / "x.mp4"
    ft = build_target(StreamSource(file=f))
    assert ft.is_file and ft.options["protocol_whitelist"] == "file"
    assert ft.display == "x.mp4"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "concat:/a|/b", "ftp://h/x"])
def test_other_schemes_are_refused(url: str) -> None:
    with pytest.raises(IngestError) as ei:
        build_url_target(url)
    assert ei.value.kind == "config"


def test_whitelist_blocks_protocol_tricks(media: dict[str, Path]) -> None:
    """An HTTP source cannot be turned into a local file read through FFmpeg's nested
    protocols: the whitelist is enforced by FFmpeg itself."""
    t = build_url_target("http://127.0.0.1:1/x")
    evil = type(t)(
        scheme="http",
        url=f"subfile,,start,0,end,0,,:{media['h264_ts']}",
        display="evil",
        options=t.options,
    )
    with pytest.raises(IngestError):
        open_input(evil, open_timeout=2, read_timeout=2)
    # control: the same URL opens when the whitelist allows it
    allowed = type(t)(
        scheme="http",
        url=evil.url,
        display="control",
        options={"protocol_whitelist": "subfile,file"},
    )
    open_input(allowed, open_timeout=2, read_timeout=2).close()


def _open_error(url: str, credentials: Credentials | None = None, timeout: float = 2.0):
    t = build_url_target(url, credentials, open_timeout=timeout, read_timeout=timeout)
    start = time.monotonic()
    with pytest.raises(IngestError) as ei:
        open_input(t, open_timeout=timeout, read_timeout=timeout)
    return ei.value, time.monotonic() - start


def test_closed_port_is_refused() -> None:
    for scheme in ("rtsp", "http"):
        err, elapsed = _open_error(f"{scheme}://127.0.0.1:{free_port()}/x")
        assert err.kind == "refused"
        assert elapsed < 1.5


def test_rtsp_401_is_reported_without_password() -> None:
    with FakeRtspServer("401") as srv:
        err, _ = _open_error(srv.url, creds())
        assert err.kind == "unauthorized"
        assert "401" in str(err) and "password" in str(err)
        assert PASSWORD not in str(err) and "p%40ss" not in str(err)
        assert f"admin:{PASSWORD}" in srv.auth_headers  # FFmpeg decoded our encoding


def test_rtsp_404() -> None:
    with FakeRtspServer("404") as srv:
        err, _ = _open_error(srv.url)
        assert err.kind == "not_found"


def test_rtsp_silent_server_times_out_within_open_timeout() -> None:
    with FakeRtspServer("silent") as srv:
        err, elapsed = _open_error(srv.url, timeout=2.0)
        assert err.kind == "timeout"
        assert "never answered" in str(err)
        assert 1.4 < elapsed < 3.0


def test_rtsp_garbage_is_invalid_data() -> None:
    with FakeRtspServer("garbage") as srv:
        err, elapsed = _open_error(srv.url, timeout=2.0)
        assert err.kind == "invalid_data"
        assert "not RTSP" in str(err)
        assert elapsed < 3.0


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/garbage", "invalid_data"),
        ("/notvideo", "invalid_data"),
        ("/auth", "unauthorized"),
        ("/missing", "not_found"),
        ("/silent", "timeout"),
    ],
)
def test_http_errors(jpegs: list[bytes], path: str, kind: str) -> None:
    with http_server(jpegs) as srv:
        url = f"http://127.0.0.1:{srv.server_address[1]}{path}"
        err, elapsed = _open_error(url, creds(), timeout=1.5)
        assert err.kind == kind, str(err)
        assert PASSWORD not in str(err)
        assert elapsed < 2.5


def test_rtsps_over_tls_with_self_signed_certificate(tmp_path: Path) -> None:
    """RTSPS works with its protocol whitelist (tls + tcp) and cameras' self-signed
    certificates; errors are classified the same way."""
    with FakeRtspServer("401", tls=self_signed_tls(tmp_path)) as srv:
        assert srv.url.startswith("rtsps://")
        err, _ = _open_error(srv.url, creds(), timeout=3)
        assert err.kind == "unauthorized"
        assert f"admin:{PASSWORD}" in srv.auth_headers
        assert PASSWORD not in str(err)
