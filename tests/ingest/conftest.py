"""Shared fixtures for ingest tests: media generated once per run with ffmpeg."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from tests.ingest.ingest_helpers import ffmpeg, make_clip, make_jpegs
from vigil.config.model import IngestConfig


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is not installed: run scripts/setup.sh", pytrace=False)
    d = tmp_path_factory.mktemp("media")
    out = {
        "h264_aac_mp4": make_clip(d / "h264_aac.mp4", audio=True),
        "h264_ts": make_clip(d / "h264.ts", fmt="mpegts"),
        "hevc_ts": make_clip(d / "hevc.ts", codec="libx265", fmt="mpegts"),
        "hevc_mp4": make_clip(d / "hevc.mp4", codec="libx265"),
        "odd_mp4": make_clip(d / "odd.mp4", size="330x250", seconds=1),
        "odd_hevc_mp4": make_clip(d / "odd_hevc.mp4", codec="libx265", size="330x250", seconds=1),
        "small_ts": make_clip(d / "small.ts", size="320x240", seconds=1.4, fmt="mpegts"),
        "big_ts": make_clip(d / "big.ts", size="640x360", seconds=1.4, fmt="mpegts"),
        "hevc_small_ts": make_clip(
            d / "hevc_small.ts", codec="libx265", size="320x240", seconds=1, fmt="mpegts"
        ),
        "hevc_big_ts": make_clip(
            d / "hevc_big.ts", codec="libx265", size="480x272", seconds=1, fmt="mpegts"
        ),
    }
    out["audio_only"] = d / "audio_only.m4a"
    ffmpeg(
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000", "-t", "1", "-c:a", "aac",
        str(out["audio_only"]),
    )  # fmt: skip
    # resolution change mid-stream: two MPEG-TS clips of different sizes, stream-copied
    out["reschange_ts"] = d / "reschange.ts"
    ffmpeg(
        "-i", f"concat:{out['small_ts']}|{out['big_ts']}", "-c", "copy", "-f", "mpegts",
        str(out["reschange_ts"]),
    )  # fmt: skip
    out["hevc_reschange_ts"] = d / "hevc_reschange.ts"
    ffmpeg(
        "-i", f"concat:{out['hevc_small_ts']}|{out['hevc_big_ts']}", "-c", "copy",
        "-f", "mpegts", str(out["hevc_reschange_ts"]),
    )  # fmt: skip
    return out


@pytest.fixture(scope="session")
def jpegs(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    return make_jpegs(tmp_path_factory.mktemp("jpegs"))


@pytest.fixture(scope="session")
def jpegs_big(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    return make_jpegs(tmp_path_factory.mktemp("jpegs_big"), size="320x240")


@pytest.fixture
def fast_cfg() -> IngestConfig:
    return IngestConfig(stall_timeout=2.0, open_timeout=2.0, backoff_initial=0.2, backoff_max=1.0)


@pytest.fixture(autouse=True)
def _ingest_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="vigil.ingest")
