"""YOLO-family object detection with ONNX Runtime, for models the operator provides.

Vigil ships no model weights: the operator points a camera at an exported ``.onnx`` file
(YOLOv5, YOLOv8, YOLO11, ... as exported by their tools) and optionally a class-name file.
Two output layouts exist in the wild and both are handled:

* YOLOv5 style ``(1, N, 5 + C)``: per candidate ``cx, cy, w, h, objectness, C scores``;
* YOLOv8/YOLO11 style ``(1, 4 + C, N)``: per candidate ``cx, cy, w, h, C scores`` stored
  channel-first, no objectness.

Everything that can be checked is checked when the detector is created — file type,
input and output shapes (with a warm-up inference, which also resolves dynamic
dimensions), class-name count — so a misconfigured camera fails at start-up with a
``DetectorError`` that says what is wrong instead of producing nothing at run time.
"""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import numpy.typing as npt

from vigil.analytics.detect.base import Detection, DetectorError
from vigil.analytics.geometry import Box

Layout = Literal["auto", "yolov5", "yolov8"]


def load_class_names(source: str | Path | Sequence[str]) -> list[str]:
    """Class names from a list, or a file: one name per line (``.txt``/``.names``),
    a JSON list/dict, or a YAML list/dict (a ``names:`` key as in Ultralytics data files
    is understood). Dicts map class index to name."""
    if not isinstance(source, str | Path):
        return [str(n) for n in source]
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DetectorError(f"cannot read class names from {path}: {exc}") from exc
    data: Any
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            data = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            return [ln.strip() for ln in text.splitlines() if ln.strip()]
    except ValueError as exc:  # json and yaml errors both derive from ValueError
        raise DetectorError(f"cannot parse class names in {path}: {exc}") from exc
    except Exception as exc:
        raise DetectorError(f"cannot parse class names in {path}: {exc}") from exc
    names = _names_from_data(data)
    if names is None:
        raise DetectorError(
            f"{path}: expected a list of class names, a dict of index to name, "
            "or a mapping with a 'names' key"
        )
    return names


def _names_from_data(data: Any) -> list[str] | None:
    if isinstance(data, dict) and "names" in data:
        data = data["names"]
    if isinstance(data, list) and all(isinstance(n, str | int | float) for n in data):
        return [str(n) for n in data]
    if isinstance(data, dict):
        try:
            items = sorted((int(k), str(v)) for k, v in data.items())
        except (TypeError, ValueError):
            return None
        if [k for k, _ in items] != list(range(len(items))):
            return None
        return [v for _, v in items]
    return None


def letterbox(
    image: npt.NDArray[np.uint8], width: int, height: int, pad_value: int = 114
) -> tuple[npt.NDArray[np.uint8], float, int, int]:
    """Resize keeping aspect ratio and pad to ``width x height`` (centered), as YOLO
    models were trained. Returns the image, the scale and the left/top padding."""
    h, w = image.shape[:2]
    img: npt.NDArray[Any] = image
    r = min(width / w, height / h)
    nw, nh = max(1, round(w * r)), max(1, round(h * r))
    if (nw, nh) != (w, h):
        interp = cv2.INTER_AREA if r < 1 else cv2.INTER_LINEAR
        img = cv2.resize(image, (nw, nh), interpolation=interp)
    left = (width - nw) // 2
    top = (height - nh) // 2
    out = cv2.copyMakeBorder(
        img,
        top,
        height - nh - top,
        left,
        width - nw - left,
        cv2.BORDER_CONSTANT,
        value=(pad_value, pad_value, pad_value),
    )
    return np.asarray(out, np.uint8), r, left, top


