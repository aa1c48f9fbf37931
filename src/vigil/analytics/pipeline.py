"""Frame-level analytics pipeline: frames -> motion -> detection -> tracking -> zones -> events.

One :class:`AnalyticsPipeline` per camera. It is synchronous and deterministic: call
:meth:`AnalyticsPipeline.process` with each :class:`~vigil.analytics.frames.AnalysisFrame`
(or :meth:`run` with a :class:`~vigil.analytics.frames.FrameSource`), and events arrive
through callbacks. Nothing here knows about cameras' connections or the database; the
integration with ingest and the event store plugs into the callbacks.

Privacy masks are applied to the frame *before* anything looks at it: the detector
never analyses what a privacy mask hides, motion there is ignored, and snapshots show
the masked areas filled black.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

from vigil.analytics.detect.base import Detection, Detector
from vigil.analytics.frames import AnalysisFrame, FrameSource
from vigil.analytics.geometry import Box, Point, fill_polygons, validate_polygon
from vigil.analytics.motion import MotionConfig, MotionDetector, MotionResult
from vigil.analytics.tracking import Track, Tracker, TrackerConfig
from vigil.analytics.zones import Direction, Line, LineCrossing, Zone, ZoneEvent, ZoneMonitor

log = logging.getLogger(__name__)

EventKind = Literal["start", "update", "end"]
EndReason = Literal["lost", "stationary", "stopped"]


@dataclass(frozen=True, slots=True)
class AnalyticsEvent:
    """The life of one object track, reported at its start, on changes, and at its end.

    Times are in the frame source's clock (see ``AnalysisFrame.time``). ``zones`` lists
    every zone the object entered during the event, ``lines_crossed`` every crossing in
    order. ``snapshot_jpeg`` is the best frame so far (highest score, object not cut by
    the frame edge), privacy masks applied.
    """

    kind: EventKind
    camera: str
    event_id: str
    track_id: int
    label: str
    start_time: float
    end_time: float | None
    max_score: float
    box: Box
    zones: tuple[str, ...]
    current_zones: tuple[str, ...]
    lines_crossed: tuple[tuple[str, Direction], ...]
    stationary: bool
    snapshot_jpeg: bytes | None = field(repr=False, default=None)
    snapshot_time: float | None = None
    snapshot_box: Box | None = None
    end_reason: EndReason | None = None


@dataclass(frozen=True, slots=True)
class MotionActivity:
    """Motion in one whole second of the timeline: ``peak``/``mean`` fraction of the
    picture that changed, over ``frames`` analysed frames (``motion_frames`` with boxes)."""

    camera: str
    second: int
    peak: float
    mean: float
    frames: int
    motion_frames: int


@dataclass(slots=True)
class FrameResult:
    """What the pipeline saw in one frame (for debugging, statistics and tests)."""

    frame_time: float
    motion: MotionResult
    regions: list[Box]
    detections: list[Detection]
    tracks: list[Track]
    zone_events: list[ZoneEvent]
    crossings: list[LineCrossing]
    events: list[AnalyticsEvent]
    detect_ms: float
    total_ms: float


@dataclass(frozen=True)
class PipelineConfig:
    """Per-camera analytics settings."""

    camera: str
    motion: MotionConfig = field(default_factory=MotionConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    zones: tuple[Zone, ...] = ()
    lines: tuple[Line, ...] = ()
    privacy_masks: tuple[tuple[Point, ...], ...] = ()
    labels: frozenset[str] | None = None  # object classes to track; None: all
    min_score: float = 0.0  # extra score filter on top of the detector's own
    track_regions: bool = True  # also detect where live tracks are expected
    region_margin: float = 0.15  # growth of track regions (fraction of box size)
    snapshot_quality: int = 85
    snapshot_draw_box: bool = False
    update_interval: float = 5.0  # at most one plain snapshot/score update this often

    def __post_init__(self) -> None:
        checked = tuple(
            validate_polygon(f"privacy mask {i + 1}", m) for i, m in enumerate(self.privacy_masks)
        )
        object.__setattr__(self, "privacy_masks", checked)
        object.__setattr__(self, "zones", tuple(self.zones))
        object.__setattr__(self, "lines", tuple(self.lines))
        if self.labels is not None:
            object.__setattr__(self, "labels", frozenset(self.labels))


@dataclass(slots=True)
class _EventState:
    event_id: str
    start_time: float
    zones: list[str] = field(default_factory=list)
    crossings: list[tuple[str, Direction]] = field(default_factory=list)
    max_score: float = 0.0
    snap_quality: float = -1.0
    snap_image: npt.NDArray[np.uint8] | None = None
    snap_box: Box | None = None
    snap_time: float | None = None
    snap_dirty: bool = False
    last_update: float = 0.0


EventCallback = Callable[[AnalyticsEvent], None]
ActivityCallback = Callable[[MotionActivity], None]


class AnalyticsPipeline:
    """Glue of the analytics stages for one camera."""

    def __init__(
        self,
        config: PipelineConfig,
        detector: Detector | None,
        on_event: EventCallback | None = None,
        on_activity: ActivityCallback | None = None,
    ) -> None:
        self.config = config
        self.detector = detector
        self.on_event = on_event
        self.on_activity = on_activity
        motion_cfg = config.motion
        if config.privacy_masks:
            # what is hidden for privacy is not analysed for motion either
            motion_cfg = replace(motion_cfg, masks=motion_cfg.masks + config.privacy_masks)
        self.motion = MotionDetector(motion_cfg)
        self.tracker = Tracker(config.tracker)
        self.zones = ZoneMonitor(config.zones, config.lines)
        self._events: dict[int, _EventState] = {}
        self._track_zones: dict[int, set[str]] = {}
        self._act_second: int | None = None
        self._act_values: list[float] = []
        self._act_motion_frames = 0
        self.frames = 0

    # -- public ----------------------------------------------------------------------
    @property
    def line_counts(self) -> dict[str, dict[Direction, int]]:
        return {k: dict(v) for k, v in self.zones.counts.items()}

    def process(self, frame: AnalysisFrame) -> FrameResult:
        t0 = time.perf_counter()
        cfg = self.config
        t = frame.time
        image = frame.image
        if cfg.privacy_masks:
            image = fill_polygons(image, cfg.privacy_masks, 0)
        motion = self.motion.detect(image)
        self._aggregate_activity(t, motion)

        regions = list(motion.boxes)
        if cfg.track_regions:
            regions += [b.expand(cfg.region_margin).clip() for b in self.tracker.predicted_boxes()]
        detections: list[Detection] = []
        t1 = time.perf_counter()
        if self.detector is not None and regions and not motion.lighting_change:
            detections = self.detector.detect(image, regions)
        detect_ms = (time.perf_counter() - t1) * 1000.0
        detections = [
            d
            for d in detections
            if d.score >= cfg.min_score and (cfg.labels is None or d.label in cfg.labels)
        ]
        upd = self.tracker.update(detections, t)
        zone_events, crossings = self.zones.update(upd.active, t, upd.ended)
        events = self._events_for(upd.active, upd.ended, zone_events, crossings, image, t)
        self.frames += 1
        return FrameResult(
            t,
            motion,
            regions,
            detections,
            upd.active,
            zone_events,
            crossings,
            events,
            detect_ms,
            (time.perf_counter() - t0) * 1000.0,
        )

    def flush(self, t: float | None = None) -> list[AnalyticsEvent]:
        """End all open events (end of stream or shutdown) and the pending activity."""
        ended = self.tracker.flush()
        zone_events, _ = self.zones.update([], t or 0.0, ended)
        self._apply_zone_events(zone_events)
        out: list[AnalyticsEvent] = []
        for tr in ended:
            ev = self._end_event(tr, "stopped")
            self._track_zones.pop(tr.track_id, None)
            if ev is not None:
                out.append(ev)
        self._emit_activity()
        return out

    def run(self, source: FrameSource, stop: threading.Event | None = None) -> int:
        """Process frames until the source ends (or ``stop`` is set); returns frames done."""
        n = 0
        last_t: float | None = None
        for frame in source:
            if stop is not None and stop.is_set():
                break
            self.process(frame)
            last_t = frame.time
            n += 1
        self.flush(last_t)
        return n

    # -- events ----------------------------------------------------------------------
    def _emit(self, ev: AnalyticsEvent) -> AnalyticsEvent:
        if self.on_event is not None:
            try:
                self.on_event(ev)
            except Exception:  # a consumer bug must not stop analytics
                log.exception("analytics event callback failed")
        return ev

    def _make(
        self,
        kind: EventKind,
        tr: Track,
        st: _EventState,
        end_time: float | None = None,
        reason: EndReason | None = None,
    ) -> AnalyticsEvent:
        jpeg: bytes | None = None
        if st.snap_image is not None:
            img = st.snap_image
            if self.config.snapshot_draw_box and st.snap_box is not None:
                img = img.copy()
                x1, y1, x2, y2 = st.snap_box.to_pixels(img.shape[1], img.shape[0])
                cv2.rectangle(img, (x1, y1), (x2 - 1, y2 - 1), (0, 0, 255), 2)
            ok, buf = cv2.imencode(
                ".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(self.config.snapshot_quality)]
            )
            jpeg = buf.tobytes() if ok else None
        st.snap_dirty = False
        return AnalyticsEvent(
            kind=kind,
            camera=self.config.camera,
            event_id=st.event_id,
            track_id=tr.track_id,
            label=tr.label,
            start_time=st.start_time,
            end_time=end_time,
            max_score=st.max_score,
            box=tr.box.clip(),
            zones=tuple(st.zones),
            current_zones=tuple(sorted(self._track_zones.get(tr.track_id, ()))),
            lines_crossed=tuple(st.crossings),
            stationary=tr.stationary,
            snapshot_jpeg=jpeg,
            snapshot_time=st.snap_time,
            snapshot_box=st.snap_box,
            end_reason=reason,
        )

    def _end_event(self, tr: Track, reason: EndReason) -> AnalyticsEvent | None:
        st = self._events.pop(tr.track_id, None)
        if st is None:
            return None
        return self._emit(self._make("end", tr, st, tr.last_seen, reason))

    def _apply_zone_events(self, zone_events: Sequence[ZoneEvent]) -> set[int]:
        touched: set[int] = set()
        for ze in zone_events:
            cur = self._track_zones.setdefault(ze.track_id, set())
            if ze.kind == "enter":
                cur.add(ze.zone)
                st = self._events.get(ze.track_id)
                if st is not None and ze.zone not in st.zones:
                    st.zones.append(ze.zone)
            else:
                cur.discard(ze.zone)
            touched.add(ze.track_id)
        return touched

    def _consider_snapshot(
        self, tr: Track, st: _EventState, image: npt.NDArray[np.uint8], t: float
    ) -> None:
        if not tr.observed or tr.last_detection is None:
            return
        box = tr.last_detection
        edge = 0.005
        cut = box.x1 <= edge or box.y1 <= edge or box.x2 >= 1 - edge or box.y2 >= 1 - edge
        quality = tr.score * (0.7 if cut else 1.0)
        if quality > st.snap_quality + 1e-6:
            st.snap_quality = quality
            st.snap_image = image.copy()
            st.snap_box = box
            st.snap_time = t
            st.snap_dirty = True

    def _events_for(
        self,
        active: list[Track],
        ended: list[Track],
        zone_events: list[ZoneEvent],
        crossings: list[LineCrossing],
        image: npt.NDArray[np.uint8],
        t: float,
    ) -> list[AnalyticsEvent]:
        out: list[AnalyticsEvent] = []
        changed = self._apply_zone_events(zone_events)
        crossed: dict[int, list[tuple[str, Direction]]] = {}
        for c in crossings:
            crossed.setdefault(c.track_id, []).append((c.line, c.direction))
        for tr in active:
            st = self._events.get(tr.track_id)
            if st is None:
                if not tr.confirmed or tr.stationary:
                    continue
                st = _EventState(
                    event_id=f"{self.config.camera}-{tr.track_id}-{round(t * 1000)}",
                    start_time=tr.first_seen,
                    zones=sorted(self._track_zones.get(tr.track_id, ())),
                    max_score=tr.max_score,
                    last_update=t,
                )
                self._events[tr.track_id] = st
                st.crossings.extend(crossed.pop(tr.track_id, []))
                self._consider_snapshot(tr, st, image, t)
                out.append(self._emit(self._make("start", tr, st)))
                continue
            if tr.stationary:
                ev = self._end_event(tr, "stationary")
                if ev is not None:
                    out.append(ev)
                continue
            st.max_score = max(st.max_score, tr.max_score)
            self._consider_snapshot(tr, st, image, t)
            new_cross = crossed.pop(tr.track_id, [])
            st.crossings.extend(new_cross)
            if (
                new_cross
                or tr.track_id in changed
                or (st.snap_dirty and t - st.last_update >= self.config.update_interval)
            ):
                st.last_update = t
                out.append(self._emit(self._make("update", tr, st)))
        for tr in ended:
            ev = self._end_event(tr, "lost")
            self._track_zones.pop(tr.track_id, None)
            if ev is not None:
                out.append(ev)
        return out

    # -- motion timeline -------------------------------------------------------------
    def _aggregate_activity(self, t: float, motion: MotionResult) -> None:
        second = int(t // 1)
        if self._act_second is not None and second != self._act_second:
            self._emit_activity()
        self._act_second = second
        self._act_values.append(motion.activity)
        if motion.boxes:
            self._act_motion_frames += 1

    def _emit_activity(self) -> None:
        if self._act_second is None or not self._act_values:
            return
        act = MotionActivity(
            camera=self.config.camera,
            second=self._act_second,
            peak=max(self._act_values),
            mean=sum(self._act_values) / len(self._act_values),
            frames=len(self._act_values),
            motion_frames=self._act_motion_frames,
        )
        self._act_values = []
        self._act_motion_frames = 0
        if self.on_activity is not None:
            try:
                self.on_activity(act)
            except Exception:
                log.exception("analytics activity callback failed")
