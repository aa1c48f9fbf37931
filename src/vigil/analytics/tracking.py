"""Multi-object tracking: stable IDs for detections across frames.

A small SORT-style tracker: each track has a constant-velocity Kalman filter on its box
(center, size, velocity) in normalized coordinates, and detections are matched to the
predicted boxes greedily by IoU, with a center-distance fallback for small or fast
objects whose boxes do not overlap between two analysis frames (5 fps). Greedy matching
is as good as Hungarian matching at the handful of objects a camera sees, and keeps the
module dependency-free.

Stationary objects (a parked car, a person waiting) are recognised so that they do not
keep starting events: a track whose center stayed within ``stationary_distance`` for
``stationary_seconds`` is marked stationary; when a stationary track is lost (detectors
flicker), its place is remembered for a while and a new track appearing there is born
stationary — it starts no event until it actually moves.
"""

from __future__ import annotations

import collections
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from vigil.analytics.detect.base import Detection
from vigil.analytics.geometry import Box, iou


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    """Tracker settings. Times are seconds, distances normalized (fraction of frame)."""

    iou_threshold: float = 0.1  # minimum IoU to match a detection to a track
    max_center_distance: float = 1.0  # fallback match: center distance / track box diagonal
    max_age: float = 2.0  # a track unmatched for longer ends
    min_hits: int = 3  # matches before a track is confirmed (filters one-off false hits)
    # A track whose every detection scored at least fast_confirm_score is confirmed after
    # fast_confirm_hits matches instead: a clear detection seen twice in a row is very
    # unlikely to be a one-off false hit, and each hit waited for costs a whole analysis
    # interval (200 ms at 5 fps) of event latency. Low-score tracks still need min_hits.
    fast_confirm_hits: int = 2
    fast_confirm_score: float = 0.9
    stationary_seconds: float = 10.0
    stationary_distance: float = 0.02
    stationary_memory: float = 300.0  # how long a lost stationary object's place is kept


class _Kalman:
    """Constant-velocity Kalman filter on ``[cx, cy, w, h, vx, vy]``."""

    def __init__(self, box: Box) -> None:
        cx, cy = box.center
        self.x: npt.NDArray[np.float64] = np.array([cx, cy, box.width, box.height, 0.0, 0.0])
        s = max(box.width, box.height, 0.01)
        self.p = np.diag([s * s * 0.01, s * s * 0.01, s * s * 0.01, s * s * 0.01, s * s, s * s])

    def predict(self, dt: float) -> None:
        if dt <= 0:
            return
        f = np.eye(6)
        f[0, 4] = f[1, 5] = dt
        s = max(self.x[2], self.x[3], 0.01)
        q = np.diag([0.05 * s * dt, 0.05 * s * dt, 0.05 * s * dt, 0.05 * s * dt, s * dt, s * dt])
        self.x = f @ self.x
        self.p = f @ self.p @ f.T + q * q
        self.x[2] = max(self.x[2], 1e-4)
        self.x[3] = max(self.x[3], 1e-4)

    def update(self, box: Box) -> None:
        cx, cy = box.center
        z = np.array([cx, cy, box.width, box.height])
        s = max(box.width, box.height, 0.01)
        r = np.eye(4) * (0.05 * s) ** 2
        h = np.zeros((4, 6))
        h[0, 0] = h[1, 1] = h[2, 2] = h[3, 3] = 1.0
        y = z - h @ self.x
        sm = h @ self.p @ h.T + r
        k = self.p @ h.T @ np.linalg.inv(sm)
        self.x = self.x + k @ y
        self.p = (np.eye(6) - k @ h) @ self.p

    @property
    def box(self) -> Box:
        cx, cy, w, h = (float(v) for v in self.x[:4])
        return Box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)

    @property
    def velocity(self) -> tuple[float, float]:
        return float(self.x[4]), float(self.x[5])


@dataclass(eq=False)
class Track:
    """One tracked object. ``box`` is the filtered box; ``observed`` tells whether a
    detection matched it in the latest update (else it is coasting on prediction)."""

    track_id: int
    label: str
    box: Box
    score: float
    first_seen: float
    last_seen: float
    max_score: float = 0.0
    hits: int = 1
    min_hit_score: float = 1.0  # lowest score of the detections matched so far
    confirmed: bool = False
    stationary: bool = False
    observed: bool = True
    last_detection: Box | None = None
    _kf: _Kalman = field(repr=False, default=None)  # type: ignore[assignment]
    _history: collections.deque[tuple[float, float, float]] = field(
        repr=False, default_factory=collections.deque
    )
    _t: float = field(repr=False, default=0.0)
    _born_at: tuple[float, float] | None = field(repr=False, default=None)

    @property
    def velocity(self) -> tuple[float, float]:
        """Normalized units per second."""
        return self._kf.velocity


@dataclass(slots=True)
class TrackerUpdate:
    active: list[Track]  # live tracks (confirmed or not), after this update
    ended: list[Track]  # tracks that ended in this update


