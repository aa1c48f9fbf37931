"""Decoded, downscaled, rate-limited frames for analysis.

Analytics never needs every frame at full resolution: motion and object detection work
as well at ~5 frames per second on a 640-wide picture, for a fraction of the CPU. So the
frame source

* decodes every frame (inter-coded video cannot be decoded otherwise; ``skip_frame=NONKEY``
  would leave one frame per GOP, i.e. every 2-10 s on typical cameras, far too few),
* keeps one frame per ``1 / target_fps`` seconds *of stream time*, so a camera sending
  25 or 12.5 or variable fps yields the same analysis rate,
* converts and scales only the kept frames, in one swscale call (YUV -> BGR and the
  downscale together) before anything else touches the pixels,
* hands them over through a small bounded queue that drops the *oldest* frame when the
  consumer is slow: a detector that falls behind loses analysis frames, it never stalls
  decoding (for a live camera that would mean a growing delay and, in ingest, memory).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

DropPolicy = Literal["drop_oldest", "block"]


@dataclass(frozen=True, slots=True)
class AnalysisFrame:
    """One kept frame.

    ``time`` is in seconds: media time from the start of the stream for files (plus
    ``FrameSource(start_time=...)`` when given), wall-clock Unix time for live URLs.
    ``image`` is BGR ``uint8`` of shape ``(height, width, 3)``, already downscaled.
    """

    index: int  # counter of kept frames
    source_index: int  # counter of decoded frames
    time: float
    image: npt.NDArray[np.uint8] = field(repr=False)

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


class FrameSampler:
    """Decides which decoded frames to keep, by timestamp.

    Separate from the decoding thread so ingest (which already has packets) can reuse it.
    A frame is kept when its time reaches the next slot; the next slot is then advanced by
    one period from the *slot*, not from the frame, so rounding does not accumulate
    (10 fps -> 5 fps keeps exactly every second frame). A jump of more than a second
    (camera glitch, seek, reconnect) re-anchors the slots instead of emitting a burst.
    """

    def __init__(self, target_fps: float) -> None:
        if target_fps <= 0:
            raise ValueError("target_fps must be > 0")
        self.period = 1.0 / target_fps
        self._next: float | None = None

    def keep(self, t: float) -> bool:
        nxt = self._next
        if nxt is None or t < nxt - 1.0 or t > nxt + 1.0 + self.period:
            self._next = t + self.period
            return True
        # small tolerance: timestamps of a 10 fps stream are 0.1 s apart give or take a tick
        if t + 1e-3 * self.period >= nxt:
            self._next = nxt + self.period
            return True
        return False


def scaled_size(width: int, height: int, target_width: int | None) -> tuple[int, int]:
    """Size for a target width, keeping aspect, never upscaling, even dimensions."""
    if not target_width or width <= target_width:
        return width - width % 2, height - height % 2
    h = round(height * target_width / width)
    return target_width - target_width % 2, max(2, h - h % 2)


class _DropQueue:
    """Bounded FIFO that evicts the oldest item instead of blocking the producer."""

    def __init__(self, maxsize: int, policy: DropPolicy) -> None:
        self._items: collections.deque[AnalysisFrame | None] = collections.deque()
        self._maxsize = max(1, maxsize)
        self._policy = policy
        self._cond = threading.Condition()
        self.dropped = 0

    def put(self, item: AnalysisFrame | None, stop: threading.Event) -> None:
        with self._cond:
            if item is not None and len(self._items) >= self._maxsize:
                if self._policy == "block":
                    while len(self._items) >= self._maxsize and not stop.is_set():
                        self._cond.wait(0.1)
                else:
                    while len(self._items) >= self._maxsize:
                        self._items.popleft()
                        self.dropped += 1
            self._items.append(item)
            self._cond.notify_all()

    def get(self, timeout: float | None) -> AnalysisFrame | None:
        """Next frame; ``None`` at end of stream. Raises ``TimeoutError`` on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._items:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError("no frame")
                self._cond.wait(remaining)
            item = self._items.popleft()
            if item is None:
                self._items.appendleft(None)  # end of stream stays visible to every reader
            self._cond.notify_all()
            return item


def hwaccel_setting(hwaccel: str | None) -> tuple[Any, str | None]:
    """A PyAV ``HWAccel`` for the requested device type and its name, or ``(None, None)``.

    ``"auto"`` picks the first device type the loaded FFmpeg supports; software fallback
    stays enabled so a codec or profile the device cannot handle still decodes.
    """
    if not hwaccel or hwaccel == "none":
        return None, None
    try:
        from av.codec.hwaccel import HWAccel, hwdevices_available

        available = list(hwdevices_available())
        if hwaccel == "auto":
            preferred = ["vaapi", "cuda", "qsv", "videotoolbox", "d3d11va", "drm"]
            choices = [d for d in preferred if d in available]
            if not choices:
                return None, None
            hwaccel = choices[0]
        elif hwaccel not in available:
            return None, None
        return HWAccel(device_type=hwaccel, allow_software_fallback=True), hwaccel
    except Exception:  # old PyAV or no hardware support compiled in
        return None, None


