"""What was recorded when: the timeline a scrubber draws and playback plans against.

A timeline is built from the index alone (no file access by default), so drawing a month of
one camera is one range query. Segments that follow each other within a small tolerance are
merged into *spans*: a recorder rolling over to a new file leaves no real hole, and wall
clock jitter between "end of file N" and "first packet of file N+1" must not show up as a
gap. Everything in the requested window that no span covers is a *gap*, explained by the
gaps table where the recorder knew why (offline, disk full, retention, ...) and reported as
``"unknown"`` where nobody did, so a hole is never silently drawn as footage or dropped.

All times are integer microseconds since the Unix epoch (UTC); ranges are half-open
``[start_us, end_us)``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from vigil.index.models import Camera, Segment
from vigil.index.repository import Index

log = logging.getLogger(__name__)

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
# Timelines are cheap (index only); a month is what a scrubber zoomed all the way out shows.
DEFAULT_TIMELINE_MAX_RANGE_US = 31 * DAY_US
# Smallest tolerance for calling two segments contiguous. Segment start times are wall-clock
# stamps of the first packet, so a roll-over can be off by a few tens of milliseconds even
# though no frame was lost. A hole shorter than this is not worth showing on a scrubber.
MIN_CONTIGUITY_TOLERANCE_US = 250_000
UNKNOWN = "unknown"


class TimeRangeError(ValueError):
    """A request for a time range that cannot be served as asked (the message says why)."""


class UnknownCameraError(TimeRangeError, LookupError):
    """The camera has never been recorded by this index."""


@dataclass(frozen=True, slots=True)
class Span:
    """Continuously recorded footage, clipped to the requested window."""

    start_us: int
    end_us: int
    segments: int  # how many segment files contribute

    @property
    def duration_us(self) -> int:
        return self.end_us - self.start_us


@dataclass(frozen=True, slots=True)
class TimelineGap:
    """Time without footage, and why. ``reason`` is one of the recorder's gap reasons
    (``offline``, ``stalled``, ``disk_full``, ``restart``, ``retention``, ``error``),
    ``missing``/``truncated``/``unreadable`` for files that vanished or were damaged behind
    Vigil's back, or ``unknown`` when nothing recorded an explanation."""

    start_us: int
    end_us: int
    reason: str
    detail: str = ""

    @property
    def duration_us(self) -> int:
        return self.end_us - self.start_us


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """A detection overlaid on the timeline (``kind`` "object"; ``reference`` is the event
    id). Filled by ``vigil.events.timeline.timeline_with_events``; ``timeline()`` alone
    reads only the recording index and leaves ``Timeline.events`` empty."""

    start_us: int
    end_us: int
    kind: str
    label: str = ""
    reference: str = ""


