"""One segment file: packets in, a complete fragmented MP4 out, by stream copy.

The muxer writes into a file object we own (``_SegmentSink``) rather than a path, for three
reasons: we count and SHA-256 the bytes as they go, so closing a segment never re-reads it;
we decide when to fsync (after each fragment, so a power cut loses at most one); and a
write error (disk full, read-only remount, I/O error) is caught here and turned into a
clean stop instead of an exception somewhere inside FFmpeg. The sink has no ``seek``,
so FFmpeg treats the output as a stream and never goes back to patch earlier bytes: the
file only ever grows, which is what makes "truncate after the last complete fragment" a
valid recovery for any moment of failure.

Fragmented MP4 (``empty_moov`` + ``frag_keyframe`` + ``frag_duration``) means the header is
written first and every fragment (``moof``+``mdat``) is self-contained, at most
``fragment_seconds`` long. A fragment reaches the file when the next one starts, so a crash
loses at most the fragment in memory.

Timestamps are rebased so the segment's first video packet has dts 0; ``start_us`` is then
the wall-clock time of media time 0, and the wall time of any frame is
``start_us + pts``. The wall start is also written as ``creation_time`` (second precision,
per the MP4 spec) and, exactly, in the file name.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from vigil.ingest.types import TimedPacket
from vigil.record.paths import fsync_dir, make_dirs, part_path, segment_path
from vigil.record.recovery import finalize_part
from vigil.record.tracks import TrackPlan
from vigil.record.types import SegmentInfo

log = logging.getLogger(__name__)

_US = Fraction(1, 1_000_000)


class SegmentWriteError(OSError):
    """Writing the segment failed at the storage level (ENOSPC, EROFS, EIO, EDQUOT...).

    Raised with the original ``errno``; the segment must then be ``abort()``-ed.
    """


class _SegmentSink:
    """Write-only, non-seekable file object handed to PyAV.

    It deliberately has no ``seek``/``tell``/``close``: PyAV then marks the output as
    unseekable (so FFmpeg never rewrites earlier bytes) and never closes our descriptor.
    Errors are recorded instead of raised, because an exception raised inside FFmpeg's
    write callback leaves the muxer in an undefined state; the writer checks ``error``
    after every call into the muxer.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.size = 0  # bytes that reached the file (including a partial failed write)
        self.sha = hashlib.sha256()
        self.error: OSError | None = None
        self.discard = False  # swallow everything (after a failure, for the trailer)

    def write(self, data: bytes) -> int:
        n = len(data)
        if self.error is not None or self.discard:
            return n
        view = memoryview(data)
        done = 0
        try:
            while done < n:
                done += os.write(self.fd, view[done:])
        except OSError as exc:
            self.error = exc
            self.size += done
            return n
        self.sha.update(data)
        self.size += n
        return n


@dataclass(frozen=True, slots=True)
class OpenSegment:
    """What is known about the segment being written (for health and ``vigil status``)."""

    camera: str
    session_id: int
    path: Path  # the .part file being written
    final_path: Path
    start_us: int
    bytes: int
    packets: int


class _Track:
    """Per-stream timestamp state inside one segment."""

    __slots__ = ("first_dts_us", "first_ticks", "last_dts", "packets", "plan", "stream", "tb")

    def __init__(self, plan: TrackPlan, stream: Any) -> None:
        self.plan = plan
        self.stream = stream
        self.tb: Fraction = plan.time_base
        self.first_dts_us: int | None = None
        self.first_ticks = 0
        self.last_dts: int | None = None
        self.packets = 0


def _to_ticks(us: int, tb: Fraction) -> int:
    """``round(us µs / tb)``, half to even like ``round(Fraction)``, in integer arithmetic:
    this runs several times per packet, and Fraction arithmetic cost more than the mux."""
    d = tb.numerator * 1_000_000
    q, r = divmod(us * tb.denominator, d)
    r2 = 2 * r
    if r2 > d or (r2 == d and q & 1):
        q += 1
    return q


