"""Codec strings, hand-written fragments, and the MJPEG fallback."""

from __future__ import annotations

import io
import subprocess
import time
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest

from tests.record.feeder import feed_file
from vigil.live import LiveFragment, LiveHub, LiveInit, LiveNotice
from vigil.record.fmp4 import (
    Sample,
    aac_object_type,
    avc_codec_string,
    build_fragment,
    hevc_codec_string,
    mp4a_codec_string,
)


def test_avc_codec_string() -> None:
    # configurationVersion, profile 100 (High), constraints 0, level 31
    assert avc_codec_string(bytes([1, 0x64, 0x00, 0x1F, 0xFF])) == "avc1.64001f"
    assert avc_codec_string(b"\x01") == "avc1"


def test_hevc_codec_string_main_profile() -> None:
    # Main profile, tier L, level 93, compat flags 0x60000000, constraints 0x90 (the
    # classic 'hvc1.1.6.L93.90' of many cameras)
    rec = bytes([1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 93]) + bytes(10)
    assert hevc_codec_string(rec, "hvc1") == "hvc1.1.6.L93.90"
    high_tier = bytes([1, 0x21, 0x60, 0, 0, 0, 0xB0, 0, 0, 0, 0, 0, 120]) + bytes(10)
    assert hevc_codec_string(high_tier, "hev1") == "hev1.1.6.H120.B0"


def test_aac_strings() -> None:
    assert aac_object_type(bytes([0x11, 0x90])) == 2  # AAC-LC
    assert aac_object_type(bytes([0x2B, 0x92])) == 5  # HE-AAC
    assert aac_object_type(bytes([0xF8, 0x20])) == 33  # escape: 32 + 1
    # ES_Descriptor(ES_ID 1) > DecoderConfigDescriptor(OTI 0x40) > DSI(AAC-LC 48k mono)
    dsi = bytes([0x05, 0x02, 0x11, 0x88])
    dcd_body = bytes([0x40, 0x15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]) + dsi
    dcd = bytes([0x04, len(dcd_body)]) + dcd_body
    es_body = bytes([0, 1, 0]) + dcd + bytes([0x06, 0x01, 0x02])
    es = bytes([0x03, len(es_body)]) + es_body
    assert mp4a_codec_string(es) == "mp4a.40.2"


def test_fragment_layout_is_self_consistent() -> None:
    video = [Sample(b"\x00\x00\x00\x02ab", 9000, 3000, 0, True),
             Sample(b"\x00\x00\x00\x01c", 12000, 3000, 0, False)]
    audio = [Sample(b"xyz", 16000, 1024, 0, True)]
    frag = build_fragment(7, [(1, video), (2, audio)])
    moof_size = int.from_bytes(frag[:4], "big")
    assert frag[4:8] == b"moof"
    mdat = frag[moof_size:]
    assert mdat[4:8] == b"mdat"
    assert mdat[8:] == b"\x00\x00\x00\x02ab" + b"\x00\x00\x00\x01c" + b"xyz"
    # trun data offsets point at each track's bytes, relative to the moof
    first = frag.index(b"trun")
    off1 = int.from_bytes(frag[first + 12 : first + 16], "big")
    assert frag[off1 : off1 + 6] == b"\x00\x00\x00\x02ab"
    second = frag.index(b"trun", first + 4)
    off2 = int.from_bytes(frag[second + 12 : second + 16], "big")
    assert frag[off2 : off2 + 3] == b"xyz"
    with pytest.raises(ValueError):
        build_fragment(1, [(1, [])])


def test_hevc_stream_copy_decodes(live_clips: dict[str, Path]) -> None:
    hub = LiveHub("cam")
    v = hub.subscribe()
    fed = feed_file(hub, live_clips["hevc"])
    items = v.drain()
    init = items[0]
    assert isinstance(init, LiveInit) and init.codecs.startswith(("hev1.1.", "hvc1.1."))
    data = init.data + b"".join(i.data for i in items if isinstance(i, LiveFragment))
    with av.open(io.BytesIO(data)) as c:
        n = sum(len(p.decode()) for p in c.demux(c.streams.video[0]))
    assert n == fed.fed_video


def test_mjpeg_fallback_decodes_only_while_watched(live_clips: dict[str, Path]) -> None:
    hub = LiveHub("cam", mjpeg_fps=5.0, mjpeg_max_width=160)
    feed_file(hub, live_clips["hevc"], max_seconds=1)  # nobody watching: nothing decoded
    assert hub._mjpeg is None

    slot = hub.subscribe_jpeg()
    feed = hub._mjpeg
    fed = feed_file(hub, live_clips["hevc"], session_id=2, speed=3.0)
    got = slot.get(timeout=5)
    assert got is not None
    wall_us, jpeg = got
    assert fed.first_wall_us <= wall_us <= fed.last_wall_us + 1
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None and img.shape[1] == 160 and img.shape[0] == 120
    assert img.std() > 5  # a picture, not a blank frame
    # about fps x duration frames, not one per decoded frame
    assert 5 <= feed.frames_out <= 3 * 5 + 2

    hub.unsubscribe_jpeg(slot)
    deadline = time.monotonic() + 5
    while feed.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not feed.running  # the decoder thread ends with its last viewer
    before = feed.frames_out
    feed_file(hub, live_clips["hevc"], session_id=3, max_seconds=1)
    assert feed.frames_out == before

    # a new viewer restarts it, and gets a picture from the cached GOP straight away
    feed_file(hub, live_clips["hevc"], session_id=4, end_reason=None, max_seconds=0.5)
    slot2 = hub.subscribe_jpeg()
    assert slot2.get(timeout=5) is not None
    hub.close()
    assert not feed.running


def test_codec_mp4_cannot_hold_goes_to_mjpeg(tmp_path: Path) -> None:
    """MPEG-2 video cannot be put in fragmented MP4: viewers are told 'unsupported' at
    once (the page switches to the fallback) and the MJPEG fallback still decodes it."""
    clip = tmp_path / "mpeg2.ts"
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
         "testsrc2=size=320x240:rate=25", "-t", "3", "-c:v", "mpeg2video", "-g", "10",
         "-f", "mpegts", str(clip)],
        check=True, timeout=60,
    )
    hub = LiveHub("cam")
    early = hub.subscribe()
    slot = hub.subscribe_jpeg()
    late: list[Any] = []
    feed_file(hub, clip, speed=4.0, end_reason=None,
              on_packet=lambda p, r: late.append(hub.subscribe()) if len(late) == 0
              and r.fed > 20 else None)
    for v in (early, late[0]):
        first = v.get(timeout=1)
        assert isinstance(first, LiveNotice) and first.kind == "unsupported"
        assert "mpeg2video" in first.detail
    got = slot.get(timeout=5)
    assert got is not None and got[1][:2] == b"\xff\xd8"
    assert hub.snapshot_jpeg() is not None
    hub.close()
