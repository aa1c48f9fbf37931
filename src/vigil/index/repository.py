"""All reads and writes of the index go through here, so the API, the CLI and the recorder
share one set of queries and one place where write ordering is enforced."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, cast

from sqlalchemy import Table, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from vigil.index.db import Database
from vigil.index.models import Camera, CameraStatus, Gap, Garbage, Hold, Segment
from vigil.record.types import GapInfo, SegmentInfo

# Called inside the transaction that inserts a segment, before commit (the evidence hash
# chain uses it so that a segment and its chain link are committed atomically).
SegmentHook = Callable[[Session, Segment], None]


def now_us() -> int:
    return time.time_ns() // 1000


_T = TypeVar("_T")


def retry_locked(fn: Callable[[], _T], attempts: int = 8, first_delay: float = 0.05) -> _T:
    """Run a write transaction, retrying when SQLite reports the database locked.

    SQLite's busy timeout does not help a transaction that read first and then wants to
    write while another connection writes (it fails at once to avoid a deadlock); with a
    hundred cameras cutting segments in the same second that happens. The transaction is
    rolled back on failure, so running it again is safe.
    """
    delay = first_delay
    for attempt in range(attempts):
        try:
            return fn()
        except OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if attempt == attempts - 1:
                raise
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class StatusRow:
    camera: str
    state: str
    recording: str
    detail: str
    fps: float
    bitrate: float
    last_packet_us: int | None
    reconnects: int
    codec: str
    width: int
    height: int
    since_us: int | None
    updated_us: int


def _same_keys(rows: list[dict[str, object]]) -> list[list[dict[str, object]]]:
    """Split parameter sets into groups with identical keys (an executemany needs that)."""
    groups: dict[tuple[str, ...], list[dict[str, object]]] = {}
    for row in rows:
        groups.setdefault(tuple(row), []).append(row)
    return list(groups.values())


class Index:
    """The segment index for one storage root. Thread-safe (one short session per call)."""

    def __init__(self, db: Database, storage_root: Path) -> None:
        self.db = db
        self.root = storage_root.resolve()
        self._camera_ids: dict[str, int] = {}
        self._lock = threading.Lock()
        self.segment_hooks: list[SegmentHook] = []
        # Called inside the transaction that removes segments (signed tombstones).
        self.delete_hooks: list[Callable[[Session, list[Segment]], None]] = []

    # -- cameras ---------------------------------------------------------------------------
    def camera_id(self, name: str) -> int:
        with self._lock:
            cid = self._camera_ids.get(name)
            if cid is not None:
                return cid
            with self.db.session() as s:
                row = s.scalar(select(Camera).where(Camera.name == name))
                if row is None:
                    row = Camera(name=name, created_us=now_us())
                    s.add(row)
                    s.commit()
                self._camera_ids[name] = row.id
                return row.id

    def camera_names(self) -> list[str]:
        with self.db.session() as s:
            return list(s.scalars(select(Camera.name).order_by(Camera.name)))

    def relpath(self, path: Path) -> str:
        """Paths are stored relative to the storage root so a disk can be moved or mounted
        elsewhere; refuses anything outside the root."""
        rel = path.resolve().relative_to(self.root)
        return rel.as_posix()

    def abspath(self, rel: str) -> Path:
        p = (self.root / rel).resolve()
        p.relative_to(self.root)  # raises ValueError on traversal
        return p

    # -- SegmentCatalog ----------------------------------------------------------------------
    def segment_closed(self, info: SegmentInfo) -> None:
        cid = self.camera_id(info.camera)
        rel = self.relpath(info.path)
        retry_locked(lambda: self._insert_segment(cid, rel, info))

    def _insert_segment(self, cid: int, rel: str, info: SegmentInfo) -> None:
        with self.db.session() as s:
            if s.scalar(select(Segment.id).where(Segment.path == rel)) is not None:
                return  # idempotent: recovery may report a file twice after a crash
            row = Segment(
                camera_id=cid,
                path=rel,
                start_us=info.start_us,
                end_us=info.end_us,
                duration_us=info.duration_us,
                bytes=info.bytes,
                packets=info.packets,
                video_codec=info.video_codec,
                width=info.width,
                height=info.height,
                audio_codec=info.audio_codec,
                sha256=info.sha256,
                recovered=info.recovered,
                created_us=now_us(),
            )
            s.add(row)
            s.flush()
            for hook in self.segment_hooks:
                hook(s, row)
            s.commit()

    def gap(self, info: GapInfo) -> None:
        if info.end_us <= info.start_us:
            return
        cid = self.camera_id(info.camera)

        def insert() -> None:
            with self.db.session() as s:
                s.add(
                    Gap(
                        camera_id=cid,
                        start_us=info.start_us,
                        end_us=info.end_us,
                        reason=info.reason,
                        detail=info.detail,
                    )
                )
                s.commit()

        retry_locked(insert)

    # -- queries -------------------------------------------------------------------------------
    def segments(
        self,
        camera: str | None = None,
        start_us: int | None = None,
        end_us: int | None = None,
        limit: int | None = None,
    ) -> list[tuple[str, Segment]]:
        """Segments overlapping [start_us, end_us), oldest first, with camera names."""
        q = select(Camera.name, Segment).join(Camera, Camera.id == Segment.camera_id)
        if camera is not None:
            q = q.where(Camera.name == camera)
        if start_us is not None:
            q = q.where(Segment.end_us > start_us)
        if end_us is not None:
            q = q.where(Segment.start_us < end_us)
        q = q.order_by(Segment.start_us, Segment.id)
        if limit is not None:
            q = q.limit(limit)
        with self.db.session() as s:
            return [(name, seg) for name, seg in s.execute(q).all()]

    def gaps(
        self, camera: str | None = None, start_us: int | None = None, end_us: int | None = None
    ) -> list[tuple[str, Gap]]:
        q = select(Camera.name, Gap).join(Camera, Camera.id == Gap.camera_id)
        if camera is not None:
            q = q.where(Camera.name == camera)
        if start_us is not None:
            q = q.where(Gap.end_us > start_us)
        if end_us is not None:
            q = q.where(Gap.start_us < end_us)
        with self.db.session() as s:
            return [(n, g) for n, g in s.execute(q.order_by(Gap.start_us)).all()]

    def usage(self) -> dict[str, tuple[int, int]]:
        """camera -> (segment count, bytes)."""
        q = (
            select(Camera.name, func.count(Segment.id), func.coalesce(func.sum(Segment.bytes), 0))
            .join(Segment, Segment.camera_id == Camera.id)
            .group_by(Camera.name)
        )
        with self.db.session() as s:
            return {n: (int(c), int(b)) for n, c, b in s.execute(q).all()}

    def known_paths(self) -> set[str]:
        with self.db.session() as s:
            return set(s.scalars(select(Segment.path)))

    # -- holds -----------------------------------------------------------------------------------
    def add_hold(
        self,
        camera: str,
        start_us: int,
        end_us: int,
        kind: str,
        reference: str = "",
        reason: str = "",
        expires_us: int | None = None,
    ) -> int:
        cid = self.camera_id(camera)
        with self.db.session() as s:
            h = Hold(
                camera_id=cid,
                start_us=start_us,
                end_us=end_us,
                kind=kind,
                reference=reference,
                reason=reason,
                created_us=now_us(),
                expires_us=expires_us,
            )
            s.add(h)
            s.commit()
            return h.id

    def remove_hold(self, hold_id: int) -> None:
        with self.db.session() as s:
            s.execute(delete(Hold).where(Hold.id == hold_id))
            s.commit()

    def held(self, camera_id: int, start_us: int, end_us: int, at_us: int) -> bool:
        with self.db.session() as s:
            return self._held(s, camera_id, start_us, end_us, at_us)

    @staticmethod
    def _held(s: Session, camera_id: int, start_us: int, end_us: int, at_us: int) -> bool:
        q = select(Hold.id).where(
            Hold.camera_id == camera_id,
            Hold.start_us < end_us,
            Hold.end_us > start_us,
            (Hold.expires_us.is_(None)) | (Hold.expires_us > at_us),
        )
        return s.scalar(q.limit(1)) is not None

    # -- deletion (retention) --------------------------------------------------------------------
    def deletion_candidates(self, camera: str, limit: int = 100) -> list[Segment]:
        """Oldest segments of a camera that no live hold covers."""
        cid = self.camera_id(camera)
        at = now_us()
        out: list[Segment] = []
        with self.db.session() as s:
            q = (
                select(Segment)
                .where(Segment.camera_id == cid)
                .order_by(Segment.start_us, Segment.id)
                .limit(limit * 4)
            )
            for seg in s.scalars(q):
                if not self._held(s, cid, seg.start_us, seg.end_us, at):
                    out.append(seg)
                    if len(out) >= limit:
                        break
        return out

    def begin_delete(self, segment_ids: Iterable[int], reason: str) -> list[tuple[int, str]]:
        """Step 1 of delete ordering: move rows to `garbage` and record the lost range as a
        retention gap, atomically. Returns (garbage id, relative path) to unlink next."""
        ids = list(segment_ids)
        if not ids:
            return []
        out: list[tuple[int, str]] = []
        with self.db.session() as s:
            segs = list(s.scalars(select(Segment).where(Segment.id.in_(ids))))
            for seg in segs:
                g = Garbage(
                    path=seg.path, camera_id=seg.camera_id, reason=reason, created_us=now_us()
                )
                s.add(g)
                s.add(
                    Gap(
                        camera_id=seg.camera_id,
                        start_us=seg.start_us,
                        end_us=seg.end_us,
                        reason="retention",
                        detail=reason,
                    )
                )
                s.flush()
                out.append((g.id, seg.path))
            for hook in self.delete_hooks:
                hook(s, segs)
            s.execute(delete(Segment).where(Segment.id.in_([seg.id for seg in segs])))
            s.commit()
        return out

    def garbage(self) -> list[tuple[int, str]]:
        with self.db.session() as s:
            return [(g.id, g.path) for g in s.scalars(select(Garbage))]

    def finish_delete(self, garbage_ids: Iterable[int]) -> None:
        """Last step of delete ordering, after unlink and directory fsync."""
        ids = list(garbage_ids)
        if not ids:
            return
        with self.db.session() as s:
            s.execute(delete(Garbage).where(Garbage.id.in_(ids)))
            s.commit()

    # -- health ---------------------------------------------------------------------------------
    def write_status(self, camera: str, **fields: object) -> None:
        self.write_statuses({camera: fields})

    def write_statuses(self, rows: dict[str, dict[str, object]]) -> None:
        """Health of several cameras in one transaction (one commit, not one per camera)."""
        ids = {camera: self.camera_id(camera) for camera in rows}
        stamp = now_us()

        def write() -> None:
            # Core statements, not ORM ones: this runs every few seconds for every camera,
            # and the ORM's per-statement synchronisation was a visible share of the
            # recorder's CPU at 25+ cameras (bench/record.py). One executemany updates all
            # known rows; rows of new cameras are inserted.
            table = cast(Table, CameraStatus.__table__)
            with self.db.session() as s:
                existing = set(
                    s.scalars(
                        select(CameraStatus.camera_id).where(
                            CameraStatus.camera_id.in_(list(ids.values()))
                        )
                    )
                )
                updates: list[dict[str, object]] = []
                inserts: list[dict[str, object]] = []
                for camera, fields in rows.items():
                    cid = ids[camera]
                    values = {**fields, "updated_us": stamp}
                    if cid in existing:
                        updates.append({"b_camera_id": cid, **values})
                    else:
                        inserts.append({"camera_id": cid, **values})
                conn = s.connection()
                # rows with the same keys share one executemany (callers pass one shape)
                for group in _same_keys(updates):
                    cols = [k for k in group[0] if k != "b_camera_id"]
                    stmt = (
                        update(table)
                        .where(table.c.camera_id == bindparam("b_camera_id"))
                        .values({k: bindparam(k) for k in cols})
                    )
                    conn.execute(stmt, group)
                for group in _same_keys(inserts):
                    conn.execute(insert(table), group)
                s.commit()

        retry_locked(write)

    def statuses(self) -> list[StatusRow]:
        q = select(Camera.name, CameraStatus).join(
            CameraStatus, CameraStatus.camera_id == Camera.id
        )
        with self.db.session() as s:
            return [
                StatusRow(
                    camera=n,
                    state=st.state,
                    recording=st.recording,
                    detail=st.detail,
                    fps=st.fps,
                    bitrate=st.bitrate,
                    last_packet_us=st.last_packet_us,
                    reconnects=st.reconnects,
                    codec=st.codec,
                    width=st.width,
                    height=st.height,
                    since_us=st.since_us,
                    updated_us=st.updated_us,
                )
                for n, st in s.execute(q.order_by(Camera.name)).all()
            ]