class Tracker:
    """Feed :meth:`update` one list of detections per analysed frame, in time order."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self._tracks: list[Track] = []
        self._ids = itertools.count(1)
        self._parked: list[tuple[str, Box, float]] = []  # label, box, forget-after time

    @property
    def tracks(self) -> list[Track]:
        return list(self._tracks)

    @property
    def parked(self) -> list[tuple[str, Box]]:
        """Remembered places of stationary objects whose track ended (label, box)."""
        return [(label, box) for label, box, _ in self._parked]

    def predicted_boxes(self, confirmed_only: bool = True) -> list[Box]:
        """Where live tracks are expected: the pipeline asks the detector to look there
        too, so an object that stops moving (no motion) is still followed."""
        return [
            t.box.clip()
            for t in self._tracks
            if (t.confirmed or not confirmed_only) and not t.stationary
        ]

    def update(self, detections: Sequence[Detection], t: float) -> TrackerUpdate:
        cfg = self.config
        for tr in self._tracks:
            tr._kf.predict(t - tr._t)
            tr._t = t
            tr.box = tr._kf.box
            tr.observed = False
        matches = self._associate(detections)
        matched_dets: set[int] = set()
        for ti, di in matches:
            tr, det = self._tracks[ti], detections[di]
            matched_dets.add(di)
            tr._kf.update(det.box)
            tr.box = tr._kf.box
            tr.last_detection = det.box
            tr.score = det.score
            tr.max_score = max(tr.max_score, det.score)
            tr.hits += 1
            tr.min_hit_score = min(tr.min_hit_score, det.score)
            tr.last_seen = t
            tr.observed = True
            if self._confirmable(tr):
                tr.confirmed = True
            self._update_stationary(tr, t)

        ended = [tr for tr in self._tracks if t - tr.last_seen > cfg.max_age]
        for tr in ended:
            if tr.stationary and tr.confirmed:
                self._parked.append((tr.label, tr.box, t + cfg.stationary_memory))
        self._tracks = [tr for tr in self._tracks if t - tr.last_seen <= cfg.max_age]
        self._parked = [p for p in self._parked if p[2] > t]

        for di, det in enumerate(detections):
            if di not in matched_dets:
                self._tracks.append(self._new_track(det, t))
        return TrackerUpdate(list(self._tracks), ended)

    def flush(self) -> list[Track]:
        """End every track (end of stream)."""
        ended, self._tracks = self._tracks, []
        return ended

    # -- internals --------------------------------------------------------------------
    def _confirmable(self, tr: Track) -> bool:
        cfg = self.config
        if tr.hits >= cfg.min_hits:
            return True
        return tr.hits >= cfg.fast_confirm_hits and tr.min_hit_score >= cfg.fast_confirm_score

    def _new_track(self, det: Detection, t: float) -> Track:
        tr = Track(
            track_id=next(self._ids),
            label=det.label,
            box=det.box,
            score=det.score,
            first_seen=t,
            last_seen=t,
            max_score=det.score,
            min_hit_score=det.score,
            last_detection=det.box,
        )
        tr._kf = _Kalman(det.box)
        tr._t = t
        tr._history.append((t, *det.box.center))
        tr.confirmed = self._confirmable(tr)
        for label, box, _ in self._parked:
            if label == det.label and iou(box, det.box) >= 0.5:
                # a known stationary object re-acquired: no new event until it moves
                tr.stationary = True
                tr._born_at = det.box.center
                break
        return tr

    def _associate(self, detections: Sequence[Detection]) -> list[tuple[int, int]]:
        cfg = self.config
        pairs: list[tuple[float, int, int]] = []
        for ti, tr in enumerate(self._tracks):
            pb = tr.box
            diag = math.hypot(pb.width, pb.height) or 1e-6
            pcx, pcy = pb.center
            for di, det in enumerate(detections):
                if det.label != tr.label:
                    continue
                ov = iou(pb, det.box)
                if ov >= cfg.iou_threshold:
                    pairs.append((1.0 + ov, ti, di))
                    continue
                dcx, dcy = det.box.center
                dist = math.hypot(dcx - pcx, dcy - pcy) / diag
                # similar size is required for the distance fallback
                size_ratio = (det.box.height + 1e-6) / (pb.height + 1e-6)
                if dist <= cfg.max_center_distance and 0.5 <= size_ratio <= 2.0:
                    pairs.append((1.0 - dist / (cfg.max_center_distance + 1e-9), ti, di))
        pairs.sort(key=lambda p: -p[0])
        used_t: set[int] = set()
        used_d: set[int] = set()
        out: list[tuple[int, int]] = []
        for _, ti, di in pairs:
            if ti in used_t or di in used_d:
                continue
            used_t.add(ti)
            used_d.add(di)
            out.append((ti, di))
        return out

    def _update_stationary(self, tr: Track, t: float) -> None:
        cfg = self.config
        cx, cy = tr.box.center
        tr._history.append((t, cx, cy))
        while tr._history and tr._history[0][0] < t - cfg.stationary_seconds * 1.5:
            tr._history.popleft()
        if tr._born_at is not None:
            # born stationary (re-acquired parked object): moving means leaving its place
            bx, by = tr._born_at
            if max(abs(cx - bx), abs(cy - by)) > cfg.stationary_distance:
                tr.stationary = False
                tr._born_at = None
            return
        if t - tr.first_seen < cfg.stationary_seconds:
            tr.stationary = False
            return
        window = [(x, y) for ts, x, y in tr._history if ts >= t - cfg.stationary_seconds]
        xs = [p[0] for p in window]
        ys = [p[1] for p in window]
        spread = max(max(xs) - min(xs), max(ys) - min(ys)) if window else 0.0
        tr.stationary = spread <= cfg.stationary_distance