@dataclass(frozen=True, slots=True)
class Timeline:
    camera: str
    start_us: int
    end_us: int
    spans: tuple[Span, ...]
    gaps: tuple[TimelineGap, ...]  # covers exactly the window minus the spans, in order
    events: tuple[TimelineEvent, ...] = ()  # see TimelineEvent
    # Zero-length gap rows such as ``codec_change``: instants inside spans where the stream
    # changed (a new init segment/discontinuity for players), not missing footage.
    markers: tuple[TimelineGap, ...] = field(default=())

    @property
    def recorded_us(self) -> int:
        return sum(s.duration_us for s in self.spans)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the API."""
        return {
            "camera": self.camera,
            "start_us": self.start_us,
            "end_us": self.end_us,
            "spans": [
                {"start_us": s.start_us, "end_us": s.end_us, "segments": s.segments}
                for s in self.spans
            ],
            "gaps": [
                {"start_us": g.start_us, "end_us": g.end_us, "reason": g.reason, "detail": g.detail}
                for g in self.gaps
            ],
            "events": [
                {
                    "start_us": e.start_us,
                    "end_us": e.end_us,
                    "kind": e.kind,
                    "label": e.label,
                    "reference": e.reference,
                }
                for e in self.events
            ],
            "markers": [
                {"at_us": m.start_us, "reason": m.reason, "detail": m.detail} for m in self.markers
            ],
        }


# -- validation ------------------------------------------------------------------------------


def camera_exists(index: Index, camera: str) -> bool:
    """Unlike ``Index.camera_id`` this never creates the camera row."""
    with index.db.session() as s:
        return s.scalar(select(Camera.id).where(Camera.name == camera)) is not None


def validate_range(
    index: Index, camera: str, start_us: int, end_us: int, max_range_us: int
) -> None:
    """Raise ``TimeRangeError`` (or ``UnknownCameraError``) with a message fit for an API
    client. Checked before any query so a typo cannot start a month-long export."""
    for name, v in (("start_us", start_us), ("end_us", end_us)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise TimeRangeError(f"{name} must be an integer of microseconds, got {v!r}")
    if start_us < 0:
        raise TimeRangeError(f"start_us {start_us} is before 1970-01-01")
    if end_us <= start_us:
        raise TimeRangeError(
            f"end ({end_us}) must be after start ({start_us}); the range is [start, end)"
        )
    if end_us - start_us > max_range_us:
        raise TimeRangeError(
            f"range of {(end_us - start_us) / 3.6e9:.2f} h is longer than the maximum of "
            f"{max_range_us / 3.6e9:.2f} h; request a shorter range"
        )
    if not camera_exists(index, camera):
        raise UnknownCameraError(f"unknown camera {camera!r}")


# -- spans and gaps ------------------------------------------------------------------------------


def contiguity_tolerance_us(duration_us: int, packets: int) -> int:
    """How far apart two segments may be and still count as one recording: about one and a
    half frame intervals (estimated from the segment's packet rate, a lower bound when audio
    packets are counted too) but never less than ``MIN_CONTIGUITY_TOLERANCE_US``."""
    if packets > 0 and duration_us > 0:
        return max(MIN_CONTIGUITY_TOLERANCE_US, (3 * duration_us) // (2 * packets))
    return MIN_CONTIGUITY_TOLERANCE_US


@dataclass(frozen=True, slots=True)
class Piece:
    """One stretch of footage for span merging (a segment, or what survives of one)."""

    start_us: int
    end_us: int
    tolerance_us: int  # how far after end_us the next piece may start and still join


def merge(pieces: Iterable[Piece]) -> list[tuple[int, int, int]]:
    """Merge pieces (sorted by start) into runs ``(start, end, count)``. Overlaps join too:
    a recorder restart can produce a file that starts before the previous one ended."""
    runs: list[list[int]] = []
    tol = 0
    for p in pieces:
        if p.end_us <= p.start_us:
            continue
        if runs and p.start_us <= runs[-1][1] + tol:
            runs[-1][1] = max(runs[-1][1], p.end_us)
            runs[-1][2] += 1
        else:
            runs.append([p.start_us, p.end_us, 1])
        tol = p.tolerance_us
    return [(a, b, n) for a, b, n in runs]


def holes(
    start_us: int, end_us: int, runs: Sequence[tuple[int, int, int]]
) -> list[tuple[int, int]]:
    """The parts of [start_us, end_us) that no run covers."""
    out: list[tuple[int, int]] = []
    cur = start_us
    for a, b, _n in runs:
        if a > cur:
            out.append((cur, min(a, end_us)))
        cur = max(cur, b)
        if cur >= end_us:
            break
    if cur < end_us:
        out.append((cur, end_us))
    return [(a, b) for a, b in out if b > a]


def explain(
    hole_list: Sequence[tuple[int, int]],
    reasons: Sequence[TimelineGap],
    absorb_us: int = MIN_CONTIGUITY_TOLERANCE_US,
) -> list[TimelineGap]:
    """Cut each hole into pieces explained by ``reasons`` (sorted by start; the earliest
    reason wins where they overlap) and ``unknown`` pieces for the rest. An unknown sliver
    shorter than ``absorb_us`` next to an explained piece is given to that piece: the
    recorder's gap boundaries and segment boundaries come from different clocks."""
    out: list[TimelineGap] = []
    for a, b in hole_list:
        pieces: list[TimelineGap] = []
        cur = a
        for r in reasons:
            if r.end_us <= cur or r.start_us >= b:
                continue
            s = max(cur, r.start_us)
            e = min(b, r.end_us)
            if s > cur:
                pieces.append(TimelineGap(cur, s, UNKNOWN))
            pieces.append(TimelineGap(s, e, r.reason, r.detail))
            cur = e
            if cur >= b:
                break
        if cur < b:
            pieces.append(TimelineGap(cur, b, UNKNOWN))
        out.extend(_absorb(pieces, absorb_us))
    return out


