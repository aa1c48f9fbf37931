"""Object detectors: the interface and its back-ends.

``opencv.HogPeopleDetector`` is the embedded default (people only, no model file);
``onnx.OnnxYoloDetector`` runs YOLO-family models exported to ONNX, given by path.
"""

from vigil.analytics.detect.base import Crop, Detection, Detector, DetectorError, plan_crops

__all__ = ["Crop", "Detection", "Detector", "DetectorError", "plan_crops"]
