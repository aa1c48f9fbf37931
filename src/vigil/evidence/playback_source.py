"""A recorded segment file as playback sees it: its index row joined with what is actually on
disk, and the mapping from the file's media time to wall-clock time.

The index says what *should* be there. Disks fail, people delete files by hand and crashes
truncate tails, so every playback path probes the file first (one cached box scan) and
treats "not there", "cut short" and "not an MP4" as gaps with a reason rather than letting a
decoder stumble over them halfway through a response.

Wall-clock model (the recorder's): timestamps in a segment are rebased so that its first
video sample has decode time 0, and ``start_us`` is the wall time of that media time 0. So a
sample with composition time ``cts`` (track timescale, as stored in the file, before any
edit list) was captured at ``start_us + (cts - origin) / timescale``, where ``origin`` is the
decode time of the first video sample (0 for Vigil's files, read from the file anyway so
files from elsewhere map the same way).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from vigil.evidence.playback_bmff import BmffError, Fragment, Layout, TrackInfo, TrafInfo, layouts
from vigil.evidence.timeline import TimelineGap
from vigil.index.models import Segment
from vigil.index.repository import Index

log = logging.getLogger(__name__)

_warned: set[tuple[str, str, str]] = set()
_warned_lock = threading.Lock()


def _warn_once(index: Index, rel: str, what: str, msg: str, *args: object) -> None:
    """Damaged files are reported once per process and problem, not on every HLS part."""
    with _warned_lock:
        key = (str(index.root), rel, what)
        if key in _warned:
            return
        if len(_warned) > 10_000:  # bounded: a long-lived process with a dying disk
            _warned.clear()
        _warned.add(key)
    log.warning(msg, *args)


@dataclass(frozen=True, slots=True)
class SourceSegment:
    """A segment file that exists and has at least one complete fragment of video."""

    segment_id: int
    rel: str
    path: Path
    start_us: int  # wall time of media time ``origin`` (from the index)
    index_end_us: int  # what the index claims
    end_us: int  # wall time where the surviving video ends (== index end when intact)
    layout: Layout
    video: TrackInfo
    origin: int  # decode time of the first video sample (video timescale): wall start_us
    truncated: bool

    @property
    def signature(self) -> bytes:
        return self.layout.signature

    def wall_of_cts(self, cts: int, track: TrackInfo | None = None) -> int:
        """Wall µs of a composition time of ``track`` (default: video) in this file."""
        t = track or self.video
        secs = Fraction(cts, t.timescale) - Fraction(self.origin, self.video.timescale)
        return self.start_us + round(secs * 1_000_000)

    def video_fragments(self) -> list[tuple[Fragment, TrafInfo]]:
        return self.layout.video_fragments()

    def start_fragment(self, instant_us: int | None) -> int:
        """Index (into ``video_fragments()``) of the fragment to start from so that
        ``instant_us`` is decodable: the last keyframe-led fragment presented at or before
        it (the first fragment when the instant precedes the file)."""
        vf = self.video_fragments()
        if instant_us is None:
            return 0
        best = 0
        for i, (_f, t) in enumerate(vf):
            if self.wall_of_cts(t.min_cts) > instant_us:
                break
            if t.first_sync:
                best = i
        return best

    def end_fragment(self, instant_us: int | None) -> int:
        """Exclusive index of the last fragment needed to show everything before
        ``instant_us``."""
        vf = self.video_fragments()
        if instant_us is None:
            return len(vf)
        for i, (_f, t) in enumerate(vf):
            if self.wall_of_cts(t.min_cts) >= instant_us:
                return max(i, 1)
        return len(vf)


def _gap(seg: Segment, start: int, reason: str, detail: str) -> TimelineGap:
    return TimelineGap(start, seg.end_us, reason, detail)


def probe(index: Index, seg: Segment) -> SourceSegment | TimelineGap:
    """The usable part of ``seg``'s file, or the gap it leaves when nothing is usable.
    Never raises for a damaged or missing file (it logs and returns the gap)."""
    try:
        path = index.abspath(seg.path)
    except ValueError:
        _warn_once(
            index, seg.path, "outside", "segment %s points outside the storage root", seg.path
        )
        return _gap(seg, seg.start_us, "unreadable", f"{seg.path}: outside storage root")
    try:
        layout = layouts.get(path)
    except FileNotFoundError:
        _warn_once(
            index, seg.path, "missing", "segment file %s is missing; reporting a gap", seg.path
        )
        return _gap(seg, seg.start_us, "missing", seg.path)
    except (OSError, BmffError, IndexError, ValueError) as e:  # struct.error is a ValueError
        reason = "unreadable"
        with contextlib.suppress(OSError):
            if path.stat().st_size < seg.bytes:
                reason = "truncated"  # cut short, even before the end of its init segment
        _warn_once(index, seg.path, reason, "segment file %s is %s: %s", seg.path, reason, e)
        return _gap(seg, seg.start_us, reason, f"{seg.path}: {e}")
    video = layout.video
    vf = layout.video_fragments()
    if video is None or not vf:
        reason = "truncated" if layout.truncated or layout.file_size < seg.bytes else "unreadable"
        _warn_once(
            index,
            seg.path,
            reason,
            "segment file %s has no complete video fragment (%s)",
            seg.path,
            reason,
        )
        return _gap(seg, seg.start_us, reason, f"{seg.path}: no complete video fragment")
    origin = vf[0][1].decode_time
    _last_f, last_t = vf[-1]
    end_dts = last_t.decode_time + last_t.duration
    # decode-time length of what survives, anchored at the first sample
    length_us = round(Fraction(end_dts - vf[0][1].decode_time, video.timescale) * 1_000_000)
    truncated = layout.truncated or layout.file_size < seg.bytes
    end_us = seg.start_us + length_us
    if not truncated:
        # Intact: trust the index (it was computed from the same timestamps when recorded);
        # tiny disagreements would otherwise show up as slivers of "gap".
        end_us = seg.end_us if abs(end_us - seg.end_us) < 1_000_000 else end_us
    else:
        _warn_once(
            index,
            seg.path,
            "truncated",
            "segment file %s is truncated (%d of %d bytes); playing the %d complete fragments",
            seg.path,
            layout.file_size,
            seg.bytes,
            len(vf),
        )
        end_us = min(end_us, seg.end_us)
    return SourceSegment(
        segment_id=seg.id,
        rel=seg.path,
        path=path,
        start_us=seg.start_us,
        index_end_us=seg.end_us,
        end_us=end_us,
        layout=layout,
        video=video,
        origin=origin,
        truncated=truncated,
    )


def check_segment_file(index: Index, seg: Segment) -> TimelineGap | None:
    """Cheap health check for the timeline: a ``stat`` when the size matches the index, a
    box scan only when it does not. Returns the gap the file leaves, if any."""
    try:
        path = index.abspath(seg.path)
        size = path.stat().st_size
    except FileNotFoundError:
        _warn_once(
            index, seg.path, "missing", "segment file %s is missing; reporting a gap", seg.path
        )
        return _gap(seg, seg.start_us, "missing", seg.path)
    except (OSError, ValueError) as e:
        return _gap(seg, seg.start_us, "unreadable", f"{seg.path}: {e}")
    if size == seg.bytes:
        return None
    got = probe(index, seg)
    if isinstance(got, TimelineGap):
        return got
    if got.truncated and got.end_us < seg.end_us:
        return TimelineGap(
            got.end_us,
            seg.end_us,
            "truncated",
            f"{seg.path}: {got.layout.file_size} of {seg.bytes} bytes",
        )
    return None
