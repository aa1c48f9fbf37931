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
"""

from __future__ import annotations

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
