"""Recorded footage: progressive MP4 with range requests, a fragmented-MP4 stream, HLS
(playlist, init segments, parts) and JPEG snapshots.

Every URL authorizes ``view_recordings`` (``view_live`` for the latest-frame snapshot) on
the camera in the path, each time: HLS parts and init segments are checked exactly like
the playlist, so a part URL copied from someone else's player is worthless without the
permission. Starting to watch a range is written to the audit log with the range (not
every part of it: that would bury the log).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response, StreamingResponse

from vigil.api.auth import current_principal
from vigil.api.authz import Principal
from vigil.api.errors import ApiError
from vigil.api.media import jpeg_of
from vigil.api.params import TIME_DESCRIPTION, parse_range, parse_time
from vigil.api.ranges import file_response
from vigil.api.routes.common import ERROR_RESPONSES, Auth, CameraName, State, camera_access
from vigil.api.state import ApiState
from vigil.evidence.playback import (
    DEFAULT_OPEN_DURATION_US,
    NoFootageError,
    PlaybackStream,
    frame_at,
    open_at,
    stream_fmp4,
)
from vigil.evidence.timeline import TimeRangeError, UnknownCameraError, first_segment_at_or_before

router = APIRouter(
    prefix="/api",
    tags=["playback"],
    dependencies=[Depends(current_principal)],
    responses=ERROR_RESPONSES,
)

Start = Annotated[str, Query(min_length=1, max_length=64, description=TIME_DESCRIPTION)]
End = Annotated[str, Query(min_length=1, max_length=64, description=TIME_DESCRIPTION)]
RangeUs = Annotated[int, Path(ge=0, le=253_402_300_799_999_999, description="µs since epoch.")]


def footage_error(exc: Exception) -> ApiError:
    """Map the playback layer's errors onto API errors."""
    if isinstance(exc, NoFootageError):
        gaps = [
            {"start_us": g.start_us, "end_us": g.end_us, "reason": g.reason, "detail": g.detail}
            for g in exc.gaps
        ]
        return ApiError(404, "no_footage", str(exc), {"gaps": gaps})
    if isinstance(exc, UnknownCameraError):
        return ApiError(404, "not_found", str(exc))
    if isinstance(exc, TimeRangeError):
        return ApiError(400, "invalid_range", str(exc))
    raise exc


def _audit_view(
    state: ApiState,
    principal: Principal,
    request: Request,
    what: str,
    camera: str,
    start_us: int,
    end_us: int | None,
) -> None:
    state.audit_as(
        principal,
        request,
        "recording.view",
        camera=camera,
        target=what,
        detail={"start_us": start_us, "end_us": end_us},
    )


def serve_clip(
    state: ApiState,
    principal: Principal,
    request: Request,
    camera: str,
    s: int,
    e: int,
    what: str,
    extra: dict[str, Any] | None = None,
) -> Response:
    """A cached progressive MP4 of [s, e) with range support (also used for event clips)."""
    try:
        clip = state.clips.get(state.ctx.index, camera, s, e, state.max_playback_us)
    except (NoFootageError, TimeRangeError) as exc:
        raise footage_error(exc) from None
    rng = request.headers.get("range", "")
    if not rng or rng.replace(" ", "").startswith("bytes=0-"):
        _audit_view(state, principal, request, what, camera, s, e)
    headers = {
        "X-Vigil-Start-Us": str(clip.start_us),
        "X-Vigil-End-Us": str(clip.end_us),
        "Content-Disposition": f'inline; filename="{camera}-{s}.mp4"',
    }
    if clip.next_start_us is not None:
        headers["X-Vigil-Next-Start-Us"] = str(clip.next_start_us)
    return file_response(
        clip.path, request.headers, media_type="video/mp4", etag=clip.etag, headers=headers
    )


@router.get(
    "/cameras/{camera}/playback.mp4",
    summary="Progressive MP4 of a range (HTTP Range supported)",
    response_class=Response,
    responses={200: {"content": {"video/mp4": {}}}, 206: {"description": "Partial content"}},
)
def playback_mp4(
    request: Request, state: State, principal: Auth, camera: CameraName, start: Start, end: End
) -> Response:
    """[start, end) as one MP4 (stream copy; gaps collapsed and listed in the file's
    wall-clock metadata). Seek with ``Range: bytes=...``: 206 with ``Content-Range``, 416
    for a range past the end. ``X-Vigil-Start-Us`` is the wall time of the first frame;
    ``X-Vigil-Next-Start-Us`` is set when a codec change ended the clip early."""
    camera_access(state, principal, camera, "view_recordings")
    s, e = parse_range(start, end, state.max_playback_us)
    return serve_clip(state, principal, request, camera, s, e, "playback.mp4")


def _stream_response(stream: PlaybackStream) -> StreamingResponse:
    return StreamingResponse(
        stream.chunks,
        media_type="video/mp4",
        headers={
            "X-Vigil-Start-Us": str(stream.start_us),
            "X-Vigil-End-Us": str(stream.end_us),
            "X-Vigil-Skip-Us": str(stream.skip_us),
        },
    )


