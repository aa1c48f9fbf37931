"""The event store: object events and motion activity in the index database.

Why it is shaped this way:

* **The database is the state.** ``apply`` upserts an event from each analytics change
  (start/update/end) in one transaction, so a restart loses nothing that was acknowledged,
  and events still open at a crash are found and closed by :meth:`EventStore.close_dangling`.
* **Footage around an event is protected.** On the first sight of an event a row in
  ``holds`` (kind ``event``, reference = event id) covers ``[start - pre_roll, max(start,
  now) + open_hold]``, pushed forward on every update so a long event stays covered; when
  the event ends the hold is set to ``[start - pre_roll, end + post_roll]``. Holds expire
  ``retention`` after the event ends, after which ordinary retention may delete the
  footage. The hold is written in the same transaction as the
  event row, so there is never an event without its hold or a hold without its event.
* **Snapshots are files, not blobs**, at ``<root>/<camera>/events/<YYYY>/<MM>/<DD>/<event
  id>.jpg`` (UTC date of the event start), written to a temporary name, fsynced and renamed
  so a crash never leaves a truncated JPEG under the final name.
* **Search is keyset-paginated** on ``(start_us, id)`` newest first: a cursor names the
  last row seen, so inserts while a client pages never shift, duplicate or skip rows the way
  OFFSET pagination would.

Events are idempotent by id: a replayed start is an update, an event that is already ended
ignores later changes (returns None), and an update or end for an unknown id creates the
event (its start may have been dropped under load).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import logging
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Row,
    Select,
    bindparam,
    delete,
    or_,
    select,
    tuple_,
    union,
    union_all,
    update,
)
from sqlalchemy.orm import Session

from vigil.config.events_model import EventsConfig
from vigil.events.types import (
    ActivityLike,
    ActivityRow,
    ChangeType,
    EventChange,
    EventLike,
    EventRecord,
    Page,
    s_to_us,
)
from vigil.index.events_models import EventRow, EventZone, MotionActivityRow, json_list
from vigil.index.models import Camera, Hold
from vigil.index.repository import Index, now_us
from vigil.record.paths import ensure_under, fsync_dir, make_dirs

log = logging.getLogger(__name__)

# Event ids become file names and topic payloads: keep them to a safe alphabet.
EVENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
HOLD_KIND = "event"
MAX_PAGE = 1000
# Most SELECTs one search unions (cameras x labels asked for); see search_query.
MAX_BRANCHES = 32
EVENTS = EventRow.__table__


def check_event_id(event_id: str) -> str:
    if not EVENT_ID_RE.match(event_id) or ".." in event_id:
        raise ValueError(f"invalid event id {event_id!r}")
    return event_id


def encode_cursor(start_us: int, event_id: str) -> str:
    raw = json.dumps([start_us, event_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    """Inverse of :func:`encode_cursor`; ValueError for anything a client made up."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        start_us, event_id = json.loads(raw)
    except (ValueError, TypeError) as exc:
        raise ValueError("invalid cursor") from exc
    if not isinstance(start_us, int) or not isinstance(event_id, str):
        raise ValueError("invalid cursor")
    return start_us, event_id


