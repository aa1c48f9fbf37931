"""Making fragments durable: one ``syncfs`` per interval per file system, not an
``fdatasync`` per fragment per camera.

Why. A ``kill -9`` loses nothing that reached the page cache, so per-fragment syncing only
matters for power loss, where the promise is "at most about one fragment per camera". With
an ``fdatasync`` after every fragment that promise cost each camera a system call, a journal
commit and a wait every second: measurable kernel time at tens of cameras. One thread per
file system calling ``syncfs`` once per ``fragment_seconds`` (only when something was
written) keeps the promise within one more interval, with one journal commit for all
cameras. A segment is still ``fsync``-ed on its own before it is renamed and indexed, so
the index never describes bytes that are not on disk.

``syncfs`` is Linux-only; elsewhere :func:`syncer_for` returns None and the writer syncs
each fragment itself.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading
from pathlib import Path

log = logging.getLogger(__name__)

_lock = threading.Lock()
_syncers: dict[int, FragmentSyncer] = {}


def _load_syncfs() -> object | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        fn = libc.syncfs
    except (OSError, AttributeError, TypeError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_SYNCFS = _load_syncfs()


class FragmentSyncer:
    """Flushes one file system every ``interval`` seconds after :meth:`mark`."""

    def __init__(self, directory: Path, interval: float) -> None:
        self.interval = interval
        self.syncs = 0  # for tests and metrics
        self._fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._dirty = threading.Event()
        self._failed_once = False
        thread = threading.Thread(target=self._run, name="fragment-syncer", daemon=True)
        thread.start()

    def mark(self) -> None:
        """Something was written that must reach the disk within an interval."""
        self._dirty.set()

    def _run(self) -> None:
        while True:
            self._dirty.wait()
            # let the interval's fragments of all cameras accumulate, then flush them at once
            threading.Event().wait(self.interval)
            self._dirty.clear()
            self.sync_now()

    def sync_now(self) -> None:
        assert _SYNCFS is not None
        if _SYNCFS(self._fd) != 0:  # type: ignore[operator]
            err = ctypes.get_errno()
            if not self._failed_once:  # the segment's own fsync at close reports per file
                self._failed_once = True
                log.error("syncfs of the storage file system failed: %s", os.strerror(err))
        else:
            self.syncs += 1


def syncer_for(directory: Path, interval: float) -> FragmentSyncer | None:
    """The process's syncer for ``directory``'s file system (created on first use; the
    shortest interval asked for wins), or None where ``syncfs`` does not exist."""
    if _SYNCFS is None:
        return None
    dev = os.stat(directory).st_dev
    with _lock:
        syncer = _syncers.get(dev)
        if syncer is None:
            syncer = _syncers[dev] = FragmentSyncer(directory, interval)
        elif interval < syncer.interval:
            syncer.interval = interval
        return syncer
