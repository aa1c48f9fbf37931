"""Evidence exports: create (a background job), follow its progress, list, download the
package (zip, or file by file) and verify it.

Everything about an export needs the ``export`` permission on its camera, which is read
from the job or the export log on the server, never taken from the request.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path as FsPath
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from vigil.api.auth import current_principal
from vigil.api.authz import Principal, authorize, visible_cameras
from vigil.api.errors import ApiError
from vigil.api.jobs import ExportJob
from vigil.api.params import TIME_DESCRIPTION, parse_range
from vigil.api.ranges import file_response
from vigil.api.routes.common import ERROR_RESPONSES, Auth, State, camera_access
from vigil.api.state import ApiState
from vigil.config.model import CAMERA_NAME_RE
from vigil.evidence import package as pkg
from vigil.evidence.report import EvidenceError
from vigil.evidence.verify import verify_package
from vigil.index.evidence_models import EvidenceExport
from vigil.index.models import Camera

router = APIRouter(
    prefix="/api",
    tags=["exports"],
    dependencies=[Depends(current_principal)],
    responses=ERROR_RESPONSES,
)

ExportId = Annotated[
    str,
    Path(
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        description="Export or job id (UUID).",
    ),
]
FileName = Annotated[
    str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", description="Package file name.")
]


class ExportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    camera: str = Field(pattern=CAMERA_NAME_RE.pattern, max_length=63, description="Camera.")
    start: str = Field(min_length=1, max_length=64, description=f"Start. {TIME_DESCRIPTION}")
    end: str = Field(min_length=1, max_length=64, description=f"End. {TIME_DESCRIPTION}")
    reason: str = Field(
        min_length=1, max_length=2000, description="Why this footage is exported (required)."
    )
    case_id: str = Field(default="", max_length=128, description="Case or incident reference.")


def _export_row_json(row: EvidenceExport, camera: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": "export",
        "camera": camera,
        "start_us": row.start_us,
        "end_us": row.end_us,
        "reason": row.reason,
        "case_id": row.case_id,
        "requested_by": row.exported_by,
        "created_us": row.created_us,
        "state": "done",
        "progress": 1.0,
        "manifest_sha256": row.manifest_sha256,
        "key_id": row.key_id,
    }


def _find(
    state: ApiState, principal: Principal, export_id: str
) -> tuple[ExportJob | None, EvidenceExport | None, str]:
    """(job, finished export row, camera) after authorizing ``export`` on its camera."""
    job = state.jobs.get(export_id)
    row: EvidenceExport | None = None
    camera: str | None = job.camera if job is not None else None
    lookup = job.export_id if job is not None else export_id
    if lookup is not None:
        with state.ctx.index.db.session() as s:
            got = s.execute(
                select(EvidenceExport, Camera.name)
                .join(Camera, Camera.id == EvidenceExport.camera_id)
                .where(EvidenceExport.id == lookup)
            ).first()
        if got is not None:
            row, camera = got[0], got[1]
    if camera is None:
        raise ApiError(404, "not_found", "no such export")
    if not principal.camera_actions(camera):
        raise ApiError(404, "not_found", "no such export", audit="deny.export", camera=camera)
    authorize(principal, "export", camera)
    return job, row, camera


def _package_dir(row: EvidenceExport | None) -> FsPath:
    if row is None:
        raise ApiError(409, "not_ready", "the export has not finished (or it failed)")
    path = FsPath(row.path)
    try:
        st = os.lstat(path)
    except OSError:
        raise ApiError(410, "gone", "the export package is no longer on disk") from None
    if not stat.S_ISDIR(st.st_mode):
        raise ApiError(410, "gone", "the export package is no longer on disk")
    return path


def _package_files(path: FsPath) -> list[tuple[str, int]]:
    """Regular files directly in the package (no symlinks, no subdirectories), by name."""
    out = []
    with os.scandir(path) as it:
        for entry in it:
            if entry.is_file(follow_symlinks=False) and pkg.unsafe_name_reason(entry.name) in (
                None,
                "file name is reserved",
            ):
                out.append((entry.name, entry.stat(follow_symlinks=False).st_size))
    return sorted(out)


@router.post("/exports", status_code=202, summary="Start an evidence export")
def create_export(
    request: Request, state: State, principal: Auth, body: Annotated[ExportRequest, Body()]
) -> dict[str, Any]:
    """Queue a signed evidence export of [start, end) of a camera. Answers at once with
    the job; poll ``GET /api/exports/{id}`` for progress."""
    camera_access(state, principal, body.camera, "export")
    max_us = int(state.ctx.config.evidence.max_export * 1_000_000)
    s, e = parse_range(body.start, body.end, max_us)
    if not body.reason.strip():
        raise ApiError(400, "invalid_reason", "a reason is required: say why")
    try:
        job = state.jobs.submit(body.camera, s, e, body.reason, body.case_id, principal.username)
    except EvidenceError as exc:
        raise ApiError(503, "unavailable", str(exc)) from None
    state.audit_as(
        principal,
        request,
        "export.request",
        camera=body.camera,
        target=job.id,
        detail={"start_us": s, "end_us": e, "case_id": body.case_id, "reason": body.reason},
    )
    return job.to_json()


@router.get("/exports", summary="Export jobs and finished exports")
def list_exports(state: State, principal: Auth) -> dict[str, Any]:
    """Running and recent jobs, and every finished export, of cameras the caller may
    export from; newest first."""
    cams = set(visible_cameras(principal, state.camera_names(), "export"))
    jobs = [j.to_json() for j in state.jobs.list() if j.camera in cams]
    shown = {j["export_id"] for j in jobs if j["export_id"]}
    with state.ctx.index.db.session() as s:
        rows = s.execute(
            select(EvidenceExport, Camera.name)
            .join(Camera, Camera.id == EvidenceExport.camera_id)
            .order_by(EvidenceExport.created_us.desc())
            .limit(1000)
        ).all()
    done = [_export_row_json(r, c) for r, c in rows if c in cams and r.id not in shown]
    return {"jobs": jobs, "exports": done}


@router.get("/exports/{export_id}", summary="Export status")
def get_export(state: State, principal: Auth, export_id: ExportId) -> dict[str, Any]:
    job, row, camera = _find(state, principal, export_id)
    doc = job.to_json() if job is not None else _export_row_json(row, camera)  # type: ignore[arg-type]
    if row is not None:
        doc["files"] = [{"name": n, "bytes": b} for n, b in _package_files(_package_dir(row))]
    return doc


@router.get(
    "/exports/{export_id}/files/{name}",
    summary="One file of an export package",
    response_class=Response,
)
def export_file(
    request: Request, state: State, principal: Auth, export_id: ExportId, name: FileName
) -> Response:
    _job, row, camera = _find(state, principal, export_id)
    path = _package_dir(row)
    if name not in dict(_package_files(path)):
        raise ApiError(404, "not_found", f"no file {name!r} in this package")
    if request.headers.get("range", "").replace(" ", "") in ("", "bytes=0-"):
        state.audit_as(
            principal,
            request,
            "export.download",
            camera=camera,
            target=f"{export_id}/{name}",
        )
    media = {
        ".mp4": "video/mp4",
        ".json": "application/json",
        ".txt": "text/plain; charset=utf-8",
    }.get(FsPath(name).suffix, "application/octet-stream")
    st = (path / name).stat()
    return file_response(
        path / name,
        request.headers,
        media_type=media,
        etag=f'"{export_id[:8]}-{name}-{st.st_size}"',
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


class _Sink:
    """Write-only, unseekable buffer for ``zipfile`` (it then writes data descriptors)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


