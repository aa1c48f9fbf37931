"""Live view fan-out: one camera stream in, fragmented MP4 out to any number of viewers.

A :class:`LiveHub` is a ``PacketSink`` on a camera's reader, next to the recorder, so every
viewer shares the one camera connection the recorder already has (no second RTSP session
per viewer, which cheap cameras limit to two or three). It never decodes: packets are put
into MP4 fragments by stream copy, and the MIME codec string comes from the parameter sets.

Timing model. Each viewer gets an init segment, then fragments. ``mode="frame"`` (the
default) sends a fragment per video frame (plus the audio that arrived since the previous
one), so a frame leaves the hub the moment ingest delivers it; ``mode="gop"`` sends one
fragment per keyframe-to-keyframe group, which costs a whole GOP of latency and is only
there for comparison (see ``docs/web.md`` for measurements). The hub keeps the packets of
the current GOP, so a new viewer starts at the latest keyframe: it receives the init
segment and everything since that keyframe as one catch-up fragment, then joins the live
fragments. Media time runs on across camera sessions (a reconnect or a resolution change
sends a new init segment but time never goes backwards), so a browser can keep appending
to the same ``SourceBuffer``.

Threads. ``session_started``/``packet``/``session_ended`` run on the ingest thread and only
take the hub lock for list operations and fragment assembly (bytes joining; no I/O, no
waiting on viewers). ``subscribe``/``unsubscribe`` may be called from any thread (in
practice the event loop); the catch-up fragment is built outside the lock.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from vigil.ingest.types import StreamSession, TimedPacket
from vigil.live.viewer import LatestSlot, LiveFragment, LiveInit, LiveItem, LiveNotice, LiveViewer
from vigil.record.fmp4 import (
    Fmp4Error,
    InitSegment,
    Sample,
    build_fragment,
    build_init_segment,
    to_mp4_sample,
)
from vigil.record.tracks import PlanError, TrackPlan, plan_audio, plan_video

log = logging.getLogger(__name__)

FragmentMode = Literal["frame", "gop"]

DEFAULT_VIEWER_MAX_BYTES = 8 * 1024 * 1024
DEFAULT_GOP_MAX_BYTES = 6 * 1024 * 1024
_MAX_PENDING_AUDIO = 200  # audio samples waiting for a video frame (a video-less stall)
_DEFAULT_FRAME_US = 66_667


@dataclass(slots=True)
class _Raw:
    """A packet of the current session as the hub keeps it: original bytes (the MJPEG
    decoder wants them as they came) and times on the hub's media timeline."""

    kind: str
    data: bytes
    media_us: int  # decode time
    duration_us: int
    cto_us: int
    wall_us: int
    sync: bool


@dataclass(slots=True)
class _Session:
    session: StreamSession
    base_dts_us: int = 0  # session dts that maps to ``offset_us``
    offset_us: int = 0
    video: TrackPlan | None = None
    audio: TrackPlan | None = None
    init: InitSegment | None = None
    live_init: LiveInit | None = None
    failed: str | None = None
    last_video_media_us: int | None = None
    last_audio_media_us: int | None = None
    frame_us: int = _DEFAULT_FRAME_US
    end_us: int = 0  # end of the latest sample on the hub timeline
    gop: list[_Raw] = field(default_factory=list)  # since the latest keyframe
    gop_bytes: int = 0
    gop_overflow: bool = False
    pending: list[_Raw] = field(default_factory=list)  # not yet sent (audio / gop mode)


@dataclass(frozen=True, slots=True)
class HubStats:
    camera: str
    stream: str
    viewers: int
    mjpeg_viewers: int
    session_id: int | None
    codecs: str | None
    fragments: int
    bytes_out: int
    slow_disconnects: int
    error: str | None


