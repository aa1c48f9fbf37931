"""WebRTC passthrough: the per-peer track fed by the live hub (Annex B access units with
parameter sets, keyframe start, bounded queues), the refusal of H.265, and a real aiortc
peer on this machine receiving the stream over RTP and decoding it."""

from __future__ import annotations

import asyncio
import itertools
import threading
from pathlib import Path
from typing import Any

import av
import pytest

from tests.record.feeder import feed_file
from vigil.live import LiveHub
from vigil.live.webrtc import (
    RTP_CLOCK,
    IceServer,
    RtcError,
    RtcPeers,
    RtcUnsupported,
    rtc_configuration,
    strip_mdns_candidates,
)
from vigil.record import bitstream as bs


def drain(track: Any) -> list[tuple[Any, int]]:
    out = []
    while True:
        got = track.get_packet(timeout=0)
        if got is None:
            return out
        out.append(got)


def decode_annexb(units: list[bytes]) -> list[Any]:
    """Decode Annex B access units with a fresh H.264 decoder (no extradata: everything it
    needs must be in the stream)."""
    ctx = av.CodecContext.create("h264", "r")
    frames = []
    for data in units:
        frames.extend(ctx.decode(av.Packet(data)))
    frames.extend(ctx.decode(None))
    return frames


@pytest.mark.parametrize("variant", ["as_is", "annexb_from_mp4", "no_extradata"])
def test_track_delivers_annexb_with_parameter_sets(
    live_clips: dict[str, Path], variant: str
) -> None:
    hub = LiveHub("cam")
    track = hub.subscribe_rtc()
    track.max_frames = 1000  # read after the whole clip went in
    fed = feed_file(hub, live_clips["h264"], variant=variant)
    got = drain(track)
    assert len(got) == fed.fed_video
    units = [au for au, _ts in got]
    assert units[0].keyframe
    for au in units:
        assert au.data[:4] == bs.START_CODE  # Annex B, whatever ingest handed over
        if au.keyframe:
            nals = bs.split_annexb(au.data)
            assert bs.has_all_parameter_sets("h264", nals[:2]), "SPS/PPS lead a keyframe"
    frames = decode_annexb([au.data for au in units])
    assert len(frames) == fed.fed_video
    assert (frames[0].width, frames[0].height) == (320, 240)
    # 90 kHz timestamps from capture wall time: 25 fps -> 3600 ticks apart
    ts = [t for _au, t in got]
    steps = {b - a for a, b in itertools.pairwise(ts)}
    assert steps == {RTP_CLOCK // 25}


def test_late_peer_starts_at_newest_keyframe_and_catches_up(live_clips: dict[str, Path]) -> None:
    hub = LiveHub("cam")
    box: dict[str, Any] = {}

    def on_packet(pkt: Any, res: Any) -> None:
        # subscribe in the middle of the second GOP (frames 10..19; GOP of 10)
        if pkt.kind == "video" and res.fed_video == 15 and "track" not in box:
            box["track"] = hub.subscribe_rtc()
            box["track"].max_frames = 1000

    fed = feed_file(hub, live_clips["h264"], on_packet=on_packet)
    got = drain(box["track"])
    assert got[0][0].keyframe
    # the catch-up burst (frames 10..14) one tick apart, then the live frames on the clock
    ts = [t for _au, t in got]
    assert [b - a for a, b in itertools.pairwise(ts[:5])] == [1, 1, 1, 1]
    assert ts[5] - ts[4] == RTP_CLOCK // 25
    assert len(got) == fed.fed_video - 10
    assert len(decode_annexb([au.data for au, _ in got])) == len(got)


def test_slow_peer_drops_to_next_keyframe_and_never_blocks_ingest(
    live_clips: dict[str, Path],
) -> None:
    hub = LiveHub("cam")
    slow = hub.subscribe_rtc()
    slow.max_frames = 6  # never read while the clip goes through (GOPs of 10 frames)
    fast = hub.subscribe_rtc()
    fast_got: list[Any] = []
    stop = threading.Event()

    def read_fast() -> None:
        while not stop.is_set():
            got = fast.get_packet(timeout=0.05)
            if got is not None:
                fast_got.append(got)

    reader = threading.Thread(target=read_fast)
    reader.start()
    # 100 fps (a reader keeps up); up to frame 73, four frames into the last GOP
    fed = feed_file(hub, live_clips["h264"], speed=4.0, max_seconds=2.93)
    stop.set()
    reader.join(5)
    fast_got += drain(fast)
    assert len(fast_got) == fed.fed_video  # the other peer lost nothing
    assert slow.overflows > 0 and slow.dropped > 0
    left = drain(slow)
    # each GOP overflowed at its 7th frame and the rest of it was dropped; what the slow
    # peer holds now is the last GOP's start: a keyframe, so decodable
    assert fed.fed_video == 74 and len(left) == 4
    assert left[0][0].keyframe
    assert len(decode_annexb([au.data for au, _ in left])) == len(left)


def test_h265_is_refused_and_ends_h264_peers_on_codec_change(live_clips: dict[str, Path]) -> None:
    hub = LiveHub("cam")
    track = hub.subscribe_rtc()
    feed_file(hub, live_clips["h264"], max_seconds=0.5, end_reason="reconnect")
    assert drain(track)
    feed_file(hub, live_clips["hevc"], session_id=2, max_seconds=0.5, end_reason=None)
    assert track.end_reason == "unsupported_codec"
    assert track.get_packet(timeout=0) is None
    assert hub.video_codec == "hevc"
    with pytest.raises(RtcUnsupported, match="hevc"):
        hub.subscribe_rtc()


def test_configuration_has_only_configured_ice_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    from aiortc.rtcicetransport import RTCIceGatherer

    assert rtc_configuration([]).iceServers == []  # never None: aiortc would use Google's
    conf = rtc_configuration([IceServer(("turn:t.example:3478",), "u", "p")])
    assert [(s.urls, s.username, s.credential) for s in conf.iceServers] == [
        (["turn:t.example:3478"], "u", "p")
    ]

    def forbidden(cls: Any) -> Any:
        raise AssertionError("aiortc's default (Google) STUN server was asked for")

    monkeypatch.setattr(RTCIceGatherer, "getDefaultIceServers", classmethod(forbidden))
    gatherer = RTCIceGatherer(iceServers=conf.iceServers[:0])
    assert gatherer._connection.stun_server is None
    assert gatherer._connection.turn_server is None


def test_mdns_candidates_are_dropped_from_offers() -> None:
    sdp = (
        "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
        "a=candidate:1 1 udp 2122260223 0a1b2c3d-aaaa-bbbb-cccc-0123456789ab.local 50000 "
        "typ host generation 0\r\n"
        "a=candidate:2 1 udp 2122260223 192.0.2.7 50001 typ host generation 0\r\n"
    )
    out = strip_mdns_candidates(sdp)
    assert ".local" not in out
    assert "192.0.2.7 50001" in out


async def _loopback(hub: LiveHub, clip: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.rtcicetransport import RTCIceGatherer

    def forbidden(cls: Any) -> Any:
        raise AssertionError("aiortc's default (Google) STUN server was asked for")

    monkeypatch.setattr(RTCIceGatherer, "getDefaultIceServers", classmethod(forbidden))
    peers = RtcPeers(max_peers=2, max_peers_per_user=1)
    client = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    client.addTransceiver("video", direction="recvonly")
    frames: list[Any] = []
    got_track: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    @client.on("track")  # type: ignore[untyped-decorator]
    def on_track(track: Any) -> None:
        got_track.set_result(track)

    await client.setLocalDescription(await client.createOffer())
    peer_id, answer = await peers.answer(hub, client.localDescription.sdp, owner=1)
    assert "typ srflx" not in answer and "typ relay" not in answer  # host candidates only
    assert "H264/90000" in answer and "VP8" not in answer
    with pytest.raises(RtcError) as limit:
        await peers.answer(hub, client.localDescription.sdp, owner=1)
    assert limit.value.status == 429
    await client.setRemoteDescription(RTCSessionDescription(answer, "answer"))

    stop = threading.Event()
    feeder = threading.Thread(
        target=lambda: feed_file(hub, clip, speed=1.0, stop=stop, end_reason=None)
    )
    feeder.start()
    try:
        track = await asyncio.wait_for(got_track, 20)
        while len(frames) < 40:
            frames.append(await asyncio.wait_for(track.recv(), 20))
        state = client.connectionState
    finally:
        stop.set()
        await asyncio.get_running_loop().run_in_executor(None, feeder.join, 10)
        await client.close()
        await peers.close(peer_id)
    return {"frames": frames, "state": state, "peers_left": len(peers)}


def test_aiortc_peer_receives_and_decodes_the_passthrough(
    live_clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = LiveHub("cam")
    out = asyncio.run(_loopback(hub, live_clips["h264"], monkeypatch))
    frames = out["frames"]
    assert out["state"] == "connected"
    assert len(frames) >= 40
    assert {(f.width, f.height) for f in frames} == {(320, 240)}
    # moving picture: decoded frames differ
    first, last = frames[0].to_ndarray(format="gray"), frames[-1].to_ndarray(format="gray")
    assert abs(first.astype(int) - last.astype(int)).mean() > 1.0
    assert out["peers_left"] == 0
    assert hub._rtc is not None and hub._rtc.peer_count == 0


def test_concurrent_offers_cannot_exceed_the_limits() -> None:
    from aiortc import RTCConfiguration, RTCPeerConnection

    async def run() -> list[Any]:
        hub = LiveHub("cam")
        peers = RtcPeers(max_peers=3, max_peers_per_user=2)
        client = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        client.addTransceiver("video", direction="recvonly")
        await client.setLocalDescription(await client.createOffer())
        offer = client.localDescription.sdp
        got = await asyncio.gather(
            *(peers.answer(hub, offer, owner=1) for _ in range(4)), return_exceptions=True
        )
        assert len(peers) == 2
        await peers.close_all()
        await client.close()
        return got

    got = asyncio.run(run())
    refused = [g for g in got if isinstance(g, RtcError)]
    assert len(refused) == 2 and {r.status for r in refused} == {429}