def _zip_stream(path: FsPath, files: list[tuple[str, int]], folder: str) -> Iterator[bytes]:
    """The package as a zip, produced as it is read (never whole in memory or on disk).
    Stored, not deflated: the footage does not compress and hashing tools want speed."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, size in files:
            info = zipfile.ZipInfo(f"{folder}/{name}")
            info.compress_type = zipfile.ZIP_STORED
            info.file_size = size
            with (
                zf.open(info, "w", force_zip64=size > 2**31) as dst,
                open(path / name, "rb") as src,
            ):
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
                    yield sink.take()
            yield sink.take()
    yield sink.take()


@router.get(
    "/exports/{export_id}/download",
    summary="Download an export package as zip",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}}},
)
def download_export(
    request: Request, state: State, principal: Auth, export_id: ExportId
) -> StreamingResponse:
    _job, row, camera = _find(state, principal, export_id)
    path = _package_dir(row)
    files = _package_files(path)
    state.audit_as(principal, request, "export.download", camera=camera, target=export_id)
    return StreamingResponse(
        _zip_stream(path, files, path.name),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{path.name}.zip"'},
    )


@router.post("/exports/{export_id}/verify", summary="Verify an export package")
def verify_export(
    request: Request, state: State, principal: Auth, export_id: ExportId
) -> dict[str, Any]:
    """Run the package verifier (signature, every file's hash and size, no extra files)
    on the package as it is on disk now."""
    _job, row, camera = _find(state, principal, export_id)
    path = _package_dir(row)
    rep = verify_package(path)
    state.audit_as(
        principal,
        request,
        "export.verify",
        camera=camera,
        target=export_id,
        outcome="ok" if rep.ok else "failed",
    )
    return {
        "ok": rep.ok,
        "fingerprint": rep.fingerprint,
        "checked": rep.checked,
        "problems": [{"kind": p.kind, "message": p.message, "path": p.path} for p in rep.problems],
        "notes": rep.notes,
    }
