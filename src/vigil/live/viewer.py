"""Per-viewer mailboxes filled by a camera's ingest thread and read by the event loop.

The rule that shapes everything here: the producer is a camera's ingest thread, which must
never wait for a viewer (the recorder is called on that same thread). So the producer only
appends under a short lock and *schedules* a wake-up on the viewer's event loop with
``loop.call_soon_threadsafe``; the consumer (a WebSocket handler) awaits that wake-up.
A viewer that does not keep up is not waited for either: its queue has a byte bound, and
going over it closes the viewer and frees its queue, so one stuck browser costs at most
``max_bytes`` of memory and nothing else.

Consumers that are threads (tests, tools) can use the blocking ``get``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Literal

CloseReason = Literal["slow", "closed", "hub_closed", "loop_closed"]


@dataclass(frozen=True, slots=True)
class LiveInit:
    """Start of a stream (a new camera session): decode everything after it with ``data``.

    ``media_us``/``wall_us`` anchor the wall clock: the frame with decode time ``media_us``
    (µs on this hub's timeline, the fragment ``tfdt``) was captured at ``wall_us``."""

    camera: str
    stream: str
    session_id: int
    mime: str
    codecs: str
    video_codec: str
    width: int
    height: int
    has_audio: bool
    media_us: int
    wall_us: int
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True, slots=True)
class LiveFragment:
    """A ``moof``+``mdat``. ``keyframe``: it starts with a video sync sample, so a decoder
    may start here. ``media_us``/``wall_us``: decode and capture time of its first video
    sample."""

    session_id: int
    keyframe: bool
    media_us: int
    wall_us: int
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True, slots=True)
class LiveNotice:
    """Something a viewer should show rather than decode: ``ended`` (the camera session
    ended, ``detail`` says why; a new ``LiveInit`` follows when it is back) or
    ``unsupported`` (this session cannot be put in MP4, e.g. MPEG-2 video: use the MJPEG
    fallback)."""

    kind: Literal["ended", "unsupported"]
    detail: str

    @property
    def size(self) -> int:
        return 64


LiveItem = LiveInit | LiveFragment | LiveNotice


class _Waker:
    """Cross-thread wake-up of one async consumer, scheduling at most one callback at a
    time (a producer at 30 fps with a busy loop must not pile up callbacks)."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self.loop = loop
        self.event = asyncio.Event() if loop is not None else None
        self.pending = False  # guarded by the owner's lock

    def arm(self) -> None:
        """Called by the consumer (on the loop, owner's lock held) before awaiting."""
        self.pending = False
        if self.event is not None:
            self.event.clear()

    def schedule(self) -> bool:
        """Called by the producer (owner's lock held). False if the loop is gone."""
        if self.loop is None or self.pending:
            return True
        self.pending = True
        try:
            self.loop.call_soon_threadsafe(self._set)
        except RuntimeError:  # loop closed: nobody will ever read
            return False
        return True

    def _set(self) -> None:
        if self.event is not None:
            self.event.set()


class LiveViewer:
    """One viewer of a :class:`~vigil.live.hub.LiveHub`: a bounded FIFO of live items.

    Created by ``LiveHub.subscribe``; read with ``await next()`` (or ``get`` from a
    thread); ``close()`` (or the hub) ends it. ``closed_reason`` says why it ended:
    ``"slow"`` when it fell more than ``max_bytes`` behind.
    """

    def __init__(self, max_bytes: int, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._items: deque[LiveItem] = deque()
        self._bytes = 0
        self._waker = _Waker(loop)
        self.closed_reason: CloseReason | None = None
        self.need_keyframe = True  # guarded by the hub's lock: skip fragments until a key
        self.delivered = 0
        self.dropped_bytes = 0
        self.created = time.monotonic()

    # -- producer side (any thread; never blocks beyond a short lock) -----------------------

    def push(self, item: LiveItem) -> bool:
        """Queue ``item``. Returns False when the viewer is (now) closed."""
        with self._lock:
            if self.closed_reason is not None:
                return False
            if self._bytes + item.size > self.max_bytes:
                self._close_locked("slow")
                return False
            self._items.append(item)
            self._bytes += item.size
            self._cond.notify_all()
            if not self._waker.schedule():
                self._close_locked("loop_closed")
                return False
        return True

    def prepend(self, items: list[LiveItem]) -> bool:
        """Put ``items`` in front of the queue (the hub's catch-up preamble, built after the
        viewer was registered so that no live fragment could be missed in between)."""
        with self._lock:
            if self.closed_reason is not None:
                return False
            size = sum(i.size for i in items)
            if self._bytes + size > self.max_bytes:
                self._close_locked("slow")
                return False
            self._items.extendleft(reversed(items))
            self._bytes += size
            self._cond.notify_all()
            if not self._waker.schedule():
                self._close_locked("loop_closed")
                return False
        return True

    def _close_locked(self, reason: CloseReason) -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
        self.dropped_bytes += self._bytes
        self._items.clear()  # free the memory now, not when the consumer wakes up
        self._bytes = 0
        self._cond.notify_all()
        self._waker.schedule()

    def close(self, reason: CloseReason = "closed") -> None:
        with self._lock:
            self._close_locked(reason)

    # -- consumer side ------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self.closed_reason is not None

    @property
    def queued_bytes(self) -> int:
        with self._lock:
            return self._bytes

    def _pop_locked(self) -> LiveItem:
        item = self._items.popleft()
        self._bytes -= item.size
        self.delivered += 1
        return item

    async def next(self) -> LiveItem | None:
        """The next item, waiting for it; None once the viewer is closed."""
        if self._waker.event is None:
            raise RuntimeError("this viewer was subscribed without an event loop")
        while True:
            with self._lock:
                if self._items:
                    return self._pop_locked()
                if self.closed_reason is not None:
                    return None
                self._waker.arm()
            await self._waker.event.wait()

    def get(self, timeout: float | None = None) -> LiveItem | None:
        """Blocking variant of :meth:`next` for threads; None on close or timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._items:
                if self.closed_reason is not None:
                    return None
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            return self._pop_locked()

    def drain(self) -> list[LiveItem]:
        """Everything queued right now (tests)."""
        with self._lock:
            out = []
            while self._items:
                out.append(self._pop_locked())
            return out


class LatestSlot:
    """A mailbox that keeps only the newest value: for MJPEG, where a slow viewer should
    simply see fewer frames instead of older ones, so it never needs disconnecting."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._value: tuple[int, bytes] | None = None
        self._waker = _Waker(loop)
        self.closed = False

    def put(self, wall_us: int, data: bytes) -> None:
        with self._lock:
            if self.closed:
                return
            self._value = (wall_us, data)
            self._cond.notify_all()
            if not self._waker.schedule():
                self.closed = True

    def close(self) -> None:
        with self._lock:
            self.closed = True
            self._value = None
            self._cond.notify_all()
            self._waker.schedule()

    async def next(self) -> tuple[int, bytes] | None:
        """The newest (wall_us, jpeg) not yet taken, waiting for one; None when closed."""
        if self._waker.event is None:
            raise RuntimeError("this slot was created without an event loop")
        while True:
            with self._lock:
                if self.closed:
                    return None
                if self._value is not None:
                    value, self._value = self._value, None
                    return value
                self._waker.arm()
            await self._waker.event.wait()

    def get(self, timeout: float | None = None) -> tuple[int, bytes] | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._value is None:
                if self.closed:
                    return None
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            value, self._value = self._value, None
            return value