def _absorb(pieces: list[TimelineGap], absorb_us: int) -> list[TimelineGap]:
    if len(pieces) < 2:
        return pieces
    out: list[TimelineGap] = []
    for i, p in enumerate(pieces):
        if p.reason == UNKNOWN and p.duration_us < absorb_us:
            prev = out[-1] if out and out[-1].reason != UNKNOWN else None
            nxt = pieces[i + 1] if i + 1 < len(pieces) else None
            if prev is not None:
                out[-1] = TimelineGap(prev.start_us, p.end_us, prev.reason, prev.detail)
                continue
            if nxt is not None and nxt.reason != UNKNOWN:
                pieces[i + 1] = TimelineGap(p.start_us, nxt.end_us, nxt.reason, nxt.detail)
                continue
        if (
            out
            and out[-1].reason == p.reason
            and out[-1].detail == p.detail
            and out[-1].end_us == p.start_us
        ):
            out[-1] = TimelineGap(out[-1].start_us, p.end_us, p.reason, p.detail)
        else:
            out.append(p)
    return out


def gap_rows(
    index: Index, camera: str, start_us: int, end_us: int
) -> tuple[list[TimelineGap], list[TimelineGap]]:
    """(gaps with a length, zero-length markers) from the gaps table, sorted by start."""
    spans: list[TimelineGap] = []
    markers: list[TimelineGap] = []
    for _cam, g in index.gaps(camera, start_us - 1, end_us):
        tg = TimelineGap(g.start_us, g.end_us, g.reason, g.detail or "")
        if g.end_us <= g.start_us:
            if start_us <= g.start_us < end_us:
                markers.append(tg)
        elif g.end_us > start_us:
            spans.append(tg)
    return spans, markers


def timeline(
    index: Index,
    camera: str,
    start_us: int,
    end_us: int,
    *,
    max_range_us: int = DEFAULT_TIMELINE_MAX_RANGE_US,
    check_files: bool = False,
) -> Timeline:
    """Spans, gaps and (future) events of ``camera`` in [start_us, end_us).

    With ``check_files`` each segment's file is also checked (stat, and a box scan when its
    size differs from the index) so that files deleted or truncated behind Vigil's back show
    up as ``missing``/``truncated``/``unreadable`` gaps instead of footage that will not play;
    this costs a ``stat`` per segment, which is why it is off for plain scrubber drawing."""
    validate_range(index, camera, start_us, end_us, max_range_us)
    rows = [seg for _c, seg in index.segments(camera, start_us, end_us)]
    pieces: list[Piece] = []
    damaged: list[TimelineGap] = []
    for seg in rows:
        tol = contiguity_tolerance_us(seg.duration_us, seg.packets)
        end = seg.end_us
        if check_files:
            from vigil.evidence.playback_source import check_segment_file

            problem = check_segment_file(index, seg)
            if problem is not None:
                damaged.append(problem)
                end = problem.start_us  # what survives (== start when nothing does)
        pieces.append(Piece(seg.start_us, end, tol))
    runs = merge(pieces)
    clipped = [
        (max(a, start_us), min(b, end_us), n) for a, b, n in runs if b > start_us and a < end_us
    ]
    explained, markers = gap_rows(index, camera, start_us, end_us)
    # A damaged file's own explanation beats whatever the gaps table says about that time.
    reasons = sorted(
        damaged + explained,
        key=lambda g: (g.start_us, g.reason not in ("missing", "truncated", "unreadable")),
    )
    tol = max((p.tolerance_us for p in pieces), default=MIN_CONTIGUITY_TOLERANCE_US)
    gaps = explain(holes(start_us, end_us, clipped), reasons, absorb_us=tol)
    return Timeline(
        camera=camera,
        start_us=start_us,
        end_us=end_us,
        spans=tuple(Span(a, b, n) for a, b, n in clipped if b > a),
        gaps=tuple(gaps),
        events=(),
        markers=tuple(markers),
    )


def first_segment_at_or_before(index: Index, camera: str, instant_us: int) -> Segment | None:
    """The segment that starts last at or before ``instant_us`` (one indexed lookup on
    ``(camera_id, start_us)``: no range scan however much footage there is)."""
    with index.db.session() as s:
        cid = s.scalar(select(Camera.id).where(Camera.name == camera))
        if cid is None:
            return None
        q = (
            select(Segment)
            .where(Segment.camera_id == cid, Segment.start_us <= instant_us)
            .order_by(Segment.start_us.desc(), Segment.id.desc())
            .limit(1)
        )
        return s.scalar(q)


def first_segment_after(index: Index, camera: str, instant_us: int) -> Segment | None:
    with index.db.session() as s:
        cid = s.scalar(select(Camera.id).where(Camera.name == camera))
        if cid is None:
            return None
        q = (
            select(Segment)
            .where(Segment.camera_id == cid, Segment.start_us > instant_us)
            .order_by(Segment.start_us, Segment.id)
            .limit(1)
        )
        return s.scalar(q)
