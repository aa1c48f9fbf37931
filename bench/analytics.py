#!/usr/bin/env python3
"""Analytics benchmark: motion cost and recall against Frigate's motion detector, detector
cost per back-end, cameras sustained at 5 analysis fps with recording on, and event latency
from the frame an object appears in to the MQTT message.

Run by hand, never in CI (it needs minutes of an otherwise idle machine, the simulator's
system GStreamer and a Mosquitto binary)::

    .venv/bin/python bench/analytics.py                         # everything, no Frigate
    .venv/bin/python bench/analytics.py --frigate /tmp/frigate  # + Frigate side by side
    .venv/bin/python bench/analytics.py --only motion,detect    # a subset

Sections (``--only``):

``motion``   per-frame cost of Vigil's motion detector at 640x360, beside Frigate's
             ``ImprovedMotionDetector`` on the same frames in the same process (interleaved
             frame by frame, so machine load hits both alike), and recall on scenes with a
             sprite of known position moving over real footage (vtest, tree).
``detect``   detector milliseconds per analysed frame: HOG on motion crops (as the pipeline
             runs it) and on the full frame; ONNX Runtime with a synthetic YOLO-shaped model
             built here with ``onnx.helper`` (or a real one with ``--onnx-model``).
``cameras``  the recorder in a subprocess with N simulated vtest cameras, analytics and
             recording on; a camera is sustained when it is analysed at >= 4.5 fps and its
             recording lost no packet.
``latency``  one simulated camera whose clip shows the empty hall, then people at a known
             frame; time from that frame's ingest wall time to the ``vigil/events`` message
             at a subscriber of a real Mosquitto on a free loopback port.

Frigate's code is not part of Vigil: ``--frigate PATH`` points at a checkout of
github.com/blakeblackshear/frigate (only ``frigate/motion/`` and
``frigate/config/camera/motion.py`` are read), its ``ImprovedMotionDetector`` is loaded
from there at run time, and the few modules it imports that are irrelevant to motion
(PTZ metrics, runtime config, an OpenCV-version shim) are replaced by stubs defined in this
file. It needs SciPy (``gaussian_filter``), which Vigil does not depend on: install it into
any directory and put that on ``--extra-path``.

Everything measured is on loopback; every process started here is stopped here.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import contextlib
import dataclasses
import importlib.util
import json
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "src") not in sys.path:
    sys.path.insert(0, str(REPO / "src"))

from vigil.analytics.detect.opencv import HogPeopleDetector  # noqa: E402
from vigil.analytics.frames import AnalysisFrame  # noqa: E402
from vigil.analytics.geometry import Box  # noqa: E402
from vigil.analytics.motion import MotionDetector  # noqa: E402
from vigil.analytics.pipeline import AnalyticsPipeline, PipelineConfig  # noqa: E402

Image = npt.NDArray[np.uint8]

DATA = Path("/usr/share/doc/opencv-doc/examples/data")
VTEST = DATA / "vtest.avi"
TREE = DATA / "tree.avi"
W, H = 640, 360  # analysis size (the sink scales the substream to 640 wide)
SECTIONS = ("motion", "detect", "cameras", "latency")


# ------------------------------------------------------------------------------ utilities


def out(line: str = "") -> None:
    print(line, flush=True)


def load_avg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def machine() -> str:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            mem = int(line.split()[1]) // (1024 * 1024)
    return (
        f"{model or platform.processor()}, {os.cpu_count()} cores, {mem} GiB, {platform.system()}"
    )


def pct(values: Sequence[float], q: float) -> float:
    """Percentile by linear interpolation (q in 0..100)."""
    if not values:
        return float("nan")
    return float(np.percentile(np.asarray(values, np.float64), q))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    out("| " + " | ".join(headers) + " |")
    out("|" + "|".join("---" for _ in headers) + "|")
    for r in rows:
        out("| " + " | ".join(str(c) for c in r) + " |")
    out()


def cover_crop(img: Image, w: int = W, h: int = H) -> Image:
    """Scale to cover w x h and crop the centre (what the simulator does to footage)."""
    ih, iw = img.shape[:2]
    s = max(w / iw, h / ih)
    nw, nh = max(w, round(iw * s)), max(h, round(ih * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    r = cv2.resize(img, (nw, nh), interpolation=interp)
    x0, y0 = (nw - w) // 2, (nh - h) // 2
    return np.ascontiguousarray(r[y0 : y0 + h, x0 : x0 + w])


def footage(path: Path, fps: float = 5.0, limit: int = 10_000) -> list[Image]:
    """Frames of a real clip sampled at ``fps`` (sample and hold: a clip with gaps between
    its frames, like tree.avi, repeats the previous frame, as the simulator's resampling
    does), covered/cropped to 640x360 BGR."""
    import av

    frames: list[Image] = []
    period = 1.0 / fps
    slot = 0.0
    cur: Any = None
    cur_img: Image | None = None
    with av.open(str(path)) as c:
        for fr in c.decode(video=0):
            t = float(fr.time or 0.0)
            while cur is not None and slot < t - 1e-6 and len(frames) < limit:
                if cur_img is None:
                    cur_img = cover_crop(cur.to_ndarray(format="bgr24"))
                frames.append(cur_img)
                slot += period
            cur, cur_img = fr, None
            if len(frames) >= limit:
                break
    if cur is not None and len(frames) < limit:
        frames.append(cover_crop(cur.to_ndarray(format="bgr24")))
    return frames


def fmt(x: float, nd: int = 2) -> str:
    return "n/a" if math.isnan(x) else f"{x:.{nd}f}"


# ------------------------------------------------------------- Frigate loading harness
#
# Nothing below is Frigate code: these are stand-ins for the modules that
# frigate/motion/improved_motion.py imports but does not need for plain motion detection.


class _FrigateMotionConfigStub:
    """Attributes ImprovedMotionDetector reads from its RuntimeMotionConfig. The values
    are Frigate's defaults, read from the checkout's frigate/config/camera/motion.py."""

    def __init__(self, defaults: dict[str, Any], frame_shape: tuple[int, int]) -> None:
        for k, v in defaults.items():
            setattr(self, k, v)
        # no motion mask: every pixel analysed (255 = keep in Frigate's rasterized mask)
        self.rasterized_mask = np.full(frame_shape, 255, np.uint8)


FRIGATE_FALLBACK_DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "threshold": 30,
    "lightning_threshold": 0.8,
    "skip_motion_threshold": None,
    "improve_contrast": True,
    "contour_area": 10,
    "delta_alpha": 0.2,
    "frame_alpha": 0.01,
    "frame_height": 100,
}


def frigate_motion_defaults(checkout: Path) -> dict[str, Any]:
    """``Field(default=<literal>)`` values of Frigate's MotionConfig, parsed (not run)."""
    src = checkout / "frigate" / "config" / "camera" / "motion.py"
    found: dict[str, Any] = {}
    try:
        tree = ast.parse(src.read_text())
    except (OSError, SyntaxError):
        return dict(FRIGATE_FALLBACK_DEFAULTS)
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "MotionConfig":
            for st in node.body:
                if not (isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name)):
                    continue
                call = st.value
                if isinstance(call, ast.Call):
                    for kw in call.keywords:
                        if kw.arg == "default":
                            with contextlib.suppress(ValueError):
                                found[st.target.id] = ast.literal_eval(kw.value)
    return {k: found.get(k, v) for k, v in FRIGATE_FALLBACK_DEFAULTS.items()}


