"""Zones (polygons with dwell time) and directed counting lines, fed by tracks.

Both use one *anchor* point per track: the bottom-center of its box by default — where a
person or a vehicle touches the ground, which is where a zone or a line painted on the
floor is — or the box center (for top-down cameras).

Lines are directed: from ``p1`` to ``p2``. Side ``A`` is the right-hand side of someone
walking along the line from ``p1`` to ``p2`` on the picture (as on a map; y grows down),
side ``B`` the left-hand side. A horizontal line drawn left to right has ``A`` below it;
a vertical line drawn top to bottom has ``A`` on its left. A crossing is counted when a
track's anchor moves from a point clearly on one side (more than ``hysteresis`` away) to
a point clearly on the other and the path between them crosses the drawn segment — so
jitter around the line never double counts, and a crossing hidden by a missed
detection is still counted at the next observation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from vigil.analytics.geometry import (
    Point,
    point_in_polygon,
    segments_intersect,
    validate_polygon,
)
from vigil.analytics.tracking import Track

Anchor = Literal["bottom_center", "center"]
Direction = Literal["a_to_b", "b_to_a"]


def _check_name(kind: str, name: str) -> None:
    if not name or not name.strip():
        raise ValueError(f"a {kind} needs a non-empty name")


@dataclass(frozen=True)
class Zone:
    """A polygon in normalized coordinates. ``labels`` restricts which object classes it
    reports (``None``: all); an object must stay ``min_dwell`` seconds inside to count
    as having entered (people walking past a corner of a zone are not "in" it)."""

    name: str
    polygon: tuple[Point, ...]
    labels: frozenset[str] | None = None
    min_dwell: float = 0.0
    anchor: Anchor = "bottom_center"

    def __post_init__(self) -> None:
        _check_name("zone", self.name)
        object.__setattr__(self, "polygon", validate_polygon(f"zone {self.name!r}", self.polygon))
        if self.labels is not None:
            object.__setattr__(self, "labels", frozenset(self.labels))
        if self.min_dwell < 0:
            raise ValueError(f"zone {self.name!r}: min_dwell must be >= 0")

    def contains(self, p: Point) -> bool:
        return point_in_polygon(p, self.polygon)

    def accepts(self, label: str) -> bool:
        return self.labels is None or label in self.labels


@dataclass(frozen=True)
class Line:
    """A directed counting line from ``p1`` to ``p2`` (normalized coordinates)."""

    name: str
    p1: Point
    p2: Point
    labels: frozenset[str] | None = None
    anchor: Anchor = "bottom_center"
    hysteresis: float = 0.01  # normalized distance from the line that counts as "a side"

    def __post_init__(self) -> None:
        _check_name("line", self.name)
        for label, p in (("p1", self.p1), ("p2", self.p2)):
            if len(p) != 2 or not all(math.isfinite(float(v)) for v in p):
                raise ValueError(f"line {self.name!r}: {label} must be (x, y), got {p!r}")
            if not all(0.0 <= float(v) <= 1.0 for v in p):
                raise ValueError(
                    f"line {self.name!r}: {label} {tuple(p)!r} is outside the frame; "
                    "coordinates are normalized and must be within [0, 1]"
                )
        p1 = (float(self.p1[0]), float(self.p1[1]))
        p2 = (float(self.p2[0]), float(self.p2[1]))
        if math.dist(p1, p2) < 1e-3:
            raise ValueError(f"line {self.name!r}: p1 and p2 are the same point")
        object.__setattr__(self, "p1", p1)
        object.__setattr__(self, "p2", p2)
        if self.labels is not None:
            object.__setattr__(self, "labels", frozenset(self.labels))

    def signed_distance(self, p: Point) -> float:
        """Positive on side A, negative on side B (normalized units)."""
        (x1, y1), (x2, y2) = self.p1, self.p2
        cross = (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1)
        return cross / math.dist(self.p1, self.p2)

    def accepts(self, label: str) -> bool:
        return self.labels is None or label in self.labels


@dataclass(frozen=True, slots=True)
class ZoneEvent:
    kind: Literal["enter", "exit"]
    zone: str
    track_id: int
    label: str
    time: float  # enter: when the object first stood inside; exit: first time seen outside


@dataclass(frozen=True, slots=True)
class LineCrossing:
    line: str
    direction: Direction
    track_id: int
    label: str
    time: float


@dataclass(slots=True)
class _TrackState:
    inside_since: dict[str, float] = field(default_factory=dict)  # zone -> first inside
    entered: set[str] = field(default_factory=set)
    line_side: dict[str, tuple[int, Point]] = field(default_factory=dict)  # side, where


class ZoneMonitor:
    """Turns track positions into zone enter/exit events and line crossings.

    Only *observed* track positions are used (not Kalman coasting), so a prediction
    drifting over a line cannot count a crossing that did not happen.
    """

    def __init__(self, zones: Sequence[Zone] = (), lines: Sequence[Line] = ()) -> None:
        names = [z.name for z in zones]
        if len(set(names)) != len(names):
            raise ValueError("zone names must be unique")
        lnames = [ln.name for ln in lines]
        if len(set(lnames)) != len(lnames):
            raise ValueError("line names must be unique")
        self.zones = list(zones)
        self.lines = list(lines)
        self.counts: dict[str, dict[Direction, int]] = {
            ln.name: {"a_to_b": 0, "b_to_a": 0} for ln in self.lines
        }
        self._state: dict[int, _TrackState] = {}

    @staticmethod
    def _anchor(track: Track, anchor: Anchor) -> Point:
        box = track.box
        return box.bottom_center if anchor == "bottom_center" else box.center

    def update(
        self, tracks: Iterable[Track], t: float, ended: Iterable[Track] = ()
    ) -> tuple[list[ZoneEvent], list[LineCrossing]]:
        zone_events: list[ZoneEvent] = []
        crossings: list[LineCrossing] = []
        for tr in tracks:
            if not tr.observed:
                continue
            st = self._state.setdefault(tr.track_id, _TrackState())
            for zone in self.zones:
                if not zone.accepts(tr.label):
                    continue
                inside = zone.contains(self._anchor(tr, zone.anchor))
                if inside:
                    since = st.inside_since.setdefault(zone.name, t)
                    if zone.name not in st.entered and t - since >= zone.min_dwell:
                        st.entered.add(zone.name)
                        zone_events.append(
                            ZoneEvent("enter", zone.name, tr.track_id, tr.label, since)
                        )
                else:
                    st.inside_since.pop(zone.name, None)
                    if zone.name in st.entered:
                        st.entered.discard(zone.name)
                        zone_events.append(ZoneEvent("exit", zone.name, tr.track_id, tr.label, t))
            for line in self.lines:
                if not line.accepts(tr.label):
                    continue
                p = self._anchor(tr, line.anchor)
                d = line.signed_distance(p)
                if abs(d) < line.hysteresis:
                    continue
                side = 1 if d > 0 else -1
                prev = st.line_side.get(line.name)
                st.line_side[line.name] = (side, p)
                if prev is None or prev[0] == side:
                    continue
                if segments_intersect(prev[1], p, line.p1, line.p2):
                    direction: Direction = "a_to_b" if prev[0] > 0 else "b_to_a"
                    self.counts[line.name][direction] += 1
                    crossings.append(LineCrossing(line.name, direction, tr.track_id, tr.label, t))
        for tr in ended:
            st_end = self._state.pop(tr.track_id, None)
            if st_end is None:
                continue
            for zname in sorted(st_end.entered):
                zone_events.append(ZoneEvent("exit", zname, tr.track_id, tr.label, tr.last_seen))
        return zone_events, crossings
