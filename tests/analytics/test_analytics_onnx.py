"""ONNX back-end tests on tiny models built here with onnx.helper (nothing downloaded).

The models output known candidate boxes; the objectness (YOLOv5) or a class score
(YOLOv8) of the first boxes is multiplied by the mean of the input tensor, so the tests
also see that the detector feeds the image as RGB floats in 0..1, letterboxed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from vigil.analytics.detect import DetectorError
from vigil.analytics.detect.onnx import OnnxYoloDetector, letterbox, load_class_names
from vigil.analytics.geometry import Box

IN = 64  # model input size


def build_model(
    path: Path,
    const: np.ndarray,
    scale_by_input: np.ndarray | None = None,
    in_shape: tuple[int, int, int, int] = (1, 3, IN, IN),
    metadata: dict[str, str] | None = None,
) -> Path:
    """out = const + scale_by_input * mean(input)."""
    mask = scale_by_input if scale_by_input is not None else np.zeros_like(const)
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Mul", ["mask", "m"], ["scaled"]),
        helper.make_node("Add", ["const", "scaled"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, list(in_shape))],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(const.shape))],
        initializer=[
            numpy_helper.from_array(const.astype(np.float32), "const"),
            numpy_helper.from_array(mask.astype(np.float32), "mask"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    for k, v in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def v5_rows() -> tuple[np.ndarray, np.ndarray]:
    # cx, cy, w, h, objectness, person, car   (model input pixels)
    rows = np.array(
        [
            [32, 32, 16, 16, 0.0, 0.9, 0.1],  # objectness = mean(input)
            [33, 32, 16, 16, 0.0, 0.8, 0.1],  # duplicate of the first: NMS removes it
            [10, 40, 8, 8, 0.5, 0.1, 0.9],  # a car, score 0.45
            [50, 50, 8, 8, 0.1, 0.9, 0.1],  # below the confidence threshold
        ],
        np.float32,
    )
    mask = np.zeros_like(rows)
    mask[0, 4] = mask[1, 4] = 1.0
    return rows[None], mask[None]


@pytest.fixture()
def v5_model(tmp_path: Path) -> Path:
    const, mask = v5_rows()
    return build_model(tmp_path / "v5.onnx", const, mask)


@pytest.fixture()
def v8_model(tmp_path: Path) -> Path:
    rows, mask = v5_rows()
    # v8: (1, 4 + C, N), no objectness; class scores = v5 obj * cls for the constant rows
    cls = rows[0, :, 5:] * np.where(mask[0, :, 4:5] > 0, 0.0, rows[0, :, 4:5])
    const = np.concatenate([rows[0, :, :4], cls], axis=1).T[None]
    m = np.zeros_like(const)
    m[0, 4, 0] = 0.9  # person score of box 0 = 0.9 * mean(input)
    m[0, 4, 1] = 0.8
    return build_model(tmp_path / "v8.onnx", const, m)


EXPECTED_PERSON = Box(48 / 128, 16 / 64, 80 / 128, 48 / 64)  # 128x64 frame, letterboxed
EXPECTED_CAR = Box(12 / 128, 40 / 64, 28 / 128, 56 / 64)
PAD = 114 / 255


def white(w: int = 128, h: int = 64) -> np.ndarray:
    return np.full((h, w, 3), 255, np.uint8)


def assert_box(actual: Box, expected: Box) -> None:
    assert actual == pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize("fixture", ["v5_model", "v8_model"])
def test_layouts_decode_letterbox_and_nms(fixture: str, request: pytest.FixtureRequest) -> None:
    path = request.getfixturevalue(fixture)
    det = OnnxYoloDetector(path, class_names=["person", "car"], conf_threshold=0.25)
    assert det.layout == ("yolov5" if fixture == "v5_model" else "yolov8")
    found = det.detect(white())
    assert [d.label for d in found] == ["person", "car"]  # duplicate suppressed, low score gone
    mean = 0.5 * 1.0 + 0.5 * PAD  # half the letterboxed input is image, half padding
    assert found[0].score == pytest.approx(0.9 * mean, abs=1e-3)
    assert found[1].score == pytest.approx(0.45, abs=1e-3)
    assert_box(found[0].box, EXPECTED_PERSON)
    assert_box(found[1].box, EXPECTED_CAR)


def test_score_follows_the_input(v5_model: Path) -> None:
    det = OnnxYoloDetector(v5_model, class_names=["person", "car"])
    dark = det.detect(np.zeros((64, 128, 3), np.uint8))
    assert [d.label for d in dark] == ["car"]  # person objectness = mean = 0.22 * 0.9 < 0.25


def test_labels_filter_and_empty_regions(v5_model: Path) -> None:
    det = OnnxYoloDetector(v5_model, class_names=["person", "car"], labels=["car"])
    assert [d.label for d in det.detect(white())] == ["car"]
    assert det.detect(white(), []) == []


def test_region_crop_maps_back_to_frame(v5_model: Path) -> None:
    det = OnnxYoloDetector(v5_model, class_names=["person", "car"])
    frame = np.full((128, 256, 3), 255, np.uint8)
    found = det.detect(frame, [Box(0.0, 0.0, 0.25, 0.5)])
    # region -> 112x112 crop at the top-left corner (margin, square, shifted into the frame),
    # resized to 64x64 without padding: model pixel p -> frame pixel p * 112 / 64
    s = 112 / 64
    person = next(d for d in found if d.label == "person")
    assert_box(person.box, Box(24 * s / 256, 24 * s / 128, 40 * s / 256, 40 * s / 128))
    assert person.score == pytest.approx(0.9, abs=1e-3)  # no padding in the crop: mean = 1


def test_names_from_files_and_metadata(tmp_path: Path) -> None:
    (tmp_path / "n.txt").write_text("person\n\ncar\n")
    (tmp_path / "n.yaml").write_text("names:\n  0: person\n  1: car\n")
    (tmp_path / "n.json").write_text(json.dumps(["person", "car"]))
    for name in ("n.txt", "n.yaml", "n.json"):
        assert load_class_names(tmp_path / name) == ["person", "car"]
    const, mask = v5_rows()
    path = build_model(
        tmp_path / "meta.onnx", const, mask, metadata={"names": "{0: 'person', 1: 'car'}"}
    )
    assert OnnxYoloDetector(path).class_names == ["person", "car"]


def test_not_an_onnx_file(tmp_path: Path) -> None:
    bogus = tmp_path / "model.onnx"
    bogus.write_text("this is not a model")
    with pytest.raises(DetectorError, match="not a usable ONNX model"):
        OnnxYoloDetector(bogus)
    with pytest.raises(DetectorError, match="not found"):
        OnnxYoloDetector(tmp_path / "missing.onnx")


@pytest.mark.parametrize(
    "shape",
    [(1, 7), (1, 3, 4), (2, 7, 100), (1, 4, 2, 8)],
    ids=["rank2", "no-classes", "batch2", "rank4"],
)
def test_unexpected_output_shape(tmp_path: Path, shape: tuple[int, ...]) -> None:
    path = build_model(tmp_path / "odd.onnx", np.zeros(shape, np.float32))
    with pytest.raises(DetectorError, match="unexpected output shape"):
        OnnxYoloDetector(path)


def test_unexpected_input_and_names_mismatch(tmp_path: Path) -> None:
    const, mask = v5_rows()
    gray = build_model(tmp_path / "gray.onnx", const, mask, in_shape=(1, 1, IN, IN))
    with pytest.raises(DetectorError, match="unexpected input shape"):
        OnnxYoloDetector(gray)
    ok = build_model(tmp_path / "ok.onnx", const, mask)
    with pytest.raises(DetectorError, match="does not fit 3 class names"):
        OnnxYoloDetector(ok, class_names=["person", "car", "bicycle"])


def test_letterbox_geometry() -> None:
    img, r, left, top = letterbox(white(128, 64), 64, 64)
    assert img.shape == (64, 64, 3) and r == 0.5 and (left, top) == (0, 16)
    assert img[0, 0].tolist() == [114, 114, 114] and img[32, 32].tolist() == [255, 255, 255]
