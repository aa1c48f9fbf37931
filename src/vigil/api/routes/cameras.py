"""Cameras with their health, detailed system status, timelines, recording lists and the
per-camera analytics settings (zones, masks, lines)."""

from __future__ import annotations

import logging
import shutil
import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import func, select

import vigil
from vigil.api.auth import current_principal
from vigil.api.authz import CAMERA_ACTIONS, Principal, authorize, can, visible_cameras
from vigil.api.errors import ApiError
from vigil.api.params import TIME_DESCRIPTION, parse_range
from vigil.api.routes.common import ERROR_RESPONSES, Auth, CameraName, State, camera_access
from vigil.api.state import ApiState
from vigil.config.analytics_model import LineConfig, Point, ZoneConfig
from vigil.events.timeline import timeline_with_events
from vigil.evidence.timeline import (
    DEFAULT_TIMELINE_MAX_RANGE_US,
    TimeRangeError,
    UnknownCameraError,
    camera_exists,
)
from vigil.index.auth_models import CameraSettings
from vigil.index.events_models import MotionActivityRow
from vigil.index.models import Camera
from vigil.index.repository import now_us

log = logging.getLogger(__name__)
router = APIRouter(
    prefix="/api",
    tags=["cameras"],
    dependencies=[Depends(current_principal)],
    responses=ERROR_RESPONSES,
)

Start = Annotated[str, Query(min_length=1, max_length=64, description=TIME_DESCRIPTION)]
End = Annotated[str, Query(min_length=1, max_length=64, description=TIME_DESCRIPTION)]


# -- health ----------------------------------------------------------------------------------


def _health(state: ApiState) -> dict[str, dict[str, Any]]:
    """Health per camera: from the live recorder when it runs in this process, else the
    status rows the recorder writes every few seconds."""
    out: dict[str, dict[str, Any]] = {}
    for st in state.ctx.index.statuses():
        out[st.camera] = {
            "state": st.state,
            "recording": st.recording,
            "detail": st.detail,
            "fps": st.fps,
            "bitrate_bps": st.bitrate,
            "last_packet_us": st.last_packet_us,
            "reconnects": st.reconnects,
            "codec": st.codec,
            "width": st.width,
            "height": st.height,
            "since_us": st.since_us,
            "updated_us": st.updated_us,
            "live": False,
        }
    nvr = state.ctx.nvr
    units = getattr(nvr, "units", None) if nvr is not None else None
    if isinstance(units, dict):
        for name, unit in units.items():
            try:
                h = unit.reader.health()
                rec = unit.recorder.status() if unit.recorder is not None else None
            except Exception:  # a camera mid-restart must not break the whole list
                log.debug("no live health for camera %s", name, exc_info=True)
                continue
            out[name] = {
                "state": h.state,
                "recording": rec.state if rec is not None else "off",
                "detail": (rec.reason if rec is not None and rec.reason else h.last_error) or "",
                "fps": h.fps,
                "bitrate_bps": h.bitrate_bps,
                "last_packet_us": h.last_packet_wall_us,
                "reconnects": h.reconnects,
                "codec": h.codec or "",
                "width": h.width,
                "height": h.height,
                "since_us": h.since_wall_us or None,
                "updated_us": now_us(),
                "live": True,
            }
    return out


