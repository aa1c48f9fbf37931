"""The per-camera recorder: a ``PacketSink`` that cuts the stream into segment files.

Rules, and why:

* A segment starts at a video keyframe (nothing before it could be decoded) and a new one
  is cut at the first keyframe at or after ``segment_seconds``. Every session start
  (connect, reconnect, codec or resolution change) starts a new segment, so one file
  never mixes parameters.
* Cutting is decided by arrival order, but audio is placed by timestamp: audio packets that
  arrive after the cutting keyframe yet belong before it go to the previous segment, which
  stays open (for audio only) until audio passes the cut or ``_DRAIN_US`` of video has gone
  by. No packet is dropped or given a negative timestamp at a cut.
* A segment is reported to the catalog only after ``SegmentWriter.close`` has fsynced and
  renamed it (write ordering); gaps are reported when their end is known, with the reason
  the ingest gave (offline, stalled, ...).
* On a storage error the current segment is cut back to its last complete fragment and
  reported, an ongoing ``disk_full``/``error`` gap is reported, and the camera pauses:
  packets are dropped and counted, a small write probe is tried every ``retry_interval``
  seconds, and recording resumes at the next keyframe once it succeeds. Nothing written
  before the failure is modified, and other cameras (other recorders) are unaffected.
* The recorder is called synchronously from the camera's ingest thread and must never
  raise into it: unexpected errors are logged, the session is marked failed, and the next
  session starts afresh.

``status()``/``current_segment()`` may be called from any thread (health, ``vigil status``).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from vigil.config.model import RecordingConfig
from vigil.ingest.errors import ffmpeg_errors
from vigil.ingest.types import StreamSession, TimedPacket
from vigil.record.paths import UnsafePathError, ensure_under
from vigil.record.tracks import PlanError, TrackPlan, plan_audio, plan_video
from vigil.record.types import GapInfo, GapReason, SegmentCatalog, SegmentInfo
from vigil.record.writer import OpenSegment, SegmentWriteError, SegmentWriter

log = logging.getLogger(__name__)

RecorderState = Literal["idle", "waiting_keyframe", "recording", "paused", "failed"]

_DRAIN_US = 1_000_000  # how long a cut segment waits for late audio
_CUT_TOLERANCE_US = 1_000  # keyframes this close to segment_seconds count as "at" it
_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_GAP_REASONS: tuple[GapReason, ...] = (
    "offline", "stalled", "disk_full", "restart", "retention", "codec_change", "error",
)


def gap_reason(reason: str) -> GapReason:
    """Map an ingest ``session_ended`` reason to a catalog gap reason."""
    r = reason.strip().lower()
    for known in _GAP_REASONS:
        if r == known:
            return known
    if "stall" in r or "timeout" in r:
        return "stalled"
    if any(word in r for word in ("codec", "resolution", "param", "format", "change")):
        return "codec_change"
    if "disk" in r or "space" in r:
        return "disk_full"
    if "restart" in r or "shutdown" in r or "stop" in r:
        return "restart"
    if "error" in r:
        return "error"
    return "offline"


def probe_writable(directory: Path, nbytes: int) -> OSError | None:
    """Try to create, fill, fsync and delete a file in ``directory``; the error, if any.

    Writing real bytes (not just creating a file) is what tells a full disk from one that
    merely has a free inode."""
    probe = directory / f".vigil-probe-{os.getpid()}-{threading.get_ident()}"
    fd = -1
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        block = b"\0" * min(nbytes, 1 << 20)
        left = nbytes
        while left > 0:
            left -= os.write(fd, block[: min(left, len(block))])
        os.fsync(fd)
        return None
    except OSError as exc:
        return exc
    finally:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            probe.unlink()


@dataclass(frozen=True, slots=True)
class RecorderStatus:
    """A snapshot for health reporting. ``reason`` explains ``paused``/``failed`` (and
    what a ``waiting_keyframe`` recorder waits for)."""

    camera: str
    state: RecorderState
    reason: str
    session_id: int | None
    segment: OpenSegment | None
    paused_since_us: int | None
    packets_in: int
    packets_written: int
    dropped: dict[str, int]
    segments_closed: int
    bytes_closed: int
    last_error: str | None


@dataclass(slots=True)
class _Pause:
    reason: GapReason  # disk_full or error
    detail: str
    since_us: int
    last_probe: float
    gap_reported: bool = False


@dataclass(slots=True)
class _Gap:
    start_us: int
    reason: GapReason
    detail: str


@dataclass(slots=True)
class _Session:
    session: StreamSession
    video: TrackPlan | None = None
    audio: TrackPlan | None = None
    audio_pending: bool = False  # an audio plan may still be made from a packet
    failed: str | None = None
    dropped_audio_reason: str | None = None


class Recorder:
    """Records one camera. Implements ``vigil.ingest.types.PacketSink``.

    :param camera: camera name (validated by the config; checked again here: a name
        that would leave ``root`` raises ``UnsafePathError``).
    :param root: storage root; files go to ``root/camera/YYYY/MM/DD/``.
    :param catalog: receives ``SegmentInfo`` after each file is durable, and ``GapInfo``.
    :param config: ``segment_seconds`` and ``fragment_seconds``.
    :param record_audio: keep the audio track when the camera has a storable one.
    :param fsync_fragments: make fragments durable within ``fragment_seconds`` of being
        written (power-loss safety; ``vigil.record.syncer``); the file is always fsynced
        on close regardless.
    :param retry_interval: seconds between write probes while paused.
    :param probe_bytes: size of the probe file written to test for space.
    :param clock: monotonic seconds, injectable for tests.
    """

    def __init__(
        self,
        camera: str,
        root: Path,
        catalog: SegmentCatalog,
        config: RecordingConfig | None = None,
        *,
        record_audio: bool = True,
        fsync_fragments: bool = True,
        retry_interval: float = 5.0,
        probe_bytes: int = 1 << 20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        cfg = config or RecordingConfig()
        self.camera = camera
        self.root = Path(root)
        # Validated upstream; checked again where the name becomes a path.
        ensure_under(self.root, self.root / camera)
        self.catalog = catalog
        self.segment_us = round(cfg.segment_seconds * 1_000_000)
        self.fragment_us = round(cfg.fragment_seconds * 1_000_000)
        self.record_audio = record_audio
        self.fsync_fragments = fsync_fragments
        self.retry_interval = retry_interval
        self.probe_bytes = probe_bytes
        self._clock = clock
        self._lock = threading.RLock()
        self._s: _Session | None = None
        self._writer: SegmentWriter | None = None
        self._draining: SegmentWriter | None = None
        self._drain_cut_us = 0
        # (session id, dts, wall end) of the segment just cut, for the next one's start
        self._continue_at: tuple[int, int, int] | None = None
        self._pause: _Pause | None = None
        self._pending_gap: _Gap | None = None
        self._media_end_us: int | None = None  # wall end of the last closed segment
        self._packets_in = 0
        self._packets_written = 0
        self._dropped: Counter[str] = Counter()
        self._segments_closed = 0
        self._bytes_closed = 0
        self._last_error: str | None = None
        self._warned: set[str] = set()

    # -- PacketSink ----------------------------------------------------------------------

    def session_started(self, session: StreamSession) -> None:
        with self._lock:
            try:
                if self._s is not None:
                    self._end_session("codec_change")
                self._start_session(session)
            except Exception as exc:  # never raise into the ingest thread
                self._unexpected(exc)

    def packet(self, session: StreamSession, pkt: TimedPacket) -> None:
        with self._lock:
            self._packets_in += 1
            try:
                self._packet(session, pkt)
            except Exception as exc:
                self._dropped["error"] += 1
                self._unexpected(exc)

    def session_ended(self, session: StreamSession, reason: str) -> None:
        with self._lock:
            if self._s is None or self._s.session.session_id != session.session_id:
                return
            try:
                self._end_session(reason)
            except Exception as exc:
                self._unexpected(exc)

    def close(self) -> None:
        """Close open segments cleanly (shutdown). The recorder can be reused afterwards."""
        with self._lock:
            if self._s is not None:
                try:
                    self._end_session("restart")
                except Exception as exc:
                    self._unexpected(exc)
            else:
                self._close_all()

    # -- health --------------------------------------------------------------------------

    def current_segment(self) -> OpenSegment | None:
        """The segment being written (``.part`` path, wall start, bytes so far), if any."""
        with self._lock:
            return self._writer.snapshot() if self._writer is not None else None

    @property
    def paused(self) -> bool:
        return self._pause is not None

    def status(self) -> RecorderStatus:
        with self._lock:
            state: RecorderState
            reason = ""
            if self._pause is not None:
                state, reason = "paused", f"{self._pause.reason}: {self._pause.detail}"
            elif self._s is not None and self._s.failed:
                state, reason = "failed", self._s.failed
            elif self._writer is not None:
                state = "recording"
            elif self._s is not None:
                state, reason = "waiting_keyframe", "waiting for a video keyframe"
                if self._s.video is None:
                    reason = "waiting for a keyframe with parameter sets"
            else:
                state = "idle"
            return RecorderStatus(
                camera=self.camera,
                state=state,
                reason=reason,
                session_id=self._s.session.session_id if self._s is not None else None,
                segment=self._writer.snapshot() if self._writer is not None else None,
                paused_since_us=self._pause.since_us if self._pause is not None else None,
                packets_in=self._packets_in,
                packets_written=self._packets_written,
                dropped=dict(self._dropped),
                segments_closed=self._segments_closed,
                bytes_closed=self._bytes_closed,
                last_error=self._last_error,
            )

    # -- sessions ------------------------------------------------------------------------

    def _start_session(self, session: StreamSession) -> None:
        s = _Session(session)
        self._s = s
        try:
            s.video = plan_video(session.video, session.video_template)
        except PlanError as exc:
            s.failed = str(exc)
            self._warn_once(f"video:{session.video.codec}", "not recording: %s", exc)
        if session.audio is not None and self.record_audio:
            try:
                s.audio = plan_audio(session.audio, session.audio_template)
                s.audio_pending = s.audio is None or s.audio.provisional
            except PlanError as exc:
                s.dropped_audio_reason = str(exc)
                self._warn_once(f"audio:{session.audio.codec}",
                                "recording video only: %s", exc)

    def _end_session(self, reason: str) -> None:
        self._close_all()
        if self._pause is None and self._pending_gap is None and self._media_end_us is not None:
            self._pending_gap = _Gap(self._media_end_us, gap_reason(reason), reason)
        self._s = None

    # -- packets -------------------------------------------------------------------------

    def _packet(self, session: StreamSession, pkt: TimedPacket) -> None:
        s = self._s
        if s is None or s.session.session_id != session.session_id:
            self._dropped["no_session"] += 1
            return
        if s.failed:
            self._dropped["failed"] += 1
            return
        if pkt.kind == "audio":
            if s.audio_pending and s.session.audio is not None:
                self._plan_audio_from(s, pkt)
            if s.audio is None:
                self._dropped["audio_not_recorded"] += 1
                return
        if self._pause is not None and not self._try_resume(pkt):
            self._dropped["paused"] += 1
            return
        if pkt.kind == "video":
            self._video_packet(s, pkt)
        else:
            self._audio_packet(pkt)

    def _plan_audio_from(self, s: _Session, pkt: TimedPacket) -> None:
        assert s.session.audio is not None
        s.audio_pending = False
        guess = s.audio
        try:
            plan = plan_audio(s.session.audio, s.session.audio_template, pkt.data)
        except PlanError as exc:
            if guess is not None:  # raw AAC without a config: keep the LC assumption
                self._warn_once("audio-guess", "AAC config assumed (AAC-LC): %s", exc)
                return
            s.dropped_audio_reason = str(exc)
            self._warn_once(f"audio:{s.session.audio.codec}", "recording video only: %s", exc)
            return
        s.audio = plan
        if guess is not None and plan is not None and plan.extradata != guess.extradata:
            self._warn_once("audio-guess", "AAC config differs from the assumed one; "
                            "audio resumes at the next segment")
            for writer in (self._writer, self._draining):
                if writer is not None:
                    writer.drop_audio()

    def _video_packet(self, s: _Session, pkt: TimedPacket) -> None:
        if s.video is None:
            try:
                s.video = plan_video(
                    s.session.video, s.session.video_template, pkt.data if pkt.keyframe else None
                )
            except PlanError as exc:  # pragma: no cover - raised at session start already
                s.failed = str(exc)
            if s.video is None:
                self._dropped["waiting_keyframe"] += 1
                return
        if self._draining is not None and pkt.dts_us >= self._drain_cut_us + _DRAIN_US:
            self._close_draining()
            if self._pause is not None:  # closing it hit a storage error
                self._dropped["paused"] += 1
                return
        writer = self._writer
        if writer is not None and pkt.keyframe and self._due(writer, pkt):
            self._cut(writer, pkt)
            writer = None
            if self._pause is not None:
                self._dropped["paused"] += 1
                return
        if writer is None:
            if not pkt.keyframe:
                self._dropped["waiting_keyframe"] += 1
                return
            writer = self._open_segment(s, pkt)
            if writer is None:
                self._dropped["paused" if self._pause is not None else "failed"] += 1
                return
        self._write(writer, pkt)

    def _due(self, writer: SegmentWriter, pkt: TimedPacket) -> bool:
        return pkt.dts_us - writer.base_dts_us >= self.segment_us - _CUT_TOLERANCE_US

    def _audio_packet(self, pkt: TimedPacket) -> None:
        writer = self._writer
        if writer is None:
            self._dropped["before_segment"] += 1
            return
        if pkt.dts_us < writer.base_dts_us:
            if self._draining is not None and self._draining.accepts_audio:
                self._write(self._draining, pkt)
            else:
                self._dropped["before_segment"] += 1
            return
        if self._draining is not None:
            self._close_draining()
            if self._pause is not None:
                self._dropped["paused"] += 1
                return
        if not writer.accepts_audio:
            self._dropped["audio_not_recorded"] += 1
            return
        self._write(writer, pkt)

    def _write(self, writer: SegmentWriter, pkt: TimedPacket) -> None:
        try:
            ok = writer.write(pkt)
        except SegmentWriteError as exc:
            self._dropped["write_failed"] += 1
            self._storage_failed(exc, pkt.wall_us)
            return
        if ok:
            self._packets_written += 1
        else:
            self._dropped["muxer_rejected"] += 1

    # -- segments ------------------------------------------------------------------------

    def _open_segment(self, s: _Session, pkt: TimedPacket) -> SegmentWriter | None:
        assert s.video is not None
        # Wall time of media time 0 (the keyframe's dts): wall_us is the time of its pts.
        start_us = pkt.wall_us - (pkt.pts_us - pkt.dts_us)
        cont, self._continue_at = self._continue_at, None
        if cont is not None and cont[:2] == (s.session.session_id, pkt.dts_us):
            start_us = cont[2]
        audio = s.audio
        try:
            writer = SegmentWriter(
                root=self.root,
                camera=self.camera,
                session_id=s.session.session_id,
                start_us=start_us,
                base_dts_us=pkt.dts_us,
                video=s.video,
                audio=audio,
                fragment_us=self.fragment_us,
                fsync_fragments=self.fsync_fragments,
                first_keyframe=pkt.data,
            )
        except OSError as exc:
            self._storage_failed(exc, pkt.wall_us)
            return None
        except UnsafePathError as exc:
            s.failed = self._last_error = str(exc)
            log.error("not recording: %s", exc, extra={"camera": self.camera})
            return None
        except ffmpeg_errors(ValueError) as exc:
            if audio is not None:
                # An audio stream the muxer refuses must not cost the video.
                self._warn_once(f"audio-open:{audio.codec}", "recording video only: %s", exc)
                s.audio = None
                s.dropped_audio_reason = str(exc)
                return self._open_segment(s, pkt)
            s.failed = self._last_error = f"cannot record {s.session.video.codec}: {exc}"
            log.error("%s", s.failed, extra={"camera": self.camera})
            return None
        self._writer = writer
        self._report_pending_gap(start_us)
        return writer

    def _cut(self, writer: SegmentWriter, pkt: TimedPacket) -> None:
        # The timeline stays contiguous across a cut: the old segment's video ends where
        # this keyframe begins, and the new segment starts at exactly that wall instant
        # (not at the keyframe's own slewed wall time, a few µs off).
        self._continue_at = (writer.session_id, pkt.dts_us, writer.end_video(pkt.dts_us))
        self._writer = None
        if self._draining is not None:
            self._close_draining()
        if writer.has_audio:
            self._draining = writer
            self._drain_cut_us = pkt.dts_us
        else:
            self._finish(writer)

    def _close_draining(self) -> None:
        writer, self._draining = self._draining, None
        if writer is not None:
            self._finish(writer)

    def _close_all(self) -> None:
        self._close_draining()
        writer, self._writer = self._writer, None
        if writer is not None:
            self._finish(writer)

    def _finish(self, writer: SegmentWriter) -> None:
        """Close a segment and report it; on a storage error salvage it and pause."""
        try:
            info = writer.close()
        except SegmentWriteError as exc:
            self._report(writer.abort())
            self._storage_failed(exc, None)
            return
        self._report(info)

    def _report(self, info: SegmentInfo | None) -> None:
        if info is None:
            return
        self._segments_closed += 1
        self._bytes_closed += info.bytes
        self._media_end_us = info.end_us
        try:
            self.catalog.segment_closed(info)
        except Exception:
            # The file is complete on disk; the index's startup reconciliation will find
            # it. Recording must not stop because the index hiccuped.
            log.exception("catalog refused segment %s", info.path, extra={"camera": self.camera})

    def _report_gap(self, gap: GapInfo) -> None:
        try:
            self.catalog.gap(gap)
        except Exception:
            log.exception("catalog refused gap %s", gap, extra={"camera": self.camera})

    def _report_pending_gap(self, end_us: int) -> None:
        gap, self._pending_gap = self._pending_gap, None
        if gap is None:
            return
        if end_us <= gap.start_us and gap.reason != "codec_change":
            return
        self._report_gap(
            GapInfo(self.camera, gap.start_us, max(end_us, gap.start_us), gap.reason, gap.detail)
        )

    # -- storage failures ----------------------------------------------------------------

    def _storage_failed(self, exc: OSError, wall_us: int | None) -> None:
        """Salvage open segments up to their last fragment, pause, report the gap start."""
        for writer in (self._writer, self._draining):
            if writer is not None:
                self._report(writer.abort())
        self._writer = None
        self._draining = None
        now_us = wall_us if wall_us is not None else time.time_ns() // 1000
        reason: GapReason = "disk_full" if exc.errno in _DISK_FULL_ERRNOS else "error"
        detail = str(exc)
        self._last_error = detail
        if self._pause is not None:
            self._pause.detail = detail
            return
        since = self._media_end_us if self._media_end_us is not None else now_us
        if self._pending_gap is not None:
            # The camera was away before storage failed: that gap ends here.
            self._report_pending_gap(now_us)
            since = now_us
        since = min(since, now_us)
        self._pause = _Pause(reason, detail, since, self._clock())
        log.error(
            "recording paused (%s): %s; retrying every %.0f s", reason, detail,
            self.retry_interval, extra={"camera": self.camera},
        )
        self._report_gap(GapInfo(self.camera, since, since, reason, detail, ongoing=True))

    def _try_resume(self, pkt: TimedPacket) -> bool:
        pause = self._pause
        assert pause is not None
        now = self._clock()
        if now - pause.last_probe < self.retry_interval:
            return False
        pause.last_probe = now
        err = probe_writable(self.root / self.camera, self.probe_bytes)
        if err is not None:
            pause.detail = f"write probe failed: {err}"
            return False
        log.info("storage writable again; resuming at the next keyframe",
                 extra={"camera": self.camera})
        self._pause = None
        self._pending_gap = _Gap(pause.since_us, pause.reason, pause.detail)
        return True

    # -- misc ----------------------------------------------------------------------------

    def _warn_once(self, key: str, msg: str, *args: object) -> None:
        if key in self._warned:
            return
        self._warned.add(key)
        log.warning(msg, *args, extra={"camera": self.camera})

    def _unexpected(self, exc: Exception) -> None:
        self._last_error = f"{type(exc).__name__}: {exc}"
        log.exception("recorder error", extra={"camera": self.camera})
        for writer in (self._writer, self._draining):
            if writer is not None:
                with contextlib.suppress(Exception):
                    self._report(writer.abort())
        self._writer = None
        self._draining = None
        if self._s is not None:
            self._s.failed = self._last_error

