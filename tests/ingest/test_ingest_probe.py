"""probe(): what `vigil cameras test URL` reports."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from tests.ingest.ingest_helpers import FakeRtspServer, http_server
from vigil.config.model import Credentials, StreamSource
from vigil.ingest.probe import probe


def test_probe_file_with_audio(media: dict[str, Path]) -> None:
    r = probe(StreamSource(file=media["h264_aac_mp4"]), timeout=5)
    assert r.ok and r.error is None
    assert (r.video_codec, r.width, r.height) == ("h264", 320, 240)
    assert r.fps == 15.0
    assert r.keyframe_interval_s == 1.0
    assert r.audio is not None and (r.audio.codec, r.audio.sample_rate) == ("aac", 16000)
    assert r.source == "h264_aac.mp4"


def test_probe_sizes_from_sps(media: dict[str, Path]) -> None:
    r = probe(StreamSource(file=media["odd_hevc_mp4"]), timeout=5)
    assert (r.video_codec, r.width, r.height) == ("hevc", 330, 250)


def test_probe_mjpeg_over_http(jpegs: list[bytes]) -> None:
    with http_server(jpegs) as srv:
        r = probe(f"http://127.0.0.1:{srv.server_address[1]}/mjpeg", max_seconds=1.5)
    assert r.ok, r
    assert (r.video_codec, r.width, r.height, r.format) == ("mjpeg", 160, 120, "mpjpeg")
    assert r.audio is None and r.bitrate_bps and r.bitrate_bps > 0
    assert r.fps is not None and 8 <= r.fps <= 12  # served at 10 fps, not FFmpeg's 25


def test_probe_errors_are_classified_and_redacted(
    jpegs: list[bytes], media: dict[str, Path]
) -> None:
    secret = "pr0be-Secret"
    creds = Credentials(username="admin", password=SecretStr(secret))
    with FakeRtspServer("401") as srv:
        r = probe(srv.url, creds, timeout=2)
    assert not r.ok and r.error_kind == "unauthorized" and "401" in (r.error or "")
    assert secret not in repr(r)
    with http_server(jpegs) as hs:
        g = probe(f"http://127.0.0.1:{hs.server_address[1]}/garbage", timeout=2)
    assert not g.ok and g.error_kind == "invalid_data"
    a = probe(StreamSource(file=media["audio_only"]), timeout=2)
    assert not a.ok and a.error_kind == "not_video" and a.audio is not None
