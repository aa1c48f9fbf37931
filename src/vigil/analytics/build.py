"""Turning a camera's analytics configuration into a running pipeline.

Kept apart from the runtime so that a bad model file fails here, at start-up, with a clear
message for that camera only (recording of every camera goes on regardless).
"""

from __future__ import annotations

from vigil.analytics.detect.base import Detector, DetectorError
from vigil.analytics.motion import MotionConfig
from vigil.analytics.pipeline import (
    ActivityCallback,
    AnalyticsPipeline,
    EventCallback,
    PipelineConfig,
)
from vigil.analytics.zones import Line, Zone
from vigil.config.analytics_model import CameraAnalytics, DetectorConfig


def build_detector(cfg: DetectorConfig, labels: list[str]) -> Detector | None:
    """The configured detector; raises DetectorError with a usable message."""
    if cfg.type == "none":
        return None
    if cfg.type == "hog":
        from vigil.analytics.detect.opencv import HogPeopleDetector

        return HogPeopleDetector()
    from vigil.analytics.detect.onnx import OnnxYoloDetector

    if cfg.model is None:  # the config model already refuses this
        raise DetectorError("onnx detector without a model file")
    return OnnxYoloDetector(
        cfg.model,
        class_names=cfg.classes,
        conf_threshold=cfg.min_score,
        labels=labels,
        intra_op_threads=1,
    )


def build_pipeline(
    camera: str,
    cfg: CameraAnalytics,
    on_event: EventCallback | None,
    on_activity: ActivityCallback | None,
) -> AnalyticsPipeline:
    detector = build_detector(cfg.detector, cfg.labels)
    pipe_cfg = PipelineConfig(
        camera=camera,
        motion=MotionConfig(masks=tuple(tuple(p) for p in cfg.motion_masks)),
        zones=tuple(
            Zone(
                z.name,
                tuple(z.polygon),
                frozenset(z.labels) if z.labels else None,
                z.min_dwell,
            )
            for z in cfg.zones
        ),
        lines=tuple(
            Line(ln.name, ln.points[0], ln.points[1], frozenset(ln.labels) if ln.labels else None)
            for ln in cfg.lines
        ),
        privacy_masks=tuple(tuple(p) for p in cfg.privacy_masks),
        labels=frozenset(cfg.labels),
        min_score=cfg.detector.min_score if cfg.detector.type == "hog" else 0.0,
    )
    return AnalyticsPipeline(pipe_cfg, detector, on_event=on_event, on_activity=on_activity)


__all__ = ["DetectorError", "build_detector", "build_pipeline"]
