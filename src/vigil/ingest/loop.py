"""One thread that reads every camera Vigil's own RTSP client reads.

Why: with a thread per camera, every burst of RTP packets wakes that camera's thread, which
must then take the GIL from whichever of the other reading threads holds it, and finds its
code and data gone from the CPU caches. One thread waiting on all sockets with ``epoll``
only pays off when each wake-up serves several cameras: it lets packets gather for
``batch`` seconds (``ingest.read_batch_ms``) before waiting again. Measured with 10 and 50
simulated 1080p cameras recorded (bench/README.md), a 5 ms batch saved nothing over a
thread per camera, 20 ms about 10 % of the recorder's CPU, 40 ms (the default) 15-25 %.
The costs: up to ``batch`` of latency, and a slow packet sink delays every camera on the
loop, not only its own (sinks already hand heavy work, analytics and live transcoding, to
their own threads; a step longer than ``SLOW_STEP`` is logged).

How: a connection is a generator (:meth:`CameraReader._connection_steps
<vigil.ingest.reader.CameraReader>`) that runs until its reader would block, then yields
the monotonic time by which it wants to be resumed even if its socket stays silent (stall
checks, keep-alives). The loop resumes it when its socket is readable or that time has
come, and hands the generator's return value back to the camera's own thread, which waits
in :meth:`ReadLoop.run` and keeps doing what needs no speed: opening connections, back-off,
fallback to FFmpeg. FFmpeg-read cameras keep a blocking thread each (FFmpeg cannot be
resumed half way through a read).
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import threading
import time
import traceback
from collections.abc import Generator
from typing import Any, ClassVar, Generic, TypeVar

log = logging.getLogger("vigil.ingest.loop")

R = TypeVar("R")

# Default wait after a wake-up before the next, so that packets of several cameras are
# handled per wake-up (seconds; ``ingest.read_batch_ms``). Measured with 10 and 50
# simulated cameras: 5 ms saved nothing over a thread per camera, 20 ms saved ~10 %,
# 40 ms 15-25 %.
DEFAULT_BATCH = 0.040

# A step longer than this (a sink that blocked: a slow disk, a locked database) is logged:
# while it runs, no other camera on the loop is read.
SLOW_STEP = 0.5


class _Task(Generic[R]):
    __slots__ = ("deadline", "done", "error", "fd", "name", "registered", "result", "steps")

    def __init__(self, steps: Generator[float, None, R], fd: int, name: str) -> None:
        self.steps = steps
        self.fd = fd
        self.name = name
        self.deadline = 0.0  # resume at once: the generator has not started
        self.registered = False
        self.done = threading.Event()
        self.result: R | None = None
        self.error: BaseException | None = None


class ReadLoop:
    """Runs connection generators on one thread. See the module docstring.

    One shared instance per process (:meth:`shared`) serves every camera; tests may make
    their own. The thread starts with the first connection and lives as long as the
    process (a daemon thread idle in ``epoll_wait`` costs nothing)."""

    _shared: ClassVar[ReadLoop | None] = None
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, batch: float = DEFAULT_BATCH, name: str = "ingest-loop") -> None:
        self.batch = batch
        self.name = name
        self._lock = threading.Lock()
        self._pending: list[_Task[Any]] = []
        self._tasks: set[_Task[Any]] = set()
        self._thread: threading.Thread | None = None
        self._selector: selectors.BaseSelector | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.wakeups = 0  # loop iterations, for tests and benchmarks
        self.slowest_step = 0.0  # seconds, the longest single step so far

    @classmethod
    def shared(cls) -> ReadLoop:
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = ReadLoop()
            return cls._shared

    @classmethod
    def existing(cls) -> ReadLoop | None:
        """The shared instance if something has used it, without creating it."""
        return cls._shared

    def on_loop_thread(self) -> bool:
        """True when called from this loop's thread (i.e. from a packet sink)."""
        t = self._thread
        return t is not None and t is threading.current_thread()

    @property
    def connections(self) -> int:
        """Connections currently read by the loop."""
        with self._lock:
            return len(self._tasks) + len(self._pending)

    def run(self, steps: Generator[float, None, R], fd: int, name: str = "") -> R:
        """Run ``steps`` on the loop until it returns, and return its value (or raise what
        it raised). ``fd`` is the socket whose readability resumes it; ``name`` names it in
        logs. Blocks the calling thread, which must not be the loop's own."""
        if self.on_loop_thread():
            raise RuntimeError("ReadLoop.run() called from the loop thread")
        task: _Task[R] = _Task(steps, fd, name)
        with self._lock:
            self._pending.append(task)
            if self._thread is None:
                self._selector = selectors.DefaultSelector()
                self._selector.register(self._wake_r, selectors.EVENT_READ, None)
                self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)
                self._thread.start()
        self._wake()
        task.done.wait()
        if task.error is not None:
            raise task.error
        return task.result  # type: ignore[return-value]

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b"\0")

    # -- the loop thread ----------------------------------------------------------------

    def _main(self) -> None:
        sel = self._selector
        assert sel is not None
        tasks = self._tasks
        select = sel.select
        monotonic = time.monotonic
        step = self._step
        runnable: list[_Task[Any]] = []  # to resume in this iteration
        # Deadlines are seconds away (stall checks, keep-alives) and move forward while media
        # flows, so they are not kept sorted: all tasks are scanned when the earliest deadline
        # known at the last scan has come (``timer``), which is rare.
        timer = 0.0
        while True:
            try:
                if self._pending:
                    with self._lock:
                        pending, self._pending = self._pending, []
                    tasks.update(pending)
                    runnable.extend(pending)  # first step at once (their deadline is 0)
                now = monotonic()
                timeout = 0.0 if runnable else max(0.0, timer - now)
                events = select(timeout)
                woke = monotonic()
                self.wakeups += 1
                for key, _mask in events:
                    task = key.data
                    if task is None:
                        with contextlib.suppress(BlockingIOError):
                            os.read(self._wake_r, 4096)
                        continue
                    runnable.append(task)
                if woke >= timer:
                    timer = woke + 3600.0
                    for task in tasks:
                        if task.deadline <= woke:
                            runnable.append(task)
                        elif task.deadline < timer:
                            timer = task.deadline
                if runnable:
                    batch_tasks, runnable = runnable, []
                    seen: set[int] = set()
                    for task in batch_tasks:
                        if id(task) in seen or task.done.is_set():
                            continue
                        seen.add(id(task))
                        step(sel, task)
                        if not task.done.is_set():
                            d = task.deadline
                            if d <= woke:  # wants another turn at once
                                runnable.append(task)
                            elif d < timer:
                                timer = d
                batch = self.batch
                if batch > 0:
                    left = batch - (monotonic() - woke)
                    if left > 0:
                        time.sleep(left)
            except Exception as exc:  # a bug in the loop itself: keep serving the others
                log.error(
                    "ingest loop error: %s", "".join(traceback.format_exception(exc)).rstrip()
                )
                time.sleep(0.1)

    def _step(self, sel: selectors.BaseSelector, task: _Task[Any]) -> None:
        t0 = time.monotonic()
        try:
            task.deadline = next(task.steps)
        except StopIteration as done:
            task.result = done.value
            self._finish(sel, task)
            return
        except BaseException as exc:  # handed to the waiting thread
            task.error = exc
            self._finish(sel, task)
            return
        finally:
            took = time.monotonic() - t0
            if took > self.slowest_step:
                self.slowest_step = took
            if took > SLOW_STEP:
                log.warning(
                    "reading %s took %.1f s in one step: every camera on the ingest loop "
                    "waited (a slow disk or a locked database under a packet sink?)",
                    task.name or "a camera",
                    took,
                )
        if not task.registered:
            task.registered = True
            try:
                sel.register(task.fd, selectors.EVENT_READ, task)
            except (OSError, ValueError, KeyError) as exc:
                # a socket closed under us: step it again at once, it will see why
                log.debug("ingest loop: cannot watch fd %d: %s", task.fd, exc)
                task.registered = False
                task.deadline = 0.0

    def _finish(self, sel: selectors.BaseSelector, task: _Task[Any]) -> None:
        self._tasks.discard(task)
        if task.registered:
            # the generator closed its socket already: epoll dropped it; forget the key
            with contextlib.suppress(KeyError, ValueError, OSError):
                sel.unregister(task.fd)
            task.registered = False
        task.done.set()