class OnnxYoloDetector:
    """Run a YOLO-family ONNX model on a frame (or the part of it that moved).

    ``class_names``: list, or path to a names file; default: names embedded in the model's
    metadata (Ultralytics exports do this), else ``class_<i>``. ``labels`` keeps only those
    classes. With ``regions``, the model sees a crop covering all regions (expanded by
    ``margin``) when that is smaller than ``full_frame_fraction`` of the frame: small and
    far objects get more model pixels, for the cost of a single inference.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        class_names: str | Path | Sequence[str] | None = None,
        conf_threshold: float = 0.25,
        iou_threshold: float = 0.45,
        layout: Layout = "auto",
        labels: Sequence[str] | None = None,
        input_size: tuple[int, int] = (640, 640),
        margin: float = 0.25,
        full_frame_fraction: float = 0.6,
        providers: Sequence[str] | None = None,
        intra_op_threads: int | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        self.conf_threshold = conf_threshold
        self.iou_threshold = iou_threshold
        self.margin = margin
        self.full_frame_fraction = full_frame_fraction
        self.labels = frozenset(labels) if labels is not None else None
        if not self.model_path.is_file():
            raise DetectorError(f"model file not found: {self.model_path}")
        self._session = self._open_session(providers, intra_op_threads)
        self._input_name, self.input_width, self.input_height, self._input_dtype = (
            self._check_input(input_size)
        )
        self._output_name = self._session.get_outputs()[0].name
        names = list(load_class_names(class_names)) if class_names is not None else None
        if names is None:
            names = self._metadata_names()
        self.layout, self.num_classes = self._check_output(layout, names)
        self.class_names = names or [f"class_{i}" for i in range(self.num_classes)]

    # -- loading ----------------------------------------------------------------------
    def _open_session(self, providers: Sequence[str] | None, threads: int | None) -> Any:
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - dependency of the package
            raise DetectorError("onnxruntime is not installed") from exc
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads = threads
        available = ort.get_available_providers()
        chosen = [p for p in (providers or available) if p in available] or ["CPUExecutionProvider"]
        try:
            return ort.InferenceSession(str(self.model_path), sess_options=opts, providers=chosen)
        except Exception as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DetectorError(
                f"{self.model_path} is not a usable ONNX model ({msg[:200]})"
            ) from exc

    def _check_input(self, default_size: tuple[int, int]) -> tuple[str, int, int, Any]:
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise DetectorError(
                f"{self.model_path}: expected one image input, the model has {len(inputs)}"
            )
        inp = inputs[0]
        shape = list(inp.shape)
        if len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 3):
            raise DetectorError(
                f"{self.model_path}: unexpected input shape {shape}; expected "
                "(1, 3, height, width) (NCHW, RGB)"
            )
        if isinstance(shape[0], int) and shape[0] != 1:
            raise DetectorError(f"{self.model_path}: input batch must be 1, got {shape[0]}")
        h = shape[2] if isinstance(shape[2], int) and shape[2] > 0 else default_size[1]
        w = shape[3] if isinstance(shape[3], int) and shape[3] > 0 else default_size[0]
        dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
        if inp.type not in ("tensor(float)", "tensor(float16)"):
            raise DetectorError(
                f"{self.model_path}: input type {inp.type} is not supported (float expected)"
            )
        return inp.name, int(w), int(h), dtype

    def _metadata_names(self) -> list[str] | None:
        try:
            meta = self._session.get_modelmeta().custom_metadata_map
        except Exception:
            return None
        raw = meta.get("names") if meta else None
        if not raw:
            return None
        try:
            data = ast.literal_eval(raw)  # literals only: safe on untrusted text
        except (ValueError, SyntaxError):
            try:
                data = json.loads(raw)
            except ValueError:
                return None
        return _names_from_data(data)

    def _check_output(self, layout: Layout, names: list[str] | None) -> tuple[Layout, int]:
        blank = np.zeros((1, 3, self.input_height, self.input_width), self._input_dtype)
        try:
            out = self._session.run([self._output_name], {self._input_name: blank})[0]
        except Exception as exc:
            raise DetectorError(
                f"{self.model_path}: test inference at {self.input_width}x"
                f"{self.input_height} failed: {str(exc).strip()[:200]}"
            ) from exc
        shape = tuple(int(d) for d in np.shape(out))
        expected = "(1, N, 5+C) [YOLOv5] or (1, 4+C, N) [YOLOv8/YOLO11]"
        if len(shape) != 3 or shape[0] != 1:
            raise DetectorError(
                f"{self.model_path}: unexpected output shape {shape}; expected {expected}"
            )
        _, a, b = shape
        n_names = len(names) if names else None
        chosen: Layout
        if layout == "auto":
            if n_names is not None:
                if b == 5 + n_names:
                    chosen = "yolov5"
                elif a == 4 + n_names:
                    chosen = "yolov8"
                else:
                    raise DetectorError(
                        f"{self.model_path}: output shape {shape} does not fit {n_names} "
                        f"class names; expected {expected}"
                    )
            else:
                chosen = "yolov8" if a < b else "yolov5"
        else:
            chosen = layout
        classes = b - 5 if chosen == "yolov5" else a - 4
        if classes < 1:
            raise DetectorError(
                f"{self.model_path}: unexpected output shape {shape}; expected {expected}"
            )
        if n_names is not None and n_names != classes:
            raise DetectorError(
                f"{self.model_path}: the model predicts {classes} classes but "
                f"{n_names} class names were given"
            )
        return chosen, classes

    # -- inference ----------------------------------------------------------------------
    def _crop_for(self, regions: Sequence[Box], fw: int, fh: int) -> tuple[int, int, int, int]:
        """One crop covering all regions, grown to the model's aspect ratio."""
        x1 = min(r.x1 for r in regions) * fw
        y1 = min(r.y1 for r in regions) * fh
        x2 = max(r.x2 for r in regions) * fw
        y2 = max(r.y2 for r in regions) * fh
        mx, my = (x2 - x1) * self.margin + 8, (y2 - y1) * self.margin + 8
        x1, x2, y1, y2 = x1 - mx, x2 + mx, y1 - my, y2 + my
        aspect = self.input_width / self.input_height
        if (x2 - x1) < aspect * (y2 - y1):
            extra = (aspect * (y2 - y1) - (x2 - x1)) / 2
            x1, x2 = x1 - extra, x2 + extra
        else:
            extra = ((x2 - x1) / aspect - (y2 - y1)) / 2
            y1, y2 = y1 - extra, y2 + extra
        # never smaller than a quarter of the model input: tiny crops upscale noise
        min_w = min(fw, self.input_width // 2)
        min_h = min(fh, self.input_height // 2)
        if x2 - x1 < min_w:
            c = (x1 + x2) / 2
            x1, x2 = c - min_w / 2, c + min_w / 2
        if y2 - y1 < min_h:
            c = (y1 + y2) / 2
            y1, y2 = c - min_h / 2, c + min_h / 2
        # shift inside the frame before clipping, to keep the size where possible
        if x1 < 0:
            x2, x1 = x2 - x1, 0.0
        if y1 < 0:
            y2, y1 = y2 - y1, 0.0
        if x2 > fw:
            x1, x2 = x1 - (x2 - fw), float(fw)
        if y2 > fh:
            y1, y2 = y1 - (y2 - fh), float(fh)
        return (
            max(0, math.floor(x1)),
            max(0, math.floor(y1)),
            min(fw, math.ceil(x2)),
            min(fh, math.ceil(y2)),
        )

    def detect(
        self, frame_bgr: npt.NDArray[np.uint8], regions: Sequence[Box] | None = None
    ) -> list[Detection]:
        fh, fw = frame_bgr.shape[:2]
        if regions is not None and len(regions) == 0:
            return []
        cx1, cy1, cx2, cy2 = 0, 0, fw, fh
        if regions is not None:
            cx1, cy1, cx2, cy2 = self._crop_for(regions, fw, fh)
            if (cx2 - cx1) * (cy2 - cy1) > self.full_frame_fraction * fw * fh:
                cx1, cy1, cx2, cy2 = 0, 0, fw, fh
        img, r, left, top = letterbox(
            frame_bgr[cy1:cy2, cx1:cx2], self.input_width, self.input_height
        )
        blob = cv2.dnn.blobFromImage(img, scalefactor=1.0 / 255.0, swapRB=True)
        out = self._session.run(
            [self._output_name], {self._input_name: blob.astype(self._input_dtype, copy=False)}
        )[0]
        return self._postprocess(np.asarray(out, np.float32), r, left, top, cx1, cy1, fw, fh)

    def _postprocess(
        self,
        out: npt.NDArray[np.float32],
        r: float,
        left: int,
        top: int,
        ox: int,
        oy: int,
        fw: int,
        fh: int,
    ) -> list[Detection]:
        if out.ndim != 3 or out.shape[0] != 1:
            raise DetectorError(f"unexpected output shape {out.shape} at run time")
        if self.layout == "yolov5":
            rows = out[0]
            if rows.shape[1] != 5 + self.num_classes:
                raise DetectorError(f"unexpected output shape {out.shape} at run time")
            cls_scores = rows[:, 5:] * rows[:, 4:5]
        else:
            if out.shape[1] != 4 + self.num_classes:
                raise DetectorError(f"unexpected output shape {out.shape} at run time")
            rows = out[0].T
            cls_scores = rows[:, 4:]
        class_ids = np.argmax(cls_scores, axis=1)
        scores = cls_scores[np.arange(len(rows)), class_ids]
        keep = scores >= self.conf_threshold
        if self.labels is not None:
            wanted = [i for i, n in enumerate(self.class_names) if n in self.labels]
            keep &= np.isin(class_ids, wanted)
        if not np.any(keep):
            return []
        rows, class_ids, scores = rows[keep], class_ids[keep], scores[keep]
        cx, cy, w, h = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
        x1 = (cx - w / 2 - left) / r + ox
        y1 = (cy - h / 2 - top) / r + oy
        bw, bh = w / r, h / r
        rects = np.stack([x1, y1, bw, bh], axis=1)
        idx = cv2.dnn.NMSBoxesBatched(
            rects.tolist(),
            scores.tolist(),
            class_ids.tolist(),
            self.conf_threshold,
            self.iou_threshold,
        )
        dets: list[Detection] = []
        for i in np.asarray(idx, np.int64).reshape(-1).tolist():
            bx, by, ww, hh = rects[i].tolist()
            box = Box.from_pixels(bx, by, bx + ww, by + hh, fw, fh)
            if box.area <= 0:
                continue
            dets.append(Detection(self.class_names[int(class_ids[i])], float(scores[i]), box))
        dets.sort(key=lambda d: -d.score)
        return dets
