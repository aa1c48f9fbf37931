"""WebRTC live view: a camera's H.264 passed through to browsers, never decoded.

Why WebRTC next to fMP4 over a WebSocket: a browser plays MSE from a buffer it fills
ahead of the playhead, so the page has to chase the live edge; WebRTC's jitter buffer is
built to hold only what the network's jitter needs. Why passthrough: a camera's H.264 is
already what WebRTC carries, and decoding plus re-encoding a 1080p stream per viewer would
cost a core each. aiortc's ``RTCRtpSender`` accepts ``av.Packet`` objects from a track's
``recv()`` and packetizes them with its H.264 encoder's ``pack()`` (RFC 6184 STAP-A/FU-A;
the bytes must be Annex B), the same path as its ``MediaPlayer(decode=False)``.

Pieces:

* :class:`RtcFeed` - one per :class:`~vigil.live.hub.LiveHub` (so per camera stream),
  called by the hub on the camera's ingest thread. It turns each video packet into one
  Annex B access unit with SPS/PPS in front of every keyframe (ingest may deliver
  length-prefixed units with an avcC record, or Annex B with in-band or out-of-band
  parameter sets), once for all peers, and hands it to each peer's track. With no peer it
  does nothing but follow the session's codec.
* :class:`H264PassthroughTrack` - the ``MediaStreamTrack`` of one peer: a bounded queue
  read by aiortc on the event loop. A new peer starts at the hub's newest keyframe (the
  frames of the current GOP are sent at once, with RTP timestamps one tick apart, so the
  browser decodes them and shows the newest without waiting a GOP). A peer that does not
  keep up loses its queue and waits for the next keyframe; ingest and the other peers
  never wait for it.
* :class:`RtcPeers` - the peer connections of one API process: answers an SDP offer
  (non-trickle: aiortc gathers its candidates before answering), enforces the peer
  limits, closes peers that fail, are closed by the client, lose their credentials or are
  left over at shutdown.

No outbound connection the operator did not configure: aiortc uses Google's STUN server
when it is given no ICE servers (``iceServers=None``); :func:`rtc_configuration` always
passes the configured list, empty by default. mDNS host candidates of the browser
(``*.local``) are dropped from the offer so that aiortc never sends multicast DNS queries
to resolve them; the browser's connectivity checks to the server's host candidates then
make the connection (peer-reflexive candidates, RFC 8445 7.3.1.3).
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import re
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from vigil.ingest.types import StreamSession, TimedPacket
from vigil.live.viewer import _Waker
from vigil.record import bitstream as bs

log = logging.getLogger(__name__)

RTP_CLOCK = 90_000
TIME_BASE = fractions.Fraction(1, RTP_CLOCK)
DEFAULT_QUEUE_FRAMES = 60
DEFAULT_QUEUE_BYTES = 4 * 1024 * 1024
_RECENTLY_CLOSED = 512
_TS_START = 10 * RTP_CLOCK  # leaves room below for the catch-up GOP's timestamps
_MDNS_CANDIDATE = re.compile(r"^a=candidate:\S+ \d+ \S+ \d+ \S+\.local \d+ .*$", re.IGNORECASE)


class RtcUnsupported(Exception):
    """WebRTC cannot carry this stream (only H.264 is passed through)."""


@dataclass(frozen=True, slots=True)
class AccessUnit:
    """One video frame as WebRTC sends it: Annex B, SPS/PPS in front of a keyframe.
    ``wall_us`` is the capture time of its presentation instant."""

    data: bytes
    keyframe: bool
    wall_us: int


class _Stream:
    """Turns one session's packets into access units (parameter sets as needed)."""

    def __init__(self, session: StreamSession) -> None:
        self.session = session
        self.codec = session.video.codec
        self.length_size = 4
        self.param_sets: list[bytes] = []
        extradata = session.video.extradata
        if extradata is None and session.video_template is not None:
            ctx = getattr(session.video_template, "codec_context", None)
            raw = getattr(ctx, "extradata", None) if ctx is not None else None
            extradata = bytes(raw) if raw else None
        if self.codec == "h264" and extradata:
            try:
                if bs.is_config_record(extradata):
                    self.length_size, nals = bs.parse_config_record("h264", extradata)
                else:
                    nals = bs.split_annexb(extradata)
                self.param_sets = bs.parameter_sets("h264", nals)
            except (ValueError, IndexError) as exc:
                log.info("%s: unreadable H.264 extradata (%s); using in-band sets",
                         session.camera, exc)

    def unit(self, data: bytes, keyframe: bool, wall_us: int) -> AccessUnit | None:
        """The access unit of one packet, or None for a keyframe whose parameter sets
        are not known yet (nothing could decode from it)."""
        nals, _annexb = bs.split_nals(data, self.length_size)
        if not nals:
            return None
        if keyframe:
            inband = bs.parameter_sets("h264", nals)
            if bs.has_all_parameter_sets("h264", inband):
                self.param_sets = inband  # the camera's newest sets win
            elif bs.has_all_parameter_sets("h264", self.param_sets):
                nals = [n for n in nals if not bs.is_parameter_set("h264", n)]
                nals = self.param_sets + nals
            else:
                return None
        return AccessUnit(bs.join_annexb(nals), keyframe, wall_us)


