"""Clip preparation: valid files, caching, and the frame-stamp round trip."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import av
import numpy as np
import pytest

from vigil.sim.media import (
    ClipSpec,
    MediaError,
    cache_key,
    parse_size,
    prepare_clip,
    read_stamp,
    stamp_geometry,
)

from .conftest import SMALL


def test_prepared_clip_is_valid_and_cached(tmp_path: Path) -> None:
    spec = ClipSpec("testsrc", 160, 120, fps=10, bitrate_kbps=200, duration=1.0, audio=True)
    messages: list[str] = []
    clip = prepare_clip(spec, tmp_path, progress=messages.append)
    assert clip.path.parent == tmp_path and clip.path.suffix == ".mp4"
    with av.open(str(clip.path)) as c:
        video = c.streams.video[0]
        assert video.codec_context.name == "h264"
        assert c.streams.audio[0].codec_context.name == "aac"
        frames = list(c.decode(video=0))
    assert len(frames) == spec.frames == 10
    assert (frames[0].width, frames[0].height) == (160, 120)
    assert frames[0].key_frame
    mtime = clip.path.stat().st_mtime_ns
    again = prepare_clip(spec, tmp_path, progress=messages.append)
    assert again.path == clip.path and clip.path.stat().st_mtime_ns == mtime
    assert messages[-1].startswith("cached")
    assert not list(tmp_path.glob(".*partial*"))


def test_real_footage_h265(tmp_path: Path) -> None:
    spec = ClipSpec("tree", 320, 240, fps=15, bitrate_kbps=300, duration=1.0, codec="h265")
    clip = prepare_clip(spec, tmp_path)
    with av.open(str(clip.path)) as c:
        assert c.streams.video[0].codec_context.name == "hevc"
        frame = next(c.decode(video=0))
    assert (frame.width, frame.height) == (320, 240)


def test_cache_key_depends_on_every_parameter() -> None:
    base = ClipSpec(**SMALL)
    keys = {
        cache_key(s)
        for s in (
            base,
            ClipSpec(**{**SMALL, "bitrate_kbps": 401}),
            ClipSpec(**{**SMALL, "codec": "h265"}),
            ClipSpec(**{**SMALL, "stamp": True}),
            ClipSpec(**{**SMALL, "audio": True}),
            ClipSpec(**{**SMALL, "source": "vtest"}),
        )
    }
    assert len(keys) == 6
    assert cache_key(base) == cache_key(ClipSpec(**SMALL))


def test_frame_stamp_round_trip() -> None:
    """Every frame of a stamped clip reads back as its index, also after downscaling."""
    spec = ClipSpec(stamp=True, **SMALL)
    clip = prepare_clip(spec)
    with av.open(str(clip.path)) as c:
        frames = list(c.decode(video=0))
    assert len(frames) == spec.frames
    for i, frame in enumerate(frames):
        assert read_stamp(frame.to_ndarray(format="gray")) == i
        assert read_stamp(frame.to_ndarray(format="bgr24")) == i
    small = frames[21].reformat(width=160, height=120).to_ndarray(format="rgb24")
    assert read_stamp(small) == 21


def test_unstamped_frames_read_as_none() -> None:
    clip = prepare_clip(ClipSpec(**SMALL))
    with av.open(str(clip.path)) as c:
        frames = [f.to_ndarray(format="gray") for f in islice(c.decode(video=0), 5)]
    assert all(read_stamp(f) is None for f in frames)
    assert read_stamp(np.zeros((240, 320), np.uint8)) is None
    assert read_stamp(np.full((240, 320), 255, np.uint8)) is None


def test_synthetic_stamp_pattern_matches_the_documentation() -> None:
    """Build the documented pattern by hand and check the reader agrees."""
    w, h, value = 640, 360, 0xA5F00F
    strip_h, edges = stamp_geometry(w, h)
    bits = [(value >> (23 - i)) & 1 for i in range(24)]
    cells = [1, 0, *bits, sum(bits) % 2, 1, 0, 1, 0, 1]
    img = np.full((h, w), 128, np.uint8)
    for k, bit in enumerate(cells):
        img[:strip_h, edges[k] : edges[k + 1]] = 235 if bit else 16
    assert read_stamp(img) == value
    img[:strip_h, edges[26] : edges[27]] = 16 if cells[26] else 235  # break parity
    assert read_stamp(img) is None


def test_validation() -> None:
    with pytest.raises(ValueError):
        ClipSpec(width=321)
    with pytest.raises(ValueError):
        ClipSpec(codec="vp9")  # type: ignore[arg-type]
    with pytest.raises(MediaError, match="not found"):
        prepare_clip(ClipSpec(source="/nonexistent/file.mp4"))
    assert parse_size("1920x1080") == (1920, 1080)
    assert parse_size("720p") == (1280, 720)
    with pytest.raises(ValueError):
        parse_size("big")
