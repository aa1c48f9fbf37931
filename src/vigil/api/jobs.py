"""Evidence exports as background jobs.

An export re-hashes every source segment and stream-copies the range, which can take
minutes for hours of footage: far too long for one HTTP request. ``POST /api/exports``
queues a job and answers at once with its id; the client polls its status (stage and
progress 0..1 from :func:`vigil.evidence.export.export_evidence`) and downloads the
package when it is done.

Jobs run one or two at a time (exports are disk-bound; more in parallel only thrash).
A finished export is in the ``evidence_exports`` table under the export id that
``export_evidence`` chose, which the job records; the job itself lives in memory (after a
restart, finished exports are still listed from the table; jobs that were running are
gone, and ``export_evidence`` left no half package behind).
"""

from __future__ import annotations

import logging
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import select

from vigil.api.audit import AuditLog
from vigil.evidence.export import export_evidence
from vigil.evidence.keys import KeyStore
from vigil.evidence.report import EvidenceError
from vigil.index.evidence_models import EvidenceExport
from vigil.index.repository import Index, now_us

log = logging.getLogger(__name__)

JobState = Literal["queued", "running", "done", "failed"]


@dataclass(slots=True)
class ExportJob:
    id: str
    camera: str
    start_us: int
    end_us: int
    reason: str
    case_id: str
    requested_by: str
    created_us: int
    state: JobState = "queued"
    stage: str = "queued"
    progress: float = 0.0
    error: str | None = None
    export_id: str | None = None
    path: Path | None = field(default=None, repr=False)
    finished_us: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": "job",
            "camera": self.camera,
            "start_us": self.start_us,
            "end_us": self.end_us,
            "reason": self.reason,
            "case_id": self.case_id,
            "requested_by": self.requested_by,
            "created_us": self.created_us,
            "state": self.state,
            "stage": self.stage,
            "progress": round(self.progress, 4),
            "error": self.error,
            "export_id": self.export_id,
            "finished_us": self.finished_us,
        }


class ExportJobs:
    """Queue and track export jobs (thread-safe)."""

    def __init__(
        self,
        index: Index,
        keys: KeyStore | None,
        audit: AuditLog,
        out_dir: Path,
        *,
        max_range_us: int,
        workers: int = 1,
    ) -> None:
        self.index = index
        self.keys = keys
        self.audit = audit
        self.out_dir = out_dir
        self.max_range_us = max_range_us
        self._jobs: dict[str, ExportJob] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="export")

    def submit(
        self,
        camera: str,
        start_us: int,
        end_us: int,
        reason: str,
        case_id: str,
        requested_by: str,
    ) -> ExportJob:
        if self.keys is None:
            raise EvidenceError("exports need the instance signing key, which is not loaded")
        job = ExportJob(
            id=str(uuid.uuid4()),
            camera=camera,
            start_us=start_us,
            end_us=end_us,
            reason=reason,
            case_id=case_id,
            requested_by=requested_by,
            created_us=now_us(),
        )
        with self._lock:
            self._jobs[job.id] = job
        self._pool.submit(self._run, job)
        return job

    def _run(self, job: ExportJob) -> None:
        assert self.keys is not None

        def progress(stage: str, fraction: float) -> None:
            with self._lock:
                job.stage, job.progress = stage, max(0.0, min(1.0, fraction))

        with self._lock:
            job.state = "running"
        try:
            path = export_evidence(
                self.index,
                self.keys,
                job.camera,
                job.start_us,
                job.end_us,
                job.reason,
                job.case_id,
                job.requested_by,
                self.out_dir,
                progress,
                max_range_us=self.max_range_us,
            )
        except EvidenceError as exc:
            self._finish(job, "failed", error=str(exc))
            return
        except Exception:
            log.exception("export job %s failed", job.id)
            self._finish(job, "failed", error="internal error (see the server log)")
            return
        with self.index.db.session() as s:
            export_id = s.scalar(select(EvidenceExport.id).where(EvidenceExport.path == str(path)))
        self._finish(job, "done", export_id=export_id, path=path)

    def _finish(
        self,
        job: ExportJob,
        state: JobState,
        *,
        error: str | None = None,
        export_id: str | None = None,
        path: Path | None = None,
    ) -> None:
        with self._lock:
            job.state = state
            job.error = error
            job.export_id = export_id
            job.path = path
            job.finished_us = now_us()
            if state == "done":
                job.stage, job.progress = "done", 1.0
        try:
            self.audit.append(
                "export.finish",
                actor=job.requested_by,
                actor_kind="system",
                outcome="ok" if state == "done" else "failed",
                camera=job.camera,
                target=export_id or job.id,
                detail={
                    "job": job.id,
                    "start_us": job.start_us,
                    "end_us": job.end_us,
                    "case_id": job.case_id,
                    "error": error,
                },
            )
        except Exception:
            log.exception("could not audit the end of export job %s", job.id)

    def get(self, job_id: str) -> ExportJob | None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                job = next((j for j in self._jobs.values() if j.export_id == job_id), None)
            return job

    def list(self) -> list[ExportJob]:
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.created_us, reverse=True)

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Block until no job is queued or running (tests, shutdown)."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if all(j.state in ("done", "failed") for j in self._jobs.values()):
                    return True
            time.sleep(0.05)
        return False

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
