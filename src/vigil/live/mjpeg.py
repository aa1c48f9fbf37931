"""MJPEG fallback for browsers that cannot play a camera's codec through MSE (H.265 in
Chromium without hardware support, MJPEG cameras, ...).

Decoding is the expensive thing live view otherwise never does, so it is bounded three
ways: it runs only while at least one fallback viewer is connected (the decoder thread
starts with the first and ends with the last), it converts and JPEG-encodes only
``fps`` frames a second (every frame is still decoded: P-frames need their references),
and it runs on its own thread fed through a bounded queue, so a decoder that cannot keep
up drops packets up to the next keyframe instead of slowing the camera's ingest thread.
Viewers get the newest frame only (:class:`~vigil.live.viewer.LatestSlot`): a slow viewer
sees fewer frames, never older ones, and never needs disconnecting.

MJPEG cameras are passed through without decoding (their packets already are JPEGs).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from fractions import Fraction
from typing import Any

import av

from vigil.ingest.types import CodecParams, StreamSession
from vigil.live.viewer import LatestSlot

log = logging.getLogger(__name__)

_STOP = object()
_US = 1_000_000
_US_TB = Fraction(1, _US)


def encode_jpeg(frame: Any, max_width: int, quality: int = 75) -> bytes:
    """A decoded PyAV frame as JPEG bytes, scaled down to at most ``max_width``."""
    import cv2

    w, h = int(frame.width), int(frame.height)
    if w > max_width > 0:
        h = max(2, round(h * max_width / w) // 2 * 2)
        w = max_width
    img = frame.reformat(width=w, height=h, format="bgr24").to_ndarray()
    ok, buf = cv2.imencode(".jpg", img, [int(cv2.IMWRITE_JPEG_QUALITY), quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return bytes(buf.tobytes())


def decode_latest(params: CodecParams, packets: list[bytes], max_width: int) -> bytes | None:
    """Decode ``packets`` (a keyframe first) and JPEG-encode the last picture, or None."""
    if not packets:
        return None
    if params.codec == "mjpeg":
        return packets[-1]
    try:
        ctx: Any = av.CodecContext.create(params.codec, "r")
        if params.extradata:
            ctx.extradata = params.extradata
        last = None
        for data in packets:
            for frame in ctx.decode(av.Packet(data)):
                last = frame
        for frame in ctx.decode(None):
            last = frame
        return encode_jpeg(last, max_width, 85) if last is not None else None
    except (av.FFmpegError, ValueError) as exc:
        log.debug("snapshot decode failed: %s", exc)
        return None


class MjpegFeed:
    """Decodes one camera stream to JPEG while it has viewers. Created by ``LiveHub``."""

    def __init__(
        self,
        camera: str,
        *,
        fps: float = 4.0,
        max_width: int = 1280,
        quality: int = 75,
        queue_packets: int = 240,
    ) -> None:
        self.camera = camera
        self.fps = max(0.1, fps)
        self.max_width = max_width
        self.quality = quality
        self._queue_packets = queue_packets
        self._lock = threading.Lock()
        self._slots: list[LatestSlot] = []
        self._q: queue.Queue[Any] = queue.Queue(queue_packets)
        self._thread: threading.Thread | None = None
        self._resync = False
        self._closed = False
        self.frames_out = 0
        self.dropped = 0

    @property
    def viewer_count(self) -> int:
        with self._lock:
            return len(self._slots)

    @property
    def running(self) -> bool:
        t = self._thread
        return t is not None and t.is_alive()

    def add(
        self,
        slot: LatestSlot,
        session: StreamSession | None,
        backlog: list[tuple[bytes, bool, int, int]],
    ) -> None:
        """Add a viewer; ``backlog`` is the current GOP, so the first frame appears without
        waiting for the next keyframe when the decoder has to start."""
        with self._lock:
            if self._closed:
                slot.close()
                return
            self._slots.append(slot)
            if self._thread is not None:
                return
            self._q = queue.Queue(self._queue_packets)
            self._resync = False
            if session is not None:
                for data, sync, media_us, wall_us in backlog:
                    with contextlib.suppress(queue.Full):
                        self._q.put_nowait((session, data, sync, media_us, wall_us))
            self._thread = threading.Thread(
                target=self._run, name=f"mjpeg-{self.camera}", daemon=True
            )
            self._thread.start()

    def remove(self, slot: LatestSlot) -> None:
        with self._lock:
            if slot in self._slots:
                self._slots.remove(slot)
            if not self._slots and self._thread is not None:
                with contextlib.suppress(queue.Full):
                    self._q.put_nowait(_STOP)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            slots, self._slots = self._slots, []
            t = self._thread
            with contextlib.suppress(queue.Full):
                self._q.put_nowait(_STOP)
        for s in slots:
            s.close()
        if t is not None:
            t.join(timeout=2.0)

    # -- producer (ingest thread): never blocks ------------------------------------------------

    def session_started(self, session: StreamSession) -> None:
        """Nothing to do: packets carry their session; a new one resets the decoder."""

    def offer(
        self, session: StreamSession, data: bytes, sync: bool, media_us: int, wall_us: int
    ) -> None:
        if self._thread is None:
            return
        if self._resync:
            if not sync:
                self.dropped += 1
                return
            self._resync = False
        try:
            self._q.put_nowait((session, data, sync, media_us, wall_us))
        except queue.Full:
            # the decoder is behind: skip to the next keyframe (nothing in between could be
            # decoded without the packets dropped now)
            self._resync = True
            self.dropped += 1

    # -- decoder thread -----------------------------------------------------------------------

    def _run(self) -> None:
        q = self._q
        ctx: Any = None
        current: StreamSession | None = None
        need_key = True
        next_emit: int | None = None
        walls: dict[int, int] = {}
        latest: Any = None
        latest_wall = 0
        try:
            while True:
                try:
                    item = q.get(timeout=1.0)
                except queue.Empty:
                    if self._exiting():
                        break
                    continue
                if item is _STOP:
                    if self._exiting():
                        break
                    continue
                session, data, sync, media_us, wall_us = item
                if session is not current:
                    current = session
                    ctx = self._decoder(session)
                    need_key, next_emit, latest = True, None, None
                    walls.clear()
                if need_key and not sync:
                    continue
                need_key = False
                due = next_emit is None or media_us >= next_emit
                if ctx is None:  # MJPEG camera: the packet is the picture
                    if due:
                        self._publish(wall_us, data)
                        next_emit = media_us + round(_US / self.fps)
                    continue
                pkt = av.Packet(data)
                pkt.pts = pkt.dts = media_us
                pkt.time_base = _US_TB
                walls[media_us] = wall_us
                try:
                    frames = ctx.decode(pkt)
                except av.FFmpegError as exc:
                    log.debug("%s: MJPEG fallback decode error: %s", self.camera, exc)
                    need_key = True
                    continue
                for frame in frames:
                    latest = frame
                    latest_wall = walls.pop(frame.pts, wall_us) if frame.pts is not None \
                        else wall_us
                if len(walls) > 64:
                    walls.clear()
                # encode only when due and caught up (a backlog burst yields one picture)
                if latest is not None and due and q.empty():
                    try:
                        jpeg = encode_jpeg(latest, self.max_width, self.quality)
                    except (ValueError, av.FFmpegError) as exc:
                        log.debug("%s: MJPEG fallback encode error: %s", self.camera, exc)
                        continue
                    self._publish(latest_wall, jpeg)
                    latest = None
                    next_emit = media_us + round(_US / self.fps)
        except Exception:
            log.exception("%s: MJPEG fallback decoder failed", self.camera)
        finally:
            with self._lock:
                if self._thread is threading.current_thread():
                    self._thread = None

    def _exiting(self) -> bool:
        """True (and the feed marked stopped, atomically with the check, so a viewer added
        a moment later starts a new thread) when nobody is watching any more."""
        with self._lock:
            if self._slots and not self._closed:
                return False
            self._thread = None
            return True

    def _decoder(self, session: StreamSession) -> Any:
        params = session.video
        if params.codec == "mjpeg":
            return None
        ctx = av.CodecContext.create(params.codec, "r")
        if params.extradata:
            ctx.extradata = params.extradata
        return ctx

    def _publish(self, wall_us: int, jpeg: bytes) -> None:
        with self._lock:
            slots = list(self._slots)
        for s in slots:
            s.put(wall_us, jpeg)
        self.frames_out += 1


