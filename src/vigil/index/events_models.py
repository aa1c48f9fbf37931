"""Index tables of the event subsystem (see ``vigil.events``): object events, the zones
they entered, per-second motion activity for the timeline, and webhook deliveries that
exhausted their retries (dead letters).

Imported at the bottom of ``vigil.index.models`` so that ``Base.metadata`` (and the
migration check) always sees them. Times are integer microseconds since the Unix epoch,
like every other table; ``motion_activity.second`` is whole epoch seconds because that is
the resolution at which activity is aggregated.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from vigil.index.models import Base


class EventRow(Base):
    """One object event (a track's life). ``end_us`` is NULL while it is ongoing; events
    still open at start-up were interrupted by a crash and are closed then.

    ``zones`` keeps the order zones were entered (for display); the searchable copy is
    ``event_zones``, because filtering on a JSON list is not portable between SQLite and
    PostgreSQL while a plain indexed table is.
    """

    __tablename__ = "events"
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id"))
    label: Mapped[str] = mapped_column(String(64))
    track_id: Mapped[int] = mapped_column(BigInteger)
    start_us: Mapped[int] = mapped_column(BigInteger)
    end_us: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    max_score: Mapped[float] = mapped_column(Float)
    zones: Mapped[list[str]] = mapped_column(JSON)
    lines: Mapped[list[list[str]]] = mapped_column(JSON)  # [[line, direction], ...]
    snapshot: Mapped[str | None] = mapped_column(String(512), nullable=True)  # rel. to root
    snapshot_us: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    snapshot_box: Mapped[list[float] | None] = mapped_column(JSON, nullable=True)
    stationary: Mapped[bool] = mapped_column(Boolean)
    end_reason: Mapped[str | None] = mapped_column(String(16), nullable=True)
    hold_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_us: Mapped[int] = mapped_column(BigInteger)
    updated_us: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        # keyset pagination over everything (newest first) and per camera / per label
        Index("ix_events_start_id", "start_us", "id"),
        Index("ix_events_camera_start", "camera_id", "start_us"),
        Index("ix_events_label_start", "label", "start_us"),
        # finding open events at start-up
        Index("ix_events_end", "end_us"),
    )


class EventZone(Base):
    """Zones an event entered, one row each, for ``search(zone=...)``.

    ``camera_id``, ``label`` and ``start_us`` are copies of the event's
    (``EventStore.apply`` keeps them equal: an event's camera never changes, its start only
    moves earlier, its label may change) so that a zone search walks the zone's own rows
    newest first and stops after one page. Without them it walked ``events`` in time order
    probing each event's zones, which read every event when the zone matched nothing (2.6 s
    over 1M events, bench/README.md "## web"). The label is the last column of the camera
    index so that a zone + camera + label search filters index entries, not rows.
    """

    __tablename__ = "event_zones"
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"), primary_key=True)
    zone: Mapped[str] = mapped_column(String(64), primary_key=True)
    camera_id: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(64))
    start_us: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        # a zone on given cameras, on all cameras, and of a label, each in (start_us, id)
        # order
        Index(
            "ix_event_zones_zone_camera_start",
            "zone",
            "camera_id",
            "start_us",
            "event_id",
            "label",
        ),
        Index("ix_event_zones_zone_start", "zone", "start_us", "event_id"),
        Index("ix_event_zones_zone_label_start", "zone", "label", "start_us", "event_id"),
    )


class MotionActivityRow(Base):
    """Motion in one second of one camera: fraction of the picture that changed."""

    __tablename__ = "motion_activity"
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id"), primary_key=True)
    second: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    peak: Mapped[float] = mapped_column(Float)
    mean: Mapped[float] = mapped_column(Float)


class WebhookDeadLetter(Base):
    """A webhook delivery that failed for good (retries exhausted, a 4xx answer, or the
    process stopping with it still queued), kept with its exact body so it can be listed
    and replayed (``vigil.events.webhooks.replay_dead_letters``)."""

    __tablename__ = "webhook_dead_letters"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    webhook: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(Text)
    delivery_id: Mapped[str] = mapped_column(String(36))
    event_id: Mapped[str] = mapped_column(String(128))
    event_type: Mapped[str] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str] = mapped_column(Text)
    created_us: Mapped[int] = mapped_column(BigInteger)
    replayed_us: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    __table_args__ = (Index("ix_webhook_dead_letters_created", "created_us"),)


def json_list(value: Any) -> list[Any]:
    """JSON columns come back as lists on both backends; guard against NULL from old rows."""
    return list(value) if value else []