class SegmentWriter:
    """Writes one segment. Not thread-safe: owned by one camera's recorder.

    ``base_dts_us`` is the session-timeline dts that becomes 0; ``start_us`` the wall time
    of that instant. Packets of any stream with an earlier dts must not be written here.
    """

    def __init__(
        self,
        *,
        root: Path,
        camera: str,
        session_id: int,
        start_us: int,
        base_dts_us: int,
        video: TrackPlan,
        audio: TrackPlan | None,
        fragment_us: int,
        fsync_fragments: bool = True,
    ) -> None:
        self.camera = camera
        self.session_id = session_id
        self.start_us = start_us
        self.base_dts_us = base_dts_us
        self.fsync_fragments = fsync_fragments
        self.video_plan = video
        self.audio_plan = audio
        self.packets = 0
        self._audio_dropped = False
        self._synced = 0
        self._closed = False
        self._fd = self._create(root)
        try:
            if fsync_fragments:
                fsync_dir(self.part_path.parent)
            self._sink = _SegmentSink(self._fd)
            self._container = self._open_container(fragment_us)
        except BaseException:
            os.close(self._fd)
            with contextlib.suppress(OSError):
                self.part_path.unlink()
            raise

    # -- setup ---------------------------------------------------------------------------

    def _create(self, root: Path) -> int:
        """Create the part file exclusively (never append to or clobber another file)."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        for attempt in range(100):
            final = segment_path(root, self.camera, self.start_us, self.session_id, attempt)
            if attempt == 0:
                make_dirs(root, final.parent)
            if final.exists():
                continue
            try:
                fd = os.open(part_path(final), flags, 0o640)
            except FileExistsError:
                continue
            self.final_path = final
            self.part_path = part_path(final)
            return fd
        raise FileExistsError(f"no free segment name for {self.start_us}-{self.session_id}")

    def _open_container(self, fragment_us: int) -> Any:
        options = {
            "movflags": "+frag_keyframe+empty_moov+default_base_moof",
            "frag_duration": str(max(1, fragment_us)),
            # Every packet is pushed to our sink as soon as the muxer emits it, so what
            # the muxer has finished is on disk, not in a 32 KiB AVIO buffer.
            "flush_packets": "1",
            # Never hold more than a fragment's worth of packets waiting for a stream
            # that has gone quiet (cameras do drop audio).
            "max_interleave_delta": str(max(1, fragment_us)),
        }
        container = av.open(self._sink, "w", format="mp4", options=options)
        try:
            start = datetime.fromtimestamp(self.start_us / 1_000_000, tz=UTC)
            container.metadata["creation_time"] = start.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            container.metadata["comment"] = (
                f"vigil camera={self.camera} session={self.session_id} start_us={self.start_us}"
            )
            self._video = _Track(self.video_plan, self._add_stream(container, self.video_plan))
            self._audio = (
                _Track(self.audio_plan, self._add_stream(container, self.audio_plan))
                if self.audio_plan is not None
                else None
            )
            self._header_pending = True
            if all(t.plan.template is not None for t in self._tracks()):
                # Write ftyp+moov now: codec problems surface at open, and the muxer's
                # final time bases are known before the first packet.
                container.start_encoding()
                self._after_header()
                self._check_sink()
        except BaseException:
            self._sink.discard = True
            with contextlib.suppress(Exception):
                container.close()
            raise
        return container

    def _tracks(self) -> list[_Track]:
        return [self._video] + ([self._audio] if self._audio is not None else [])

    @staticmethod
    def _add_stream(container: Any, plan: TrackPlan) -> Any:
        p = plan.params
        if plan.template is not None:
            stream = container.add_stream_from_template(plan.template, opaque=True)
            ctx = stream.codec_context
            ctx.extradata = plan.extradata
            if p.kind == "video":
                if p.width > 0 and p.height > 0:
                    ctx.width = p.width
                    ctx.height = p.height
            else:
                if p.sample_rate > 0:
                    ctx.sample_rate = p.sample_rate
            stream.time_base = plan.time_base
            return stream
        if p.kind != "video":
            raise ValueError("audio streams need a template")
        return container.add_mux_stream(
            p.codec, width=p.width, height=p.height, time_base=plan.time_base
        )

    def _after_header(self) -> None:
        self._header_pending = False
        for track in self._tracks():
            tb = track.stream.time_base
            if tb:
                track.tb = Fraction(tb)

    # -- writing -------------------------------------------------------------------------

    @property
    def has_audio(self) -> bool:
        """The file has an audio track (so a cut keeps it open for late audio)."""
        return self._audio is not None

    @property
    def accepts_audio(self) -> bool:
        return self._audio is not None and not self._audio_dropped

    def drop_audio(self) -> None:
        """Stop writing audio to this segment (its track's config turned out wrong)."""
        self._audio_dropped = True

    @property
    def bytes(self) -> int:
        return self._sink.size

    def snapshot(self) -> OpenSegment:
        return OpenSegment(
            camera=self.camera,
            session_id=self.session_id,
            path=self.part_path,
            final_path=self.final_path,
            start_us=self.start_us,
            bytes=self._sink.size,
            packets=self.packets,
        )

    def _check_sink(self) -> None:
        err = self._sink.error
        if err is not None:
            raise SegmentWriteError(err.errno, f"writing {self.part_path.name}: {err.strerror}")

    def write(self, pkt: TimedPacket) -> bool:
        """Mux one packet. Returns False when the muxer rejected it (the packet is dropped,
        the segment stays valid); raises ``SegmentWriteError`` when storage failed."""
        track = self._video if pkt.kind == "video" else self._audio
        if track is None or (track is self._audio and self._audio_dropped):
            return False
        data = track.plan.convert(pkt.data, track.packets == 0)
        if not data:
            return False
        if track.first_dts_us is None:
            track.first_dts_us = pkt.dts_us
            track.first_ticks = _to_ticks(pkt.dts_us - self.base_dts_us, track.tb)
        tb = track.tb
        # Offsets from the stream's own first packet keep the original sample spacing
        # exact (µs values converted back to the stream time base round-trip exactly).
        dts = track.first_ticks + _to_ticks(pkt.dts_us - track.first_dts_us, tb)
        pts = track.first_ticks + _to_ticks(pkt.pts_us - track.first_dts_us, tb)
        if track.last_dts is not None and dts <= track.last_dts:
            dts = track.last_dts + 1
        pts = max(pts, dts)
        packet = av.Packet(data)
        packet.stream = track.stream
        packet.time_base = tb
        packet.dts = dts
        packet.pts = pts
        packet.duration = max(0, _to_ticks(pkt.duration_us, tb))
        packet.is_keyframe = pkt.keyframe
        try:
            self._container.mux(packet)
        except av.FFmpegError as exc:
            self._check_sink()
            log.warning(
                "muxer rejected a %s packet (dts %d us): %s", pkt.kind, pkt.dts_us, exc,
                extra={"camera": self.camera},
            )
            return False
        if self._header_pending:
            self._after_header()
        self._check_sink()
        track.last_dts = dts
        track.packets += 1
        self.packets += 1
        if self.fsync_fragments and self._sink.size > self._synced:
            self._sync()
        return True

    def _sync(self) -> None:
        try:
            os.fdatasync(self._fd)
        except OSError as exc:
            self._sink.error = exc
            self._check_sink()
        self._synced = self._sink.size

    # -- closing -------------------------------------------------------------------------

    def close(self) -> SegmentInfo | None:
        """Finish the file (last fragment + index), fsync, rename to ``.mp4``, fsync the
        directory. Returns the segment's description for the catalog, or None when it
        held no complete fragment. Raises ``SegmentWriteError`` if storage failed; the
        caller must then ``abort()``."""
        if self._closed:
            raise RuntimeError("segment already closed")
        try:
            self._container.close()
        except av.FFmpegError as exc:
            self._check_sink()
            raise SegmentWriteError(0, f"finishing {self.part_path.name}: {exc}") from exc
        self._check_sink()
        try:
            os.fsync(self._fd)
        except OSError as exc:
            self._sink.error = exc
            self._check_sink()
        self._closed = True
        os.close(self._fd)
        try:
            return finalize_part(
                self.part_path,
                self.camera,
                sha256=self._sink.sha.hexdigest(),
                expected_size=self._sink.size,
                expected_packets=self.packets,
            )
        except OSError as exc:  # rename/fsync refused: same handling as a write error
            raise SegmentWriteError(
                exc.errno or 0, f"closing {self.part_path.name}: {exc.strerror or exc}"
            ) from exc

    def abort(self) -> SegmentInfo | None:
        """Stop after a failure: keep the file up to its last complete fragment (nothing
        already written is touched), rename it and describe it, or delete it when no
        fragment was complete. Storage errors while doing so are logged and leave the
        ``.part`` file for ``recover_partial`` at the next start."""
        if not self._closed:
            self._closed = True
            self._sink.discard = True
            with contextlib.suppress(Exception):
                self._container.close()
            with contextlib.suppress(OSError):
                os.close(self._fd)
        try:
            return finalize_part(self.part_path, self.camera, recovered=True)
        except OSError as exc:
            log.error(
                "could not salvage %s (%s); it will be recovered at the next start",
                self.part_path, exc, extra={"camera": self.camera},
            )
            return None