class LiveHub:
    """Fan-out of one camera stream to live viewers. Implements ``PacketSink``.

    :param camera: camera name.
    :param stream: ``"main"`` or ``"sub"`` (informational; viewers ask the registry).
    :param mode: ``"frame"`` (fragment per frame, lowest latency) or ``"gop"``.
    :param viewer_max_bytes: how far (in bytes) a viewer may fall behind before it is
        disconnected.
    :param gop_max_bytes: the catch-up GOP is not kept beyond this (a camera with a very
        long GOP); new viewers then wait for the next keyframe.
    :param audio: pass storable audio (AAC...) through to viewers.
    :param mjpeg_fps: frame rate of the MJPEG fallback; ``mjpeg_max_width`` its size cap.
    """

    def __init__(
        self,
        camera: str,
        stream: str = "main",
        *,
        mode: FragmentMode = "frame",
        viewer_max_bytes: int = DEFAULT_VIEWER_MAX_BYTES,
        gop_max_bytes: int = DEFAULT_GOP_MAX_BYTES,
        audio: bool = True,
        mjpeg_fps: float = 4.0,
        mjpeg_max_width: int = 1280,
    ) -> None:
        if mode not in ("frame", "gop"):
            raise ValueError("mode must be 'frame' or 'gop'")
        self.camera = camera
        self.stream = stream
        self.mode: FragmentMode = mode
        self.viewer_max_bytes = viewer_max_bytes
        self.gop_max_bytes = min(gop_max_bytes, viewer_max_bytes // 2)
        self.audio = audio
        self._lock = threading.Lock()
        self._viewers: list[LiveViewer] = []
        self._s: _Session | None = None
        self._next_offset_us = 0
        self._seq = 0
        self._fragments = 0
        self._bytes_out = 0
        self._slow = 0
        self._closed = False
        self._error: str | None = None
        # created on first use; imported lazily so that a hub without MJPEG viewers never
        # loads OpenCV
        self._mjpeg: Any = None
        # the WebRTC feed (vigil.live.webrtc), made on the first peer, like the MJPEG one
        self._rtc: Any = None
        self.mjpeg_fps = mjpeg_fps
        self.mjpeg_max_width = mjpeg_max_width

    # -- PacketSink -----------------------------------------------------------------------

    def session_started(self, session: StreamSession) -> None:
        with self._lock:
            self._end_locked("codec_change", notify=False)
            self._s = _Session(session, offset_us=self._next_offset_us)
            self._error = None
        mj = self._mjpeg
        if mj is not None:
            mj.session_started(session)
        rtc = self._rtc
        if rtc is not None:
            rtc.session_started(session)

    def packet(self, session: StreamSession, pkt: TimedPacket) -> None:
        s = self._s
        if s is None or s.session is not session:
            return
        if s.failed is not None:
            self._undecodable(s, pkt)
            return
        if s.init is None:
            if pkt.kind != "video" or not pkt.keyframe:
                return  # nothing is decodable before the first keyframe
            if not self._start(s, pkt):
                if s.failed is not None:
                    self._undecodable(s, pkt)
                return
        media_us = pkt.dts_us - s.base_dts_us + s.offset_us
        if media_us < s.offset_us:
            return  # audio captured before the first keyframe: no place for it
        raw = _Raw(
            kind=pkt.kind,
            data=pkt.data,
            media_us=media_us,
            duration_us=pkt.duration_us,
            cto_us=pkt.pts_us - pkt.dts_us,
            wall_us=pkt.wall_us,
            sync=pkt.keyframe and pkt.kind == "video",
        )
        if pkt.kind == "audio":
            if s.audio is None:
                return
            self._audio(s, raw)
        else:
            self._video(s, raw)
        mj = self._mjpeg
        if mj is not None and pkt.kind == "video":
            mj.offer(session, raw.data, raw.sync, raw.media_us, raw.wall_us)

    def session_ended(self, session: StreamSession, reason: str) -> None:
        with self._lock:
            if self._s is not None and self._s.session is session:
                self._end_locked(reason, notify=True)
        rtc = self._rtc
        if rtc is not None:
            rtc.session_ended(session, reason)

    # -- viewers --------------------------------------------------------------------------

    def subscribe(
        self,
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        max_bytes: int | None = None,
    ) -> LiveViewer:
        """A new viewer, starting at the latest keyframe. Pass the running event loop to
        read it with ``await viewer.next()``; without one use ``viewer.get()``."""
        viewer = LiveViewer(max_bytes or self.viewer_max_bytes, loop)
        with self._lock:
            if self._closed:
                viewer.close("hub_closed")
                return viewer
            s = self._s
            init = s.live_init if s is not None else None
            # in "gop" mode the current group is still pending and will be sent whole
            usable = s is not None and not s.gop_overflow and self.mode == "frame"
            gop = list(s.gop) if s is not None and usable else []
            if init is not None and gop and gop[0].sync:
                viewer.need_keyframe = False
            else:
                init, gop = None, []
                # the next init (new session) or keyframe fragment is where it starts
                viewer.need_keyframe = True
                if s is not None and s.live_init is not None:
                    viewer.push(s.live_init)
            if s is not None and s.failed is not None:
                viewer.push(LiveNotice("unsupported", s.failed))
            self._viewers.append(viewer)
            seq = self._seq
        if init is not None and s is not None:
            preamble: list[LiveItem] = [init]
            frag = self._fragment(s, gop, seq)
            if frag is not None:
                preamble.append(frag)
            viewer.prepend(preamble)
        return viewer

    def unsubscribe(self, viewer: LiveViewer) -> None:
        viewer.close("closed")
        with self._lock:
            if viewer in self._viewers:
                self._viewers.remove(viewer)

    @property
    def viewer_count(self) -> int:
        with self._lock:
            return len(self._viewers)

    @property
    def current_init(self) -> LiveInit | None:
        s = self._s
        return s.live_init if s is not None else None

    def stats(self) -> HubStats:
        with self._lock:
            s = self._s
            return HubStats(
                camera=self.camera,
                stream=self.stream,
                viewers=len(self._viewers),
                mjpeg_viewers=self._mjpeg.viewer_count if self._mjpeg is not None else 0,
                session_id=s.session.session_id if s is not None else None,
                codecs=s.init.codecs if s is not None and s.init is not None else None,
                fragments=self._fragments,
                bytes_out=self._bytes_out,
                slow_disconnects=self._slow,
                error=self._error,
            )

    def close(self) -> None:
        """Disconnect every viewer (shutdown)."""
        with self._lock:
            self._closed = True
            viewers, self._viewers = self._viewers, []
        for v in viewers:
            v.close("hub_closed")
        mj = self._mjpeg
        if mj is not None:
            mj.close()
        rtc = self._rtc
        if rtc is not None:
            rtc.close()

    # -- WebRTC ---------------------------------------------------------------------------

    def subscribe_rtc(self, loop: asyncio.AbstractEventLoop | None = None) -> Any:
        """A WebRTC peer's video track (``vigil.live.webrtc``), starting at the latest
        keyframe. Raises ``RtcUnsupported`` unless the camera sends H.264."""
        from vigil.live.webrtc import RtcFeed, passthrough_track_class

        passthrough_track_class()  # imports aiortc, not under the lock ingest takes
        with self._lock:
            if self._rtc is None:
                self._rtc = RtcFeed(self.camera, self.stream)
            feed = self._rtc
            s = self._s
            backlog = []
            if s is not None and not s.gop_overflow and s.init is not None:
                backlog = [(r.data, r.sync, r.wall_us) for r in s.gop if r.kind == "video"]
            session = s.session if s is not None else None
            # registered under the lock: no frame between the backlog and the live ones
            return feed.subscribe(loop, session, backlog)

    @property
    def video_codec(self) -> str | None:
        """FFmpeg name of the current session's video codec, None without a session."""
        s = self._s
        return s.session.video.codec if s is not None else None

    # -- MJPEG fallback -------------------------------------------------------------------

    def subscribe_jpeg(self, loop: asyncio.AbstractEventLoop | None = None) -> LatestSlot:
        """A viewer of JPEG frames (for codecs a browser cannot play through MSE). Decoding
        runs only while at least one such viewer exists."""
        with self._lock:
            if self._mjpeg is None:
                from vigil.live.mjpeg import MjpegFeed

                self._mjpeg = MjpegFeed(
                    self.camera, fps=self.mjpeg_fps, max_width=self.mjpeg_max_width
                )
            feed = self._mjpeg
            s = self._s
            backlog = []
            if s is not None and not s.gop_overflow:
                backlog = [
                    (r.data, r.sync, r.media_us, r.wall_us) for r in s.gop if r.kind == "video"
                ]
            session = s.session if s is not None else None
        slot = LatestSlot(loop)
        feed.add(slot, session, backlog)
        return slot

    def snapshot_jpeg(self, max_width: int = 1920, *, latest: bool = False) -> bytes | None:
        """A JPEG of the current picture, or None (no session, or nothing decodable yet).

        Decodes the cached GOP's keyframe (at most one GOP old), or with ``latest`` every
        frame of the GOP up to the newest. Runs on the caller's thread, never ingest's."""
        from vigil.live.mjpeg import decode_latest

        with self._lock:
            s = self._s
            if s is None or s.gop_overflow or not s.gop:
                return None
            session = s.session
            packets = [r.data for r in s.gop if r.kind == "video"]
        if not latest:
            packets = packets[:1]
        return decode_latest(session.video, packets, max_width)

    def unsubscribe_jpeg(self, slot: LatestSlot) -> None:
        slot.close()
        feed = self._mjpeg
        if feed is not None:
            feed.remove(slot)

    # -- internals ------------------------------------------------------------------------

    def _start(self, s: _Session, pkt: TimedPacket) -> bool:
        """Plan the tracks and make the init segment at the session's first keyframe."""
        sess = s.session
        try:
            video = plan_video(sess.video, sess.video_template, pkt.data)
        except PlanError as exc:
            return self._fail(s, str(exc))
        if video is None:
            return False  # parameter sets not seen yet: try again at the next keyframe
        audio = None
        if self.audio and sess.audio is not None:
            try:
                audio = plan_audio(sess.audio, sess.audio_template)
            except PlanError as exc:
                log.info("%s/%s live: no audio (%s)", self.camera, self.stream, exc)
        try:
            init = build_init_segment(video, audio, pkt.data)
        except Fmp4Error as exc:
            if audio is None:
                return self._fail(s, str(exc))
            log.info("%s/%s live: dropping audio (%s)", self.camera, self.stream, exc)
            audio = None
            try:
                init = build_init_segment(video, None, pkt.data)
            except Fmp4Error as exc2:
                return self._fail(s, str(exc2))
        s.video, s.audio, s.init = video, (audio if init.audio else None), init
        s.base_dts_us = pkt.dts_us
        params = sess.video
        s.live_init = LiveInit(
            camera=self.camera,
            stream=self.stream,
            session_id=sess.session_id,
            mime=init.mime,
            codecs=init.codecs,
            video_codec=params.codec,
            width=params.width,
            height=params.height,
            has_audio=s.audio is not None,
            media_us=s.offset_us,
            # wall time of the keyframe's decode instant (wall_us is of its pts)
            wall_us=pkt.wall_us - (pkt.pts_us - pkt.dts_us),
            data=init.data,
        )
        with self._lock:
            for v in self._viewers:
                self._send_locked(v, s.live_init)
        return True

    def _fail(self, s: _Session, message: str) -> bool:
        s.failed = message
        self._error = message
        log.warning("%s/%s live view (fMP4) unavailable: %s", self.camera, self.stream, message)
        notice = LiveNotice("unsupported", message)
        with self._lock:
            for v in list(self._viewers):
                self._send_locked(v, notice)
        return False

    def _undecodable(self, s: _Session, pkt: TimedPacket) -> None:
        """A session without fMP4 (codec MP4 cannot hold): keep its GOP for snapshots and
        new MJPEG viewers, and feed the MJPEG fallback, which can decode it."""
        if pkt.kind != "video":
            return
        raw = _Raw("video", pkt.data, pkt.dts_us, pkt.duration_us, 0, pkt.wall_us, pkt.keyframe)
        with self._lock:
            if raw.sync:
                s.gop, s.gop_bytes, s.gop_overflow = [], 0, False
            self._keep(s, raw)
        mj = self._mjpeg
        if mj is not None:
            mj.offer(s.session, raw.data, raw.sync, raw.media_us, raw.wall_us)

    def _audio(self, s: _Session, raw: _Raw) -> None:
        if s.last_audio_media_us is not None and raw.media_us <= s.last_audio_media_us:
            raw.media_us = s.last_audio_media_us + 1
        s.last_audio_media_us = raw.media_us
        with self._lock:
            s.pending.append(raw)
            if self.mode == "frame" and len(s.pending) > _MAX_PENDING_AUDIO:
                del s.pending[0]
            self._keep(s, raw)

    def _video(self, s: _Session, raw: _Raw) -> None:
        last = s.last_video_media_us
        if last is not None:
            if raw.media_us <= last:
                raw.media_us = last + 1
            elif raw.media_us - last < 10 * s.frame_us:
                s.frame_us = max(1, (s.frame_us * 7 + (raw.media_us - last)) // 8)
        s.last_video_media_us = raw.media_us
        if raw.duration_us <= 0:
            raw.duration_us = s.frame_us
        s.end_us = max(s.end_us, raw.media_us + raw.duration_us)
        with self._lock:
            if raw.sync:
                if self.mode == "gop" and s.pending:
                    self._flush_locked(s, s.pending)
                    s.pending = []
                s.gop = []
                s.gop_bytes = 0
                s.gop_overflow = False
            self._keep(s, raw)
            rtc = self._rtc
            if rtc is not None:  # under the lock: a new peer's backlog + live frames tile
                rtc.offer(s.session, raw.data, raw.sync, raw.wall_us)
            if self.mode == "frame":
                audio, s.pending = s.pending, []
                self._flush_locked(s, [raw, *audio])
            else:
                s.pending.append(raw)

    def _keep(self, s: _Session, raw: _Raw) -> None:
        """Add to the catch-up GOP (hub lock held)."""
        if s.gop_overflow:
            return
        s.gop.append(raw)
        s.gop_bytes += len(raw.data)
        if s.gop_bytes > self.gop_max_bytes:
            s.gop_overflow = True
            s.gop = []
            s.gop_bytes = 0

    def _samples(self, s: _Session, raws: list[_Raw]) -> tuple[list[Sample], list[Sample]]:
        assert s.init is not None and s.video is not None
        video = _run(s.video, [r for r in raws if r.kind == "video"], s.init.video.timescale)
        audio: list[Sample] = []
        if s.audio is not None and s.init.audio is not None:
            audio = _run(s.audio, [r for r in raws if r.kind == "audio"], s.init.audio.timescale)
        return video, audio

    def _fragment(self, s: _Session, raws: list[_Raw], seq: int) -> LiveFragment | None:
        if s.init is None or not raws:
            return None
        video, audio = self._samples(s, raws)
        runs: list[tuple[int, list[Sample]]] = []
        if video:
            runs.append((s.init.video.track_id, video))
        if audio and s.init.audio is not None:
            runs.append((s.init.audio.track_id, audio))
        if not runs:
            return None
        first_video = next((r for r in raws if r.kind == "video"), None)
        return LiveFragment(
            session_id=s.session.session_id,
            keyframe=bool(video) and video[0].sync,
            media_us=first_video.media_us if first_video else raws[0].media_us,
            wall_us=first_video.wall_us if first_video else raws[0].wall_us,
            data=build_fragment(seq, runs),
        )

    def _flush_locked(self, s: _Session, raws: list[_Raw]) -> None:
        if not self._viewers:
            return  # nobody to send to: the catch-up GOP is built on demand instead
        self._seq += 1
        frag = self._fragment(s, raws, self._seq)
        if frag is None:
            return
        self._fragments += 1
        for v in list(self._viewers):
            self._send_locked(v, frag)

    def _send_locked(self, v: LiveViewer, item: LiveItem) -> None:
        if isinstance(item, LiveFragment):
            if v.need_keyframe:
                if not item.keyframe:
                    return
                v.need_keyframe = False
        elif isinstance(item, LiveInit):
            v.need_keyframe = True  # the first fragment of a session is its keyframe
        if v.push(item):
            self._bytes_out += item.size
            return
        self._viewers.remove(v)
        if v.closed_reason == "slow":
            self._slow += 1
            log.info(
                "%s/%s live: disconnected a viewer that fell %d bytes behind",
                self.camera, self.stream, v.max_bytes,
            )

    def _end_locked(self, reason: str, *, notify: bool) -> None:
        s = self._s
        if s is None:
            return
        if self.mode == "gop" and s.pending and s.init is not None:
            self._flush_locked(s, s.pending)
        self._next_offset_us = max(self._next_offset_us, s.end_us + s.frame_us)
        self._s = None
        if notify:
            notice = LiveNotice("ended", reason)
            for v in list(self._viewers):
                self._send_locked(v, notice)


def _ticks(us: int, timescale: int) -> int:
    return (us * timescale + 500_000) // 1_000_000


def _run(plan: TrackPlan, raws: list[_Raw], timescale: int) -> list[Sample]:
    """One track's samples for a ``trun``. Inside a run a sample's decode time is implied
    by the durations before it, so every duration but the last is the exact distance to
    the next sample: a multi-sample run (the catch-up GOP, ``gop`` mode) then lines up
    with the fragments that follow it, whatever durations the camera claimed."""
    times = [_ticks(r.media_us, timescale) for r in raws]
    out = []
    for i, r in enumerate(raws):
        if i + 1 < len(raws):
            duration = max(1, times[i + 1] - times[i])
        else:
            duration = max(1, _ticks(r.duration_us, timescale))
        out.append(
            Sample(to_mp4_sample(plan, r.data), times[i], duration, _ticks(r.cto_us, timescale),
                   r.sync or r.kind == "audio")
        )
    return out


class LiveRegistry:
    """The hubs of a running NVR, by camera and stream. Viewers ask for ``sub`` (the grid)
    or ``main`` (one camera); a camera without a substream serves ``main`` for both."""

    def __init__(self) -> None:
        self._hubs: dict[tuple[str, str], LiveHub] = {}
        self._lock = threading.Lock()

    def add(self, hub: LiveHub) -> LiveHub:
        with self._lock:
            self._hubs[(hub.camera, hub.stream)] = hub
        return hub

    def create(self, camera: str, stream: str = "main", **kwargs: Any) -> LiveHub:
        """Make, register and return a hub (add it to the reader's sinks before start)."""
        return self.add(LiveHub(camera, stream, **kwargs))

    def attach(self, reader: Any, **kwargs: Any) -> LiveHub:
        """Create the hub for a ``CameraReader`` (its camera and stream) and add it to the
        reader's sinks; call before ``reader.start()``. This is all the NVR has to do per
        reader for live view."""
        hub = self.create(reader.camera, reader.stream, **kwargs)
        reader.add_sink(hub)
        return hub

    def get(self, camera: str, stream: str = "main") -> LiveHub | None:
        """The hub for ``stream``, falling back to the other stream of the camera."""
        with self._lock:
            hub = self._hubs.get((camera, stream))
            if hub is None:
                other = "main" if stream == "sub" else "sub"
                hub = self._hubs.get((camera, other))
            return hub

    def snapshot(self, camera: str) -> bytes | None:
        """A JPEG of ``camera``'s live picture (main stream preferred), or None. Matches
        the API's ``AppContext.live_snapshot`` signature."""
        hub = self.get(camera, "main")
        return hub.snapshot_jpeg() if hub is not None else None

    def cameras(self) -> list[str]:
        with self._lock:
            return sorted({c for c, _ in self._hubs})

    def hubs(self) -> list[LiveHub]:
        with self._lock:
            return list(self._hubs.values())

    def close(self) -> None:
        for hub in self.hubs():
            hub.close()
