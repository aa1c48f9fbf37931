"""Fixtures for recorder tests: ffmpeg-made clips (made once per session) and small
filesystems we control (tmpfs, or a loop-mounted ext4 image when tmpfs mounts are refused),
always unmounted, even when a test fails."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .feeder import make_clip

if shutil.which("ffmpeg") is None:  # pragma: no cover - environment guard
    pytest.fail("ffmpeg is required for recorder tests: run scripts/setup.sh", pytrace=False)


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    return {
        # 2 Mb/s is a realistic floor for a 640x360 camera stream; GOP 1 s.
        "h264_aac": make_clip(
            d / "h264_aac.mp4", codec="h264", seconds=14, audio=True, bitrate="2M"
        ),
        "hevc": make_clip(d / "hevc.mp4", codec="hevc", seconds=12, bitrate="2M"),
        "hevc_aac": make_clip(
            d / "hevc_aac.mp4", codec="hevc", seconds=10, audio=True, bitrate="2M"
        ),
        "h264_small": make_clip(
            d / "h264_small.mp4", codec="h264", seconds=6, size="320x240", bitrate="500k"
        ),
    }


@pytest.fixture(scope="session")
def ts_clip(clips: dict[str, Path]) -> Path:
    """MPEG-TS remux of the H.264+AAC clip: Annex B video, ADTS audio without config."""
    out = clips["h264_aac"].with_name("h264_aac.ts")
    subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(clips["h264_aac"]),
            "-c",
            "copy",
            "-f",
            "mpegts",
            str(out),
        ],
        check=True,
        timeout=60,
    )
    return out


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def unmount(path: Path) -> None:
    if _run(["umount", str(path)]).returncode != 0:
        _run(["umount", "-l", str(path)])


class SmallFs:
    """A mounted filesystem of a few MiB at ``path``."""

    def __init__(self, path: Path, kind: str, image: Path | None = None) -> None:
        self.path = path
        self.kind = kind
        self.image = image

    def remount(self, mode: str) -> None:
        r = _run(["mount", "-o", f"remount,{mode}", str(self.path)])
        if r.returncode != 0:
            raise RuntimeError(f"remount {mode} failed: {r.stderr.strip()}")

    def free_bytes(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize


@contextlib.contextmanager
def small_fs(base: Path, size_mb: int = 8) -> Iterator[SmallFs]:
    """Mount a tmpfs of ``size_mb`` MiB (as root); fall back to a loop-mounted ext4
    image; fail the test when neither is allowed here (the disk-full path must be tested)."""
    mnt = base / "mnt"
    mnt.mkdir()
    fs: SmallFs | None = None
    r = _run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", str(mnt)])
    if r.returncode == 0:
        fs = SmallFs(mnt, "tmpfs")
    else:
        image = base / "fs.img"
        with image.open("wb") as f:
            f.truncate(size_mb * 1024 * 1024)
        mk = _run(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)])
        lo = _run(["mount", "-o", "loop", str(image), str(mnt)]) if mk.returncode == 0 else mk
        if lo.returncode == 0:
            fs = SmallFs(mnt, "ext4-loop", image)
        else:
            pytest.fail(
                f"cannot mount a small filesystem here: tmpfs: {r.stderr.strip()}; "
                f"loop ext4: {lo.stderr.strip()}"
            )
    try:
        yield fs
    finally:
        with contextlib.suppress(Exception):
            fs.remount("rw")
        unmount(mnt)


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[SmallFs]:
    with small_fs(tmp_path, 8) as fs:
        yield fs
