"""One segment file: packets in, a complete fragmented MP4 out, by stream copy.

The init segment (``ftyp`` + ``moov``) comes from ``vigil.record.fmp4`` (FFmpeg's muxer, or
written by hand for template-less H.264/H.265/AAC); the fragments are written here, by
hand, one ``moof`` + ``mdat`` per fragment in a single ``writev`` of the packets' own bytes.
Per packet that is a list append; FFmpeg's muxer cost a packet copy, a pass through its
interleaver and a Python write callback per packet, the largest part of recording's CPU
beyond reading the stream.

Writing through our own file descriptor (``_SegmentSink``) also means: we count and
SHA-256 the bytes as they go, so closing a segment never re-reads it; we decide when to
fsync (fragments within an interval, by ``vigil.record.syncer``'s one ``syncfs`` for all
cameras, so a power cut loses at most about two; the whole file before it is renamed);
and a write error (disk full, read-only remount, I/O error) is caught here and turned
into a clean stop. The file
only ever grows, which is what makes "truncate after the last complete fragment" a valid
recovery for any moment of failure.

A fragment is cut at each video keyframe and after ``fragment_seconds`` of video (like
FFmpeg's ``frag_keyframe`` + ``frag_duration``) and reaches the file when the next one
starts, so a crash loses at most the fragment in memory. A sample's duration is the
distance to the next sample of its track; the last one of a segment (and the last audio
sample of a fragment) uses the packet's own duration.

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

from vigil.ingest.types import TimedPacket
from vigil.record.fmp4 import (
    Fmp4Error,
    Sample,
    TrackLayout,
    build_init_segment,
    fragment_parts,
    to_mp4_sample,
)
from vigil.record.paths import fsync_dir, make_dirs, part_path, segment_path
from vigil.record.recovery import finalize_part
from vigil.record.syncer import syncer_for
from vigil.record.tracks import TrackPlan
from vigil.record.types import SegmentInfo

log = logging.getLogger(__name__)

_IOV_MAX = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 16


class SegmentWriteError(OSError):
    """Writing the segment failed at the storage level (ENOSPC, EROFS, EIO, EDQUOT...).

    Raised with the original ``errno``; the segment must then be ``abort()``-ed.
    """


class _SegmentSink:
    """The segment's file descriptor, append-only, hashing and counting what it writes.

    Errors are recorded instead of raised so that a failed write leaves a consistent
    state (``size`` says how many bytes reached the file); the writer checks ``error``
    after every write.
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

    def write_parts(self, parts: list[bytes]) -> None:
        """Write ``parts`` in order with as few system calls as the kernel allows and no
        copy in between (a fragment's samples go straight from the packets to the file)."""
        if self.error is not None or self.discard:
            return
        total = sum(map(len, parts))
        try:
            done = os.writev(self.fd, parts) if len(parts) <= _IOV_MAX else 0
        except OSError as exc:
            self.error = exc
            return
        if done < total:  # short write (or too many parts): finish byte-exactly
            rest = memoryview(b"".join(parts))[done:]
            for part in parts:
                self.sha.update(part)
            self.size += done
            try:
                while len(rest):
                    n = os.write(self.fd, rest)
                    rest = rest[n:]
                    self.size += n
            except OSError as exc:
                self.error = exc
            return
        for part in parts:
            self.sha.update(part)
        self.size += total


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
    """Per-stream state inside one segment: timestamps and the samples of the open fragment."""

    __slots__ = (
        "first_dts_us",
        "first_ticks",
        "last_dts",
        "layout",
        "packets",
        "pending",
        "pending_end",
        "plan",
        "tb",
    )

    def __init__(self, plan: TrackPlan, layout: TrackLayout) -> None:
        self.plan = plan
        self.layout = layout
        self.tb = Fraction(1, layout.timescale)
        self.first_dts_us: int | None = None
        self.first_ticks = 0
        self.last_dts: int | None = None
        self.packets = 0
        # (mp4 sample bytes, dts, pts, keyframe) of the fragment being collected; durations
        # are known only when the next sample (or the end) arrives
        self.pending: list[tuple[bytes, int, int, bool]] = []
        self.pending_end: int | None = None  # dts just after the last pending sample

    def take_samples(self, end_dts: int) -> list[Sample]:
        """The pending samples with durations (the last one ends at ``end_dts``)."""
        pending = self.pending
        out = []
        for i, (data, dts, pts, key) in enumerate(pending):
            nxt = pending[i + 1][1] if i + 1 < len(pending) else end_dts
            out.append(Sample(data, dts, max(0, nxt - dts), pts - dts, key))
        self.pending = []
        return out


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
    ``first_keyframe`` (the segment's first packet) lets the init segment be made when the
    video plan has no template stream.

    A fragment is written when the next video keyframe arrives or when the open fragment
    holds ``fragment_us`` of video, like FFmpeg's ``frag_keyframe`` + ``frag_duration``;
    each fragment is one ``write`` of ``moof`` + ``mdat``, then ``fdatasync``.
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
        first_keyframe: bytes | None = None,
    ) -> None:
        self.camera = camera
        self.session_id = session_id
        self.start_us = start_us
        self.base_dts_us = base_dts_us
        self.fsync_fragments = fsync_fragments
        self.video_plan = video
        self.audio_plan = audio
        self.fragment_us = max(1, fragment_us)
        self.packets = 0
        self._audio_dropped = False
        self._sequence = 0
        self._frag_start_dts_us: int | None = None
        self._video_end: int | None = None  # ticks where the video track ends (at a cut)
        self._closed = False
        start = datetime.fromtimestamp(start_us / 1_000_000, tz=UTC)
        init = build_init_segment(
            video,
            audio,
            first_keyframe,
            metadata={
                "creation_time": start.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "comment": f"vigil camera={camera} session={session_id} start_us={start_us}",
            },
            created_unix_s=start_us // 1_000_000,
        )
        if audio is not None and init.audio is None:
            raise Fmp4Error("the mp4 muxer dropped the audio track")
        self._video = _Track(video, init.video)
        self._audio = _Track(audio, init.audio) if audio is not None and init.audio else None
        self._fd = self._create(root)
        try:
            # fragments are made durable by the file system's syncer (one syncfs per
            # interval for every camera), or here when the platform has no syncfs
            self._syncer = syncer_for(root, self.fragment_us / 1e6) if fsync_fragments else None
            if fsync_fragments:
                fsync_dir(self.part_path.parent)
            self._sink = _SegmentSink(self._fd)
            self._sink.write(init.data)
            self._check_sink()
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
        """Add one packet. Returns False when it cannot be stored (the packet is dropped,
        the segment stays valid); raises ``SegmentWriteError`` when storage failed."""
        is_video = pkt.kind == "video"
        track = self._video if is_video else self._audio
        if track is None or (not is_video and self._audio_dropped):
            return False
        plan = track.plan
        data = plan.convert(pkt.data, track.packets == 0)
        if plan.framing == "annexb":
            data = to_mp4_sample(plan, data)
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
        if is_video:
            frag_start = self._frag_start_dts_us
            if frag_start is not None and (
                pkt.keyframe or pkt.dts_us - frag_start >= self.fragment_us
            ):
                self._flush_fragment(dts)
            if self._frag_start_dts_us is None:
                self._frag_start_dts_us = pkt.dts_us
        track.pending.append((data, dts, pts, pkt.keyframe or not is_video))
        track.pending_end = dts + max(0, _to_ticks(pkt.duration_us, tb))
        track.last_dts = dts
        track.packets += 1
        self.packets += 1
        return True

    def _flush_fragment(self, video_end: int | None) -> None:
        """Write the open fragment (``moof`` + ``mdat``) in one go and make it durable.
        ``video_end`` is the dts of the video sample that follows it, if known."""
        runs: list[tuple[int, list[Sample]]] = []
        for track in (self._video, self._audio):
            if track is None or not track.pending:
                continue
            end = None
            if track is self._video:
                end = video_end if video_end is not None else self._video_end
            if end is None:
                end = track.pending_end if track.pending_end is not None else track.pending[-1][1]
            runs.append((track.layout.track_id, track.take_samples(end)))
        self._frag_start_dts_us = None
        if not runs:
            return
        self._sequence += 1
        self._sink.write_parts(fragment_parts(self._sequence, runs))
        self._check_sink()
        if self._syncer is not None:
            self._syncer.mark()
        elif self.fsync_fragments:
            self._sync()

    def end_video(self, dts_us: int) -> int:
        """The video track ends where the packet at ``dts_us`` (the next segment's first
        keyframe) begins: its last sample lasts exactly until then. Returns the segment's
        wall-clock end as the index will record it (start + video duration, in the track's
        own ticks), so the next segment can start at exactly that instant."""
        t = self._video
        if t.first_dts_us is None:
            return self.start_us
        end = t.first_ticks + _to_ticks(dts_us - t.first_dts_us, t.tb)
        if t.last_dts is not None and end <= t.last_dts:
            end = t.last_dts + 1
        self._video_end = end
        return self.start_us + round((end - t.first_ticks) * 1_000_000 / t.layout.timescale)

    def _sync(self) -> None:
        try:
            os.fdatasync(self._fd)
        except OSError as exc:
            self._sink.error = exc
            self._check_sink()

    # -- closing -------------------------------------------------------------------------

    def close(self) -> SegmentInfo | None:
        """Finish the file (last fragment + index), fsync, rename to ``.mp4``, fsync the
        directory. Returns the segment's description for the catalog, or None when it
        held no complete fragment. Raises ``SegmentWriteError`` if storage failed; the
        caller must then ``abort()``."""
        if self._closed:
            raise RuntimeError("segment already closed")
        self._flush_fragment(None)
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
            with contextlib.suppress(OSError):
                os.close(self._fd)
        try:
            return finalize_part(self.part_path, self.camera, recovered=True)
        except OSError as exc:
            log.error(
                "could not salvage %s (%s); it will be recovered at the next start",
                self.part_path,
                exc,
                extra={"camera": self.camera},
            )
            return None
