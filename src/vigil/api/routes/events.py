"""Object events: search with filters and cursor pagination, one event, its snapshot and
its clip.

An event's camera is read from the database and authorized before anything about the
event is returned (the Frigate CVE-2026-33470 lesson: an event snapshot route that
forgot the per-camera check). An event of a camera the caller cannot see is a 404, like
an id that does not exist.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from vigil.api.auth import current_principal
from vigil.api.authz import Principal, authorize, can, visible_cameras
from vigil.api.errors import ApiError
from vigil.api.params import TIME_DESCRIPTION, parse_time
from vigil.api.routes.common import ERROR_RESPONSES, Auth, State
from vigil.api.routes.media import serve_clip
from vigil.api.state import ApiState
from vigil.config.model import CAMERA_NAME_RE
from vigil.events.store import EVENT_ID_RE, MAX_PAGE
from vigil.events.types import EventRecord
from vigil.index.repository import now_us

router = APIRouter(
    prefix="/api",
    tags=["events"],
    dependencies=[Depends(current_principal)],
    responses=ERROR_RESPONSES,
)

EventId = Annotated[str, Path(pattern=EVENT_ID_RE.pattern, max_length=128, description="Event id.")]


def _event_for(state: ApiState, principal: Principal, event_id: str) -> EventRecord:
    """The event, after checking ``view_recordings`` on its (server-side) camera."""
    if ".." in event_id:
        raise ApiError(404, "not_found", "no such event")
    rec = state.events.get(event_id)
    if rec is None or not principal.camera_actions(rec.camera):
        if rec is not None:  # exists, but on a camera the caller cannot see: audit it
            raise ApiError(
                404,
                "not_found",
                "no such event",
                audit="deny.view_recordings",
                camera=rec.camera,
            )
        raise ApiError(404, "not_found", "no such event")
    authorize(principal, "view_recordings", rec.camera)
    return rec


# A camera name no real camera can have ('*' is not allowed in names): a principal that may
# act on it holds that right for every camera, present or future.
_ANY_CAMERA = "*"


def _event_json(rec: EventRecord) -> dict[str, Any]:
    doc = rec.to_json()
    doc["snapshot_url"] = f"/api/events/{rec.id}/snapshot.jpg" if rec.snapshot else None
    doc["clip_url"] = f"/api/events/{rec.id}/clip.mp4"
    return doc


@router.get("/events", summary="Search events")
def search_events(
    state: State,
    principal: Auth,
    camera: Annotated[
        list[str] | None,
        Query(description="Only these cameras (repeat the parameter for several)."),
    ] = None,
    label: Annotated[list[str] | None, Query(description="Only these labels.")] = None,
    zone: Annotated[list[str] | None, Query(description="Only events that entered these.")] = None,
    start: Annotated[
        str | None, Query(min_length=1, max_length=64, description=TIME_DESCRIPTION)
    ] = None,
    end: Annotated[
        str | None, Query(min_length=1, max_length=64, description=TIME_DESCRIPTION)
    ] = None,
    ongoing: Annotated[bool | None, Query(description="Only ongoing (or ended) ones.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size.")] = 50,
    cursor: Annotated[
        str | None,
        Query(max_length=512, description="next_cursor of the previous page."),
    ] = None,
) -> dict[str, Any]:
    """Events newest first, overlapping [start, end) when given. Pass ``next_cursor``
    back as ``cursor`` for the next page (stable while new events arrive). Only cameras
    the caller may view recordings of are searched."""
    allowed = visible_cameras(principal, state.camera_names(), "view_recordings")
    if camera is not None:
        for c in camera:
            if not CAMERA_NAME_RE.match(c):
                raise ApiError(400, "invalid_camera", f"{c[:64]!r} is not a camera name")
            authorize(principal, "view_recordings", c)
        cams = list(dict.fromkeys(camera))
    else:
        cams = allowed
    # Someone who may see every camera (admin, or a '*' grant) needs no camera filter: the
    # store then walks the start_us index alone. Anyone else is limited to the cameras
    # they may see, which the store turns into camera ids (one SELECT per camera, see
    # vigil.events.store.search_query), so events of other cameras are never returned.
    everything = can(principal, "view_recordings", _ANY_CAMERA) and camera is None
    for what, values in (("label", label), ("zone", zone)):
        for v in values or ():
            if len(v) > 64:
                raise ApiError(400, f"invalid_{what}", f"a {what} is at most 64 characters")
    s = parse_time(start, "start") if start is not None else None
    e = parse_time(end, "end") if end is not None else None
    if s is not None and e is not None and e <= s:
        raise ApiError(400, "invalid_range", "end must be after start")
    if not cams:
        return {"events": [], "next_cursor": None}
    try:
        page = state.events.search(
            camera=None if everything else cams,
            label=label,
            zone=zone,
            start_us=s,
            end_us=e,
            limit=limit,
            cursor=cursor,
            ongoing=ongoing,
        )
    except ValueError as exc:
        raise ApiError(400, "invalid_cursor", str(exc)) from None
    return {"events": [_event_json(r) for r in page.items], "next_cursor": page.next_cursor}


@router.get("/events/{event_id}", summary="One event")
def get_event(state: State, principal: Auth, event_id: EventId) -> dict[str, Any]:
    return _event_json(_event_for(state, principal, event_id))


@router.get(
    "/events/{event_id}/snapshot.jpg",
    summary="The event's best snapshot",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}},
)
def event_snapshot(request: Request, state: State, principal: Auth, event_id: EventId) -> Response:
    rec = _event_for(state, principal, event_id)
    try:
        path = state.events.snapshot_path(rec)
        data = path.read_bytes() if path is not None else None
    except (OSError, ValueError):
        data = None
    if data is None:
        raise ApiError(404, "not_found", "this event has no snapshot")
    state.audit_as(
        principal, request, "event.snapshot", camera=rec.camera, target=f"event/{rec.id}"
    )
    return Response(data, media_type="image/jpeg")


@router.get(
    "/events/{event_id}/clip.mp4",
    summary="The event's footage (with pre/post roll) as MP4",
    response_class=Response,
    responses={200: {"content": {"video/mp4": {}}}, 206: {"description": "Partial content"}},
)
def event_clip(request: Request, state: State, principal: Auth, event_id: EventId) -> Response:
    """[start - pre_roll, end + post_roll) of the event's camera (now, for an ongoing
    event), capped at the playback maximum; served like ``playback.mp4``."""
    rec = _event_for(state, principal, event_id)
    store = state.events
    s = max(0, rec.start_us - store.pre_roll_us)
    end = rec.end_us if rec.end_us is not None else now_us()
    e = min(max(end + store.post_roll_us, s + 1), s + state.max_playback_us)
    return serve_clip(state, principal, request, rec.camera, s, e, f"event/{rec.id}/clip")
