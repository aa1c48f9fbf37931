"""LiveHub: fan-out of one stream to many viewers as fragmented MP4, never blocking ingest."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from pathlib import Path
from typing import Any

import av
import pytest

from tests.record.feeder import feed_file
from vigil.ingest.types import StreamSession, TimedPacket
from vigil.live import (
    LiveFragment,
    LiveHub,
    LiveInit,
    LiveItem,
    LiveNotice,
    LiveRegistry,
    LiveViewer,
)


def decode(items: list[LiveItem]) -> list[Any]:
    """Decode init + fragments as one file with PyAV; returns the decoded video frames."""
    init = next(i for i in items if isinstance(i, LiveInit))
    data = init.data + b"".join(i.data for i in items if isinstance(i, LiveFragment))
    frames = []
    with av.open(io.BytesIO(data)) as c:
        for pkt in c.demux(c.streams.video[0]):
            frames.extend(pkt.decode())
    return frames


def fragments(items: list[LiveItem]) -> list[LiveFragment]:
    return [i for i in items if isinstance(i, LiveFragment)]


@pytest.mark.parametrize("mode", ["frame", "gop"])
@pytest.mark.parametrize("variant", ["as_is", "annexb_from_mp4", "no_extradata"])
def test_many_viewers_get_decodable_identical_streams(
    live_clips: dict[str, Path], mode: str, variant: str
) -> None:
    hub = LiveHub("cam", mode=mode)  # type: ignore[arg-type]
    viewers = [hub.subscribe() for _ in range(8)]
    fed = feed_file(hub, live_clips["h264_aac"], variant=variant)
    streams = [v.drain() for v in viewers]
    first = streams[0]
    assert isinstance(first[0], LiveInit)
    # profile, constraint flags and level straight from the clip's SPS
    with av.open(str(live_clips["h264_aac"])) as c:
        sps = bytes(c.streams.video[0].codec_context.extradata)[1:4]
    assert first[0].mime == f'video/mp4; codecs="avc1.{sps.hex()},mp4a.40.2"'
    for other in streams[1:]:  # one muxing pass, shared bytes
        assert [i.data for i in other if not isinstance(i, LiveNotice)] == [
            i.data for i in first if not isinstance(i, LiveNotice)
        ]
    frames = decode(first)
    assert len(frames) == fed.fed_video
    assert frames[0].key_frame
    pts = [f.pts for f in frames]
    assert pts == sorted(pts)
    frags = fragments(first)
    if mode == "frame":
        assert len(frags) == fed.fed_video  # one fragment per frame
    else:
        assert all(f.keyframe for f in frags)  # one per GOP
        assert len(frags) == fed.fed_video // 10
    assert isinstance(first[-1], LiveNotice) and first[-1].detail == "eof"


def test_audio_passes_through(live_clips: dict[str, Path]) -> None:
    hub = LiveHub("cam")
    v = hub.subscribe()
    fed = feed_file(hub, live_clips["h264_aac"])
    items = v.drain()
    init = items[0]
    assert isinstance(init, LiveInit) and init.has_audio
    data = init.data + b"".join(f.data for f in fragments(items))
    with av.open(io.BytesIO(data)) as c:
        audio = [p for p in c.demux(c.streams.audio[0]) if p.size]
    # audio waiting for the next video frame when the clip ends is not sent
    assert fed.fed_audio - 5 <= len(audio) <= fed.fed_audio


def test_bframes_keep_presentation_order(live_clips: dict[str, Path]) -> None:
    hub = LiveHub("cam")
    v = hub.subscribe()
    fed = feed_file(hub, live_clips["h264_bframes"])
    frames = decode(v.drain())
    assert len(frames) == fed.fed_video
    pts = [f.pts for f in frames]
    assert pts == sorted(pts) and len(set(pts)) == len(pts)


def test_new_viewer_starts_at_latest_keyframe(live_clips: dict[str, Path]) -> None:
    hub = LiveHub("cam")
    early = hub.subscribe()
    late: list[LiveViewer] = []
    keyframes: list[int] = []  # media times of keyframes, as the hub numbers them
    seen = {"video": 0}

    def on_packet(pkt: TimedPacket, _r: object) -> None:
        if pkt.kind != "video":
            return
        seen["video"] += 1
        if pkt.keyframe:
            keyframes.append(pkt.dts_us)
        if seen["video"] == 37:  # 7 frames into the 4th GOP
            late.append(hub.subscribe())

    fed = feed_file(hub, live_clips["h264"], on_packet=on_packet)
    items = late[0].drain()
    assert isinstance(items[0], LiveInit)
    first = items[1]
    assert isinstance(first, LiveFragment) and first.keyframe
    assert first.media_us == keyframes[3]  # the 4th keyframe, not the 5th nor frame 37
    frames = decode(items)
    assert frames[0].key_frame
    assert len(frames) == fed.fed_video - 30  # 30 frames before the 4th keyframe
    # the early viewer is unaffected by the late one
    assert len(decode(early.drain())) == fed.fed_video


def test_viewer_between_sessions_waits_for_next_init(live_clips: dict[str, Path]) -> None:
    hub = LiveHub("cam")
    feed_file(hub, live_clips["h264"], max_seconds=1)
    v = hub.subscribe()  # camera is offline now: nothing to send yet
    assert v.drain() == []
    fed = feed_file(hub, live_clips["h264"], session_id=2)
    items = v.drain()
    assert isinstance(items[0], LiveInit) and items[0].session_id == 2
    assert len(decode(items)) == fed.fed_video


def test_slow_viewer_disconnected_with_bounded_memory(live_clips: dict[str, Path]) -> None:
    hub = LiveHub("cam")
    slow = hub.subscribe(max_bytes=60_000)
    fast = [hub.subscribe() for _ in range(3)]
    received: list[list[LiveItem]] = [[] for _ in fast]
    peak = {"slow": 0}

    def on_packet(_pkt: TimedPacket, _r: object) -> None:
        peak["slow"] = max(peak["slow"], slow.queued_bytes)
        for v, out in zip(fast, received, strict=True):
            out.extend(v.drain())  # the fast viewers keep up

    fed = feed_file(hub, live_clips["h264"], on_packet=on_packet)
    for v, out in zip(fast, received, strict=True):
        out.extend(v.drain())
    assert slow.closed_reason == "slow"
    assert peak["slow"] <= 60_000
    assert slow.queued_bytes == 0  # its queue was freed when it was cut off
    assert slow.get(timeout=0) is None
    assert hub.stats().slow_disconnects == 1
    assert hub.viewer_count == 3
    for out in received:
        assert len(decode(out)) == fed.fed_video


def test_session_change_sends_new_init_and_time_runs_on(live_clips: dict[str, Path]) -> None:
    hub = LiveHub("cam")
    v = hub.subscribe()
    feed_file(hub, live_clips["h264"], session_id=1, end_reason="disconnected")
    feed_file(hub, live_clips["hevc"], session_id=2)
    items = v.drain()
    inits = [i for i in items if isinstance(i, LiveInit)]
    notices = [i for i in items if isinstance(i, LiveNotice)]
    assert [i.session_id for i in inits] == [1, 2]
    assert inits[1].codecs.startswith(("hev1.", "hvc1."))
    assert [n.detail for n in notices] == ["disconnected", "eof"]
    one = [f for f in fragments(items) if f.session_id == 1]
    two = [f for f in fragments(items) if f.session_id == 2]
    assert two[0].media_us > one[-1].media_us  # media time never goes backwards
    assert inits[1].media_us == two[0].media_us
    cut = items.index(inits[1])
    assert len(decode(items[:cut])) == len(one)
    assert len(decode(items[cut:])) == len(two)


def test_wall_clock_anchor(live_clips: dict[str, Path]) -> None:
    hub = LiveHub("cam")
    v = hub.subscribe()
    feed_file(hub, live_clips["h264"], wall_start_us=1_700_000_000_000_000)
    items = v.drain()
    init = items[0]
    assert isinstance(init, LiveInit)
    for f in fragments(items):
        # wall = anchor + (media - anchor media): what the UI computes for the clock
        assert abs(init.wall_us + (f.media_us - init.media_us) - f.wall_us) < 2_000


class _TimedSink:
    """Wraps a hub and measures how long each ingest call takes."""

    def __init__(self, hub: LiveHub) -> None:
        self.hub = hub
        self.worst = 0.0

    def session_started(self, session: StreamSession) -> None:
        self.hub.session_started(session)

    def packet(self, session: StreamSession, pkt: TimedPacket) -> None:
        t = time.perf_counter()
        self.hub.packet(session, pkt)
        self.worst = max(self.worst, time.perf_counter() - t)

    def session_ended(self, session: StreamSession, reason: str) -> None:
        self.hub.session_ended(session, reason)


async def test_async_viewers_and_ingest_never_waits(live_clips: dict[str, Path]) -> None:
    """Viewers on an event loop, ingest on its own thread (as in the server): a viewer that
    never reads is cut off, the ingest thread never waits, the others get every frame."""
    loop = asyncio.get_running_loop()
    hub = LiveHub("cam", viewer_max_bytes=100_000)
    sink = _TimedSink(hub)
    stuck = hub.subscribe(loop)  # never awaited
    readers = [hub.subscribe(loop, max_bytes=4_000_000) for _ in range(5)]

    async def read(v: LiveViewer) -> list[LiveItem]:
        out: list[LiveItem] = []
        while True:
            item = await v.next()
            if item is None:
                return out
            out.append(item)
            if isinstance(item, LiveNotice):
                hub.unsubscribe(v)

    tasks = [asyncio.create_task(read(v)) for v in readers]
    done = threading.Event()
    result: dict[str, Any] = {}

    def ingest() -> None:
        result["fed"] = feed_file(sink, live_clips["h264"], speed=8.0)
        done.set()

    t = threading.Thread(target=ingest)
    t.start()
    outs = await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
    t.join()
    assert stuck.closed_reason == "slow"
    assert sink.worst < 0.05, f"ingest waited {sink.worst * 1000:.1f} ms in the hub"
    for out in outs:
        assert len(decode(out)) == result["fed"].fed_video


def test_registry_falls_back_to_main() -> None:
    reg = LiveRegistry()
    main = reg.create("door", "main")
    assert reg.get("door", "sub") is main
    sub = reg.create("door", "sub")
    assert reg.get("door", "sub") is sub and reg.get("door", "main") is main
    assert reg.get("yard") is None
    only_sub = reg.create("yard", "sub")
    assert reg.get("yard", "main") is only_sub
    assert reg.cameras() == ["door", "yard"]
    v = main.subscribe()
    reg.close()
    assert v.closed_reason == "hub_closed"


class _ClaimsWrongDurations:
    """Passes packets on with a duration that is not the real spacing (cameras do that)."""

    def __init__(self, hub: LiveHub) -> None:
        self.hub = hub

    def session_started(self, session: StreamSession) -> None:
        self.hub.session_started(session)

    def packet(self, session: StreamSession, pkt: TimedPacket) -> None:
        pkt.duration_us = 12_345
        self.hub.packet(session, pkt)

    def session_ended(self, session: StreamSession, reason: str) -> None:
        self.hub.session_ended(session, reason)


@pytest.mark.parametrize("mode", ["frame", "gop"])
def test_catch_up_timestamps_match_the_live_ones(live_clips: dict[str, Path], mode: str) -> None:
    """A late viewer's catch-up GOP (one multi-sample run) decodes to exactly the times the
    early viewer got frame by frame, so the live fragments after it join without overlap."""
    hub = LiveHub("cam", mode=mode)  # type: ignore[arg-type]
    early = hub.subscribe()
    late: list[LiveViewer] = []

    def on_packet(pkt: TimedPacket, r: Any) -> None:
        if pkt.kind == "video" and r.fed_video == 45 and not late:
            late.append(hub.subscribe())

    feed_file(_ClaimsWrongDurations(hub), live_clips["h264_aac"], on_packet=on_packet)
    early_pts = [f.pts for f in decode(early.drain())]
    late_pts = [f.pts for f in decode(late[0].drain())]
    assert late_pts and late_pts == early_pts[-len(late_pts):]
    assert late_pts == sorted(late_pts)
