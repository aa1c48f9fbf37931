"""Per-camera analytics configuration: what to decode, which detector, zones, lines, masks.

All geometry is in normalized coordinates (0..1 of the picture width and height) so zones
and masks survive a change of resolution or a switch between main and sub stream. Polygons
are validated when the file is loaded (three points or more, inside the frame, not
self-intersecting), so a bad zone is a config error naming the zone, not a runtime surprise.

Labels are object classes only. There is deliberately no option for face recognition or
for classifying people by any attribute.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Point = tuple[float, float]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_polygon(name: str, points: list[Point]) -> list[Point]:
    from vigil.analytics.geometry import validate_polygon

    return [(float(x), float(y)) for x, y in validate_polygon(name, points)]


class ZoneConfig(_Strict):
    """A polygon; an object inside it for ``min_dwell`` seconds 'enters' the zone."""

    name: str = Field(min_length=1, max_length=64, description="Zone name (any text).")
    polygon: list[Point] = Field(description="Points [x, y] in 0..1, at least three.")
    labels: list[str] | None = Field(
        default=None, description="Only these object labels count (default: all)."
    )
    min_dwell: float = Field(default=0.0, ge=0, description="Seconds inside before entering.")

    @model_validator(mode="after")
    def _valid(self) -> ZoneConfig:
        _check_polygon(f"zone {self.name!r}", self.polygon)
        return self


class LineConfig(_Strict):
    """A directed line: crossings are counted per direction (A->B is the right-hand side
    when walking from the first point to the second, as seen on screen)."""

    name: str = Field(min_length=1, max_length=64, description="Line name (any text).")
    points: tuple[Point, Point] = Field(description="Two points [x, y] in 0..1.")
    labels: list[str] | None = Field(
        default=None, description="Only these object labels count (default: all)."
    )

    @field_validator("points")
    @classmethod
    def _inside(cls, v: tuple[Point, Point]) -> tuple[Point, Point]:
        for x, y in v:
            if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                raise ValueError("line points must lie inside the frame (0..1)")
        if v[0] == v[1]:
            raise ValueError("the two points of a line must differ")
        return v


class DetectorConfig(_Strict):
    """Object detector run on motion regions only."""

    type: Literal["hog", "onnx", "none"] = Field(
        default="hog",
        description="'hog': OpenCV's built-in people detector (no download); 'onnx': a "
        "YOLO-family model file you supply; 'none': motion only.",
    )
    model: Path | None = Field(default=None, description="ONNX model file (type onnx).")
    classes: Path | None = Field(
        default=None, description="Class names, one per line, or YAML/JSON list (type onnx)."
    )
    min_score: float = Field(default=0.5, ge=0, le=1, description="Minimum detection score.")

    @model_validator(mode="after")
    def _model_needed(self) -> DetectorConfig:
        if self.type == "onnx" and self.model is None:
            raise ValueError("type onnx needs 'model: /path/to/model.onnx'")
        return self


class CameraAnalytics(_Strict):
    """Motion and object detection for one camera."""

    enabled: bool = Field(default=False, description="Run analytics on this camera.")
    stream: Literal["auto", "sub", "main"] = Field(
        default="auto",
        description="Stream to analyse; 'auto' uses the substream when there is one.",
    )
    fps: float = Field(default=5.0, gt=0, le=30, description="Frames analysed per second.")
    width: int = Field(
        default=640, ge=160, le=1920, description="Frames are scaled down to this width first."
    )
    detector: DetectorConfig = Field(default=DetectorConfig(), description="Object detector.")
    labels: list[str] = Field(
        default_factory=lambda: ["person"], description="Object labels that raise events."
    )
    zones: list[ZoneConfig] = Field(default_factory=list, description="Zones.")
    lines: list[LineConfig] = Field(default_factory=list, description="Counting lines.")
    motion_masks: list[list[Point]] = Field(
        default_factory=list, description="Polygons where motion is ignored (trees, roads)."
    )
    privacy_masks: list[list[Point]] = Field(
        default_factory=list,
        description="Polygons blacked out before any analysis and in every snapshot.",
    )

    @model_validator(mode="after")
    def _masks(self) -> CameraAnalytics:
        for i, m in enumerate(self.motion_masks):
            _check_polygon(f"motion mask {i + 1}", m)
        for i, m in enumerate(self.privacy_masks):
            _check_polygon(f"privacy mask {i + 1}", m)
        names = [z.name for z in self.zones] + [ln.name for ln in self.lines]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"zone/line names must be unique: {sorted(dupes)}")
        return self


class EvidenceConfig(_Strict):
    """The instance signing key and export limits."""

    key_dir: Path | None = Field(
        default=None,
        description="Directory of the instance signing key (0700). Default: '.keys' in the "
        "storage directory. The private key is encrypted with VIGIL_KEY_PASSPHRASE when "
        "set, else with a random secret kept beside it (protects copies of the key file, "
        "not a root user on this machine).",
    )
    max_export: float = Field(
        default=24 * 3600, gt=0, description="Longest range one export may cover (seconds)."
    )

    @field_validator("max_export", mode="before")
    @classmethod
    def _dur(cls, v: object) -> object:
        from vigil.config.units import parse_duration

        return parse_duration(v) if isinstance(v, str) else v
