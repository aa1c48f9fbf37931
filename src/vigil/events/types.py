"""Value types shared by the event store and the notifiers.

The store accepts anything shaped like :class:`vigil.analytics.pipeline.AnalyticsEvent`
(see :class:`EventLike`) rather than importing it, so the store, the API and the CLI can be
used without loading OpenCV and the detector stack.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

ChangeType = Literal["new", "update", "end"]


class EventLike(Protocol):
    """The fields of ``AnalyticsEvent`` the store reads. Times are wall-clock epoch seconds
    (the integration maps the frame-source clock to wall time before handing events over)."""

    @property
    def kind(self) -> str: ...
    @property
    def camera(self) -> str: ...
    @property
    def event_id(self) -> str: ...
    @property
    def track_id(self) -> int: ...
    @property
    def label(self) -> str: ...
    @property
    def start_time(self) -> float: ...
    @property
    def end_time(self) -> float | None: ...
    @property
    def max_score(self) -> float: ...
    @property
    def box(self) -> Sequence[float]: ...
    @property
    def zones(self) -> Sequence[str]: ...
    @property
    def current_zones(self) -> Sequence[str]: ...
    @property
    def lines_crossed(self) -> Sequence[tuple[str, str]]: ...
    @property
    def stationary(self) -> bool: ...
    @property
    def snapshot_jpeg(self) -> bytes | None: ...
    @property
    def snapshot_time(self) -> float | None: ...
    @property
    def snapshot_box(self) -> Sequence[float] | None: ...
    @property
    def end_reason(self) -> str | None: ...


class ActivityLike(Protocol):
    """The fields of ``MotionActivity`` the store and the motion state read."""

    @property
    def camera(self) -> str: ...
    @property
    def second(self) -> int: ...
    @property
    def peak(self) -> float: ...
    @property
    def mean(self) -> float: ...
    @property
    def motion_frames(self) -> int: ...


def us_to_s(us: int | None) -> float | None:
    return None if us is None else us / 1_000_000


def s_to_us(seconds: float) -> int:
    return round(seconds * 1_000_000)


@dataclass(frozen=True, slots=True)
class EventRecord:
    """An event as stored. ``snapshot`` is relative to the storage root."""

    id: str
    camera: str
    label: str
    track_id: int
    start_us: int
    end_us: int | None
    max_score: float
    zones: tuple[str, ...]
    lines: tuple[tuple[str, str], ...]
    snapshot: str | None
    snapshot_us: int | None
    snapshot_box: tuple[float, ...] | None
    stationary: bool
    end_reason: str | None
    created_us: int
    updated_us: int

    @property
    def ongoing(self) -> bool:
        return self.end_us is None

    def to_json(self) -> dict[str, Any]:
        """The public JSON shape of an event (MQTT, webhooks, API). Times are given both as
        epoch seconds (what Home Assistant templates and most receivers want) and as the
        exact integer microseconds of the index."""
        return {
            "id": self.id,
            "camera": self.camera,
            "label": self.label,
            "track_id": self.track_id,
            "start_time": us_to_s(self.start_us),
            "end_time": us_to_s(self.end_us),
            "start_us": self.start_us,
            "end_us": self.end_us,
            "max_score": round(self.max_score, 4),
            "zones": list(self.zones),
            "lines": [[line, direction] for line, direction in self.lines],
            "stationary": self.stationary,
            "has_snapshot": self.snapshot is not None,
            "snapshot_box": list(self.snapshot_box) if self.snapshot_box is not None else None,
            "end_reason": self.end_reason,
        }


@dataclass(frozen=True, slots=True)
class EventChange:
    """What one ``EventStore.apply`` changed: ``before`` is the stored state before (None for
    a new event), ``after`` the state now. ``box`` and ``current_zones`` are live values of
    the analytics event that are not stored."""

    type: ChangeType
    before: EventRecord | None
    after: EventRecord
    box: tuple[float, ...] | None = None
    current_zones: tuple[str, ...] = ()

    @property
    def camera(self) -> str:
        return self.after.camera

    @property
    def label(self) -> str:
        return self.after.label

    @property
    def event_id(self) -> str:
        return self.after.id

    def to_json(self) -> dict[str, Any]:
        after = self.after.to_json()
        after["box"] = list(self.box) if self.box is not None else None
        after["current_zones"] = list(self.current_zones)
        return {
            "type": self.type,
            "before": self.before.to_json() if self.before is not None else None,
            "after": after,
        }


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a search. ``next_cursor`` is None on the last page; pass it back as
    ``cursor`` to get the next one."""

    items: list[EventRecord]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class ActivityRow:
    camera: str
    second: int
    peak: float
    mean: float
