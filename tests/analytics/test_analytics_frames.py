from __future__ import annotations

import time
from pathlib import Path

import pytest

from vigil.analytics.frames import FrameSampler, FrameSource, scaled_size


def test_sampler_keeps_every_second_frame_of_10fps() -> None:
    s = FrameSampler(5.0)
    kept = [i for i in range(100) if s.keep(i / 10)]
    assert kept == list(range(0, 100, 2))


def test_sampler_handles_25fps_and_jumps() -> None:
    s = FrameSampler(5.0)
    kept = [i for i in range(250) if s.keep(i * 0.04)]
    assert len(kept) == 50  # 10 s at 5 fps, regardless of the source rate
    assert s.keep(1000.0)  # a jump re-anchors instead of bursting
    assert not s.keep(1000.04)


def test_scaled_size() -> None:
    assert scaled_size(768, 576, 640) == (640, 480)
    assert scaled_size(1920, 1080, 640) == (640, 360)
    assert scaled_size(320, 240, 640) == (320, 240)  # never upscales


def test_source_decodes_at_target_rate_and_scales(vtest_path: Path) -> None:
    with FrameSource(vtest_path, target_fps=5, width=640, drop_policy="block") as src:
        frames = list(src)
    assert src.error is None
    assert src.decoded == 795  # every frame is decoded ...
    assert len(frames) == 398  # ... but only every second one (10 -> 5 fps) is kept
    assert src.dropped == 0
    assert frames[0].image.shape == (480, 640, 3)
    assert frames[1].time == pytest.approx(0.2)
    assert [f.source_index for f in frames[:3]] == [0, 2, 4]


def test_slow_consumer_drops_oldest_never_blocks(vtest_path: Path) -> None:
    src = FrameSource(vtest_path, target_fps=5, width=320, queue_size=2).start()
    deadline = time.monotonic() + 30
    # The consumer is "busy" and reads nothing until the producer has finished its work
    # (every frame decoded and every kept frame offered to the queue).
    while src.kept < 398 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert src._thread is not None
    src._thread.join(10)
    frames = list(src)
    src.stop()
    assert src.decoded == 795  # the producer ran to the end without waiting for us
    assert src.dropped == 398 - 2
    assert [f.index for f in frames] == [396, 397]  # the newest frames survived


def test_hwaccel_falls_back_silently(vtest_path: Path) -> None:
    with FrameSource(vtest_path, target_fps=1, hwaccel="cuda", drop_policy="block") as src:
        n = sum(1 for _ in src)
    assert src.error is None and n == 80


def test_bad_source_ends_with_error(tmp_path: Path) -> None:
    bogus = tmp_path / "nothing.mp4"
    bogus.write_bytes(b"not a video")
    with FrameSource(bogus) as src:
        assert list(src) == []
    assert src.error is not None