@router.get(
    "/cameras/{camera}/stream.mp4",
    summary="Fragmented MP4 stream of a range",
    response_class=StreamingResponse,
    responses={200: {"content": {"video/mp4": {}}}},
)
def stream_mp4(
    request: Request,
    state: State,
    principal: Auth,
    camera: CameraName,
    start: Start,
    end: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=64,
            description=f"{TIME_DESCRIPTION} Default: ten minutes after start (playback "
            "starts at the next recording if start falls in a gap).",
        ),
    ] = None,
) -> StreamingResponse:
    """Fragmented MP4, sent as it is muxed (first bytes after one GOP): for players that
    want to start at once. Each fragment is preceded by a ``prft`` box with its capture
    wall time."""
    camera_access(state, principal, camera, "view_recordings")
    try:
        if end is None:
            s = parse_time(start, "start")
            stream = open_at(
                state.ctx.index,
                camera,
                s,
                duration_us=min(DEFAULT_OPEN_DURATION_US, state.max_playback_us),
            )
            e = stream.end_us
        else:
            s, e = parse_range(start, end, state.max_playback_us)
            stream = stream_fmp4(state.ctx.index, camera, s, e, max_range_us=state.max_playback_us)
    except (NoFootageError, TimeRangeError) as exc:
        raise footage_error(exc) from None
    _audit_view(state, principal, request, "stream.mp4", camera, s, e)
    return _stream_response(stream)


# -- HLS -------------------------------------------------------------------------------------


def _hls(state: ApiState, camera: str, s: int, e: int) -> Any:
    if e <= s:
        raise ApiError(400, "invalid_range", "end must be after start (the range is [start, end))")
    if e - s > state.max_playback_us:
        raise ApiError(400, "range_too_long", "the range is longer than playback allows")
    try:
        return state.hls.get(state.ctx.index, camera, s, e, state.max_playback_us)
    except (NoFootageError, TimeRangeError) as exc:
        raise footage_error(exc) from None


@router.get(
    "/cameras/{camera}/hls/{start_us}/{end_us}/index.m3u8",
    summary="HLS playlist of a range",
    response_class=Response,
    responses={200: {"content": {"application/vnd.apple.mpegurl": {}}}},
)
def hls_playlist(
    request: Request,
    state: State,
    principal: Auth,
    camera: CameraName,
    start_us: RangeUs,
    end_us: RangeUs,
) -> Response:
    """A VOD media playlist (fMP4 parts, ``EXT-X-PROGRAM-DATE-TIME`` on every part,
    discontinuities at gaps). Part and init URIs are relative to the playlist and need the
    same permission."""
    camera_access(state, principal, camera, "view_recordings")
    plan = _hls(state, camera, start_us, end_us)
    _audit_view(state, principal, request, "hls", camera, start_us, end_us)
    return Response(plan.playlist("."), media_type="application/vnd.apple.mpegurl")


@router.get(
    "/cameras/{camera}/hls/{start_us}/{end_us}/init/{k}.mp4",
    summary="HLS init segment",
    response_class=Response,
    responses={200: {"content": {"video/mp4": {}}}},
)
def hls_init(
    state: State,
    principal: Auth,
    camera: CameraName,
    start_us: RangeUs,
    end_us: RangeUs,
    k: Annotated[int, Path(ge=0, le=1_000_000, description="Init segment number.")],
) -> Response:
    camera_access(state, principal, camera, "view_recordings")
    plan = _hls(state, camera, start_us, end_us)
    try:
        data = plan.init_segment(k)
    except IndexError:
        raise ApiError(404, "not_found", f"no init segment {k} in this playlist") from None
    return Response(data, media_type="video/mp4")


@router.get(
    "/cameras/{camera}/hls/{start_us}/{end_us}/part/{n}.m4s",
    summary="HLS media part",
    response_class=Response,
    responses={200: {"content": {"video/iso.segment": {}}}},
)
def hls_part(
    state: State,
    principal: Auth,
    camera: CameraName,
    start_us: RangeUs,
    end_us: RangeUs,
    n: Annotated[int, Path(ge=0, le=10_000_000, description="Part number.")],
) -> Response:
    camera_access(state, principal, camera, "view_recordings")
    plan = _hls(state, camera, start_us, end_us)
    try:
        data = plan.part_bytes(n)
    except IndexError:
        raise ApiError(404, "not_found", f"no part {n} in this playlist") from None
    except OSError:
        raise ApiError(
            410, "gone", "the footage of this part is no longer readable; reload the playlist"
        ) from None
    return Response(data, media_type="video/iso.segment")


# -- snapshots -------------------------------------------------------------------------------


@router.get(
    "/cameras/{camera}/snapshot",
    summary="JPEG of the frame at an instant (latest without 'at')",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}},
)
def snapshot(
    request: Request,
    state: State,
    principal: Auth,
    camera: CameraName,
    at: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=64,
            description=f"{TIME_DESCRIPTION} Omitted: the latest frame (needs view_live).",
        ),
    ] = None,
) -> Response:
    """The frame on screen at ``at`` (decoded from the preceding keyframe), or without
    ``at`` the live picture if the live view provides one, else the newest recorded
    frame. ``X-Vigil-Frame-Us`` is the wall time of the frame returned."""
    index = state.ctx.index
    if at is None:
        camera_access(state, principal, camera, "view_live")
        live = state.ctx.live_snapshot
        if live is not None:
            jpeg = live(camera)
            if jpeg is not None:
                state.audit_as(principal, request, "live.snapshot", camera=camera)
                return Response(jpeg, media_type="image/jpeg")
        seg = first_segment_at_or_before(index, camera, 2**62)
        if seg is None:
            raise ApiError(404, "no_footage", f"nothing recorded of {camera!r} yet")
        instant = seg.end_us - 1
    else:
        camera_access(state, principal, camera, "view_recordings")
        instant = parse_time(at, "at")
    try:
        frame, wall = frame_at(index, camera, instant)
    except (NoFootageError, TimeRangeError) as exc:
        raise footage_error(exc) from None
    _audit_view(state, principal, request, "snapshot", camera, wall, None)
    return Response(
        jpeg_of(frame), media_type="image/jpeg", headers={"X-Vigil-Frame-Us": str(wall)}
    )
