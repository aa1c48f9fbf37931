"""Clips for the live-view unit tests (made once per session with ffmpeg)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.record.feeder import make_clip

if shutil.which("ffmpeg") is None:  # pragma: no cover - environment guard
    pytest.fail("ffmpeg is required for live-view tests: run scripts/setup.sh", pytrace=False)


@pytest.fixture(scope="session")
def live_clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("live-clips")
    return {
        # GOP of 10 frames at 25 fps: several keyframes in a short clip
        "h264_aac": make_clip(d / "h264_aac.mp4", seconds=4, size="320x240", gop=10,
                              audio=True, bitrate="400k"),
        "h264": make_clip(d / "h264.mp4", seconds=4, size="320x240", gop=10, bitrate="400k"),
        "hevc": make_clip(d / "hevc.mp4", codec="hevc", seconds=3, size="320x240", gop=10,
                          bitrate="400k"),
        "h264_bframes": make_clip(d / "h264_b.mp4", seconds=3, size="320x240", gop=10,
                                  bframes=2, bitrate="400k"),
    }