def _names(value: str | Sequence[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _record(row: EventRow | Row[Any], camera: str) -> EventRecord:
    box = row.snapshot_box
    return EventRecord(
        id=row.id,
        camera=camera,
        label=row.label,
        track_id=row.track_id,
        start_us=row.start_us,
        end_us=row.end_us,
        max_score=row.max_score,
        zones=tuple(json_list(row.zones)),
        lines=tuple((str(a), str(b)) for a, b in json_list(row.lines)),
        snapshot=row.snapshot,
        snapshot_us=row.snapshot_us,
        snapshot_box=tuple(float(x) for x in box) if box else None,
        stationary=row.stationary,
        end_reason=row.end_reason,
        created_us=row.created_us,
        updated_us=row.updated_us,
    )


def search_query(
    camera_ids: Sequence[int] | None,
    labels: Sequence[str] | None,
    zones: Sequence[str] | None,
    start_us: int | None,
    end_us: int | None,
    after: tuple[int, str] | None,
    ongoing: bool | None,
    limit: int,
) -> tuple[Select[Any], dict[str, Any]]:
    """The SELECT of :meth:`EventStore.search` and its parameters: at most ``limit`` events
    newest first, from ``events`` alone, or for a zone filter from the zone's rows of
    ``event_zones`` joined to ``events`` (see :func:`_zone_statement`).
    bench/web.py checks that its raw-SQL baseline is this SQL.

    Several cameras (or labels) become one ordered, limited SELECT per camera (and label)
    under a UNION ALL rather than ``camera_id IN (...)``: no database reads an index of
    ``(camera_id, start_us)`` in time order across several cameras, so with an IN list
    SQLite without statistics collects and sorts every event of those cameras (0.26 s for
    two labels, 0.4 s for three cameras over 1M events). Each SELECT of the union walks
    its index in order and stops after ``limit`` rows, so a page reads at most branches x
    ``limit`` rows whatever the statistics. Past :data:`MAX_BRANCHES` (a user with more
    than 32 cameras) cameras are an IN filter on the ``start_us`` index walk instead, and
    labels an IN filter.
    """
    cams = list(dict.fromkeys(camera_ids)) if camera_ids is not None else None
    labs = list(dict.fromkeys(labels)) if labels is not None else None
    params: dict[str, Any] = {"limit": limit}
    for key, vals in (("camera", cams), ("label", labs)):
        if vals is not None:
            params[key + "s"] = vals
            params.update({f"{key}_{k}": v for k, v in enumerate(vals)})
    params.update(start_us=start_us, end_us=end_us)
    if after is not None:
        params.update(after_start=after[0], after_id=after[1])
    if zones is not None:
        zs = list(dict.fromkeys(zones))
        params["zones"] = zs
        params.update({f"zone_{k}": v for k, v in enumerate(zs)})
    build = _zone_statement if zones is not None else _search_statement
    stmt = build(
        None if cams is None else len(cams),
        None if labs is None else len(labs),
        len(params["zones"]) if zones is not None else 0,
        start_us is not None,
        end_us is not None,
        after is not None,
        ongoing,
    )
    return stmt, params


@functools.lru_cache(maxsize=256)
def _search_statement(
    n_cameras: int | None,
    n_labels: int | None,
    _n_zones: int,
    start: bool,
    end: bool,
    after: bool,
    ongoing: bool | None,
) -> Select[Any]:
    """The statement for one shape of search without a zone filter, with every value a
    bound parameter: built once, as a union of a few SELECTs takes SQLAlchemy longer to
    build than SQLite to run (1.4 ms for three cameras, 12 ms for 32 branches, against
    0.3-0.6 ms to run)."""
    ev = EVENTS
    q = select(ev)
    if end:
        q = q.where(ev.c.start_us < bindparam("end_us"))
    if start:
        q = q.where(or_(ev.c.end_us.is_(None), ev.c.end_us >= bindparam("start_us")))
    if ongoing is not None:
        q = q.where(ev.c.end_us.is_(None) if ongoing else ev.c.end_us.is_not(None))
    if after:
        # A row-value comparison, which SQLite (>= 3.15) and PostgreSQL both turn into one
        # range scan of the (start_us, id) index; the equivalent OR of two terms became a
        # multi-index OR plus a sort (bench/web.py: 0.3-0.7 s vs ~1 ms).
        row = tuple_(
            bindparam("after_start", type_=ev.c.start_us.type),
            bindparam("after_id", type_=ev.c.id.type),
        )
        q = q.where(tuple_(ev.c.start_us, ev.c.id) < row)
    branches: list[list[ColumnElement[bool]]] = [[]]
    for key, col, n in (("camera", ev.c.camera_id, n_cameras), ("label", ev.c.label, n_labels)):
        if n is None:
            continue
        if n == 1:
            q = q.where(col == bindparam(f"{key}_0"))
        elif len(branches) * n <= MAX_BRANCHES:
            branches = [[*b, col == bindparam(f"{key}_{k}")] for b in branches for k in range(n)]
        elif key == "camera":
            # "+ 0" keeps the planner off the camera index (it would sort every event of
            # these cameras) and on the start_us index, read in order until a page is full
            q = q.where((col + 0).in_(bindparam("cameras", expanding=True)))
        else:
            q = q.where(col.in_(bindparam("labels", expanding=True)))
    if len(branches) == 1:
        return _newest(q)
    parts = [_newest(q.where(*b)).subquery() for b in branches]
    return _newest(select(union_all(*(select(p) for p in parts)).subquery()))


@functools.lru_cache(maxsize=256)
def _zone_statement(
    n_cameras: int | None,
    n_labels: int | None,
    n_zones: int,
    start: bool,
    end: bool,
    after: bool,
    ongoing: bool | None,
) -> Select[Any]:
    """The statement for one shape of zone search: driven from ``event_zones``, whose rows
    carry their event's camera, label and start, so each zone (and camera, or label) is one
    walk of an ``ix_event_zones_zone_*`` index newest first, joined to ``events`` by
    primary key for the other filters, stopping after a page. Driven from ``events``
    instead (an EXISTS per event walked in time order), a zone that no event of the
    cameras searched entered read every event: 0.6-2.7 s over 1M events.

    The time order, the ``end`` bound, the cursor, the camera and the label are all on the
    zone row's copies, equal to the event's; only ``start`` and ``ongoing`` (the event's
    end) are read from ``events``. The label is a walk of its own
    (``ix_event_zones_zone_label_start``) when no camera is asked for: filtering the zone's
    rows by a label that 4 % of them carry read 1,200 rows per page, 46 ms p99 on
    PostgreSQL. With cameras it filters entries of ``ix_event_zones_zone_camera_start``,
    whose last column it is. Several zones become one SELECT per zone (and camera or label)
    of ``(start_us, event_id)`` under a UNION, which also drops the duplicate of an event
    that entered two of them, then joined to ``events``."""
    ev, ez = EVENTS, EventZone.__table__
    frm = ez.join(ev, ev.c.id == ez.c.event_id)
    conds: list[ColumnElement[bool]] = []
    if end:
        conds.append(ez.c.start_us < bindparam("end_us"))
    if start:
        conds.append(or_(ev.c.end_us.is_(None), ev.c.end_us >= bindparam("start_us")))
    if ongoing is not None:
        conds.append(ev.c.end_us.is_(None) if ongoing else ev.c.end_us.is_not(None))
    if after:
        row = tuple_(
            bindparam("after_start", type_=ez.c.start_us.type),
            bindparam("after_id", type_=ez.c.event_id.type),
        )
        conds.append(tuple_(ez.c.start_us, ez.c.event_id) < row)
    branches: list[list[ColumnElement[bool]]] = [[]]
    if 1 <= n_zones <= MAX_BRANCHES:
        branches = [[ez.c.zone == bindparam(f"zone_{k}")] for k in range(n_zones)]
    else:  # no zone (matches nothing) or very many: an IN list, sorted
        conds.append(ez.c.zone.in_(bindparam("zones", expanding=True)))
    if n_cameras is not None:
        if n_cameras == 1:
            conds.append(ez.c.camera_id == bindparam("camera_0"))
        elif len(branches) * n_cameras <= MAX_BRANCHES:
            branches = [
                [*b, ez.c.camera_id == bindparam(f"camera_{k}")]
                for b in branches
                for k in range(n_cameras)
            ]
        else:
            # "+ 0" keeps the planner on the (zone, start_us) walk, not on sorting every
            # row of these cameras read from the (zone, camera_id, ...) index
            conds.append((ez.c.camera_id + 0).in_(bindparam("cameras", expanding=True)))
    if n_labels is not None:
        if n_labels == 1:
            conds.append(ez.c.label == bindparam("label_0"))
        elif n_cameras is None and len(branches) * n_labels <= MAX_BRANCHES:
            branches = [
                [*b, ez.c.label == bindparam(f"label_{k}")]
                for b in branches
                for k in range(n_labels)
            ]
        else:
            conds.append(ez.c.label.in_(bindparam("labels", expanding=True)))
    order = (ez.c.start_us.desc(), ez.c.event_id.desc())
    lim = bindparam("limit", type_=Integer)
    if len(branches) == 1 and 1 <= n_zones <= MAX_BRANCHES:  # one zone: no duplicates
        return select(ev).select_from(frm).where(*conds, *branches[0]).order_by(*order).limit(lim)
    keys = select(ez.c.start_us, ez.c.event_id).select_from(frm).where(*conds)
    if len(branches) == 1:
        ids = keys.distinct().order_by(*order).limit(lim).subquery()
    else:
        parts = [keys.where(*b).order_by(*order).limit(lim).subquery() for b in branches]
        ids = union(*(select(p) for p in parts)).subquery()
    return (
        select(ev)
        .join(ids, ev.c.id == ids.c.event_id)
        .order_by(ids.c.start_us.desc(), ids.c.event_id.desc())
        .limit(lim)
    )


def _newest(q: Select[Any]) -> Select[Any]:
    """``q`` newest first by (start_us, id), at most the ``limit`` parameter's rows."""
    cols = q.selected_columns
    return q.order_by(cols.start_us.desc(), cols.id.desc()).limit(bindparam("limit", type_=Integer))


class EventStore:
    """Events and motion activity of one storage root. Thread-safe; every call is one short
    transaction (writes are serialized by a lock, as SQLite serializes them anyway)."""

    def __init__(
        self,
        index: Index,
        *,
        pre_roll: float = 5.0,
        post_roll: float = 5.0,
        retention: float = 30 * 86400.0,
        open_hold: float = 3600.0,
        snapshots: bool = True,
    ) -> None:
        self.index = index
        self.db = index.db
        self.root = index.root
        self.pre_roll_us = s_to_us(pre_roll)
        self.post_roll_us = s_to_us(post_roll)
        self.retention_us = s_to_us(retention)
        self.open_hold_us = s_to_us(open_hold)
        self.snapshots = snapshots
        self._lock = threading.Lock()
        self._cameras_lock = threading.Lock()
        self._camera_names: dict[int, str] = {}

    @classmethod
    def from_config(cls, index: Index, cfg: EventsConfig) -> EventStore:
        return cls(
            index,
            pre_roll=cfg.pre_roll,
            post_roll=cfg.post_roll,
            retention=cfg.retention,
            open_hold=cfg.open_hold,
            snapshots=cfg.snapshots,
        )

    # -- writes ----------------------------------------------------------------------------
    def apply(self, ev: EventLike) -> EventChange | None:
        """Upsert one analytics change; returns what changed, or None if the event had
        already ended (a duplicate or late message)."""
        check_event_id(ev.event_id)
        if ev.kind not in ("start", "update", "end"):
            raise ValueError(f"unknown event kind {ev.kind!r}")
        cid = self.index.camera_id(ev.camera)
        start_us = s_to_us(ev.start_time)
        end_us: int | None = None
        if ev.kind == "end":
            end_us = s_to_us(ev.end_time) if ev.end_time is not None else start_us
            end_us = max(end_us, start_us)
        now = now_us()
        with self._lock, self.db.session() as s:
            row = s.get(EventRow, ev.event_id)
            before = _record(row, ev.camera) if row is not None else None
            if row is not None and row.camera_id != cid:
                raise ValueError(f"event id {ev.event_id!r} belongs to another camera")
            if before is not None and before.end_us is not None:
                return None
            if row is None:
                row = EventRow(
                    id=ev.event_id,
                    camera_id=cid,
                    start_us=start_us,
                    zones=[],
                    lines=[],
                    max_score=0.0,
                    created_us=now,
                )
                s.add(row)
            else:
                row.start_us = min(row.start_us, start_us)
            if before is not None and row.label != ev.label:
                # zone rows carry the event's label for zone searches: keep them equal
                s.execute(
                    update(EventZone)
                    .where(EventZone.event_id == ev.event_id)
                    .values(label=ev.label)
                )
            row.label = ev.label
            row.track_id = int(ev.track_id)
            row.max_score = max(row.max_score, float(ev.max_score))
            zones = json_list(row.zones)
            new_zones = [z for z in dict.fromkeys(ev.zones) if z not in zones]
            row.zones = zones + new_zones
            if before is not None and row.start_us < before.start_us:
                # zone rows carry the event's start for zone searches: keep them equal
                s.execute(
                    update(EventZone)
                    .where(EventZone.event_id == ev.event_id)
                    .values(start_us=row.start_us)
                )
            for z in new_zones:
                s.add(
                    EventZone(
                        event_id=ev.event_id,
                        zone=z,
                        camera_id=cid,
                        label=row.label,
                        start_us=row.start_us,
                    )
                )
            lines = [[str(a), str(b)] for a, b in ev.lines_crossed]
            if len(lines) >= len(json_list(row.lines)):  # the event carries all crossings
                row.lines = lines
            row.stationary = bool(ev.stationary)
            row.end_us = end_us
            row.end_reason = ev.end_reason if end_us is not None else None
            row.updated_us = now
            self._maybe_snapshot(row, ev)
            self._hold(s, row, cid, now)
            s.commit()
            after = _record(row, ev.camera)
        ctype: ChangeType = "end" if end_us is not None else ("new" if before is None else "update")
        return EventChange(
            type=ctype,
            before=before,
            after=after,
            box=tuple(float(x) for x in ev.box),
            current_zones=tuple(ev.current_zones),
        )

    def _hold(self, s: Session, row: EventRow, camera_id: int, now: int) -> None:
        start = row.start_us - self.pre_roll_us
        if row.end_us is None:
            # The end is unknown: hold open_hold past the latest sign of life (this write).
            end = max(row.start_us, now) + max(self.open_hold_us, self.post_roll_us)
            expires = end + self.retention_us
        else:
            end = row.end_us + self.post_roll_us
            expires = row.end_us + self.retention_us
        if row.hold_id is not None:
            found = s.execute(
                update(Hold)
                .where(Hold.id == row.hold_id)
                .values(start_us=start, end_us=end, expires_us=expires)
            )
            if getattr(found, "rowcount", 1):
                return
        hold = Hold(
            camera_id=camera_id,
            start_us=start,
            end_us=end,
            kind=HOLD_KIND,
            reference=row.id,
            reason=f"{row.label} event",
            created_us=now_us(),
            expires_us=expires,
        )
        s.add(hold)
        s.flush()
        row.hold_id = hold.id

    def _maybe_snapshot(self, row: EventRow, ev: EventLike) -> None:
        if not self.snapshots or not ev.snapshot_jpeg:
            return
        snap_us = s_to_us(ev.snapshot_time) if ev.snapshot_time is not None else None
        if row.snapshot is not None and snap_us is not None and snap_us == row.snapshot_us:
            return  # same best frame as already stored: don't rewrite the file
        try:
            path = self.snapshot_file(ev.camera, row.id, row.start_us)
            write_atomic(self.root, path, ev.snapshot_jpeg)
        except OSError as exc:  # a full disk must not lose the event itself
            log.warning("cannot write snapshot of event %s: %s", row.id, exc)
            return
        row.snapshot = self.index.relpath(path)
        row.snapshot_us = snap_us
        row.snapshot_box = (
            [float(x) for x in ev.snapshot_box] if ev.snapshot_box is not None else None
        )

    def snapshot_file(self, camera: str, event_id: str, start_us: int) -> Path:
        """``<root>/<camera>/events/<YYYY>/<MM>/<DD>/<event_id>.jpg`` (UTC date of start)."""
        check_event_id(event_id)
        day = datetime.fromtimestamp(start_us / 1_000_000, tz=UTC)
        path = (
            self.root
            / camera
            / "events"
            / f"{day.year:04d}"
            / f"{day.month:02d}"
            / f"{day.day:02d}"
            / f"{event_id}.jpg"
        )
        ensure_under(self.root, path)
        return path

    def snapshot_path(self, record: EventRecord) -> Path | None:
        """Absolute path of an event's snapshot (None if it has none)."""
        return self.index.abspath(record.snapshot) if record.snapshot else None

    def close_dangling(self, now: int | None = None) -> list[EventRecord]:
        """Close events left open by a crash; call once at start-up, before analytics runs.

        The end is the last time the event was written (``updated_us``), clamped to
        ``[start, now]``: the process died some time after that, but nothing is known about
        the object past it, and using ``now`` would stretch events over the whole outage.
        The end reason is ``interrupted`` and the hold is trimmed as for a normal end.
        """
        at = now if now is not None else now_us()
        closed: list[EventRecord] = []
        with self._lock, self.db.session() as s:
            q = (
                select(EventRow, Camera.name)
                .join(Camera, Camera.id == EventRow.camera_id)
                .where(EventRow.end_us.is_(None))
            )
            for row, camera in s.execute(q).all():
                row.end_us = max(row.start_us, min(at, row.updated_us))
                row.end_reason = "interrupted"
                row.updated_us = at
                self._hold(s, row, row.camera_id, at)
                closed.append(_record(row, camera))
            s.commit()
        if closed:
            log.info("closed %d event(s) left open by an unclean stop", len(closed))
        return closed

    def add_activity(self, act: ActivityLike) -> None:
        """Record one second of motion activity (a repeated second is overwritten)."""
        cid = self.index.camera_id(act.camera)
        with self._lock, self.db.session() as s:
            row = s.get(MotionActivityRow, (cid, int(act.second)))
            if row is None:
                s.add(
                    MotionActivityRow(
                        camera_id=cid, second=int(act.second), peak=act.peak, mean=act.mean
                    )
                )
            else:
                row.peak, row.mean = act.peak, act.mean
            s.commit()

    def purge(self, now: int | None = None) -> int:
        """Delete events (rows, zones, snapshot files, holds) that ended more than
        ``retention`` ago, and motion activity older than that; returns events deleted."""
        at = now if now is not None else now_us()
        cutoff = at - self.retention_us
        with self._lock, self.db.session() as s:
            rows = list(
                s.scalars(
                    select(EventRow).where(EventRow.end_us.is_not(None), EventRow.end_us < cutoff)
                )
            )
            ids = [r.id for r in rows]
            for r in rows:
                if r.snapshot:
                    with contextlib.suppress(OSError, ValueError):
                        self.index.abspath(r.snapshot).unlink(missing_ok=True)
            if ids:
                s.execute(delete(EventZone).where(EventZone.event_id.in_(ids)))
                holds = [r.hold_id for r in rows if r.hold_id is not None]
                if holds:
                    s.execute(delete(Hold).where(Hold.id.in_(holds), Hold.kind == HOLD_KIND))
                s.execute(delete(EventRow).where(EventRow.id.in_(ids)))
            s.execute(delete(MotionActivityRow).where(MotionActivityRow.second < cutoff // 10**6))
            s.commit()
        return len(ids)

    # -- reads -----------------------------------------------------------------------------
    def get(self, event_id: str) -> EventRecord | None:
        with self.db.session() as s:
            got = s.execute(
                select(EventRow, Camera.name)
                .join(Camera, Camera.id == EventRow.camera_id)
                .where(EventRow.id == event_id)
            ).first()
            return _record(got[0], got[1]) if got is not None else None

    def _cameras(
        self, s: Session, ids: Iterable[int] = (), names: Iterable[str] = ()
    ) -> dict[int, str]:
        """Camera id -> name, from a cache re-read when an id or a name asked for is not in
        it (a camera added since). Rows of ``cameras`` are only ever added
        (``Index.camera_id``), never renamed or deleted, so a cached entry cannot go stale."""
        with self._cameras_lock:
            known = self._camera_names
            if (
                not known
                or any(i not in known for i in ids)
                or not set(names) <= set(known.values())
            ):
                rows = s.execute(select(Camera.id, Camera.name)).all()
                self._camera_names = known = {int(i): str(n) for i, n in rows}
            return known

    def search(
        self,
        camera: str | Sequence[str] | None = None,
        label: str | Sequence[str] | None = None,
        zone: str | Sequence[str] | None = None,
        start_us: int | None = None,
        end_us: int | None = None,
        limit: int = 50,
        cursor: str | None = None,
        ongoing: bool | None = None,
    ) -> Page:
        """Events newest first (by start, then id), filtered by camera(s), label(s), zone(s)
        entered and overlap with ``[start_us, end_us)`` (an ongoing event extends to now).
        ``limit`` is clamped to 1..1000. Pass ``Page.next_cursor`` back to continue.

        The SELECT reads ``events`` alone (a zone filter walks the zone's ``event_zones``
        rows and joins ``events`` by key): cameras are filtered by id and ids are mapped to
        names here. Joined with ``cameras``,
        SQLite 3.40 may drive the query from ``cameras`` when its statistics say so, then
        collect and sort every event of every camera before keeping one page (0.3-1.9 s
        over 1M events in bench/web.py); on ``events`` alone every plan walks an index of
        ``start_us`` in order and stops after one page, with statistics or without.
        """
        limit = max(1, min(int(limit), MAX_PAGE))
        after = decode_cursor(cursor) if cursor is not None else None
        with self.db.session() as s:
            cams = _names(camera)
            camera_ids = None
            if cams is not None:
                wanted = set(cams)
                camera_ids = sorted(
                    i for i, n in self._cameras(s, names=cams).items() if n in wanted
                )
                if not camera_ids:
                    return Page(items=[], next_cursor=None)  # none of these cameras exists
            q, params = search_query(
                camera_ids, _names(label), _names(zone), start_us, end_us, after, ongoing, limit + 1
            )
            rows = s.execute(q, params).all()
            names = self._cameras(s, ids={r.camera_id for r in rows})
        items = [_record(r, names[r.camera_id]) for r in rows[:limit]]
        nxt = None
        if len(rows) > limit:
            last = items[-1]
            nxt = encode_cursor(last.start_us, last.id)
        return Page(items=items, next_cursor=nxt)

    def activity(self, camera: str, start_s: int, end_s: int) -> list[ActivityRow]:
        """Motion activity of ``camera`` for seconds in ``[start_s, end_s)``, in order."""
        q = (
            select(MotionActivityRow)
            .join(Camera, Camera.id == MotionActivityRow.camera_id)
            .where(
                Camera.name == camera,
                MotionActivityRow.second >= start_s,
                MotionActivityRow.second < end_s,
            )
            .order_by(MotionActivityRow.second)
        )
        with self.db.session() as s:
            return [ActivityRow(camera, r.second, r.peak, r.mean) for r in s.scalars(q)]

    def ongoing(self) -> list[EventRecord]:
        """Events not yet ended (the notifier seeds its live counts from this)."""
        return self.search(ongoing=True, limit=MAX_PAGE).items


def write_atomic(root: Path, path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new
    one: temporary file in the same directory, fsync, rename, fsync of the directory."""
    ensure_under(root, path)
    make_dirs(root, path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)
