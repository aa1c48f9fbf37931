"""Retention: per-camera age and size limits plus a global free-space watermark.

Why this shape: Frigate has no size cap and deletes whatever is oldest when the disk is
nearly full; Shinobi users report clean-ups that delete too early. Here every deletion
(1) only ever takes the oldest segments first, (2) never touches a segment that a hold
covers (events, evidence exports, legal holds), and (3) follows the delete ordering of
``docs/architecture.md``: row moved to ``garbage`` (with a retention gap) -> unlink ->
fsync directory -> garbage row dropped, so a crash at any point is finished at start-up.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vigil.config.model import VigilConfig
from vigil.index.models import Segment
from vigil.index.repository import Index, now_us

log = logging.getLogger(__name__)

DiskUsage = Callable[[Path], tuple[int, int]]  # -> (total, free) bytes


def disk_usage(path: Path) -> tuple[int, int]:
    u = shutil.disk_usage(path)
    return u.total, u.free


@dataclass
class RetentionReport:
    deleted: dict[str, int] = field(default_factory=dict)  # camera -> segments deleted
    freed_bytes: int = 0
    blocked: list[str] = field(default_factory=list)  # human-readable reasons nothing could go

    def count(self) -> int:
        return sum(self.deleted.values())


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Retention:
    def __init__(self, config: VigilConfig, index: Index, usage: DiskUsage = disk_usage) -> None:
        self.config = config
        self.index = index
        self.root = index.root
        self.usage = usage

    # -- the three rules ---------------------------------------------------------------------
    def run_once(self, now: int | None = None) -> RetentionReport:
        now = now_us() if now is None else now
        report = RetentionReport()
        self.finish_pending()
        for cam in self.config.cameras:
            policy = self.config.retention_for(cam.name)
            if policy.max_age is not None:
                self._enforce_age(cam.name, now - int(policy.max_age * 1e6), report)
            if policy.max_bytes is not None:
                self._enforce_bytes(cam.name, policy.max_bytes, report)
        self._enforce_watermark(report)
        if report.count():
            log.info("retention deleted %d segments (%d bytes)", report.count(), report.freed_bytes)
        return report

    def required_free(self) -> int:
        total, _ = self.usage(self.root)
        pct = int(total * self.config.storage.min_free_percent / 100)
        return max(self.config.storage.min_free_bytes, pct)

    def _enforce_age(self, camera: str, cutoff_us: int, report: RetentionReport) -> None:
        while True:
            batch = [
                s for s in self.index.deletion_candidates(camera, 200) if s.end_us <= cutoff_us
            ]
            if not batch:
                return
            self._delete(camera, batch, "max_age", report)

    def _enforce_bytes(self, camera: str, max_bytes: int, report: RetentionReport) -> None:
        used = self.index.usage().get(camera, (0, 0))[1]
        while used > max_bytes:
            cands = self.index.deletion_candidates(camera, 50)
            if not cands:
                report.blocked.append(
                    f"{camera}: over max_bytes ({used} > {max_bytes}) but every remaining "
                    "segment is held"
                )
                return
            chosen = []
            for s in cands:
                if used <= max_bytes:
                    break
                chosen.append(s)
                used -= s.bytes
            self._delete(camera, chosen, "max_bytes", report)

    def _enforce_watermark(self, report: RetentionReport) -> None:
        need = self.required_free()
        for _ in range(10_000):  # bounded: each turn deletes at least one segment
            _, free = self.usage(self.root)
            if free >= need:
                return
            # The globally oldest unheld segment goes first, whichever camera it belongs to.
            oldest: tuple[str, Segment] | None = None
            for cam in self.index.camera_names():
                cands = self.index.deletion_candidates(cam, 1)
                if cands and (oldest is None or cands[0].start_us < oldest[1].start_us):
                    oldest = (cam, cands[0])
            if oldest is None:
                report.blocked.append(
                    f"free space {free} bytes is below the watermark {need} and nothing "
                    "unheld is left to delete"
                )
                log.error("storage full: nothing unheld left to delete (free=%d)", free)
                return
            self._delete(oldest[0], [oldest[1]], "min_free", report)

    # -- delete ordering ----------------------------------------------------------------------
    def _delete(
        self, camera: str, segments: list[Segment], reason: str, report: RetentionReport
    ) -> None:
        pending = self.index.begin_delete([s.id for s in segments], reason)
        self._unlink(pending)
        report.deleted[camera] = report.deleted.get(camera, 0) + len(pending)
        report.freed_bytes += sum(s.bytes for s in segments)

    def _unlink(self, pending: list[tuple[int, str]]) -> None:
        dirs: set[Path] = set()
        done: list[int] = []
        for gid, rel in pending:
            try:
                path = self.index.abspath(rel)
            except ValueError:
                log.error("refusing to delete path outside storage: %r", rel)
                continue
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.error("cannot delete %s: %s (will retry)", rel, exc)
                continue
            dirs.add(path.parent)
            done.append(gid)
        for d in dirs:
            if d.exists():
                fsync_dir(d)
        self.index.finish_delete(done)

    def finish_pending(self) -> None:
        """Finish deletions a crash interrupted (rows already in `garbage`)."""
        pending = self.index.garbage()
        if pending:
            log.info("finishing %d interrupted deletions", len(pending))
            self._unlink(pending)