def load_frigate(checkout: Path) -> tuple[type, dict[str, Any], str]:
    """Frigate's ImprovedMotionDetector class, its config defaults and the commit."""
    motion_dir = checkout / "frigate" / "motion"
    target = motion_dir / "improved_motion.py"
    if not target.is_file():
        raise SystemExit(f"--frigate {checkout}: {target} not found")

    def stub(name: str, **attrs: Any) -> types.ModuleType:
        mod = types.ModuleType(name)
        mod.__dict__.update(attrs)
        if "." not in name or attrs.get("__path__") is not None:
            mod.__path__ = []  # a package, so submodules resolve through sys.modules
        sys.modules[name] = mod
        return mod

    def first_contours(result: tuple[Any, ...]) -> Any:  # OpenCV 4 returns (contours, h)
        return result[0] if len(result) == 2 else result[1]

    stub("frigate")
    stub("frigate.camera", PTZMetrics=object)
    stub("frigate.config", __path__=[], MotionConfig=object)
    stub("frigate.config.config", RuntimeMotionConfig=object)
    stub("frigate.util", __path__=[])
    stub("frigate.util.image", grab_cv2_contours=first_contours)
    # frigate.motion is Frigate's own package (the MotionDetector ABC), loaded from the checkout
    for modname, path, pkg in (
        ("frigate.motion", motion_dir / "__init__.py", True),
        ("frigate.motion.improved_motion", target, False),
    ):
        spec = importlib.util.spec_from_file_location(
            modname, path, submodule_search_locations=[str(motion_dir)] if pkg else None
        )
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[modname] = mod
        try:
            spec.loader.exec_module(mod)
        except ModuleNotFoundError as exc:
            raise SystemExit(
                f"loading Frigate's motion detector needs {exc.name!r} "
                "(pip install --target DIR scipy, then --extra-path DIR)"
            ) from exc
    commit = "unknown"
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        commit = subprocess.run(
            ["git", "-C", str(checkout), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    stamp = checkout / ".frigate-commit"  # written by whoever exported a bare mirror
    if commit in ("", "unknown") and stamp.is_file():
        commit = stamp.read_text().strip()[:12]
    cls = sys.modules["frigate.motion.improved_motion"].ImprovedMotionDetector
    return cls, frigate_motion_defaults(checkout), commit


class FrigateMotion:
    """Adapter: Frigate's detector on the luma plane, boxes normalized like Vigil's."""

    def __init__(self, cls: type, defaults: dict[str, Any], w: int = W, h: int = H) -> None:
        self.w, self.h = w, h
        cfg = _FrigateMotionConfigStub(defaults, (h, w))
        self.det = cls((h, w), cfg, 5)

    def detect_raw(self, gray: Image) -> list[tuple[int, int, int, int]]:
        return list(self.det.detect(gray))

    def boxes(self, raw: list[tuple[int, int, int, int]]) -> list[Box]:
        return [
            Box(x1 / self.w, y1 / self.h, min(1.0, x2 / self.w), min(1.0, y2 / self.h))
            for x1, y1, x2, y2 in raw
        ]


# ------------------------------------------------------------------- 1. motion section


@dataclass
class Scene:
    name: str
    frames: list[Image]  # backgrounds, one per analysed frame (or one, repeated)
    size: tuple[float, float]  # sprite width, height (fraction of frame)
    start: tuple[float, float]
    end: tuple[float, float]
    steps: int
    contrast: int | None = None  # sprite gray = local background + contrast (None: dark)
    noise: int = 0  # +- sensor noise added to every frame


def sprite(h: int, w: int, color: tuple[int, int, int]) -> Image:
    """A person-sized textured rectangle: body, a lighter head, a little texture."""
    rng = np.random.default_rng(7)
    tex = np.empty((h, w, 3), np.uint8)
    tex[:] = color
    jitter = rng.integers(-6, 7, (h, w, 1))
    tex = np.clip(tex.astype(np.int16) + jitter, 0, 255).astype(np.uint8)
    head = tuple(min(255, c + 40) for c in color)
    cv2.ellipse(tex, (w // 2, h // 8), (max(2, w // 4), max(2, h // 10)), 0, 0, 360, head, -1)
    return tex


def render_scene(sc: Scene, still: int = 150) -> tuple[list[Image], list[tuple[int, ...] | None]]:
    """Frames and the sprite's pixel box per frame (None while it is off screen).
    ``still`` frames without the sprite come first, for both detectors to learn."""
    rng = np.random.default_rng(3)
    n = still + sc.steps
    sw, sh = round(sc.size[0] * W), round(sc.size[1] * H)
    frames: list[Image] = []
    boxes: list[tuple[int, ...] | None] = []
    for i in range(n):
        bg = sc.frames[i % len(sc.frames)].copy()
        box: tuple[int, ...] | None = None
        if i >= still:
            k = (i - still) / max(1, sc.steps - 1)
            cx = (sc.start[0] + (sc.end[0] - sc.start[0]) * k) * W
            by = (sc.start[1] + (sc.end[1] - sc.start[1]) * k) * H
            x1, y1 = round(cx - sw / 2), round(by - sh)
            if x1 >= 0 and y1 >= 0 and x1 + sw <= W and y1 + sh <= H:
                if sc.contrast is None:
                    color = (25, 25, 35)
                else:
                    local = bg[y1 : y1 + sh, x1 : x1 + sw].reshape(-1, 3).mean(axis=0)
                    color = tuple(int(np.clip(c + sc.contrast, 0, 255)) for c in local)
                bg[y1 : y1 + sh, x1 : x1 + sw] = sprite(sh, sw, color)  # type: ignore[arg-type]
                box = (x1, y1, x1 + sw, y1 + sh)
        if sc.noise:
            bg = np.clip(
                bg.astype(np.int16) + rng.integers(-sc.noise, sc.noise + 1, bg.shape), 0, 255
            )
            bg = bg.astype(np.uint8)
        frames.append(bg)
        boxes.append(box)
    return frames, boxes


def coverage(boxes: Sequence[Box], target: tuple[int, ...]) -> tuple[float, float]:
    """(fraction of the target covered by the union of boxes, motion area outside it as a
    fraction of the frame)."""
    mask = np.zeros((H, W), np.uint8)
    for b in boxes:
        x1, y1, x2, y2 = b.to_pixels(W, H)
        mask[max(0, y1) : y2, max(0, x1) : x2] = 1
    x1, y1, x2, y2 = target
    inside = float(mask[y1:y2, x1:x2].mean())
    outside = (int(mask.sum()) - int(mask[y1:y2, x1:x2].sum())) / (W * H)
    return inside, outside


def empty_hall(frames: Sequence[Image]) -> Image:
    """The vtest hall without people: the per-pixel median over the whole clip."""
    stack = np.stack(frames[:: max(1, len(frames) // 60)])
    return np.median(stack, axis=0).astype(np.uint8)


def build_scenes(vtest: list[Image], tree: list[Image]) -> list[Scene]:
    hall = empty_hall(vtest)
    live_v = vtest[40:]
    return [
        Scene(
            "hall, person-size, walk", [hall], (0.06, 0.30), (0.1, 0.95), (0.9, 0.90), 25, noise=3
        ),
        Scene(
            "hall, far/small (14x36 px)",
            [hall],
            (0.022, 0.10),
            (0.15, 0.45),
            (0.85, 0.45),
            30,
            noise=3,
        ),
        Scene(
            "hall, low contrast (+18)",
            [hall],
            (0.06, 0.30),
            (0.9, 0.95),
            (0.1, 0.90),
            25,
            contrast=18,
            noise=3,
        ),
        Scene("hall, tiny (9x22 px)", [hall], (0.014, 0.06), (0.2, 0.5), (0.8, 0.5), 25, noise=3),
        Scene(
            "hall, low contrast (+12)",
            [hall],
            (0.06, 0.30),
            (0.1, 0.95),
            (0.9, 0.90),
            25,
            contrast=12,
            noise=3,
        ),
        Scene(
            "hall, slow (2 px/frame)", [hall], (0.06, 0.30), (0.45, 0.9), (0.52, 0.9), 25, noise=3
        ),
        Scene("vtest live, person-size", live_v, (0.06, 0.30), (0.1, 0.6), (0.9, 0.55), 25),
        Scene("tree live (wind), person-size", tree, (0.06, 0.30), (0.9, 0.95), (0.1, 0.95), 25),
        Scene(
            "tree live, low contrast (+25)",
            tree,
            (0.06, 0.30),
            (0.1, 0.95),
            (0.9, 0.95),
            25,
            contrast=25,
        ),
    ]


def bench_motion(args: argparse.Namespace, results: dict[str, Any]) -> None:
    out("## 1. Motion detection at 640x360")
    out()
    vtest = footage(VTEST, fps=5)
    tree = footage(TREE, fps=5)
    frigate = None
    if args.frigate:
        for p in args.extra_path:
            sys.path.insert(0, p)
        cls, defaults, commit = load_frigate(Path(args.frigate))
        frigate = (cls, defaults)
        out(
            f"Frigate `ImprovedMotionDetector` from {args.frigate} (commit {commit}), its "
            f"default config: {defaults}"
        )
    else:
        out(
            "Frigate comparison SKIPPED: no --frigate PATH given (a checkout of "
            "github.com/blakeblackshear/frigate)."
        )
    out()
    cv2.setNumThreads(1)  # cost per frame on one core: what N cameras add up to
    cost_frames = vtest[:150] + tree[:75]
    reps = args.motion_reps
    t_vb: list[float] = []
    t_vg: list[float] = []
    t_fg: list[float] = []
    perf = time.perf_counter_ns
    for rep in range(reps):
        vb, vg = MotionDetector(), MotionDetector()
        fd = FrigateMotion(*frigate) if frigate else None
        for i, img in enumerate(cost_frames):
            gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
            order = (0, 1, 2) if (i + rep) % 2 == 0 else (2, 1, 0)
            for which in order:
                if which == 0:
                    t0 = perf()
                    vb.detect(img)
                    t_vb.append((perf() - t0) / 1e6)
                elif which == 1:
                    t0 = perf()
                    vg.detect(gray)
                    t_vg.append((perf() - t0) / 1e6)
                elif fd is not None:
                    t0 = perf()
                    fd.detect_raw(gray)
                    t_fg.append((perf() - t0) / 1e6)
    cv2.setNumThreads(-1)
    rows = [
        [
            "Vigil `MotionDetector`, BGR frame (as the pipeline calls it)",
            fmt(statistics.median(t_vb), 3),
            fmt(pct(t_vb, 90), 3),
            fmt(statistics.mean(t_vb), 3),
            "320x180",
        ],
        [
            "Vigil `MotionDetector`, luma plane",
            fmt(statistics.median(t_vg), 3),
            fmt(pct(t_vg, 90), 3),
            fmt(statistics.mean(t_vg), 3),
            "320x180",
        ],
    ]
    res: dict[str, Any] = {
        "vigil_bgr_ms": statistics.median(t_vb),
        "vigil_gray_ms": statistics.median(t_vg),
    }
    if t_fg:
        fh = frigate[1]["frame_height"] if frigate else 100
        rows.append(
            [
                "Frigate `ImprovedMotionDetector`, luma plane (its input)",
                fmt(statistics.median(t_fg), 3),
                fmt(pct(t_fg, 90), 3),
                fmt(statistics.mean(t_fg), 3),
                f"{fh * W // H}x{fh}",
            ]
        )
        res["frigate_ms"] = statistics.median(t_fg)
        res["speedup_bgr"] = statistics.median(t_fg) / statistics.median(t_vb)
        res["speedup_gray"] = statistics.median(t_fg) / statistics.median(t_vg)
    out(
        f"Cost per frame, {len(cost_frames)} frames (150 vtest + 75 tree at 5 fps) x {reps} "
        "passes, detectors interleaved frame by frame, OpenCV on 1 thread:"
    )
    out()
    table(["detector", "median ms", "p90 ms", "mean ms", "works at"], rows)
    if t_fg:
        out(
            f"Speed-up (Frigate median / Vigil median): **{res['speedup_bgr']:.1f}x** on BGR "
            f"input, **{res['speedup_gray']:.1f}x** on the luma plane."
        )
        out()

    scenes = build_scenes(vtest, tree)
    srows = []
    srec: list[dict[str, Any]] = []
    for sc in scenes:
        frames, truth = render_scene(sc)
        vd = MotionDetector()
        fd = FrigateMotion(*frigate) if frigate else None
        v_hits = f_hits = n = 0
        v_out: list[float] = []
        f_out: list[float] = []
        for img, box in zip(frames, truth, strict=True):
            vb = vd.detect(img).boxes
            fb = fd.boxes(fd.detect_raw(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))) if fd else []
            if box is None:
                continue
            n += 1
            cov, outside = coverage(vb, box)
            v_hits += cov >= 0.5
            v_out.append(outside)
            if fd:
                cov, outside = coverage(fb, box)
                f_hits += cov >= 0.5
                f_out.append(outside)
        row = [sc.name, n, f"{v_hits / n:.0%}", f"{statistics.mean(v_out):.1%}"]
        rec = {"scene": sc.name, "frames": n, "vigil_recall": v_hits / n}
        if fd:
            row += [f"{f_hits / n:.0%}", f"{statistics.mean(f_out):.1%}"]
            rec["frigate_recall"] = f_hits / n
        srows.append(row)
        srec.append(rec)
    headers = ["scene", "frames with object", "Vigil recall", "Vigil other motion"]
    if frigate:
        headers += ["Frigate recall", "Frigate other motion"]
    out(
        "Recall: a sprite of known box moves over real frames (150 frames = 30 s without "
        "it first: Frigate needs ~110 "
        "frames to settle after start-up, its contrast history and 0.01 background rate); "
        "a frame counts when the union of motion boxes covers >= 50 % of the sprite's box. "
        "'other motion' = mean area of motion boxes outside the sprite, as a fraction of the "
        "frame (on live footage it includes the real people/leaves moving):"
    )
    out()
    table(headers, srows)
    res["scenes"] = srec
    if frigate:
        v_total = sum(r["vigil_recall"] * r["frames"] for r in srec)
        f_total = sum(r["frigate_recall"] * r["frames"] for r in srec)
        nn = sum(r["frames"] for r in srec)
        res["vigil_recall_all"] = v_total / nn
        res["frigate_recall_all"] = f_total / nn
        res["worse_scenes"] = [r["scene"] for r in srec if r["vigil_recall"] < r["frigate_recall"]]
        out(f"All scenes: Vigil recall {v_total / nn:.1%}, Frigate {f_total / nn:.1%}.")
        out()
    results["motion"] = res


# ----------------------------------------------------------------- 2. detector section


def build_synthetic_yolo(
    path: Path, size: int = 640, classes: int = 80, class_bias: float = 0.0
) -> float:
    """A YOLOv8-shaped ONNX model with random weights: input (1, 3, size, size), output
    (1, 4 + classes, anchors) from three strided heads (8, 16, 32) like the real thing.
    Returns its GFLOPs. It detects nothing meaningful: it measures pre-processing, ONNX
    Runtime and post-processing around a small network, a LOWER bound for a real model."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits: list[Any] = []
    nodes: list[Any] = []
    flops = 0.0

    def conv(x: str, cin: int, cout: int, k: int, stride: int, hw: int, name: str) -> str:
        nonlocal flops
        wt = (rng.standard_normal((cout, cin, k, k)) / math.sqrt(cin * k * k)).astype(np.float32)
        inits.append(numpy_helper.from_array(wt, f"{name}_w"))
        inits.append(numpy_helper.from_array(np.zeros(cout, np.float32), f"{name}_b"))
        nodes.append(
            helper.make_node(
                "Conv",
                [x, f"{name}_w", f"{name}_b"],
                [f"{name}_c"],
                kernel_shape=[k, k],
                strides=[stride, stride],
                pads=[k // 2] * 4,
            )
        )
        flops += 2.0 * cout * cin * k * k * hw * hw
        nodes.append(helper.make_node("Relu", [f"{name}_c"], [name]))
        return name

    x = conv("images", 3, 16, 3, 2, size // 2, "s1")
    x = conv(x, 16, 32, 3, 2, size // 4, "s2")
    heads = []
    chans = 32
    for level, stride in enumerate((8, 16, 32)):
        hw = size // stride
        x = conv(x, chans, chans * 2, 3, 2, hw, f"b{level}")
        chans *= 2
        no = 4 + classes
        wt = (rng.standard_normal((no, chans, 1, 1)) / math.sqrt(chans)).astype(np.float32)
        # class logits biased (see calibrate_synthetic) so that about a hundred candidates
        # pass a 0.25 threshold, so NMS has something (but not everything) to sort
        bias = np.concatenate([np.zeros(4), np.full(classes, class_bias)]).astype(np.float32)
        inits += [
            numpy_helper.from_array(wt, f"h{level}_w"),
            numpy_helper.from_array(bias, f"h{level}_b"),
        ]
        nodes.append(helper.make_node("Conv", [x, f"h{level}_w", f"h{level}_b"], [f"h{level}"]))
        flops += 2.0 * no * chans * hw * hw
        inits.append(
            numpy_helper.from_array(np.array([1, no, hw * hw], np.int64), f"h{level}_shape")
        )
        nodes.append(helper.make_node("Reshape", [f"h{level}", f"h{level}_shape"], [f"r{level}"]))
        heads.append(f"r{level}")
    nodes.append(helper.make_node("Concat", heads, ["raw"], axis=2))
    inits.append(numpy_helper.from_array(np.array([4, classes], np.int64), "split"))
    nodes.append(helper.make_node("Split", ["raw", "split"], ["box_raw", "cls_raw"], axis=1))
    inits.append(numpy_helper.from_array(np.array(float(size), np.float32), "scale"))
    nodes.append(helper.make_node("Sigmoid", ["box_raw"], ["box_s"]))
    nodes.append(helper.make_node("Mul", ["box_s", "scale"], ["boxes"]))
    nodes.append(helper.make_node("Sigmoid", ["cls_raw"], ["scores"]))
    nodes.append(helper.make_node("Concat", ["boxes", "scores"], ["output0"], axis=1))
    anchors = sum((size // s) ** 2 for s in (8, 16, 32))
    graph = helper.make_graph(
        nodes,
        "synthetic_yolov8_shape",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 4 + classes, anchors])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    names = {i: ("person" if i == 0 else f"class_{i}") for i in range(classes)}
    entry = model.metadata_props.add()
    entry.key, entry.value = "names", repr(names)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return flops / 1e9


def calibrate_synthetic(path: Path, frame: Image, candidates: int = 100) -> float:
    """Rebuild the synthetic model with a class bias that lets ~``candidates`` anchors of
    ``frame`` pass a 0.25 score (random weights give logits of a tiny spread)."""
    import onnxruntime as ort

    from vigil.analytics.detect.onnx import letterbox

    build_synthetic_yolo(path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    img, _, _, _ = letterbox(frame, 640, 640)
    blob = cv2.dnn.blobFromImage(img, scalefactor=1.0 / 255.0, swapRB=True)
    scores = np.clip(sess.run(None, {"images": blob})[0][0, 4:], 1e-6, 1 - 1e-6)
    best = np.log(scores / (1 - scores)).max(axis=0)
    q = float(np.quantile(best, 1.0 - candidates / best.size))
    bias = math.log(0.25 / 0.75) - q
    return build_synthetic_yolo(path, class_bias=bias)


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall ms, process CPU ms over all threads, result)."""
    c0, t0 = time.process_time_ns(), time.perf_counter_ns()
    r = fn()
    return (time.perf_counter_ns() - t0) / 1e6, (time.process_time_ns() - c0) / 1e6, r


@dataclass
class DetStat:
    name: str
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    crops: list[int] = field(default_factory=list)
    ran: int = 0
    frames: int = 0
    found: int = 0  # calls that returned at least one detection

    def row(self, note: str) -> list[str]:
        mean_wall = sum(self.wall) / max(1, self.frames)  # frames without regions cost 0
        mean_cpu = sum(self.cpu) / max(1, self.frames)
        return [
            self.name,
            f"{self.ran}/{self.frames}",
            str(self.found),
            fmt(statistics.median(self.wall), 1) if self.wall else "-",
            fmt(pct(self.wall, 90), 1) if self.wall else "-",
            fmt(mean_wall, 1),
            fmt(mean_cpu, 1),
            note,
        ]


def run_pipeline_detectors(
    variants: Sequence[tuple[str, Any]], frames: Sequence[Image]
) -> list[DetStat]:
    """Detectors as the pipeline runs them, on motion (and predicted track) regions; one
    pipeline per variant, all fed the same frame in turn (order alternating), so that a
    change of machine load hits every variant alike."""
    stats: list[DetStat] = []
    pipes: list[AnalyticsPipeline] = []
    for name, detector in variants:
        st = DetStat(name)

        def wrapped(
            frame: Image, regions: Sequence[Box] | None = None, st: DetStat = st, d: Any = detector
        ) -> Any:
            wall, cpu, r = timed(lambda: d.detect(frame, regions))
            st.wall.append(wall)
            st.cpu.append(cpu)
            st.ran += 1
            st.crops.append(getattr(d, "last_crops", 1))
            st.found += bool(r)
            return r

        pipe = AnalyticsPipeline(PipelineConfig("bench"), types.SimpleNamespace(detect=wrapped))  # type: ignore[arg-type]
        stats.append(st)
        pipes.append(pipe)
    for i, img in enumerate(frames):
        order = list(range(len(pipes)))
        if i % 2:
            order.reverse()
        for k in order:
            pipes[k].process(AnalysisFrame(i, i, i / 5.0, img))
            stats[k].frames += 1
    return stats


def hog_quality(variants: Sequence[tuple[str, dict[str, Any]]]) -> list[list[str]]:
    """Line counting on the whole of vtest at 640x480 (as tests/analytics does), against
    the hand-made ground truth in tests/data/analytics: does a cheaper HOG set-up still
    count people right? All variants get the same frame in turn."""
    from vigil.analytics.zones import Line

    truth = json.loads((REPO / "tests/data/analytics/vtest_line_ground_truth.json").read_text())
    ln = truth["line"]
    line = Line(ln["name"], tuple(ln["p1"]), tuple(ln["p2"]), anchor=ln["anchor"])
    frames = footage_plain(VTEST, 640)
    pipes = [
        AnalyticsPipeline(PipelineConfig("q", lines=(line,)), HogPeopleDetector(**kw))
        for _, kw in variants
    ]
    crossings: list[list[Any]] = [[] for _ in pipes]
    cpu = [0.0 for _ in pipes]
    for i, img in enumerate(frames):
        fr = AnalysisFrame(i, i, i / 5.0, img)
        for k in range(len(pipes)) if i % 2 == 0 else reversed(range(len(pipes))):
            _, c, r = timed(lambda k=k, fr=fr: pipes[k].process(fr))
            cpu[k] += c
            crossings[k] += r.crossings
    gt = truth["totals"]
    total = gt["a_to_b"] + gt["b_to_a"]
    rows = []
    for k, (name, _) in enumerate(variants):
        pipes[k].flush()
        counted = pipes[k].line_counts[ln["name"]]
        err = (
            abs(counted.get("a_to_b", 0) - gt["a_to_b"])
            + abs(counted.get("b_to_a", 0) - gt["b_to_a"])
        ) / total
        unmatched = [(c["frame"], c["direction"]) for c in truth["crossings"]]
        matched = 0
        for c in crossings[k]:
            for j, (frame, direction) in enumerate(unmatched):
                if direction == c.direction and abs(frame / truth["video_fps"] - c.time) <= 1.5:
                    unmatched.pop(j)
                    matched += 1
                    break
        rows.append([name, f"{err:.0%}", f"{matched}/{total}", f"{cpu[k] / len(frames):.1f}"])
    return rows


def footage_plain(path: Path, width: int) -> list[Image]:
    """All frames at 5 fps scaled to ``width`` keeping the aspect (like FrameSource)."""
    from vigil.analytics.frames import FrameSource

    with FrameSource(path, target_fps=5, width=width, drop_policy="block") as src:
        return [f.image for f in src]


def run_full_frame(name: str, detector: Any, frames: Sequence[Image]) -> DetStat:
    st = DetStat(name)
    for img in frames:
        wall, cpu, r = timed(lambda img=img: detector.detect(img, None))
        st.found += bool(r)
        st.wall.append(wall)
        st.cpu.append(cpu)
        st.ran += 1
        st.frames += 1
    return st


def bench_detect(args: argparse.Namespace, results: dict[str, Any]) -> None:
    from vigil.analytics.detect.onnx import OnnxYoloDetector

    out("## 2. Detector cost per analysed frame (640x360)")
    out()
    vtest = footage(VTEST, fps=5)[:150]
    tree = footage(TREE, fps=5)[:100]
    full = vtest[::5][:30]
    stats: list[tuple[DetStat, str]] = []
    hog = HogPeopleDetector()
    for _ in range(3):  # warm-up: OpenCV allocations, HOG descriptor tables
        hog.detect(vtest[0], None)
    hog_variants = [
        ("HOG on motion crops (vtest: people walking)", hog),
        (
            "before 2026-12-07: HOG crops, pyramid step 1.05, colour",
            HogPeopleDetector(scale=1.05, gray=False),
        ),
        ("what-if: HOG crops, step 1.1, colour", HogPeopleDetector(gray=False)),
        ("what-if: HOG crops, step 1.05, gray", HogPeopleDetector(scale=1.05)),
        ("what-if: HOG crops, no padding", HogPeopleDetector(padding=0)),
    ]
    for st in run_pipeline_detectors(hog_variants, vtest):
        stats.append((st, f"{statistics.mean(st.crops):.1f} crops/call"))
    (st,) = run_pipeline_detectors([("HOG on motion crops (tree in the wind)", hog)], tree)
    stats.append((st, f"{statistics.mean(st.crops) if st.crops else 0:.1f} crops/call"))
    stats.append((run_full_frame("HOG full frame (reference)", hog, full), "640x360, 1 call"))

    quality = hog_quality(
        [
            ("HOG default (pyramid step 1.1, gray, max upscale 2)", {}),
            ("before 2026-12-07: step 1.05, colour", {"scale": 1.05, "gray": False}),
            ("step 1.1, colour", {"gray": False}),
            ("step 1.05, gray", {"scale": 1.05}),
            ("no padding", {"padding": 0}),
            ("max upscale 1.5", {"max_scale": 1.5}),
        ]
    )
    tmp = Path(tempfile.mkdtemp(prefix="vigil-bench-onnx-"))
    try:
        synth = tmp / "synthetic_yolov8_shape.onnx"
        gflops = calibrate_synthetic(synth, vtest[0])
        models: list[tuple[str, Path, str]] = [
            ("ONNX synthetic YOLO-shaped", synth, f"SYNTHETIC {gflops:.2f} GFLOPs, 640x640 in"),
        ]
        if args.onnx_model:
            models.append(
                ("ONNX " + Path(args.onnx_model).name, Path(args.onnx_model), "real model")
            )
        for label, path, note in models:
            det = OnnxYoloDetector(path, intra_op_threads=1)
            for _ in range(3):
                det.detect(vtest[0], None)
            stats.append((run_full_frame(f"{label}, full frame", det, full), note))
            (st,) = run_pipeline_detectors([(f"{label}, motion crop (vtest)", det)], vtest)
            stats.append((st, note + "; one letterboxed crop"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out(
        "HOG with OpenCV's default threading (as in the recorder, both cores may be used); "
        "ONNX Runtime with 1 intra-op thread (as `build_detector` configures it). "
        "'ran' = frames on which the detector was called; 'found a person' = calls that "
        "returned a detection (vtest always has people in view: a crude recall proxy for the "
        "what-if rows, not a quality measure); 'mean per analysed frame' counts "
        "frames without motion as 0 ms, which is what capacity depends on. CPU = process CPU "
        "time (all threads) during the call."
    )
    out()
    table(
        [
            "detector",
            "ran",
            "found a person",
            "median ms/call",
            "p90 ms/call",
            "mean ms per analysed frame",
            "mean CPU ms per analysed frame",
            "notes",
        ],
        [s.row(note) for s, note in stats],
    )
    out(
        "The synthetic model has random weights and ~1/8 of YOLOv8n's compute (8.7 GFLOPs at "
        "640): its numbers are a LOWER bound on pre/post-processing + ONNX Runtime overhead, "
        "not the cost of a real detector. Pass `--onnx-model yolov8n.onnx` for a real one."
    )
    out()
    out(
        "Does a cheaper HOG still count people? Whole vtest (397 frames at 5 fps, 640x480), "
        "the counting line and hand-made ground truth of tests/data/analytics; "
        "error = |a->b miss| + |b->a miss| over the total, matched = hand-noted crossings "
        "found within 1.5 s in the right direction (the tests require <= 10 % and >= 85 %):"
    )
    out()
    table(["detector set-up", "count error", "crossings matched", "pipeline CPU ms/frame"], quality)
    results["detect_quality"] = quality
    results["detect"] = {
        s.name: {
            "ran": s.ran,
            "frames": s.frames,
            "median_ms": statistics.median(s.wall) if s.wall else None,
            "mean_ms_per_frame": sum(s.wall) / max(1, s.frames),
            "mean_cpu_ms_per_frame": sum(s.cpu) / max(1, s.frames),
        }
        for s, _ in stats
    }


# ------------------------------------------------------------ the recorder subprocess
#
# `analytics.py _nvr CONFIG` runs the recorder (vigil.runtime.nvr.NVR) and prints one JSON
# line of statistics every --interval seconds on stdout; it stops cleanly when its stdin
# closes or on SIGTERM. With --trace it also prints one line per analysed frame (the frame
# stamp burnt in by the simulator, read before privacy masks black it out) and one per
# analytics event handed to the notifier, for the latency section.


def nvr_runner(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="analytics.py _nvr")
    p.add_argument("config")
    p.add_argument("--interval", type=float, default=2.0)
    p.add_argument("--trace", action="store_true")
    p.add_argument("--slice-decode", action="store_true")
    p.add_argument("--hog-scale", type=float, help="what-if: HOG pyramid step")
    p.add_argument("--hog-colour", action="store_true", help="what-if: HOG on BGR, not gray")
    p.add_argument(
        "--confirm-hits",
        type=int,
        help="what-if: the tracker's fast_confirm_hits (3 = min_hits for every track, the "
        "rule before 2026-12-07)",
    )
    a = p.parse_args(argv)

    import vigil.runtime.nvr as nvr_mod
    from vigil.analytics.sink import AnalyticsSink
    from vigil.analytics.tracking import Tracker
    from vigil.config.loader import load_config
    from vigil.sim.media import read_stamp
    from vigil.util.log import setup_logging

    setup_logging("WARNING")
    lock = threading.Lock()

    def emit(obj: dict[str, Any]) -> None:
        line = json.dumps(obj, separators=(",", ":"))
        with lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    lags: dict[str, list[float]] = {}  # per camera: analysis lag of each frame since last line

    class BenchSink(AnalyticsSink):
        """Harness only: measures how old each frame is when its analysis ends (``--trace``:
        also logs every frame and event); ``--slice-decode``: what-if without FFmpeg frame
        threading in the analytics decoder."""

        def __init__(self, camera: str, pipeline: Any, **kw: Any) -> None:
            process, on_event = pipeline.process, pipeline.on_event
            mine = lags.setdefault(camera, [])

            def timed_process(frame: AnalysisFrame) -> Any:
                stamp = read_stamp(frame.image) if a.trace else None
                r = process(frame)
                done = time.time()
                with lock:
                    mine.append(done - frame.time)
                if a.trace:
                    emit(
                        {
                            "frame": stamp,
                            "t": frame.time,
                            "done": done,
                            "regions": len(r.regions),
                            "dets": len(r.detections),
                            "detect_ms": round(r.detect_ms, 2),
                            "total_ms": round(r.total_ms, 2),
                        }
                    )
                return r

            def traced_event(ev: Any) -> None:
                if a.trace:
                    emit(
                        {
                            "event": ev.kind,
                            "id": ev.event_id,
                            "start": ev.start_time,
                            "emit": time.time(),
                        }
                    )
                if on_event is not None:
                    on_event(ev)

            pipeline.process = timed_process
            pipeline.on_event = traced_event
            if a.confirm_hits is not None:
                cfg = dataclasses.replace(pipeline.tracker.config, fast_confirm_hits=a.confirm_hits)
                pipeline.tracker = Tracker(cfg)
            super().__init__(camera, pipeline, **kw)

        def _decoder(self, session: Any) -> Any:
            ctx = super()._decoder(session)
            if a.slice_decode:
                ctx.thread_type = "SLICE"
            return ctx

    # The recorder imports the sink lazily (from its module) when it builds a camera's
    # analytics, so the harness replaces it there.
    import vigil.analytics.sink as sink_mod

    sink_mod.AnalyticsSink = BenchSink  # type: ignore[misc]
    if a.hog_scale or a.hog_colour:
        import vigil.analytics.detect.opencv as hog_mod

        what_if: dict[str, Any] = {"scale": a.hog_scale} if a.hog_scale else {}
        if a.hog_colour:
            what_if["gray"] = False

        class WhatIfHog(hog_mod.HogPeopleDetector):
            def __init__(self, **kw: Any) -> None:
                super().__init__(**{**what_if, **kw})

        hog_mod.HogPeopleDetector = WhatIfHog  # type: ignore[misc]

    nvr = nvr_mod.NVR(load_config(a.config))
    nvr.open()
    nvr.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def watch_stdin() -> None:
        with contextlib.suppress(Exception):
            while sys.stdin.readline():
                pass
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    try:
        while not stop.wait(a.interval):
            cams: dict[str, Any] = {}
            for name, unit in nvr.units.items():
                h = unit.reader.health()
                c: dict[str, Any] = {
                    "state": h.state,
                    "packets": h.packets,
                    "ingest_dropped": h.dropped_packets,
                    "reconnects": h.reconnects,
                }
                if unit.recorder is not None:
                    rs = unit.recorder.status()
                    c.update(
                        rec_in=rs.packets_in,
                        rec_written=rs.packets_written,
                        rec_dropped=rs.dropped,
                        rec_state=rs.state,
                    )
                buf = lags.get(name, [])
                with lock:
                    lag = list(buf)
                    buf.clear()
                if lag:
                    c.update(lag_n=len(lag), lag_sum=sum(lag), lag_max=max(lag))
                if unit.analytics is not None:
                    st = unit.analytics.stats
                    c.update(
                        analysed=st.frames_analysed,
                        decoded=st.frames_decoded,
                        an_in=st.packets_in,
                        an_dropped=st.packets_dropped,
                        decode_errors=st.decode_errors,
                    )
                cams[name] = c
            tms = os.times()
            emit({"t": time.time(), "cpu": tms.user + tms.system, "cams": cams})
    finally:
        nvr.stop()
        emit({"stopped": time.time()})
    return 0


class NvrProcess:
    """The runner above as a child process; lines are collected by a reader thread."""

    def __init__(
        self,
        config: Path,
        log: Path,
        *,
        interval: float = 2.0,
        trace: bool = False,
        slice_decode: bool = False,
        extra_args: Sequence[str] = (),
        extra_env: dict[str, str] | None = None,
    ) -> None:
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "_nvr",
            str(config),
            "--interval",
            str(interval),
        ]
        if trace:
            cmd.append("--trace")
        if slice_decode:
            cmd.append("--slice-decode")
        cmd += list(extra_args)
        self.lines: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        self._log = log.open("wb")
        env = {**os.environ, **(extra_env or {})}
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, env=env
        )
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            with contextlib.suppress(ValueError):
                obj = json.loads(raw)
                with self.cond:
                    self.lines.append(obj)
                    self.cond.notify_all()

    def stats_after(self, t: float, timeout: float = 30.0) -> dict[str, Any]:
        """The first statistics line stamped at or after wall time ``t``."""
        deadline = time.monotonic() + timeout + max(0.0, t - time.time())
        with self.cond:
            while True:
                for obj in self.lines:
                    if "cams" in obj and obj["t"] >= t:
                        return obj
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"recorder exited ({self.proc.returncode}), see {self._log.name}"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"no statistics from the recorder, see {self._log.name}")
                self.cond.wait(min(left, 0.5))

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._t.join(5)
        self._log.close()


def proc_cpu_seconds(pid: int | None) -> float:
    """utime + stime of a process (and its reaped children), seconds; 0 if it is gone."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")
    return sum(int(x) for x in fields[11:15]) / tick


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies over all cores, from /proc/stat."""
    vals = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = vals[3] + vals[4]
    return float(sum(vals) - idle), float(sum(vals))


def write_config(path: Path, root: Path, cameras: list[dict[str, Any]], **extra: Any) -> Path:
    import yaml

    data: dict[str, Any] = {
        "storage": {"path": str(root / "store"), "min_free_bytes": 0, "min_free_percent": 0},
        "logging": {"level": "WARNING"},
        "cameras": cameras,
        **extra,
    }
    path.write_text(yaml.safe_dump(data))
    return path


def sim_cache() -> Path:
    from vigil.sim.media import default_cache_dir

    d = default_cache_dir() / "bench-analytics"
    d.mkdir(parents=True, exist_ok=True)
    return d


def ffmpeg_encode_frames(frames: Iterator[Image], out_path: Path, fps: int = 10) -> None:
    """Encode BGR 640x360 frames (near-lossless H.264, constant frame rate) with ffmpeg."""
    tmp = out_path.with_name(out_path.name + ".partial.mp4")
    cmd = [
        "ffmpeg",
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "bgr24",
        "-s",
        f"{W}x{H}",
        "-r",
        str(fps),
        "-i",
        "-",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "12",
        "-pix_fmt",
        "yuv420p",
        "-r",
        str(fps),
        str(tmp),
    ]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    assert proc.stdin is not None
    try:
        for img in frames:
            proc.stdin.write(np.ascontiguousarray(img).tobytes())
    finally:
        proc.stdin.close()
        if proc.wait(600) != 0:
            raise RuntimeError(f"ffmpeg failed encoding {out_path}")
    os.replace(tmp, out_path)


def vtest_offset_sources(n: int, seconds: float) -> list[Path]:
    """vtest at 640x360 10 fps starting at n different offsets, so cameras do not all see
    the same frame at the same moment (cached)."""
    paths = []
    frames: list[Image] | None = None
    span = 79.0 - seconds
    for i in range(n):
        off = round((i * 7.3) % max(1.0, span), 1)
        p = sim_cache() / f"vtest-640x360-10fps-from{off:g}s-{seconds:g}s.mp4"
        if not p.is_file():
            if frames is None:
                frames = footage(VTEST, fps=10)
            k0 = round(off * 10)
            ffmpeg_encode_frames(iter(frames[k0 : k0 + round(seconds * 10)]), p)
        paths.append(p)
    return paths


# ------------------------------------------------------------------ 3. cameras section


def judge(
    s0: dict[str, Any], s1: dict[str, Any], window: list[dict[str, Any]], fps_src: float
) -> list[dict[str, Any]]:
    dt = s1["t"] - s0["t"]
    res = []
    for name in sorted(s1["cams"]):
        a, b = s0["cams"].get(name, {}), s1["cams"][name]
        lag_n = sum(x["cams"].get(name, {}).get("lag_n", 0) for x in window)
        lag_sum = sum(x["cams"].get(name, {}).get("lag_sum", 0.0) for x in window)
        lag_max = max((x["cams"].get(name, {}).get("lag_max", 0.0) for x in window), default=0.0)
        analysed = (b.get("analysed", 0) - a.get("analysed", 0)) / dt
        ingest = (b["packets"] - a["packets"]) / dt
        rec_in = b.get("rec_in", 0) - a.get("rec_in", 0)
        rec_written = b.get("rec_written", 0) - a.get("rec_written", 0)
        dropped = sum(b.get("rec_dropped", {}).values()) - sum(a.get("rec_dropped", {}).values())
        reconnects = b["reconnects"] - a["reconnects"]
        rec_ok = (
            dropped == 0
            and reconnects == 0
            and abs(rec_in - rec_written) <= 2
            and ingest >= 0.95 * fps_src
        )
        res.append(
            {
                "camera": name,
                "analysed_fps": analysed,
                "ingest_fps": ingest,
                "rec_in": rec_in,
                "rec_written": rec_written,
                "rec_dropped": dropped,
                "reconnects": reconnects,
                "an_dropped": b.get("an_dropped", 0) - a.get("an_dropped", 0),
                "recording_ok": rec_ok,
                "sustained": rec_ok and analysed >= 4.5,
                "lag_mean": lag_sum / lag_n if lag_n else float("nan"),
                "lag_max": lag_max,
            }
        )
    return res


def bench_cameras(args: argparse.Namespace, results: dict[str, Any]) -> None:
    from vigil.sim.controller import SimCamera, Simulator

    fps_src = 10.0
    ns = sorted({int(x) for x in args.cameras.split(",")})
    out("## 3. Cameras sustained at 5 analysis fps, recording on")
    out()
    out(
        f"Each camera: vtest footage (people walking) at 640x360, {fps_src:g} fps, H.264 "
        f"{args.cam_kbps} kbit/s, GOP 1 s, a 40 s clip cut at a different offset per camera; "
        "served by the simulator (RTSP over loopback, its own process on the same 2 cores); "
        "recorded (main stream = the 640x360 stream: the recorder does stream copy, so the "
        "resolution hardly changes its cost) with analytics `{enabled: true, fps: 5}` and the "
        "default HOG people detector. Warm-up "
        f"{args.warmup:g} s, then measured over {args.measure:g} s. Sustained = analysed >= 4.5 "
        "fps AND recording lost nothing (no recorder drop, no reconnect, recorder packets in == "
        "written, ingest >= 95 % of the source rate)."
    )
    out()
    sources = vtest_offset_sources(max(ns), 40.0)
    cams = [
        SimCamera(
            f"cam{i + 1:02d}",
            source=str(sources[i]),
            width=W,
            height=H,
            fps=fps_src,
            bitrate_kbps=args.cam_kbps,
            duration=40.0,
        )
        for i in range(max(ns))
    ]
    with Simulator() as sim:  # encode (or find cached) clips before measuring anything
        sim.prepare(cams)
    rows = []
    rec: list[dict[str, Any]] = []
    best = 0
    runs: list[tuple[int, bool]] = [(n, False) for n in ns]
    if args.what_if:
        runs.append((args.what_if_cameras, True))
    whatif_args = ["--hog-scale", "1.05", "--hog-colour", "--confirm-hits", "3"]
    for n, whatif in runs:
        if args.max_busy:
            wait_for_quiet(args.max_busy, args.max_wait)
        work = Path(tempfile.mkdtemp(prefix=f"vigil-bench-cams{n}-"))
        try:
            with Simulator() as sim:
                sim.start(cams[:n])
                cfg = write_config(
                    work / "vigil.yaml",
                    work,
                    [
                        {
                            "name": c.name,
                            "main": {"url": sim.url(c.name)},
                            "analytics": {"enabled": True, "fps": 5},
                        }
                        for c in cams[:n]
                    ],
                )
                nvr = NvrProcess(cfg, work / "nvr.log", extra_args=whatif_args if whatif else ())
                try:
                    t_start = time.time()
                    s0 = nvr.stats_after(t_start + args.warmup)
                    sim0 = proc_cpu_seconds(sim.pid)
                    m0 = machine_busy()
                    load0 = load_avg()
                    profile = None
                    if args.py_spy and n == max(ns) and not whatif:
                        profile = start_py_spy(args.py_spy, nvr.pid, work, args.measure)
                    s1 = nvr.stats_after(s0["t"] + args.measure)
                    sim1 = proc_cpu_seconds(sim.pid)
                    m1 = machine_busy()
                    sim_status = sim.status()
                    if profile is not None:
                        finish_py_spy(profile, results, n)
                finally:
                    nvr.stop()
                    lines = list(nvr.lines)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        dt = s1["t"] - s0["t"]
        window = [x for x in lines if "cams" in x and s0["t"] < x["t"] <= s1["t"]]
        cams_res = judge(s0, s1, window, fps_src)
        ok = sum(r["sustained"] for r in cams_res)
        nvr_cpu = (s1["cpu"] - s0["cpu"]) / dt * 100
        sim_cpu = (sim1 - sim0) / dt * 100
        busy = (m1[0] - m0[0]) / max(1.0, m1[1] - m0[1]) * 100 * (os.cpu_count() or 1)
        others = max(0.0, busy - nvr_cpu - sim_cpu)
        fps_vals = [r["analysed_fps"] for r in cams_res]
        per_cam = nvr_cpu / max(1e-9, sum(fps_vals)) * 5.0  # CPU % per camera at 5 fps
        projected = 200.0 / per_cam if per_cam > 0 else float("nan")
        lag_mean = statistics.mean(r["lag_mean"] for r in cams_res)
        lag_max = max(r["lag_max"] for r in cams_res)
        late = max((c.get("max_late_ms", 0) or 0) for c in sim_status) if sim_status else 0
        if ok == n and not whatif:
            best = max(best, n)
        rows.append(
            [
                f"{n} (what-if: before 2026-12-07: HOG step 1.05, colour; min_hits 3)"
                if whatif
                else n,
                f"{ok}/{n}",
                f"{min(fps_vals):.2f} / {statistics.mean(fps_vals):.2f}",
                "yes" if all(r["recording_ok"] for r in cams_res) else "**NO**",
                sum(r["an_dropped"] for r in cams_res),
                f"{lag_mean:.2f} / {lag_max:.1f}",
                f"{nvr_cpu:.0f}%",
                f"{per_cam:.0f}%",
                f"{projected:.1f}",
                f"{sim_cpu:.0f}%",
                f"{others:.0f}%",
                load0,
            ]
        )
        rec.append(
            {
                "n": n,
                "what_if": whatif,
                "sustained": ok,
                "nvr_cpu_pct": nvr_cpu,
                "cpu_per_camera_5fps_pct": per_cam,
                "projected_idle_cameras": projected,
                "sim_cpu_pct": sim_cpu,
                "others_cpu_pct": others,
                "machine_busy_pct": busy,
                "load": load0,
                "lag_mean_s": lag_mean,
                "lag_max_s": lag_max,
                "cameras": cams_res,
                "sim_max_late_ms": late,
            }
        )
        out(
            f"  N={n}: {ok}/{n} sustained, analysed fps min {min(fps_vals):.2f}, "
            f"recorder CPU {nvr_cpu:.0f}%, others {others:.0f}%, load {load0}"
        )
    out()
    table(
        [
            "cameras",
            "sustained",
            "analysed fps min / mean",
            "recording lost nothing",
            "analytics packets dropped (whole GOPs)",
            "analysis lag s mean / max",
            "recorder CPU (of 200%)",
            "recorder CPU per camera at 5 fps",
            "cameras on 2 idle cores (linear projection)",
            "simulator CPU",
            "other users' CPU",
            "load avg before",
        ],
        rows,
    )
    out(
        "Analysis lag = wall time when a frame's analysis ended - its ingest wall time. "
        "'other users' = machine busy time (/proc/stat) minus recorder and simulator: "
        "the machine is shared, and what others use is not available to the recorder. "
        "The projection divides 200 % by the recorder's CPU per camera analysed at 5 fps "
        "(linear; it ignores contention, so it is optimistic once cores are saturated)."
    )
    out()
    out(f"Largest N with every camera sustained: **{best}**.")
    out()
    results["cameras"] = {"runs": rec, "best": best}


def wait_for_quiet(max_busy: float, max_wait: float) -> None:
    """Wait (at most ``max_wait`` s) until the machine is less than ``max_busy`` % busy
    (of 100 % per core) over 3 s: the runs of other people on a shared machine."""
    deadline = time.monotonic() + max_wait
    while True:
        b0 = machine_busy()
        time.sleep(3)
        b1 = machine_busy()
        busy = (b1[0] - b0[0]) / max(1.0, b1[1] - b0[1]) * 100 * (os.cpu_count() or 1)
        if busy <= max_busy:
            return
        if time.monotonic() > deadline:
            out(f"  (machine still {busy:.0f}% busy after waiting {max_wait:g} s: going on)")
            return


def start_py_spy(binary: str, pid: int, work: Path, seconds: float) -> tuple[Any, Path]:
    raw = work / "py-spy.txt"
    proc = subprocess.Popen(
        [
            binary,
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--duration",
            str(max(5, int(seconds) - 5)),
            "--rate",
            "50",
            "--threads",
            "--nonblocking",
            "--output",
            str(raw),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, raw


def finish_py_spy(profile: tuple[Any, Path], results: dict[str, Any], n: int) -> None:
    proc, raw = profile
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.terminate()
        proc.wait(10)
    if not raw.is_file():
        out("  (py-spy produced no profile)")
        return
    leaf: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        c = int(count)
        frames = stack.split(";")
        if any(
            "wait (threading.py" in f or "select" in f or "_wait_for_tstate_lock" in f
            for f in frames[-2:]
        ):
            continue  # idle threads
        total += c
        leaf[frames[-1]] = leaf.get(frames[-1], 0) + c
        for f in set(frames):
            key = f.split(" (")[0]
            incl[key] = incl.get(key, 0) + c
    top_leaf = sorted(leaf.items(), key=lambda kv: -kv[1])[:15]
    interesting = [
        "detect",
        "_hog_rects",
        "process",
        "_run",
        "to_ndarray",
        "decode",
        "_prepare",
        "packet",
        "write",
        "update",
        "apply",
    ]
    top_incl = sorted(
        ((k, v) for k, v in incl.items() if any(s in k for s in interesting)), key=lambda kv: -kv[1]
    )[:15]
    out(f"  py-spy on the recorder at N={n} (non-idle samples: {total}):")
    for name, c in top_leaf:
        out(f"    self {c / max(1, total):5.1%}  {name}")
    for name, c in top_incl:
        out(f"    incl {c / max(1, total):5.1%}  {name}")
    results.setdefault("profile", {})[n] = {"leaf": top_leaf, "inclusive": top_incl}


# ------------------------------------------------------------------ 4. latency section


class Mosquitto:
    """A private Mosquitto on 127.0.0.1:<free port>; stopped by ``stop``."""

    def __init__(self, workdir: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        conf = workdir / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "persistence false",
            f"log_dest file {workdir / 'mosquitto.log'}",
        ]
        if os.geteuid() == 0:
            lines.append("user root")
        conf.write_text("\n".join(lines) + "\n")
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen(
            [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 5
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("mosquitto exited at start")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("mosquitto did not start") from None
                time.sleep(0.02)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


class Subscriber:
    """Receives a topic in a background asyncio loop; stamps each message on arrival."""

    def __init__(self, port: int, topic: str) -> None:
        self.messages: list[tuple[float, str, bytes]] = []
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._t = threading.Thread(target=asyncio.run, args=(self._run(port, topic),), daemon=True)
        self._t.start()
        if not self.ready.wait(10):
            raise RuntimeError("MQTT subscriber did not connect")

    async def _run(self, port: int, topic: str) -> None:
        import aiomqtt

        async with aiomqtt.Client("127.0.0.1", port) as client:
            await client.subscribe(topic, qos=1)
            self.ready.set()
            while not self._stop.is_set():
                try:
                    async with asyncio.timeout(0.2):
                        msg = await anext(client.messages)
                except TimeoutError:
                    continue
                self.messages.append((time.time(), str(msg.topic), bytes(msg.payload)))  # type: ignore[arg-type]

    def close(self) -> None:
        self._stop.set()
        self._t.join(10)


EPISODE_BG = 51  # frames of empty hall per episode (5.1 s > the tracker's 2 s max_age)
EPISODE_PEOPLE = 50  # frames of people; 101-frame episodes alternate the 5 fps sampling phase
EPISODE_OFFSETS = (5.0, 17.0, 29.0, 41.0, 53.0, 65.0)  # where in vtest each episode's people are
LAT_FPS = 10.0


def latency_clip() -> tuple[Path, list[int], Image]:
    """The empty hall, then (at a known frame) the real vtest people, six times over."""
    vt10 = footage(VTEST, fps=10)
    hall = empty_hall(vt10[::2])
    path = sim_cache() / "latency-hall-then-people-640x360-10fps-v1.mp4"
    appear = [k * (EPISODE_BG + EPISODE_PEOPLE) + EPISODE_BG for k in range(len(EPISODE_OFFSETS))]

    def gen() -> Iterator[Image]:
        for off in EPISODE_OFFSETS:
            for _ in range(EPISODE_BG):
                yield hall
            k0 = round(off * 10)
            yield from vt10[k0 : k0 + EPISODE_PEOPLE]

    if not path.is_file():
        ffmpeg_encode_frames(gen(), path)
    return path, appear, hall


def check_appearance(clip: Path, appear: list[int], hall: Image, strip: float) -> list[int]:
    """Find, in the clip as the simulator serves it, the first frame of each episode that
    differs from the empty hall (below the stamp strip): the true appearance frames."""
    import av

    y0 = math.ceil(strip * H)
    ref = cv2.cvtColor(hall, cv2.COLOR_BGR2GRAY)[y0:].astype(np.int16)
    diffs = []
    with av.open(str(clip)) as c:
        for fr in c.decode(video=0):
            g = fr.to_ndarray(format="gray")[y0:].astype(np.int16)
            diffs.append(float(np.mean(np.abs(g - ref) > 25)))
    found = []
    for f0 in appear:
        lo = max(0, f0 - EPISODE_BG + 5)
        k = next(
            (i for i in range(lo, min(len(diffs), f0 + EPISODE_PEOPLE)) if diffs[i] > 0.002), None
        )
        found.append(k if k is not None else f0)
    return found


def run_latency(
    args: argparse.Namespace, extra_args: Sequence[str] = ()
) -> tuple[list[dict[str, Any]], list[tuple[float, str, bytes]], list[int], int, str]:
    """One recorder run on the latency clip: (trace lines, MQTT messages, appearance frames,
    frames per loop, load average at the end)."""
    from vigil.sim.controller import SimCamera, Simulator
    from vigil.sim.media import stamp_geometry

    src, appear, hall = latency_clip()
    n_frames = len(EPISODE_OFFSETS) * (EPISODE_BG + EPISODE_PEOPLE)
    strip_h, _ = stamp_geometry(W, H)
    strip = (strip_h + 2) / H
    cam = SimCamera(
        "door",
        source=str(src),
        width=W,
        height=H,
        fps=LAT_FPS,
        bitrate_kbps=800,
        duration=n_frames / LAT_FPS,
        stamp=True,
    )
    work = Path(tempfile.mkdtemp(prefix="vigil-bench-latency-"))
    trace: list[dict[str, Any]] = []
    msgs: list[tuple[float, str, bytes]] = []
    load = ""
    try:
        with Simulator() as sim:
            clip = sim.prepare([cam])[0]
            appear = check_appearance(clip.path, appear, hall, strip)
            broker = Mosquitto(work)
            try:
                sub = Subscriber(broker.port, "vigil/events")
                try:
                    sim.start([cam])
                    mask = [[0.0, 0.0], [1.0, 0.0], [1.0, strip], [0.0, strip]]
                    cfg = write_config(
                        work / "vigil.yaml",
                        work,
                        [
                            {
                                "name": "door",
                                "main": {"url": sim.url("door")},
                                "analytics": {"enabled": True, "fps": 5, "privacy_masks": [mask]},
                            }
                        ],
                        events={"mqtt": {"host": "127.0.0.1", "port": broker.port}},
                    )
                    nvr = NvrProcess(cfg, work / "nvr.log", trace=True, extra_args=extra_args)
                    try:
                        seconds = args.latency_loops * n_frames / LAT_FPS + 8
                        out(
                            f"  running {seconds:.0f} s ({args.latency_loops} loops of the "
                            f"{n_frames / LAT_FPS:.1f} s clip, {len(appear)} appearances each"
                            + (f", what-if: {' '.join(extra_args)})" if extra_args else ")")
                        )
                        nvr.stats_after(time.time() + seconds, timeout=seconds + 60)
                        load = load_avg()
                    finally:
                        nvr.stop()
                        trace = list(nvr.lines)
                finally:
                    sub.close()
                    msgs = list(sub.messages)
            finally:
                broker.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return trace, msgs, appear, n_frames, load


def analyse_latency(
    trace: list[dict[str, Any]],
    msgs: list[tuple[float, str, bytes]],
    appear: list[int],
    n_frames: int,
) -> tuple[list[list[str]], dict[str, Any]]:
    frames = [x for x in trace if "frame" in x and x["frame"] is not None]
    events = [x for x in trace if "event" in x]
    if not frames:
        return [], {"error": "no analysed frame carried a readable stamp"}
    # Loop start wall time = frame time - stamp / fps, the MEDIAN over each loop's frames
    # (a new loop begins where the stamp goes back). Not the first frame's: packets that
    # arrive in a burst when the connection opens carry ingest times up to ~100 ms early,
    # which once put every appearance of the first loop late and made the matching below
    # skip the events that had started on the true appearance frame (results before
    # 2026-12-07 reported 1.4 s 'until the first detection' there because of it).
    loops: list[list[float]] = []
    prev = None
    for x in frames:
        f = x["frame"] % n_frames
        if prev is None or f < prev:
            loops.append([])
        loops[-1].append(x["t"] - f / LAT_FPS)
        prev = f
    starts = [statistics.median(v) for v in loops]
    appearances = sorted(ls + f0 / LAT_FPS for ls in starts for f0 in appear)
    first_t, last_t = frames[0]["t"], frames[-1]["t"]
    news = []
    for at, topic, payload in msgs:
        with contextlib.suppress(ValueError, KeyError):
            m = json.loads(payload)
            if topic == "vigil/events" and m["type"] == "new":
                news.append((at, m["after"]["id"], m["after"]["start_us"] / 1e6))
    rows: list[list[str]] = []
    lat: list[float] = []
    parts: dict[str, list[float]] = {
        k: [] for k in ("sample", "detect", "confirm", "lag", "deliver")
    }
    missed = 0
    for a in appearances:
        if a < first_t + 1.0 or a > last_t - EPISODE_PEOPLE / LAT_FPS:
            continue  # before analysis was running, or cut off by the end of the run
        window_end = a + EPISODE_PEOPLE / LAT_FPS + 2.5
        mine = [n for n in news if a - 0.05 <= n[2] <= window_end]
        when = time.strftime("%H:%M:%S", time.localtime(a))
        if not mine:
            missed += 1
            rows.append([when, "missed", "", "", "", "", ""])
            continue
        at, eid, start = min(mine, key=lambda n: n[0])
        first_frame = min((x["t"] for x in frames if x["t"] >= a - 1e-3), default=a)
        emit = min(
            (e["emit"] for e in events if e["id"] == eid and e["event"] == "start"),
            default=float("nan"),
        )
        # the frame whose processing emitted the event: the first one finished after it
        emit_frame = min((x["t"] for x in frames if x["done"] >= emit - 1e-4), default=emit)
        values = {
            "sample": first_frame - a,
            "detect": start - first_frame,
            "confirm": emit_frame - start,
            "lag": emit - emit_frame,
            "deliver": at - emit,
        }
        lat.append(at - a)
        for k, v in values.items():
            parts[k].append(v)
        rows.append(
            [when, f"{round((at - a) * 1000)}", *(f"{round(v * 1000)}" for v in values.values())]
        )
    res: dict[str, Any] = {
        "samples_ms": [x * 1000 for x in lat],
        "missed": missed,
        "p50_ms": statistics.median(lat) * 1000 if lat else None,
        "p95_ms": pct(lat, 95) * 1000 if lat else None,
        "max_ms": max(lat) * 1000 if lat else None,
        "parts_median_ms": {k: statistics.median(v) * 1000 for k, v in parts.items() if v},
    }
    return rows, res


LAT_HEADERS = [
    "appearance (wall clock)",
    "latency ms",
    "a: wait for an analysed frame",
    "b: until the first detection",
    "c: tracker confirmation (hits needed)",
    "d: frame ingest -> event emitted (decode delay, queue, processing)",
    "e: store + MQTT delivery",
]


def bench_latency(args: argparse.Namespace, results: dict[str, Any]) -> None:
    out("## 4. Event latency: object appears -> MQTT message")
    out()
    variants: list[tuple[str, list[str]]] = [("as shipped", [])]
    if args.what_if:
        variants.append(
            (
                "what-if: every track needs min_hits = 3 (the confirmation rule before 2026-12-07)",
                ["--confirm-hits", "3"],
            )
        )
    appear: list[int] = []
    for label, extra in variants:
        trace, msgs, appear, n_frames, load = run_latency(args, extra)
        if args.keep_trace:
            suffix = "-whatif" if extra else ""
            Path(args.keep_trace + suffix).write_text(
                "\n".join(json.dumps(x) for x in trace) + "\n"
            )
        rows, res = analyse_latency(trace, msgs, appear, n_frames)
        res["load_end"] = load
        results.setdefault("latency", {})[label] = res
        out()
        out(f"### {label} (load average at the end: {load})")
        out()
        if not rows:
            out(f"No result: {res.get('error')}")
            continue
        table(LAT_HEADERS, rows)
        if res["p50_ms"] is not None:
            out(
                f"**p50 {res['p50_ms']:.0f} ms, p95 {res['p95_ms']:.0f} ms**, max "
                f"{res['max_ms']:.0f} ms over {len(res['samples_ms'])} appearances "
                f"({res['missed']} missed). Medians of the parts: "
                + ", ".join(f"{k} {v:.0f} ms" for k, v in res["parts_median_ms"].items())
            )
            out()
    out(
        f"Clip: {len(EPISODE_OFFSETS)} episodes of {EPISODE_BG} frames of the empty hall (the "
        f"per-pixel median of vtest) then {EPISODE_PEOPLE} frames of real vtest people "
        f"(different parts of vtest), 640x360 at {LAT_FPS:g} fps, frame numbers stamped in "
        "by the simulator (a privacy mask hides the stamp strip from analytics). Appearance "
        f"frames in the served clip, checked by decoding it: {appear}. Appearance wall time = "
        "loop start (an analysed frame's ingest wall time - its stamp / fps) + frame / fps; "
        "latency = arrival of the `vigil/events` `new` message at a subscriber - that. "
        "Detector: HOG (default), analytics at 5 fps, recording on, Mosquitto on loopback, "
        "QoS 1. Parts a-e add up to the latency."
    )
    out()


# ------------------------------------------------------------------------------- main


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_nvr":
        return nvr_runner(sys.argv[2:])
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections: {', '.join(SECTIONS)}",
    )
    p.add_argument("--frigate", help="path of a Frigate checkout (for the motion comparison)")
    p.add_argument(
        "--extra-path",
        action="append",
        default=[],
        help="directory added to sys.path for Frigate's dependencies (SciPy)",
    )
    p.add_argument("--onnx-model", help="a real YOLO ONNX model to time besides the synthetic one")
    p.add_argument("--motion-reps", type=int, default=3)
    p.add_argument("--cameras", default="2,4,6,8,10", help="camera counts to try")
    p.add_argument("--cam-kbps", type=int, default=600)
    p.add_argument("--warmup", type=float, default=15.0)
    p.add_argument("--measure", type=float, default=40.0)
    p.add_argument("--latency-loops", type=int, default=2)
    p.add_argument("--py-spy", help="py-spy binary: profile the recorder at the largest N")
    p.add_argument(
        "--what-if-cameras",
        type=int,
        default=4,
        help="with --what-if: camera count of the extra run with the HOG settings before "
        "2026-12-07 (pyramid step 1.05, colour)",
    )
    p.add_argument(
        "--max-busy",
        type=float,
        default=60.0,
        help="cameras: before each run wait until the machine is below this %% busy "
        "(of 100 %% per core; 0 = do not wait)",
    )
    p.add_argument("--max-wait", type=float, default=120.0)
    p.add_argument("--keep-trace", help="write the latency run's per-frame trace here")
    p.add_argument(
        "--what-if",
        action="store_true",
        help="latency: also run with the old confirmation rule (min_hits for every track); "
        "cameras: also run --what-if-cameras cameras with the HOG settings before 2026-12-07",
    )
    p.add_argument("--json", help="also write the results as JSON to this file")
    args = p.parse_args()
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    bad = sorted(set(sections) - set(SECTIONS))
    if bad:
        p.error(f"unknown section(s): {', '.join(bad)}")

    results: dict[str, Any] = {}
    out("# Vigil analytics benchmark")
    out()
    out(f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    out(f"- machine: {machine()}")
    out(f"- Python {platform.python_version()}, OpenCV {cv2.__version__}, numpy {np.__version__}")
    out(
        f"- load average at start: {load_avg()} (the machine is shared: compare ratios "
        "measured in the same run, not absolute numbers across runs)"
    )
    out(f"- command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    out()
    results["meta"] = {
        "date": time.time(),
        "machine": machine(),
        "load_start": load_avg(),
        "argv": sys.argv,
    }
    steps = {
        "motion": bench_motion,
        "detect": bench_detect,
        "cameras": bench_cameras,
        "latency": bench_latency,
    }
    for name in SECTIONS:
        if name in sections:
            out(f"(load average before {name}: {load_avg()})")
            out()
            steps[name](args, results)
    results["meta"]["load_end"] = load_avg()
    out(f"Load average at the end: {load_avg()}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
