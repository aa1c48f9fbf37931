"""One camera stream: connect, demux, time-stamp, hand packets to sinks, repeat.

Thread model. :class:`CameraReader` owns a daemon thread that opens its stream (blocking,
bounded by ``open_timeout``), waits out the back-off between attempts and reads
FFmpeg-opened streams (blocking, bounded by ``stall_timeout``). A connection opened by
Vigil's own RTSP client is instead read on the process's shared :class:`~vigil.ingest.loop.
ReadLoop` thread (``ingest.shared_read_thread``, on by default) while the camera's thread
waits for it to end: the connection is the generator :meth:`CameraReader._connection_steps`,
which yields whenever it would block. Either way, timestamp mapping and the sinks run
synchronously, in order, on the thread that reads. Nothing is decoded. A sink that raises
is logged (redacted) and skipped for that call, the reader carries on. ``stop()`` may be
called from any thread: it sets a flag, interrupts a blocking FFmpeg call through
:mod:`vigil.ingest.interrupt` (or shuts the native client's socket down) and waits up to
two seconds. :meth:`CameraReader.health` may also be called from any thread.

Sessions. A session starts at the first video keyframe after a connect (earlier packets are
dropped and counted) and ends when the connection ends (``"stopped"``, ``"eof"``,
``"stalled"``, ``"disconnected"``) or when the codec parameters change
(``"codec_change"``); in the latter case the next session starts with the very keyframe
that carried the new parameters and its wall clock continues the old one. Every session
gets a new id, strictly increasing per camera within the process.

Extradata. For H.264/H.265 ``CodecParams.extradata`` is in the same framing as the packets:
Annex-B (start codes + VPS/SPS/PPS) for RTSP, MPEG-TS and raw streams, an avcC/hvcC record
for MP4/Matroska sources. FFmpeg's mp4 muxer reads that choice from the first byte of the
extradata and converts Annex-B packets itself, so a recorder can hand both to it unchanged.
When the container's extradata already describes the parameter sets in force it is passed
through verbatim; otherwise (in-band sets differ or there is no extradata) it is rebuilt
from the in-band sets.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, ClassVar, Literal, TypeVar

from vigil.config.model import Credentials, IngestConfig, StreamSource
from vigil.ingest import interrupt
from vigil.ingest.backoff import Backoff
from vigil.ingest.bitstream import (
    BitstreamError,
    Framing,
    ParameterSets,
    detect_framing,
    extradata_for,
    jpeg_dimensions,
    leading_parameter_sets,
    parse_extradata,
)
from vigil.ingest.clock import MappedTime, SessionClock
from vigil.ingest.errors import MESSAGES, IngestError, classify
from vigil.ingest.health import CameraHealth, HealthTracker
from vigil.ingest.loop import ReadLoop
from vigil.ingest.rtsp import NativeInput, NativeStream, NativeUnsupported, Wait
from vigil.ingest.source import (
    OpenTarget,
    build_target,
    display_url,
    open_input,
    reads_natively,
)
from vigil.ingest.types import CodecParams, PacketSink, StreamSession, TimedPacket
from vigil.util.redact import redact_text

log = logging.getLogger("vigil.ingest")

R = TypeVar("R")

EndReason = Literal["stopped", "eof", "stalled", "disconnected", "codec_change", "error"]

_session_lock = threading.Lock()
_session_counters: dict[str, itertools.count[int]] = {}


def next_session_id(camera: str) -> int:
    """Session ids are strictly increasing per camera (main and sub streams share them)."""
    with _session_lock:
        counter = _session_counters.setdefault(camera, itertools.count(1))
        return next(counter)


@dataclass(slots=True)
class _VideoState:
    """What the current connection knows about its video parameters."""

    codec: str
    framing: Framing | None
    length_size: int
    container_sets: ParameterSets | None  # parsed from the container's extradata
    container_extradata: bytes | None
    sets: ParameterSets | None = None  # in force for the current session
    jpeg_size: tuple[int, int] | None = None


@dataclass(slots=True)
class _Settle:
    """The first packets of a connection, held back until the wall-clock anchor is known.

    FFmpeg reads a second or two of packets while probing the stream during open and hands
    them over all at once, so the receipt time of the first packet is late by the length of
    that backlog. While holding, we track the smallest ``receipt - (anchor + dts)`` of the
    video packets; once it has stood for ``HOLD_US`` of real time (the backlog is drained
    and packets arrive live), it is the anchor correction.
    """

    HOLD_US: ClassVar[int] = 250_000
    MAX_SPAN_US: ClassVar[int] = 4_000_000
    MAX_PACKETS: ClassVar[int] = 500

    vparams: CodecParams
    aparams: CodecParams | None
    min_err_receipt: int
    min_err: int = 0
    packets: list[TimedPacket] = field(default_factory=list)

    def add(self, tp: TimedPacket, receipt: int, anchor: int) -> None:
        self.packets.append(tp)
        if tp.kind == "video":
            err = receipt - (anchor + tp.dts_us)
            if err < self.min_err - 2_000:  # a real step down, not jitter
                self.min_err_receipt = receipt
            self.min_err = min(self.min_err, err)

    def ready(self, receipt: int) -> bool:
        return (
            receipt - self.min_err_receipt >= self.HOLD_US
            or len(self.packets) >= self.MAX_PACKETS
            or (self.packets[-1].dts_us if self.packets else 0) >= self.MAX_SPAN_US
        )


# Demuxers that have no timestamps of their own: FFmpeg numbers the frames at a guessed
# 25 fps, which for a 10 fps MJPEG camera would run the clock 2.5x too fast.
UNTIMED_FORMATS = frozenset({"mpjpeg", "mjpeg", "jpeg_pipe", "h264", "hevc"})
_US_TB = Fraction(1, 1_000_000)


@dataclass(slots=True)
class _Conn:
    untimed: bool = False
    session: StreamSession | None = None
    clock: SessionClock | None = None
    settle: _Settle | None = None
    had_session: bool = False
    native: bool = False  # read by Vigil's RTSP client: no PyAV streams to template from


class _ConnectionEnded(Exception):
    def __init__(self, reason: EndReason, error: IngestError | None = None) -> None:
        super().__init__(reason)
        self.reason: EndReason = reason
        self.error = error


class CameraReader:
    """Ingest for one stream of one camera. See the module docstring for the model.

    ``realtime`` paces local files at their native rate (the default: recording a file
    faster than real time would give wrong wall-clock times); network sources are always
    read as they come. ``loop`` re-opens a local file at its end instead of stopping.
    ``audio=False`` ignores audio tracks. ``healthy_reset`` is how long a connection must
    deliver packets before the back-off starts over.
    """

    # how long Vigil's RTSP client may deliver video without a keyframe before the camera
    # is read through FFmpeg instead (see _no_native_keyframe)
    native_keyframe_wait: ClassVar[float] = 10.0

    def __init__(
        self,
        camera: str,
        source: StreamSource,
        sinks: Sequence[PacketSink] = (),
        *,
        credentials: Credentials | None = None,
        config: IngestConfig | None = None,
        stream: str = "main",
        realtime: bool = True,
        loop: bool = False,
        audio: bool = True,
        healthy_reset: float = 30.0,
        max_slew_ppm: float = 500.0,
        backoff: Backoff | None = None,
    ) -> None:
        self.camera = camera
        self.stream = stream
        self._source = source
        self._credentials = credentials
        self._cfg = config or IngestConfig()
        self._sinks: list[PacketSink] = list(sinks)
        self._realtime = realtime
        self._loop = loop
        self._audio = audio
        self._healthy_reset = healthy_reset
        self._max_slew_ppm = max_slew_ppm
        self.backoff = backoff or Backoff(self._cfg.backoff_initial, self._cfg.backoff_max)
        self._display = _display(source)
        self._health = HealthTracker(camera, stream, self._display)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ilock = threading.Lock()
        self._finished = False
        self._switch: interrupt.ReadSwitch | None = None  # guarded by _ilock
        self._native: NativeInput | None = None  # guarded by _ilock
        self._native_refused = False  # the camera needs FFmpeg (see _open)
        self._stalled_by_watchdog = False
        self._interrupted_thread = False
        self.last_read = time.monotonic()  # monotonic time of the last packet read
        self._sink_errors: dict[int, int] = {}
        self._opened_once = False
        # the latest back-off delays waited, newest last (for tests and metrics)
        self.delays: deque[float] = deque(maxlen=64)

    # -- public API ---------------------------------------------------------------------

    def add_sink(self, sink: PacketSink) -> None:
        """Add a sink before :meth:`start` (sinks are called in the order added)."""
        if self._thread is not None:
            raise RuntimeError("add sinks before start()")
        self._sinks.append(sink)

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("reader already started")
        interrupt.install()
        self._thread = threading.Thread(
            target=self._run, name=f"ingest-{self.camera}-{self.stream}", daemon=True
        )
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the reader to stop, without waiting. Stopping many readers: request all, then
        :meth:`stop` each, so that their ends overlap (the shared read thread ends every
        interrupted connection in one pass)."""
        self._stop.set()
        t = self._thread
        if t is None:
            return
        with self._ilock:
            if not self._finished and t.ident is not None:
                interrupt.interrupt(t.ident)
            if self._switch is not None:
                self._switch.trigger()
            if self._native is not None:
                self._native.interrupt()

    def stop(self, timeout: float = 2.0) -> bool:
        """Ask the reader to stop and wait up to ``timeout`` s. Returns True when the thread
        has ended (the current session has then been ended with reason ``"stopped"``)."""
        self.request_stop()
        t = self._thread
        if t is None:
            return True
        loop = ReadLoop.existing()
        if t is threading.current_thread() or (loop is not None and loop.on_loop_thread()):
            return False  # called from a sink: the loop notices the flag on return
        t.join(timeout)
        return not t.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def health(self) -> CameraHealth:
        """Thread-safe snapshot of this stream's health."""
        return self._health.snapshot()

    def read_stalled(self, switch: interrupt.ReadSwitch) -> None:
        """Called by the stall watchdog (its thread): the read has waited too long."""
        with self._ilock:
            if self._switch is not switch or self._finished:
                return
            self._stalled_by_watchdog = True
            if switch.armed:
                switch.trigger()
            elif self._thread is not None and self._thread.ident is not None:
                # not switched (first packet pending): PyAV's own timeout is still armed
                interrupt.interrupt(self._thread.ident)
                self._interrupted_thread = True

    # -- thread -------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop_forever()
        except Exception as exc:  # a bug, not a camera problem: say so, redacted
            log.error(
                "ingest thread for %s/%s crashed: %s",
                self.camera,
                self.stream,
                redact_text("".join(traceback.format_exception(exc))),
            )
            self._health.error("error", f"internal error: {type(exc).__name__}")
        finally:
            self._health.set_state("stopped")
            with self._ilock:
                self._finished = True
                interrupt.clear(threading.get_ident())

    def _loop_forever(self) -> None:
        is_file = self._source.file is not None
        while not self._stop.is_set():
            self._health.set_state("connecting")
            try:
                target = build_target(
                    self._source,
                    self._credentials,
                    open_timeout=self._cfg.open_timeout,
                    read_timeout=self._cfg.stall_timeout,
                )
                container = self._open(target)
            except IngestError as open_err:
                if self._stop.is_set():
                    return
                self._failed(open_err)
                if not self._wait_backoff():
                    return
                continue

            reconnected = self._opened_once
            self._opened_once = True
            if reconnected:
                self._health.reconnected()
            connected_at = time.monotonic()
            reason, err, had_session = self._run_connection(container, target)
            healthy = had_session and time.monotonic() - connected_at >= self._healthy_reset
            if healthy:
                self.backoff.reset()
            if reason == "stopped" or self._stop.is_set():
                return
            if is_file and reason == "eof":
                if self._loop:
                    continue
                log.info("%s/%s: end of file %s", self.camera, self.stream, self._display)
                return
            if err is None:
                self._health.set_state("offline")
            if not self._wait_backoff():
                return

    def _open(self, target: OpenTarget) -> Any:
        """Open ``target``: plain RTSP over TCP with Vigil's own client (unless configured
        otherwise or the camera turned out to need FFmpeg), everything else with FFmpeg."""
        if reads_natively(target, self._cfg.rtsp_client) and not self._native_refused:
            native = NativeInput(
                target.url,
                target.display,
                open_timeout=self._cfg.open_timeout,
                stall_timeout=self._cfg.stall_timeout,
                audio=self._audio,
            )
            with self._ilock:
                if self._stop.is_set():
                    raise IngestError("stopped", "stopped", source=target.display)
                self._native = native
            try:
                return native.open()
            except NativeUnsupported as exc:
                # remembered for this reader: the camera will not change its mind
                self._native_refused = True
                log.info("%s/%s: %s; reading it through FFmpeg", self.camera, self.stream, exc)
            finally:
                with self._ilock:
                    self._native = None
        return open_input(
            target,
            open_timeout=self._cfg.open_timeout,
            # network reads: a sentinel that ReadSwitch finds and switches off
            # (see interrupt.py); stalls are then the watchdog's job
            read_timeout=(
                self._cfg.stall_timeout if target.is_file else interrupt.READ_SENTINEL
            ),
            stopping=self._stop.is_set,
        )

    def _failed(self, err: IngestError, state: Literal["offline", "stalled"] = "offline") -> None:
        prev = self._health.snapshot()
        self._health.error(err.kind, str(err))
        self._health.set_state(state)
        level = logging.WARNING if prev.last_error != str(err) else logging.INFO
        log.log(level, "%s/%s: %s", self.camera, self.stream, err)

    def _wait_backoff(self) -> bool:
        """Sleep the next back-off delay; False if stopped meanwhile."""
        delay = self.backoff.next_delay()
        self.delays.append(delay)
        self._health.retry_at(time.time_ns() // 1000 + int(delay * 1_000_000))
        return not self._stop.wait(delay)

    # -- one connection -----------------------------------------------------------------

    def _run_connection(
        self, container: Any, target: OpenTarget
    ) -> tuple[EndReason, IngestError | None, bool]:
        """Demux until the connection ends. Returns (reason, error, had a session).
        Native connections are read on the shared loop thread (this thread waits)."""
        if isinstance(container, NativeInput) and self._cfg.shared_read_thread:
            fd = container.fileno()
            if fd >= 0:
                steps = self._connection_steps(container, target, True)
                loop = ReadLoop.shared()
                loop.batch = self._cfg.read_batch_ms / 1000  # one configuration per process
                return loop.run(steps, fd, f"{self.camera}/{self.stream}")
        return _run_to_end(self._connection_steps(container, target, False))

    def _connection_steps(
        self, container: Any, target: OpenTarget, cooperative: bool
    ) -> Generator[float, None, tuple[EndReason, IngestError | None, bool]]:
        """The connection as a generator: with ``cooperative`` (native client only) it
        yields the monotonic time by which it wants to be resumed whenever its socket has
        no bytes; otherwise it never yields. Returns (reason, error, had a session)."""
        conn = _Conn()
        gen: Iterator[Any] | None = None
        reason: EndReason = "error"
        error: IngestError | None = None
        video: Any = None
        audio: Any = None
        switch: interrupt.ReadSwitch | None = None
        native = isinstance(container, NativeInput)
        conn.native = native
        if native:
            # its socket timeout is the stall timeout; stop() interrupts it
            with self._ilock:
                self._native = container
                if self._stop.is_set():
                    container.interrupt()
        elif not target.is_file:
            switch = interrupt.ReadSwitch(container)
            with self._ilock:
                self._switch = switch
                self._stalled_by_watchdog = False
            self.last_read = time.monotonic()
            interrupt.StallWatchdog.shared().watch(switch, self, self._cfg.stall_timeout)
        try:
            video, audio = self._pick_streams(container, target)
            vstate = self._video_state(video)
            audio_params = _audio_params(audio) if audio is not None else None
            wanted = [s for s in (video, audio) if s is not None]
            if cooperative:  # NativeInput only: FFmpeg's demux cannot yield
                gen = container.demux(*wanted, cooperative=True)
            else:
                gen = container.demux(*wanted)
            fmt = getattr(container.format, "name", "") or ""
            conn.untimed = not target.is_file and fmt in UNTIMED_FORMATS
            pacer = _Pacer(self._stop) if target.is_file and self._realtime else None
            stall = self._cfg.stall_timeout
            last_video = opened = time.monotonic()
            while True:
                pkt = self._next_packet(gen, target)
                if pkt.__class__ is Wait:
                    yield pkt.until
                    continue
                if switch is not None and not switch.armed:
                    with self._ilock:
                        if not self._stop.is_set():
                            switch.arm()
                if pkt.size == 0:
                    continue  # PyAV's end-of-stream flush packets
                is_video = pkt.stream is video
                now = time.monotonic()
                if is_video:
                    last_video = now
                elif now - last_video > stall:
                    raise _ConnectionEnded(
                        "stalled",
                        IngestError(
                            "stalled", f"audio but no video for {stall:g} s", source=target.display
                        ),
                    )
                if pacer is not None:
                    pacer.wait(pkt)
                    if self._stop.is_set():
                        raise _ConnectionEnded("stopped")
                data = bytes(pkt)
                keyframe = bool(pkt.is_keyframe)
                receipt = time.time_ns() // 1000
                pts, dts, duration = pkt.pts, pkt.dts, pkt.duration
                if conn.untimed:  # FFmpeg made these up; the arrival time is the truth
                    pts = dts = receipt
                    duration = None

                first: MappedTime | None = None
                if is_video and keyframe:
                    active = conn.session is not None or conn.settle is not None
                    new_params = self._keyframe_params(vstate, video, pkt, data, active)
                    if new_params is not None:
                        anchor: int | None = None
                        if active:
                            if conn.settle is not None:
                                self._finish_settle(conn, video, audio, target)
                            assert conn.session is not None and conn.clock is not None
                            # continue the wall clock across the codec change
                            m = conn.clock.map(0, pts, dts, duration, receipt)
                            anchor = conn.clock.wall_at(m.dts_us)
                            self._end_session(conn.session, conn.clock, "codec_change")
                            conn.session = None
                        conn.clock = self._new_clock(video, audio, target, anchor, conn.untimed)
                        first = conn.clock.map(0, pts, dts, duration, receipt)
                        conn.had_session = True
                        if anchor is None and not target.is_file:
                            conn.settle = _Settle(new_params, audio_params, receipt)
                        else:
                            conn.session = self._start_session(
                                new_params, audio_params, video, audio, target, first.wall_us
                            )
                clock = conn.clock
                if clock is None or (conn.session is None and conn.settle is None):
                    self._health.dropped()
                    if native and not conn.had_session and now - opened > self.native_keyframe_wait:
                        raise self._no_native_keyframe(target)
                    continue

                mt = first or clock.map(0 if is_video else 1, pts, dts, duration, receipt)
                if not is_video and mt.dts_us < 0:
                    self._health.dropped()  # audio from before the first video keyframe
                    continue
                tp = TimedPacket(
                    kind="video" if is_video else "audio",
                    data=data,
                    pts_us=mt.pts_us,
                    dts_us=mt.dts_us,
                    duration_us=mt.duration_us,
                    wall_us=mt.wall_us,
                    keyframe=keyframe,
                    packet=pkt,
                )
                if conn.settle is not None:
                    anchor0 = clock.anchor_wall_us
                    assert anchor0 is not None
                    conn.settle.add(tp, receipt, anchor0)
                    if conn.settle.ready(receipt):
                        self._finish_settle(conn, video, audio, target)
                else:
                    self._deliver(conn, tp)
                if self._stop.is_set():
                    raise _ConnectionEnded("stopped")
        except _ConnectionEnded as end:
            reason, error = end.reason, end.error
        except IngestError as err:
            reason, error = ("stopped" if self._stop.is_set() else "error"), err
        except Exception as exc:
            # A bug (ours or a sink's stream data we choke on) must not end recording for
            # good: log it, drop the connection, reconnect with back-off.
            log.error(
                "%s/%s: internal error while reading %s: %s",
                self.camera,
                self.stream,
                target.display,
                redact_text("".join(traceback.format_exception(exc)).rstrip()),
            )
            reason = "stopped" if self._stop.is_set() else "error"
            error = IngestError(
                "error", f"internal error: {type(exc).__name__}", source=target.display
            )
        finally:
            if conn.settle is not None:
                # the connection ended while holding back its first packets: deliver them
                self._finish_settle(conn, video, audio, target)
            # health first, so that sinks told of the end already see why
            if (
                error is not None
                and reason != "stopped"
                and not self._stop.is_set()
                and not (target.is_file and reason == "eof")
            ):
                self._failed(error, state="stalled" if reason == "stalled" else "offline")
            if conn.session is not None and conn.clock is not None:
                self._end_session(conn.session, conn.clock, reason)
            if native:
                with self._ilock:
                    self._native = None
            if switch is not None:
                interrupt.StallWatchdog.shared().unwatch(switch)
                with self._ilock:
                    switch.release()
                    self._switch = None
                    if self._interrupted_thread and not self._stop.is_set():
                        interrupt.clear(threading.get_ident())  # the next open must work
                    self._interrupted_thread = False
            if gen is not None:
                with contextlib.suppress(Exception):
                    gen.close()  # type: ignore[attr-defined]
            with contextlib.suppress(Exception):
                container.close()
        return reason, error, conn.had_session

    def _deliver(self, conn: _Conn, tp: TimedPacket) -> None:
        assert conn.session is not None and conn.clock is not None
        self._emit_packet(conn.session, tp)
        is_video = tp.kind == "video"
        self._health.packet(len(tp.data), is_video, tp.wall_us, tp.dts_us)
        if tp.keyframe and is_video:
            s = conn.clock.stats
            self._health.timestamps(s.breaks, s.bumped + s.synthesized + s.wraps)

    def _finish_settle(self, conn: _Conn, video: Any, audio: Any, target: OpenTarget) -> None:
        """Re-anchor the wall clock on the packets that arrived live, then start the session
        and deliver the held-back packets with corrected wall times."""
        st, clock = conn.settle, conn.clock
        assert st is not None and clock is not None and clock.anchor_wall_us is not None
        conn.settle = None
        if st.min_err < 0:
            clock.reanchor(clock.anchor_wall_us + st.min_err)
        for tp in st.packets:
            tp.wall_us = clock.wall_at(tp.pts_us)
        started = st.packets[0].wall_us if st.packets else clock.wall_at(0)
        conn.session = self._start_session(st.vparams, st.aparams, video, audio, target, started)
        for tp in st.packets:
            self._deliver(conn, tp)

    def _no_native_keyframe(self, target: OpenTarget) -> _ConnectionEnded:
        """Vigil's RTSP client starts sessions at IDR/IRAP pictures only; FFmpeg also
        accepts an I-frame with a recovery-point SEI, which some cameras (intra refresh)
        send instead. A camera that gave no keyframe for this long is read by FFmpeg from
        now on."""
        self._native_refused = True
        return _ConnectionEnded(
            "disconnected",
            IngestError(
                "protocol",
                f"no IDR keyframe within {self.native_keyframe_wait:g} s from Vigil's RTSP "
                "client; reading this camera through FFmpeg",
                source=target.display,
            ),
        )

    def _stalled(self, target: OpenTarget) -> _ConnectionEnded:
        return _ConnectionEnded(
            "stalled",
            IngestError(
                "stalled",
                MESSAGES["stalled"].format(timeout=self._cfg.stall_timeout),
                source=target.display,
            ),
        )

    def _next_packet(self, gen: Iterator[Any], target: OpenTarget) -> Any:
        if self._stop.is_set():
            raise _ConnectionEnded("stopped")
        t0 = time.monotonic()
        try:
            pkt = next(gen)
            self.last_read = now = time.monotonic()
            waited = now - t0
            if waited >= self._cfg.stall_timeout and not target.is_file:
                # PyAV's read timeout fired: FFmpeg's RTSP demuxer then returns what was left
                # in its reorder queue instead of failing, and only the *next* read fails,
                # another stall_timeout later. The stall is now, not then.
                if self._stop.is_set():
                    raise _ConnectionEnded("stopped")
                raise self._stalled(target)
            return pkt
        except StopIteration:
            raise _ConnectionEnded(
                "eof", IngestError("eof", "the server ended the stream", source=target.display)
            ) from None
        except _ConnectionEnded:
            raise
        except Exception as exc:
            if self._stop.is_set():
                raise _ConnectionEnded("stopped") from None
            if self._stalled_by_watchdog:
                raise self._stalled(target) from None
            if isinstance(exc, IngestError):  # the native client classifies its own
                kind = exc.kind
                reason: EndReason = (
                    "stalled" if kind == "stalled" else "eof" if kind == "eof" else "disconnected"
                )
                raise _ConnectionEnded(reason, exc) from None
            err = classify(
                exc,
                source=target.display,
                timeout=self._cfg.stall_timeout,
                elapsed=time.monotonic() - t0,
                during_open=False,
            )
            if err.kind == "stalled":
                raise _ConnectionEnded("stalled", err) from None
            if err.kind == "eof":
                raise _ConnectionEnded("eof", err) from None
            raise _ConnectionEnded("disconnected", err) from None

    def _pick_streams(self, container: Any, target: OpenTarget) -> tuple[Any, Any | None]:
        videos = [s for s in container.streams.video if s.codec_context is not None]
        if not videos:
            kind = "not_video"
            msg = "the stream has no video track"
            if len(container.streams.video):
                kind, msg = "protocol", "the video track uses a codec FFmpeg does not know"
            raise IngestError(kind, msg, source=target.display)  # type: ignore[arg-type]
        audio = None
        if self._audio:
            audio = next((s for s in container.streams.audio if s.codec_context is not None), None)
        return videos[0], audio

    def _video_state(self, video: Any) -> _VideoState:
        cc = video.codec_context
        codec = str(cc.name)
        extradata = bytes(cc.extradata) if cc.extradata else None
        parsed = None
        with contextlib.suppress(BitstreamError):
            parsed = parse_extradata(codec, extradata)
        framing = parsed.framing if parsed else None
        if framing is None and isinstance(video, NativeStream):
            framing = "length"  # what Vigil's RTSP client emits, record or not
        return _VideoState(
            codec=codec,
            framing=framing,
            length_size=parsed.length_size if parsed else 4,
            container_sets=parsed.sets if parsed else None,
            container_extradata=extradata,
        )

    def _keyframe_params(
        self,
        vs: _VideoState,
        video: Any,
        pkt: Any,
        data: bytes,
        active: bool,
    ) -> CodecParams | None:
        """Parameters for a new session starting at this keyframe, or None to continue.

        Called for every video keyframe: the first one of a connection always starts a
        session; later ones only when their in-band parameters differ from those in force.
        """
        cc = video.codec_context
        width, height = int(cc.width or 0), int(cc.height or 0)
        extradata = vs.container_extradata
        if vs.codec in ("h264", "hevc"):
            if vs.framing is None:
                vs.framing = detect_framing(data)
            inband = leading_parameter_sets(vs.codec, data, vs.framing, vs.length_size)
            side = _new_extradata(pkt, vs.codec)
            if side is not None:
                inband = side.sps + side.pps + side.vps + inband
            current = vs.sets if vs.sets is not None else vs.container_sets
            base = current or ParameterSets(vs.codec)
            fresh = ParameterSets.from_nals(vs.codec, inband)
            new = fresh if fresh.complete else base.merged(inband)
            if active and (not inband or new == vs.sets):
                return None
            vs.sets = new
            if vs.container_sets is None or new != vs.container_sets:
                # (otherwise the container's own record describes it: keep it verbatim)
                try:
                    extradata = extradata_for(new, vs.framing, vs.length_size) or extradata
                except BitstreamError:
                    # a record needs a parsable SPS; Annex-B extradata does not
                    extradata = new.annexb() if vs.framing == "annexb" else extradata
            info = new.sps_info()
            if info is not None:
                width, height = info.width, info.height
        elif vs.codec == "mjpeg":
            size = jpeg_dimensions(data)
            if active and (size is None or size == vs.jpeg_size):
                return None
            vs.jpeg_size = size
            if size is not None:
                width, height = size
        elif active:
            side_data = _raw_new_extradata(pkt)
            if side_data is None or side_data == extradata:
                return None
            extradata = side_data
        return CodecParams(
            kind="video",
            codec=vs.codec,
            time_base=Fraction(video.time_base),
            extradata=extradata,
            width=width,
            height=height,
        )

    def _new_clock(
        self,
        video: Any,
        audio: Any | None,
        target: OpenTarget,
        anchor: int | None,
        untimed: bool = False,
    ) -> SessionClock:
        clock = SessionClock(
            anchor_wall_us=anchor,
            max_slew_ppm=self._max_slew_ppm,
            slew=not (target.is_file and not self._realtime),
        )
        tb = _US_TB if untimed else Fraction(video.time_base)
        clock.add_stream(0, tb, _frame_us(video), reference=True)
        if audio is not None:
            atb = _US_TB if untimed else Fraction(audio.time_base)
            clock.add_stream(1, atb, _audio_frame_us(audio))
        return clock

    def _start_session(
        self,
        vparams: CodecParams,
        aparams: CodecParams | None,
        video: Any,
        audio: Any | None,
        target: OpenTarget,
        started_wall_us: int,
    ) -> StreamSession:
        session = StreamSession(
            camera=self.camera,
            session_id=next_session_id(self.camera),
            video=vparams,
            audio=aparams,
            started_wall_us=started_wall_us,
            # Vigil's RTSP client has no PyAV streams: consumers describe those tracks
            video_template=None if isinstance(video, NativeStream) else video,
            audio_template=None if isinstance(audio, NativeStream) else audio,
            source=target.display,
        )
        self._health.session(
            session.session_id,
            vparams.codec,
            vparams.width,
            vparams.height,
            aparams.codec if aparams else None,
        )
        self._health.reset_window()
        self._health.set_state("online")
        log.info(
            "%s/%s: session %d started: %s %dx%d%s from %s",
            self.camera,
            self.stream,
            session.session_id,
            vparams.codec,
            vparams.width,
            vparams.height,
            f" + {aparams.codec}" if aparams else "",
            target.display,
        )
        self._sink_errors.clear()
        self._call_sinks("session_started", session)
        return session

    def _end_session(self, session: StreamSession, clock: SessionClock, reason: str) -> None:
        s = clock.stats
        self._health.timestamps(s.breaks, s.bumped + s.synthesized + s.wraps)
        log.info(
            "%s/%s: session %d ended (%s)", self.camera, self.stream, session.session_id, reason
        )
        self._call_sinks("session_ended", session, reason)

    def _emit_packet(self, session: StreamSession, pkt: TimedPacket) -> None:
        for i, sink in enumerate(self._sinks):
            try:
                sink.packet(session, pkt)
            except Exception as exc:
                self._sink_failed(i, sink, "packet", exc)

    def _call_sinks(self, method: str, *args: Any) -> None:
        for i, sink in enumerate(self._sinks):
            try:
                fn: Callable[..., None] = getattr(sink, method)
                fn(*args)
            except Exception as exc:
                self._sink_failed(i, sink, method, exc)

    def _sink_failed(self, index: int, sink: PacketSink, method: str, exc: Exception) -> None:
        n = self._sink_errors.get(index, 0) + 1
        self._sink_errors[index] = n
        if n & (n - 1) == 0:  # 1st, 2nd, 4th, 8th... error of a session: no log flood
            log.warning(
                "%s/%s: sink %s.%s failed (%d times this session): %s",
                self.camera,
                self.stream,
                type(sink).__name__,
                method,
                n,
                redact_text("".join(traceback.format_exception(exc)).rstrip()),
            )


# --------------------------------------------------------------------------- helpers


def _run_to_end(steps: Generator[float, None, R]) -> R:
    """Run a connection generator that blocks instead of yielding (FFmpeg, or the native
    client read on the camera's own thread)."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            result: R = done.value
            return result


class _Pacer:
    """Delays packets of a local file to their native rate (like ``ffmpeg -re``)."""

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self._base_media: float | None = None
        self._base_mono = 0.0

    def wait(self, pkt: Any) -> None:
        ts = pkt.dts if pkt.dts is not None else pkt.pts
        if ts is None:
            return
        t = float(ts * pkt.time_base)
        now = time.monotonic()
        if self._base_media is None or t < self._base_media - 1.0:
            self._base_media, self._base_mono = t, now
            return
        delay = self._base_mono + (t - self._base_media) - now
        if delay > 5.0:  # a timestamp jump in the file: do not sleep through it
            self._base_media, self._base_mono = t, now
            return
        if delay > 0:
            self._stop.wait(delay)


def _display(source: StreamSource) -> str:
    if source.file is not None:
        return source.file.name
    return display_url(source.url or "")


def _audio_params(audio: Any) -> CodecParams:
    cc = audio.codec_context
    channels = int(getattr(cc, "channels", 0) or 0)
    return CodecParams(
        kind="audio",
        codec=str(cc.name),
        time_base=Fraction(audio.time_base),
        extradata=bytes(cc.extradata) if cc.extradata else None,
        sample_rate=int(cc.sample_rate or 0),
        channels=channels,
    )


def _frame_us(video: Any) -> int:
    rate = video.average_rate or video.guessed_rate or video.base_rate
    try:
        if rate and 1 <= float(rate) <= 240:
            return int(1_000_000 / float(rate))
    except (TypeError, ZeroDivisionError):
        pass
    return 40_000


def _audio_frame_us(audio: Any) -> int:
    cc = audio.codec_context
    rate = int(cc.sample_rate or 0)
    size = int(getattr(cc, "frame_size", 0) or 0)
    if rate > 0 and size > 0:
        return max(1, size * 1_000_000 // rate)
    return 20_000


def _raw_new_extradata(pkt: Any) -> bytes | None:
    try:
        if pkt.has_sidedata("new_extradata"):
            return bytes(pkt.get_sidedata("new_extradata"))
    except (AttributeError, KeyError, ValueError, TypeError):
        pass
    return None


def _new_extradata(pkt: Any, codec: str) -> ParameterSets | None:
    """Parameter sets FFmpeg signalled as new extradata side data (FLV, some demuxers)."""
    raw = _raw_new_extradata(pkt)
    if raw is None:
        return None
    try:
        parsed = parse_extradata(codec, raw)
    except BitstreamError:
        return None
    return parsed.sets if parsed else None