class FrameSource:
    """Decode a file or URL in a worker thread and deliver :class:`AnalysisFrame` s.

    Use as an iterator (ends at end of stream or :meth:`stop`) or call :meth:`get`.
    ``drop_policy="block"`` makes the producer wait instead of dropping; it is meant for
    offline analysis of files, where every kept frame should be analysed and there is no
    live stream to fall behind.
    ``pace=True`` decodes a file no faster than real time, to behave like a camera.
    """

    def __init__(
        self,
        source: str | Path,
        *,
        target_fps: float = 5.0,
        width: int | None = 640,
        queue_size: int = 4,
        drop_policy: DropPolicy = "drop_oldest",
        hwaccel: str | None = "auto",
        options: Mapping[str, str] | None = None,
        pace: bool = False,
        start_time: float | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.source = str(source)
        self.target_fps = target_fps
        self.width = width
        self.hwaccel = hwaccel
        self.options = dict(options or {})
        self.pace = pace
        self.timeout = timeout
        self._is_url = "://" in self.source
        self._start_time = start_time
        if self._is_url and self.source.startswith("rtsp") and "rtsp_transport" not in self.options:
            self.options["rtsp_transport"] = "tcp"
        self._queue = _DropQueue(queue_size, drop_policy)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.decoded = 0
        self.kept = 0
        self.hw_device: str | None = None
        self.error: BaseException | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> FrameSource:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"vigil-frames:{Path(self.source).name}", daemon=True
            )
            self._thread.start()
        return self

    def stop(self, join_timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(join_timeout)

    def __enter__(self) -> FrameSource:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def dropped(self) -> int:
        """Kept frames discarded because the consumer was slower than the stream."""
        return self._queue.dropped

    # -- consumption -------------------------------------------------------------------
    def get(self, timeout: float | None = None) -> AnalysisFrame | None:
        """Next frame, or ``None`` at end of stream (or after an error, see ``error``)."""
        self.start()
        return self._queue.get(timeout)

    def __iter__(self) -> Iterator[AnalysisFrame]:
        while True:
            frame = self.get()
            if frame is None:
                return
            yield frame

    # -- worker ------------------------------------------------------------------------
    def _open(self) -> Any:
        import av

        kwargs: dict[str, Any] = {"options": self.options} if self.options else {}
        if self._is_url:
            kwargs["timeout"] = self.timeout
        hw, device = hwaccel_setting(self.hwaccel)
        if hw is not None:
            try:
                container = av.open(self.source, hwaccel=hw, **kwargs)
                # the device is used when it can decode this codec; FFmpeg falls back to
                # software per stream otherwise (e.g. MPEG-4 part 2 on most GPUs)
                self.hw_device = device
                return container
            except Exception as exc:  # device missing, driver error: fall back quietly
                log.debug("hardware decode unavailable for %s: %s", self.source, exc)
        self.hw_device = None
        return av.open(self.source, **kwargs)

    def _run(self) -> None:
        try:
            self._decode()
        except Exception as exc:
            self.error = exc
            log.warning("frame source %s failed: %s", self.source, exc)
        finally:
            self._queue.put(None, self._stop)

    def _decode(self) -> None:
        container = self._open()
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            sampler = FrameSampler(self.target_fps)
            base: float = self._start_time if self._start_time is not None else 0.0
            first_t: float | None = None
            wall0 = time.monotonic()
            size = (0, 0)
            src_size = (0, 0)
            rate = float(stream.average_rate or stream.guessed_rate or 25)
            for frame in container.decode(stream):
                if self._stop.is_set():
                    break
                t_media = frame.time if frame.time is not None else self.decoded / rate
                self.decoded += 1
                if first_t is None:
                    first_t = t_media
                    if self._start_time is None and self._is_url:
                        # live: anchor stream time to the wall clock at the first frame
                        base = time.time()
                rel = t_media - first_t
                if self.pace:
                    delay = rel - (time.monotonic() - wall0)
                    if delay > 0 and self._stop.wait(delay):
                        break
                if not sampler.keep(t_media):
                    continue
                if src_size != (frame.width, frame.height):
                    src_size = (frame.width, frame.height)
                    size = scaled_size(frame.width, frame.height, self.width)
                image = frame.to_ndarray(
                    format="bgr24", width=size[0], height=size[1], interpolation="AREA"
                )
                self._queue.put(
                    AnalysisFrame(
                        self.kept, self.decoded - 1, base + rel, np.ascontiguousarray(image)
                    ),
                    self._stop,
                )
                self.kept += 1
        finally:
            container.close()
