"""Per-stream health: what the UI, the API and ``vigil status`` show about a camera.

The ingest thread updates a :class:`HealthTracker` on every packet; readers of health (web
requests, metrics) take an immutable :class:`CameraHealth` snapshot under a lock, so they
never see a half-updated state and never slow the ingest thread down by more than a lock.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Literal

from vigil.util.redact import redact_text

HealthState = Literal["connecting", "online", "stalled", "offline", "stopped"]


@dataclass(frozen=True, slots=True)
class CameraHealth:
    """A snapshot of one camera stream's ingest state. Contains no secret: ``source`` is
    the redacted URL and ``last_error`` a classified, redacted message."""

    camera: str
    stream: str = "main"
    source: str = ""
    state: HealthState = "stopped"
    since_wall_us: int = 0  # wall time of the last state change
    session_id: int | None = None
    codec: str | None = None
    width: int = 0
    height: int = 0
    audio_codec: str | None = None
    fps: float = 0.0  # video packets per second over the sliding window
    bitrate_bps: float = 0.0  # all packets, bits per second over the sliding window
    last_packet_wall_us: int | None = None
    packets: int = 0  # packets delivered to sinks, this process
    bytes: int = 0
    dropped_packets: int = 0  # leading non-keyframes, audio before video, ...
    reconnects: int = 0  # successful opens after the first one
    consecutive_failures: int = 0
    last_error: str | None = None
    last_error_kind: str | None = None
    last_error_wall_us: int | None = None
    next_retry_wall_us: int | None = None
    timestamp_breaks: int = 0
    timestamp_repairs: int = 0


def _now_us() -> int:
    return time.time_ns() // 1000


class HealthTracker:
    """Thread-safe accumulator behind :meth:`snapshot`."""

    def __init__(
        self, camera: str, stream: str = "main", source: str = "", window_s: float = 5.0
    ) -> None:
        self._lock = threading.Lock()
        self._h = CameraHealth(
            camera=camera, stream=stream, source=redact_text(source), since_wall_us=_now_us()
        )
        self._window = window_s
        # (monotonic receipt, bytes, video, media dts µs)
        self._samples: deque[tuple[float, int, bool, int]] = deque()
        self._window_bytes = 0
        self._window_video = 0
        # Per-packet counters live outside the frozen snapshot: ``packet()`` runs for every
        # packet of every camera, and rebuilding a 25-field dataclass each time was a
        # measurable share of the recorder's CPU (bench/record.py). Folded in by snapshot().
        self._packets = 0
        self._bytes = 0
        self._last_packet_wall_us: int | None = None

    # -- updates (ingest thread) -----------------------------------------------------------

    def set_state(self, state: HealthState) -> None:
        with self._lock:
            if self._h.state != state:
                self._h = replace(self._h, state=state, since_wall_us=_now_us())
                if state != "online":
                    self._samples.clear()
                    self._window_bytes = self._window_video = 0

    def reset_window(self) -> None:
        """Forget rate samples (a new session restarts media time at 0)."""
        with self._lock:
            self._samples.clear()
            self._window_bytes = self._window_video = 0

    def session(
        self,
        session_id: int,
        codec: str,
        width: int,
        height: int,
        audio_codec: str | None,
    ) -> None:
        """A session started: the stream works, so the failure streak is over."""
        with self._lock:
            self._h = replace(
                self._h,
                session_id=session_id,
                codec=codec,
                width=width,
                height=height,
                audio_codec=audio_codec,
                consecutive_failures=0,
                next_retry_wall_us=None,
            )

    def reconnected(self) -> None:
        """A connection was opened again after an earlier one."""
        with self._lock:
            self._h = replace(self._h, reconnects=self._h.reconnects + 1)

    def packet(self, size: int, video: bool, wall_us: int, media_us: int = 0) -> None:
        now = time.monotonic()
        with self._lock:
            self._samples.append((now, size, video, media_us))
            self._window_bytes += size
            self._window_video += int(video)
            self._prune(now)
            self._packets += 1
            self._bytes += size
            self._last_packet_wall_us = wall_us

    def dropped(self, n: int = 1) -> None:
        with self._lock:
            self._h = replace(self._h, dropped_packets=self._h.dropped_packets + n)

    def error(self, kind: str, message: str, *, failure: bool = True) -> None:
        with self._lock:
            h = self._h
            self._h = replace(
                h,
                last_error=redact_text(message),
                last_error_kind=kind,
                last_error_wall_us=_now_us(),
                consecutive_failures=h.consecutive_failures + int(failure),
            )

    def retry_at(self, wall_us: int | None) -> None:
        with self._lock:
            self._h = replace(self._h, next_retry_wall_us=wall_us)

    def timestamps(self, breaks: int, repairs: int) -> None:
        with self._lock:
            self._h = replace(self._h, timestamp_breaks=breaks, timestamp_repairs=repairs)

    # -- reading (any thread) ----------------------------------------------------------------

    def snapshot(self) -> CameraHealth:
        """A consistent copy, with fps/bitrate computed over the window ending now.

        Rates use the packets' media timestamps, not their arrival times: FFmpeg hands over
        a second or two of packets at once after opening, and arrival-time rates would
        read double for the first seconds of every connection."""
        now = time.monotonic()
        with self._lock:
            self._prune(now)
            h = replace(
                self._h,
                packets=self._packets,
                bytes=self._bytes,
                last_packet_wall_us=self._last_packet_wall_us,
            )
            vids = [m for _, _, v, m in self._samples if v]
            if len(vids) < 2 or vids[-1] <= vids[0]:
                return replace(h, fps=0.0, bitrate_bps=0.0)
            span_s = (vids[-1] - vids[0]) / 1e6
            n = len(vids)
            fps = (n - 1) / span_s
            # bytes of n frames cover n frame intervals, the span only n - 1
            bitrate = self._window_bytes * 8 / (span_s * n / (n - 1))
            return replace(h, fps=round(fps, 2), bitrate_bps=round(bitrate, 1))

    def _prune(self, now: float) -> None:
        cutoff = now - self._window
        s = self._samples
        while s and s[0][0] < cutoff:
            _, size, video, _ = s.popleft()
            self._window_bytes -= size
            self._window_video -= int(video)