def _camera_json(
    state: ApiState, principal: Principal, name: str, health: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    cfg = next((c for c in state.ctx.config.cameras if c.name == name), None)
    return {
        "name": name,
        "title": (cfg.title if cfg is not None and cfg.title else name),
        "configured": cfg is not None,
        "enabled": bool(cfg.enabled) if cfg is not None else False,
        "recording_enabled": bool(cfg.recording.enabled) if cfg is not None else False,
        "permissions": [a for a in CAMERA_ACTIONS if a in principal.camera_actions(name)],
        "health": health.get(name),
    }


@router.get("/cameras", summary="Cameras with health")
def list_cameras(state: State, principal: Auth) -> dict[str, Any]:
    """Every camera the caller may see (others are left out, not refused), with its
    health and what the caller may do with it."""
    health = _health(state)
    names = visible_cameras(principal, state.camera_names())
    return {"cameras": [_camera_json(state, principal, n, health) for n in names]}


@router.get("/cameras/{camera}", summary="One camera with health")
def get_camera(state: State, principal: Auth, camera: CameraName) -> dict[str, Any]:
    if not principal.camera_actions(camera) or not state.camera_known(camera):
        raise ApiError(404, "not_found", f"unknown camera {camera!r}")
    return _camera_json(state, principal, camera, _health(state))


@router.get("/system", summary="Detailed system status")
def system(state: State, principal: Auth) -> dict[str, Any]:
    """Recorder and storage status, and per-camera fps, bitrate, uptime and disk use for
    the cameras the caller may see. The storage path is shown to administrators only."""
    authorize(principal, "system")
    health = _health(state)
    usage = state.ctx.index.usage()
    now = now_us()
    cams = []
    for name in visible_cameras(principal, state.camera_names()):
        h = health.get(name) or {}
        since = h.get("since_us")
        segs, size = usage.get(name, (0, 0))
        cams.append(
            {
                "name": name,
                "state": h.get("state", "unknown"),
                "recording": h.get("recording", "unknown"),
                "fps": h.get("fps", 0.0),
                "bitrate_bps": h.get("bitrate_bps", 0.0),
                "uptime_s": (now - since) / 1e6 if since and h.get("state") == "online" else 0.0,
                "reconnects": h.get("reconnects", 0),
                "last_packet_us": h.get("last_packet_us"),
                "segments": segs,
                "bytes": size,
            }
        )
    root = state.ctx.index.root
    try:
        disk = shutil.disk_usage(root)
        storage: dict[str, Any] = {
            "total_bytes": disk.total,
            "used_bytes": disk.used,
            "free_bytes": disk.free,
        }
    except OSError:
        storage = {"total_bytes": None, "used_bytes": None, "free_bytes": None}
    storage["footage_bytes"] = sum(b for _n, b in usage.values())
    if can(principal, "admin"):
        storage["path"] = str(root)
    return {
        "version": vigil.__version__,
        "time_us": now,
        "api_uptime_s": round(time.time() - state.started_us / 1e6, 3),
        "recorder": {
            "running": state.ctx.nvr is not None,
            "node": getattr(state.ctx.nvr, "node", None),
        },
        "storage": storage,
        "cameras": cams,
    }


# -- timeline and recordings -----------------------------------------------------------------


def _motion(state: ApiState, camera: str, start_us: int, end_us: int, buckets: int) -> Any:
    """Motion activity aggregated in SQL into at most ``buckets`` buckets (a month of
    per-second rows is millions: never loaded into Python)."""
    s0 = start_us // 1_000_000
    s1 = -(-end_us // 1_000_000)
    width = max(1, -(-(s1 - s0) // buckets))
    bucket = ((MotionActivityRow.second - s0) // width).label("b")
    q = (
        select(bucket, func.max(MotionActivityRow.peak), func.avg(MotionActivityRow.mean))
        .join(Camera, Camera.id == MotionActivityRow.camera_id)
        .where(
            Camera.name == camera,
            MotionActivityRow.second >= s0,
            MotionActivityRow.second < s1,
        )
        .group_by(bucket)
        .order_by(bucket)
    )
    with state.ctx.index.db.session() as s:
        rows = s.execute(q).all()
    return {
        "bucket_s": width,
        "buckets": [
            {
                "start_us": (s0 + int(b) * width) * 1_000_000,
                "peak": round(float(peak), 4),
                "mean": round(float(mean), 4),
            }
            for b, peak, mean in rows
        ],
    }


@router.get("/cameras/{camera}/timeline", summary="Timeline: spans, gaps, events, motion")
def get_timeline(
    state: State,
    principal: Auth,
    camera: CameraName,
    start: Start,
    end: End,
    motion_buckets: Annotated[
        int, Query(ge=1, le=10_000, description="Most motion buckets to return.")
    ] = 1000,
) -> dict[str, Any]:
    """What was recorded in [start, end): continuous spans, gaps with their reasons,
    object events and motion activity. At most 31 days at once."""
    camera_access(state, principal, camera, "view_recordings")
    s, e = parse_range(start, end, DEFAULT_TIMELINE_MAX_RANGE_US)
    if not camera_exists(state.ctx.index, camera):  # configured, nothing recorded yet
        doc: dict[str, Any] = {
            "camera": camera,
            "start_us": s,
            "end_us": e,
            "spans": [],
            "gaps": [{"start_us": s, "end_us": e, "reason": "unknown", "detail": ""}],
            "events": [],
            "markers": [],
        }
    else:
        try:
            doc = timeline_with_events(state.events, camera, s, e).to_dict()
        except UnknownCameraError:
            raise ApiError(404, "not_found", f"unknown camera {camera!r}") from None
        except TimeRangeError as exc:
            raise ApiError(400, "invalid_range", str(exc)) from None
    doc["motion"] = _motion(state, camera, s, e, motion_buckets)
    return doc


@router.get("/cameras/{camera}/recordings", summary="Recorded segments and gaps")
def list_recordings(
    state: State,
    principal: Auth,
    camera: CameraName,
    start: Start,
    end: End,
    limit: Annotated[int, Query(ge=1, le=5000, description="Most segments to list.")] = 1000,
) -> dict[str, Any]:
    """Segment files (oldest first) and gap rows overlapping [start, end)."""
    camera_access(state, principal, camera, "view_recordings")
    s, e = parse_range(start, end, DEFAULT_TIMELINE_MAX_RANGE_US)
    index = state.ctx.index
    segs = index.segments(camera, s, e, limit=limit + 1)
    return {
        "camera": camera,
        "start_us": s,
        "end_us": e,
        "truncated": len(segs) > limit,
        "segments": [
            {
                "id": seg.id,
                "start_us": seg.start_us,
                "end_us": seg.end_us,
                "duration_us": seg.duration_us,
                "bytes": seg.bytes,
                "video_codec": seg.video_codec,
                "width": seg.width,
                "height": seg.height,
                "audio_codec": seg.audio_codec,
                "recovered": seg.recovered,
            }
            for _c, seg in segs[:limit]
        ],
        "gaps": [
            {"start_us": g.start_us, "end_us": g.end_us, "reason": g.reason, "detail": g.detail}
            for _c, g in index.gaps(camera, s, e)
        ],
    }


# -- settings --------------------------------------------------------------------------------


class CameraSettingsBody(BaseModel):
    """Zones, counting lines and masks of one camera, in normalized coordinates (0..1 of
    the picture). Polygons need three points or more, inside the frame, without crossing
    edges; names are any text up to 64 characters and must be unique."""

    model_config = ConfigDict(extra="forbid")

    zones: list[ZoneConfig] = Field(default_factory=list, max_length=64, description="Zones.")
    lines: list[LineConfig] = Field(
        default_factory=list, max_length=64, description="Counting lines."
    )
    motion_masks: list[list[Point]] = Field(
        default_factory=list, max_length=64, description="Polygons where motion is ignored."
    )
    privacy_masks: list[list[Point]] = Field(
        default_factory=list, max_length=64, description="Polygons blacked out before analysis."
    )
    version: int | None = Field(
        default=None,
        ge=0,
        description="The version this edit is based on (from GET); a mismatch is 409, so "
        "two people editing at once do not silently overwrite each other.",
    )

    @model_validator(mode="after")
    def _valid(self) -> CameraSettingsBody:
        from vigil.analytics.geometry import validate_polygon

        for kind, masks in (
            ("motion mask", self.motion_masks),
            ("privacy mask", self.privacy_masks),
        ):
            for i, m in enumerate(masks):
                if len(m) > 256:
                    raise ValueError(f"{kind} {i + 1} has more than 256 points")
                validate_polygon(f"{kind} {i + 1}", m)
        for z in self.zones:
            if len(z.polygon) > 256:
                raise ValueError(f"zone {z.name!r} has more than 256 points")
        names = [z.name for z in self.zones] + [ln.name for ln in self.lines]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"zone/line names must be unique: {dupes}")
        return self


def _settings_doc(
    row: CameraSettings | None, camera: str, state: Any = None
) -> dict[str, Any]:
    """The settings in force: the edited document when there is one, else the camera's
    analytics section of the YAML configuration (so the editor starts from what runs)."""
    base: dict[str, Any] = {"zones": [], "lines": [], "motion_masks": [], "privacy_masks": []}
    if row is not None:
        base.update(row.settings or {})
    elif state is not None:
        try:
            analytics = state.ctx.config.camera(camera).analytics
        except KeyError:
            analytics = None
        if analytics is not None:
            base.update(
                analytics.model_dump(
                    mode="json", include={"zones", "lines", "motion_masks", "privacy_masks"}
                )
            )
    return {
        "camera": camera,
        "version": row.version if row is not None else 0,
        "updated_us": row.updated_us if row is not None else None,
        "updated_by": row.updated_by if row is not None else None,
        **{k: base.get(k, []) for k in ("zones", "lines", "motion_masks", "privacy_masks")},
    }


@router.get("/cameras/{camera}/settings", summary="Zones, lines and masks")
def get_settings(state: State, principal: Auth, camera: CameraName) -> dict[str, Any]:
    if not principal.camera_actions(camera) or not state.camera_known(camera):
        raise ApiError(404, "not_found", f"unknown camera {camera!r}")
    with state.ctx.index.db.session() as s:
        return _settings_doc(s.get(CameraSettings, camera), camera, state)


@router.put("/cameras/{camera}/settings", summary="Replace zones, lines and masks")
def put_settings(
    request: Request,
    state: State,
    principal: Auth,
    camera: CameraName,
    body: Annotated[CameraSettingsBody, Body()],
) -> dict[str, Any]:
    """Replace the camera's zones, lines and masks (validated; stored in the
    ``camera_settings`` table, which the recorder's analytics reads)."""
    camera_access(state, principal, camera, "configure")
    doc = body.model_dump(mode="json", exclude={"version"})
    with state.ctx.index.db.session() as s:
        row = s.get(CameraSettings, camera)
        current = row.version if row is not None else 0
        if body.version is not None and body.version != current:
            raise ApiError(
                409,
                "version_conflict",
                f"the settings changed since version {body.version} (now {current}); "
                "reload and edit again",
                {"version": current},
            )
        if row is None:
            row = CameraSettings(camera=camera, settings=doc, version=1)
            s.add(row)
        else:
            row.settings = doc
            row.version = current + 1
        row.updated_us = now_us()
        row.updated_by = principal.username
        s.commit()
        out = _settings_doc(row, camera)
    state.audit_as(
        principal,
        request,
        "settings.update",
        camera=camera,
        target=f"camera_settings/{camera}",
        detail={
            "version": out["version"],
            "zones": [z["name"] for z in doc["zones"]],
            "lines": [ln["name"] for ln in doc["lines"]],
            "motion_masks": len(doc["motion_masks"]),
            "privacy_masks": len(doc["privacy_masks"]),
        },
    )
    return out
