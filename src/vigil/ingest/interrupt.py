"""Interrupting a blocking PyAV open or read from another thread, so ``stop()`` is prompt.

FFmpeg polls an interrupt callback while it waits on the network. PyAV installs one when a
``timeout=`` is given, but it only compares ``time.monotonic()`` with a deadline and offers
no way to trigger it early. PyAV's callback looks ``time.monotonic`` up through its
module's global ``time`` on every call, so we replace that global with a proxy that
answers normally except in threads that asked to be interrupted: there each call returns a
value far beyond the previous one, which makes every pending deadline expire at the next
poll (within ~100 ms). It is a deliberate, narrow hook into PyAV internals; if a future PyAV
no longer has the global, :func:`install` returns False and readers fall back to their
read timeout (stop then takes up to ``stall_timeout``).

Installing does not import PyAV: before PyAV is loaded there is nothing to patch, and a
recorder whose cameras are all read natively never loads it. ``open_input`` (the only way
ingest opens PyAV inputs) calls :func:`install` again right after importing PyAV.
"""

from __future__ import annotations

import ctypes
import struct
import sys
import threading
import time as _time
from typing import Any

_lock = threading.Lock()
_interrupted: dict[int, float] = {}  # thread ident -> fake clock value
_installed: bool | None = None
_STEP = 1e9  # seconds; larger than any timeout we configure


class _InterruptibleTime:
    """Stand-in for the ``time`` module inside ``av.container.core``."""

    def __getattr__(self, name: str) -> Any:
        return getattr(_time, name)

    def monotonic(self) -> float:
        ident = threading.get_ident()
        if _interrupted:  # cheap check first: empty almost always
            with _lock:
                fake = _interrupted.get(ident)
                if fake is not None:
                    # strictly increasing by more than any timeout: start_timeout() may
                    # read this value too, and the next poll must still be "past" it
                    fake += _STEP
                    _interrupted[ident] = fake
                    return fake
        return _time.monotonic()


def install() -> bool:
    """Install the hook once per process. Returns whether interrupts are available."""
    global _installed
    with _lock:
        if _installed is not None:
            return _installed
        if "av" not in sys.modules:
            return True  # nothing opened through PyAV yet: installed when it is imported
        try:
            import av.container.core as core
        except ImportError:  # pragma: no cover - PyAV always has it today
            _installed = False
            return False
        current = getattr(core, "time", None)
        if isinstance(current, _InterruptibleTime):
            _installed = True
        elif current is _time:
            core.time = _InterruptibleTime()  # type: ignore[attr-defined]
            _installed = True
        else:
            _installed = False
        return _installed


def interrupt(ident: int) -> None:
    """Make the blocking PyAV call in thread ``ident`` (and every later one) fail fast."""
    with _lock:
        _interrupted.setdefault(ident, _time.monotonic() + _STEP)


def clear(ident: int) -> None:
    """Forget an interrupt request; call from the interrupted thread when it is done with
    PyAV (thread idents are reused)."""
    with _lock:
        _interrupted.pop(ident, None)


# -- cheap reads: the per-container switch -------------------------------------------------
#
# While PyAV's read timeout is armed (>= 0), FFmpeg's interrupt callback takes the GIL and
# calls into Python on *every* poll of the socket: several times per RTP packet, a few
# thousand times a second per 4 Mbit/s camera. With tens of cameras that is tens of
# thousands of GIL hand-offs a second between reader threads (bench/record.py measured
# ~17 % of the recorder's CPU at 25 cameras, and thrashing at 50). With the timeout at -1
# the callback returns at once without the GIL. PyAV offers no Python API to change the
# timeout of an open container, so :class:`ReadSwitch` finds the ``timeout`` field of the
# container's C struct once (by a sentinel value PyAV itself writes there) and flips it:
# -1 while reading (stalls are then caught by FFmpeg's socket timeout, which the reader
# sets), 0 to interrupt the current read at FFmpeg's next poll (<= ~100 ms) on stop().

READ_SENTINEL = 86_400_000.375  # s; passed as PyAV's read timeout so it can be found
_SENTINEL_BYTES = struct.pack("=d", READ_SENTINEL)
_offsets: dict[type, int | None] = {}


