"""Analytics as a consumer of a camera's packets: decode only what is needed, never slow
the recorder.

The ingest thread hands every packet to :meth:`AnalyticsSink.packet`, which only appends
to a bounded queue. A worker thread decodes (PyAV, which releases the GIL), keeps frames at
the configured analysis rate by wall-clock time, scales them down first, and runs the
pipeline. When the worker falls behind, the queue is emptied and decoding resumes at the
next keyframe (a decoder cannot skip predicted frames without corrupting the picture), so a
slow detector drops analysis frames, never recorded packets. Frame times are the wall-clock
times ingest gave the packets, so events carry real time.
"""

from __future__ import annotations

import collections
import logging
import threading
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av

from vigil.analytics.frames import AnalysisFrame, FrameSampler, hwaccel_setting, scaled_size
from vigil.analytics.pipeline import AnalyticsPipeline
from vigil.ingest.types import StreamSession, TimedPacket

log = logging.getLogger(__name__)

_US = Fraction(1, 1_000_000)


@dataclass
class AnalyticsStats:
    packets_in: int = 0
    packets_dropped: int = 0  # dropped while catching up (whole GOPs)
    frames_decoded: int = 0
    frames_analysed: int = 0
    decode_errors: int = 0


class AnalyticsSink:
    """A PacketSink feeding one camera's analytics pipeline from a worker thread."""

    def __init__(
        self,
        camera: str,
        pipeline: AnalyticsPipeline,
        *,
        fps: float = 5.0,
        width: int = 640,
        max_queue: int = 90,
        max_lag: float = 1.5,
        hwaccel: str | None = "auto",
    ) -> None:
        self.camera = camera
        self.pipeline = pipeline
        self.fps = fps
        self.width = width
        self.hwaccel = hwaccel
        self._hw_usable = hwaccel not in (None, "none")
        self.stats = AnalyticsStats()
        self._queue: collections.deque[tuple[str, Any]] = collections.deque()
        self._max_queue = max_queue
        # Analysis older than this is worth less than analysis now: a backlog spanning more
        # than max_lag seconds of video is dropped and decoding restarts at a keyframe.
        self._max_lag_us = int(max_lag * 1e6)
        self._skip_to_keyframe = True
        self._cv = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name=f"analytics-{camera}", daemon=True)
        self._thread.start()

    # -- PacketSink (ingest thread: never blocks) --------------------------------------------
    def session_started(self, session: StreamSession) -> None:
        with self._cv:
            self._queue.append(("session", session))
            self._skip_to_keyframe = True
            self._cv.notify()

    def packet(self, session: StreamSession, pkt: TimedPacket) -> None:
        if pkt.kind != "video":
            return
        with self._cv:
            self.stats.packets_in += 1
            if self._skip_to_keyframe and not pkt.keyframe:
                self.stats.packets_dropped += 1
                return
            self._skip_to_keyframe = False
            oldest = next((i[1] for i in self._queue if i[0] == "packet"), None)
            lagging = oldest is not None and pkt.wall_us - oldest.wall_us > self._max_lag_us
            if lagging or len(self._queue) >= self._max_queue:
                # Behind (too many packets, or too old): forget the backlog and restart
                # at the next keyframe, so events stay close to real time.
                dropped = sum(1 for kind, _ in self._queue if kind == "packet")
                self.stats.packets_dropped += dropped + 1
                self._queue = collections.deque(i for i in self._queue if i[0] == "session")
                self._queue.append(("flush", None))
                self._skip_to_keyframe = True
                self._cv.notify()
                return
            self._queue.append(("packet", pkt))
            self._cv.notify()

    def session_ended(self, session: StreamSession, reason: str) -> None:
        with self._cv:
            self._queue.append(("end", reason))
            self._cv.notify()

    def replace_pipeline(self, pipeline: AnalyticsPipeline) -> None:
        """Switch to a new pipeline (zones or masks edited) between two frames: the worker
        ends the old pipeline's events cleanly, then continues with the new one."""
        with self._cv:
            self._queue.appendleft(("pipeline", pipeline))
            self._cv.notify()

    def close(self, timeout: float = 5.0) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify()
        self._thread.join(timeout)
        self.pipeline.flush()

    # -- worker ------------------------------------------------------------------------------
    def _run(self) -> None:
        decoder: Any = None
        sampler = FrameSampler(self.fps)
        offset_us = 0  # wall_us - pts_us of the latest packet (constant within a session)
        size: tuple[int, int] | None = None
        while True:
            with self._cv:
                while not self._queue and not self._stop:
                    self._cv.wait()
                if self._stop:
                    return
                kind, item = self._queue.popleft()
            try:
                if kind == "pipeline":
                    old, self.pipeline = self.pipeline, item
                    old.flush()
                elif kind == "session":
                    decoder = self._decoder(item)
                    size = None
                elif kind in ("flush", "end"):
                    if decoder is not None:
                        decoder.flush_buffers()
                elif kind == "packet" and decoder is not None:
                    pkt: TimedPacket = item
                    offset_us = pkt.wall_us - pkt.pts_us
                    packet = av.Packet(pkt.data)
                    packet.pts, packet.dts, packet.time_base = pkt.pts_us, pkt.dts_us, _US
                    for frame in decoder.decode(packet):
                        self.stats.frames_decoded += 1
                        pts = frame.pts if frame.pts is not None else pkt.pts_us
                        t = (pts + offset_us) / 1e6
                        if not sampler.keep(t):
                            continue
                        if size is None:
                            size = scaled_size(frame.width, frame.height, self.width)
                        image = frame.to_ndarray(width=size[0], height=size[1], format="bgr24")
                        self.pipeline.process(
                            AnalysisFrame(
                                self.stats.frames_analysed, self.stats.frames_decoded, t, image
                            )
                        )
                        self.stats.frames_analysed += 1
            except av.FFmpegError as exc:
                self.stats.decode_errors += 1
                if self.stats.decode_errors in (1, 10, 100) or self.stats.decode_errors % 1000 == 0:
                    log.warning("%s: analytics decode error: %s", self.camera, exc)
            except Exception:
                log.exception("%s: analytics failed on a frame (continuing)", self.camera)

    def _decoder(self, session: StreamSession) -> Any:
        """A decoder for the session: hardware when PyAV offers a usable device (tried once
        per sink; software fallback stays on for profiles the device cannot do), else
        software."""
        params = session.video
        ctx = None
        if self._hw_usable:
            hw, device = hwaccel_setting(self.hwaccel)
            if hw is not None:
                try:
                    ctx = av.CodecContext.create(params.codec, "r", hwaccel=hw)
                    log.info("%s: analytics decodes with %s", self.camera, device)
                except (av.FFmpegError, ValueError, TypeError) as exc:
                    log.info("%s: hardware decode (%s) unavailable: %s", self.camera, device, exc)
            if ctx is None:
                self._hw_usable = False
        if ctx is None:
            ctx = av.CodecContext.create(params.codec, "r")
        if params.extradata:
            ctx.extradata = params.extradata
        # Slice threading only: frame threading holds frames back (about 200 ms at 10 fps),
        # which would delay every event by that much (measured in bench/analytics.py).
        ctx.thread_type = "SLICE"
        return ctx
