"""Video analytics: motion, object detection, tracking, zones and lines, events.

A frame-level library, independent of camera connections and the database:

* :mod:`~vigil.analytics.frames` decodes a file or URL to downscaled frames at a low,
  fixed analysis rate (default 5 fps) with drop-oldest back-pressure;
* :mod:`~vigil.analytics.motion` finds where something moved (and ignores lighting
  changes) — the gate that keeps detection affordable on a CPU;
* :mod:`~vigil.analytics.detect` runs an object detector on those regions: OpenCV's HOG
  people detector built in, YOLO-family ONNX models when the operator provides one;
* :mod:`~vigil.analytics.tracking` gives detections stable track IDs and spots
  stationary objects;
* :mod:`~vigil.analytics.zones` turns tracks into zone enter/exit and line crossings;
* :mod:`~vigil.analytics.pipeline` glues it together into per-object events.

Labels are object classes (person, car, bicycle, ...). This package does not and must
not identify people or classify them by any personal attribute.
"""

from vigil.analytics.detect import Detection, Detector, DetectorError
from vigil.analytics.frames import AnalysisFrame, FrameSampler, FrameSource
from vigil.analytics.geometry import Box, Point, validate_polygon
from vigil.analytics.motion import MotionConfig, MotionDetector, MotionResult
from vigil.analytics.pipeline import (
    AnalyticsEvent,
    AnalyticsPipeline,
    FrameResult,
    MotionActivity,
    PipelineConfig,
)
from vigil.analytics.tracking import Track, Tracker, TrackerConfig, TrackerUpdate
from vigil.analytics.zones import Line, LineCrossing, Zone, ZoneEvent, ZoneMonitor

__all__ = [
    "AnalysisFrame",
    "AnalyticsEvent",
    "AnalyticsPipeline",
    "Box",
    "Detection",
    "Detector",
    "DetectorError",
    "FrameResult",
    "FrameSampler",
    "FrameSource",
    "Line",
    "LineCrossing",
    "MotionActivity",
    "MotionConfig",
    "MotionDetector",
    "MotionResult",
    "PipelineConfig",
    "Point",
    "Track",
    "Tracker",
    "TrackerConfig",
    "TrackerUpdate",
    "Zone",
    "ZoneEvent",
    "ZoneMonitor",
    "validate_polygon",
]