def _find_timeout_offset(container: Any) -> int | None:
    """Byte offset of ``interrupt_callback_info.timeout`` in the container object, or None.

    Valid only while PyAV's demux generator is suspended after yielding a packet (it has
    then written ``READ_SENTINEL`` to ``timeout`` and a fresh ``time.monotonic()`` to
    ``start_time``, the double just before it)."""
    cls = type(container)
    if cls in _offsets:
        return _offsets[cls]
    size = getattr(cls, "__basicsize__", 0)
    found: int | None = None
    if size >= 16:
        raw = ctypes.string_at(id(container), size)
        at = raw.find(_SENTINEL_BYTES)
        if at >= 8 and at % 8 == 0 and raw.find(_SENTINEL_BYTES, at + 1) == -1:
            (start,) = struct.unpack_from("=d", raw, at - 8)
            now = _time.monotonic()
            if now - 3600.0 <= start <= now + 1.0:  # PyAV wrote monotonic() there: it is it
                found = at
    _offsets[cls] = found
    return found


class ReadSwitch:
    """Switches PyAV's interrupt callback of one open input container off and on.

    Owned by the reader thread; :meth:`trigger` may be called from any thread as long as
    the owner keeps the container alive until it has called :meth:`release` (the reader
    serialises both under its lock)."""

    def __init__(self, container: Any) -> None:
        self._container: Any = container
        self._addr: int | None = None

    @property
    def armed(self) -> bool:
        return self._addr is not None

    def arm(self) -> bool:
        """After the first packet of a demux started with ``READ_SENTINEL`` as the read
        timeout: make further reads skip the GIL. False if PyAV's layout is not the one
        expected (reads then keep the sentinel timeout: correct, only costlier)."""
        c = self._container
        if c is None:
            return False
        off = _find_timeout_offset(c)
        if off is None:
            return False
        cell = ctypes.c_double.from_address(id(c) + off)
        if cell.value != READ_SENTINEL:  # not in the state the offset was found in
            return False
        self._addr = id(c) + off
        cell.value = -1.0
        return True

    def trigger(self) -> None:
        """Make the current and every later read of this container fail at FFmpeg's next
        poll of the interrupt callback."""
        if self._addr is not None and self._container is not None:
            ctypes.c_double.from_address(self._addr).value = 0.0

    def release(self) -> None:
        """Forget the container (call before closing it)."""
        self._container = None
        self._addr = None


class StallWatchdog:
    """One thread for all readers whose PyAV read timeout is switched off: it interrupts a
    read that has waited longer than its stall timeout (FFmpeg's socket timeout is only the
    backstop, as it also has to cover the slower open handshake)."""

    _instance: StallWatchdog | None = None
    _instance_lock = threading.Lock()

    def __init__(self, period: float = 0.1) -> None:
        self._period = period
        self._lock = threading.Lock()
        self._watched: dict[int, tuple[ReadSwitch, Any, float]] = {}
        self._thread: threading.Thread | None = None

    @classmethod
    def shared(cls) -> StallWatchdog:
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def watch(self, switch: ReadSwitch, owner: Any, stall_timeout: float) -> None:
        """Watch ``owner`` (anything with a ``last_read`` monotonic time and a
        ``read_stalled()`` method called, from this thread, before the interrupt)."""
        with self._lock:
            self._watched[id(switch)] = (switch, owner, stall_timeout)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="ingest-stall-watchdog", daemon=True
                )
                self._thread.start()

    def unwatch(self, switch: ReadSwitch) -> None:
        with self._lock:
            self._watched.pop(id(switch), None)

    def _run(self) -> None:
        while True:
            _time.sleep(self._period)
            now = _time.monotonic()
            with self._lock:
                if not self._watched:
                    self._thread = None
                    return
                due = [
                    (sw, owner)
                    for sw, owner, limit in self._watched.values()
                    if now - owner.last_read > limit
                ]
                for sw, _owner in due:
                    self._watched.pop(id(sw), None)
            for sw, owner in due:
                owner.read_stalled(sw)