_TRACK_CLASS: Any = None


def passthrough_track_class() -> Any:
    """The ``MediaStreamTrack`` class of one peer (built on first use, so that importing
    this module does not import aiortc): ``recv()`` returns the camera's H.264 as
    ``av.Packet`` with 90 kHz timestamps, which aiortc packetizes; nothing is encoded."""
    global _TRACK_CLASS
    if _TRACK_CLASS is not None:
        return _TRACK_CLASS
    import av
    from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

    class H264PassthroughTrack(MediaStreamTrack):  # type: ignore[misc]
        kind = "video"

        def __init__(
            self,
            feed: RtcFeed,
            loop: asyncio.AbstractEventLoop | None,
            max_frames: int,
            max_bytes: int,
        ) -> None:
            super().__init__()
            self.feed = feed
            self.max_frames = max_frames
            self.max_bytes = max_bytes
            self._lock = threading.Lock()
            self._cond = threading.Condition(self._lock)
            self._items: deque[tuple[AccessUnit, int]] = deque()
            self._bytes = 0
            self._waker = _Waker(loop)
            self.need_keyframe = True
            self.end_reason: str | None = None
            self.dropped = 0  # frames thrown away because this peer fell behind
            self.overflows = 0
            self.sent = 0
            self._anchor: tuple[int, int] | None = None  # (wall_us, rtp ticks)
            self._floor = 0  # timestamps stay above the catch-up burst

        # -- producer (ingest thread) -----------------------------------------------------

        def _ticks(self, wall_us: int) -> int:
            if self._anchor is None:
                self._anchor = (wall_us, _TS_START)
            w0, t0 = self._anchor
            return max(self._floor, t0 + (wall_us - w0) * RTP_CLOCK // 1_000_000)

        def start_with(self, units: list[AccessUnit]) -> None:
            """The current GOP (first one a keyframe): decodable at once. The newest
            anchors the clock; the older ones get timestamps one tick apart below it, so
            the browser decodes them and catches up instead of playing them out."""
            with self._lock:
                if not units or not units[0].keyframe or self.end_reason is not None:
                    return
                n = len(units)
                self._anchor = (units[-1].wall_us, _TS_START)
                self._floor = _TS_START
                self.need_keyframe = False
                for i, au in enumerate(units):
                    self._put_locked(au, _TS_START - (n - 1 - i))
                self._floor = _TS_START + 1

        def offer(self, au: AccessUnit) -> None:
            """Queue one access unit; never blocks (beyond a short lock)."""
            with self._lock:
                if self.end_reason is not None:
                    return
                if self.need_keyframe:
                    if not au.keyframe:
                        return
                    self.need_keyframe = False
                full = self._bytes + len(au.data) > self.max_bytes
                if len(self._items) >= self.max_frames or full:
                    # fell behind: what is queued is stale; start again at a keyframe
                    self.dropped += len(self._items)
                    self.overflows += 1
                    self._items.clear()
                    self._bytes = 0
                    if not au.keyframe:
                        self.need_keyframe = True
                        self.dropped += 1
                        return
                ts = self._ticks(au.wall_us)
                self._put_locked(au, ts)

        def _put_locked(self, au: AccessUnit, ts: int) -> None:
            self._items.append((au, ts))
            self._bytes += len(au.data)
            self._cond.notify_all()
            if not self._waker.schedule():
                self._end_locked("loop_closed")

        def restart(self) -> None:
            """A new camera session: wait for its first keyframe (with its parameter
            sets); the clock runs on (wall time)."""
            with self._lock:
                self.need_keyframe = True

        def end(self, reason: str) -> None:
            with self._lock:
                self._end_locked(reason)

        def _end_locked(self, reason: str) -> None:
            if self.end_reason is None:
                self.end_reason = reason
            self._items.clear()
            self._bytes = 0
            self._cond.notify_all()
            self._waker.schedule()

        # -- consumer (aiortc's sender, on the event loop) ----------------------------------

        async def recv(self) -> Any:
            if self.readyState != "live":
                raise MediaStreamError
            event = self._waker.event
            if event is None:
                raise RuntimeError("this track was made without an event loop")
            item: tuple[AccessUnit, int] | None = None
            while True:
                with self._lock:
                    if self._items:
                        item = self._items.popleft()
                        self._bytes -= len(item[0].data)
                        break
                    if self.end_reason is not None:
                        break
                    self._waker.arm()
                await event.wait()
            if item is None:
                self.stop()
                raise MediaStreamError
            au, ts = item
            pkt = av.Packet(au.data)
            pkt.pts = ts
            pkt.dts = ts
            pkt.time_base = TIME_BASE
            pkt.is_keyframe = au.keyframe
            self.sent += 1
            return pkt

        def get_packet(self, timeout: float | None = None) -> tuple[AccessUnit, int] | None:
            """Blocking read for threads (tests); None on end or timeout."""
            deadline = None if timeout is None else time.monotonic() + timeout
            with self._cond:
                while not self._items:
                    if self.end_reason is not None:
                        return None
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        return None
                    self._cond.wait(left)
                au, ts = self._items.popleft()
                self._bytes -= len(au.data)
                return au, ts

        @property
        def queued(self) -> int:
            with self._lock:
                return len(self._items)

        def stop(self) -> None:
            super().stop()
            self.end("stopped")
            self.feed.remove(self)

    _TRACK_CLASS = H264PassthroughTrack
    return H264PassthroughTrack


class RtcFeed:
    """The WebRTC side of one :class:`~vigil.live.hub.LiveHub`: called by the hub on the
    ingest thread (only while it exists; the hub makes it on the first peer)."""

    def __init__(
        self,
        camera: str,
        stream: str = "main",
        *,
        max_frames: int = DEFAULT_QUEUE_FRAMES,
        max_bytes: int = DEFAULT_QUEUE_BYTES,
    ) -> None:
        self.camera = camera
        self.stream = stream
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._tracks: list[Any] = []
        self._s: _Stream | None = None
        self._codec: str | None = None
        self._closed = False

    @property
    def codec(self) -> str | None:
        """FFmpeg name of the current session's video codec, None without a session."""
        return self._codec

    @property
    def peer_count(self) -> int:
        with self._lock:
            return len(self._tracks)

    # -- from the hub (ingest thread) -------------------------------------------------------

    def session_started(self, session: StreamSession) -> None:
        stream = _Stream(session) if session.video.codec == "h264" else None
        with self._lock:
            self._codec = session.video.codec
            self._s = stream
            tracks = list(self._tracks)
            if stream is None:
                self._tracks = []
        for t in tracks:
            if stream is None:
                t.end("unsupported_codec")  # the client falls back to MSE / MJPEG
            else:
                t.restart()

    def offer(self, session: StreamSession, data: bytes, keyframe: bool, wall_us: int) -> None:
        """One video packet of ``session`` (called by the hub, under its lock)."""
        s = self._s
        if s is None or s.session is not session or not self._tracks:
            return
        au = s.unit(data, keyframe, wall_us)
        if au is None:
            return
        with self._lock:
            tracks = list(self._tracks)
        for t in tracks:
            t.offer(au)

    def packet(self, session: StreamSession, pkt: TimedPacket) -> None:
        """``PacketSink``-style entry (a feed used without a hub, e.g. in tests)."""
        if pkt.kind == "video":
            self.offer(session, pkt.data, pkt.keyframe, pkt.wall_us)

    def session_ended(self, session: StreamSession, reason: str) -> None:
        with self._lock:
            if self._s is not None and self._s.session is session:
                self._s = None

    # -- peers ------------------------------------------------------------------------------

    def subscribe(
        self,
        loop: asyncio.AbstractEventLoop | None,
        session: StreamSession | None,
        backlog: list[tuple[bytes, bool, int]],
    ) -> Any:
        """A new peer's track. ``session``/``backlog`` are the hub's current session and
        its video packets since the newest keyframe (data, keyframe, wall_us): the peer
        starts there. Raises :class:`RtcUnsupported` when the camera does not send H.264
        right now."""
        cls = passthrough_track_class()
        with self._lock:
            codec = session.video.codec if session is not None else self._codec
            if codec is not None and codec != "h264":
                raise RtcUnsupported(
                    f"this camera sends {codec}; WebRTC here carries H.264 only"
                )
            track = cls(self, loop, self.max_frames, self.max_bytes)
            if self._closed:
                track.end("hub_closed")
                return track
            if session is not None and (self._s is None or self._s.session is not session):
                self._s = _Stream(session)  # made mid-session: no session_started seen
                self._codec = codec
            s = self._s
            self._tracks.append(track)
        if s is not None and session is s.session and backlog:
            units: list[AccessUnit] = []
            for data, key, wall_us in backlog:
                au = s.unit(data, key, wall_us)
                if au is None:
                    units = []
                    break
                units.append(au)
            if units and units[0].keyframe:
                track.start_with(units)
        return track

    def remove(self, track: Any) -> None:
        with self._lock:
            if track in self._tracks:
                self._tracks.remove(track)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            tracks, self._tracks = self._tracks, []
        for t in tracks:
            t.end("hub_closed")


# -- peer connections ------------------------------------------------------------------------


def strip_mdns_candidates(sdp: str) -> str:
    """The offer without ``*.local`` host candidates (see the module docs)."""
    lines = sdp.splitlines()
    kept = [ln for ln in lines if not _MDNS_CANDIDATE.match(ln)]
    return "\r\n".join(kept) + "\r\n"


@dataclass(frozen=True, slots=True)
class IceServer:
    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None


def rtc_configuration(ice_servers: list[IceServer] | tuple[IceServer, ...]) -> Any:
    """aiortc's configuration with exactly the configured ICE servers. Never leave
    ``iceServers`` as None: aiortc then contacts stun.l.google.com."""
    from aiortc import RTCConfiguration, RTCIceServer

    return RTCConfiguration(
        iceServers=[
            RTCIceServer(urls=list(s.urls), username=s.username, credential=s.credential)
            for s in ice_servers
        ]
    )


class RtcError(Exception):
    """A refused WebRTC request; ``status``/``code`` map to the API's error shape."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class _Peer:
    id: str
    owner: int
    camera: str
    stream: str
    pc: Any
    track: Any
    created: float = field(default_factory=time.monotonic)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    closed: bool = False


class RtcPeers:
    """Peer connections of one API process (all on its event loop).

    :param ice_servers: the configured STUN/TURN servers (default none).
    :param max_peers: peers at once, all users together.
    :param max_peers_per_user: peers at once per account.
    :param connect_timeout: a peer not connected by then is closed.
    :param revalidate: seconds between checks that the peer's credentials still hold.
    """

    def __init__(
        self,
        ice_servers: list[IceServer] | tuple[IceServer, ...] = (),
        *,
        max_peers: int = 16,
        max_peers_per_user: int = 4,
        connect_timeout: float = 30.0,
        revalidate: float = 5.0,
    ) -> None:
        self.ice_servers = tuple(ice_servers)
        self.max_peers = max_peers
        self.max_peers_per_user = max_peers_per_user
        self.connect_timeout = connect_timeout
        self.revalidate = revalidate
        self._peers: dict[str, _Peer] = {}
        # recently closed peers (id -> owner, camera): a client's DELETE racing the
        # peer's own close is answered as done, not as unknown
        self._closed: OrderedDict[str, tuple[int, str]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._peers)

    def count(self, owner: int) -> int:
        return sum(1 for p in self._peers.values() if p.owner == owner)

    def peer(self, peer_id: str) -> _Peer | None:
        return self._peers.get(peer_id)

    def closed_peer(self, peer_id: str) -> tuple[int, str] | None:
        """(owner, camera) of a peer closed recently, or None."""
        return self._closed.get(peer_id)

    def check_limits(self, owner: int) -> None:
        if len(self._peers) >= self.max_peers:
            raise RtcError(429, "too_many_peers",
                           f"this server already serves {self.max_peers} WebRTC viewers")
        if self.count(owner) >= self.max_peers_per_user:
            raise RtcError(429, "too_many_peers",
                           f"at most {self.max_peers_per_user} WebRTC views per account")

    async def answer(
        self,
        hub: Any,
        offer_sdp: str,
        *,
        owner: int,
        still_valid: Callable[[], Awaitable[bool]] | None = None,
    ) -> tuple[str, str]:
        """Answer ``offer_sdp`` with a peer that sends ``hub``'s video. Returns (peer id,
        answer SDP). Raises :class:`RtcError`."""
        from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription

        self.check_limits(owner)
        if "m=video" not in offer_sdp:
            raise RtcError(400, "bad_offer", "the offer has no video section")
        loop = asyncio.get_running_loop()
        try:
            track = hub.subscribe_rtc(loop)
        except RtcUnsupported as exc:
            raise RtcError(409, "unsupported_codec", str(exc)) from exc
        pc = RTCPeerConnection(rtc_configuration(self.ice_servers))
        peer = _Peer(secrets.token_urlsafe(12), owner, hub.camera, hub.stream, pc, track)
        self._peers[peer.id] = peer  # counted from now on: concurrent offers see it
        try:
            transceiver = pc.addTransceiver(track, direction="sendonly")
            h264 = [
                c for c in RTCRtpSender.getCapabilities("video").codecs
                if c.mimeType.lower() in ("video/h264", "video/rtx")
            ]
            transceiver.setCodecPreferences(h264)
            try:
                await pc.setRemoteDescription(
                    RTCSessionDescription(strip_mdns_candidates(offer_sdp), "offer")
                )
            except Exception as exc:  # aiortc raises ValueError and its own errors
                kind = type(exc).__name__
                if "codec" in str(exc).lower() or kind == "OperationError":
                    raise RtcError(400, "bad_offer",
                                   "the offer accepts no H.264 video") from exc
                raise RtcError(400, "bad_offer", f"unusable SDP offer ({kind})") from exc
            await pc.setLocalDescription(await pc.createAnswer())
        except BaseException:
            self._peers.pop(peer.id, None)
            track.stop()
            await pc.close()
            raise
        if peer.id not in self._peers:  # closed while answering (shutdown)
            raise RtcError(503, "unavailable", "the server is shutting down")

        @pc.on("connectionstatechange")  # type: ignore[untyped-decorator]
        async def _state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self.close(peer.id)

        peer.tasks.append(asyncio.ensure_future(self._watch(peer, still_valid)))
        log.info("%s/%s: WebRTC peer %s for user %d", hub.camera, hub.stream, peer.id, owner)
        return peer.id, pc.localDescription.sdp

    async def _watch(
        self, peer: _Peer, still_valid: Callable[[], Awaitable[bool]] | None
    ) -> None:
        """Close the peer when it never connects, its track ends (camera gone for good,
        codec change) or its credentials lapse."""
        next_check = time.monotonic() + self.revalidate
        while not peer.closed:
            await asyncio.sleep(0.5)
            if peer.closed:
                return
            now = time.monotonic()
            if peer.pc.connectionState != "connected" and now - peer.created > self.connect_timeout:
                log.info("WebRTC peer %s did not connect in %.0f s", peer.id, self.connect_timeout)
                break
            if peer.track.end_reason not in (None, "stopped"):
                break
            if still_valid is not None and now >= next_check:
                next_check = now + self.revalidate
                if not await still_valid():
                    log.info("WebRTC peer %s: credentials no longer valid", peer.id)
                    break
        await self.close(peer.id)

    async def close(self, peer_id: str) -> bool:
        peer = self._peers.pop(peer_id, None)
        if peer is None:
            return False
        peer.closed = True
        self._closed[peer_id] = (peer.owner, peer.camera)
        while len(self._closed) > _RECENTLY_CLOSED:
            self._closed.popitem(last=False)
        current = asyncio.current_task()
        for t in peer.tasks:
            if t is not current:
                t.cancel()
        peer.track.stop()
        with contextlib.suppress(Exception):
            await peer.pc.close()
        return True

    async def close_owner(self, owner: int) -> int:
        ids = [p.id for p in self._peers.values() if p.owner == owner]
        for i in ids:
            await self.close(i)
        return len(ids)

    async def close_all(self) -> None:
        for i in list(self._peers):
            await self.close(i)
