"""Media the API serves from recordings: cached progressive MP4 renderings of a range, HLS
plans, and JPEG stills.

**Why a cache for MP4.** A browser plays a progressive MP4 with many range requests
(metadata at the front, then wherever the user seeks); assembling the file again for each
would redo the whole stream copy every time. Renderings are written once (atomically, by
``write_mp4``) into a private cache directory and served with ranges from there. The cache
key covers the camera, the range and the identity (id and SHA-256) of every segment the
range touches, so footage removed by retention or replaced is never served from a stale
copy; entries expire after ``ttl_s`` and the oldest go first beyond ``max_bytes``.

The cache directory must not be inside the storage root: the recorder's start-up
reconciliation indexes stray ``.mp4`` files there as footage.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vigil.evidence.hls import HlsPlan, hls_plan
from vigil.evidence.playback import NoFootageError, plan_playback, write_mp4
from vigil.index.repository import Index


@dataclass(frozen=True, slots=True)
class CachedClip:
    path: Path
    etag: str
    camera: str
    start_us: int  # wall time of the first presented frame
    end_us: int
    next_start_us: int | None  # where the following part starts (codec change), if any


class ClipCache:
    """Progressive MP4 renderings of recorded ranges (see module docs)."""

    def __init__(self, directory: Path, max_bytes: int, ttl_s: float = 900.0) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _key(self, index: Index, camera: str, start_us: int, end_us: int) -> str:
        segs = [(s.id, s.sha256) for _c, s in index.segments(camera, start_us, end_us)]
        raw = json.dumps([camera, start_us, end_us, segs], separators=(",", ":"))
        return hashlib.sha256(raw.encode()).hexdigest()

    def get(
        self, index: Index, camera: str, start_us: int, end_us: int, max_range_us: int
    ) -> CachedClip:
        """The rendering of [start_us, end_us) of ``camera``, made if needed. Gaps are
        collapsed (``join``); a codec change ends the clip (``next_start_us`` says where
        the next one starts). Raises ``TimeRangeError``/``NoFootageError``."""
        key = self._key(index, camera, start_us, end_us)
        mp4 = self.dir / f"{key}.mp4"
        meta = self.dir / f"{key}.json"
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            info = self._load(mp4, meta)
            if info is None:
                plan = plan_playback(
                    index, camera, start_us, end_us, on_gap="join", max_range_us=max_range_us
                )
                if not plan.parts:
                    raise NoFootageError(
                        f"no playable footage of {camera!r} in the range", plan.gaps
                    )
                part = plan.parts[0]
                write_mp4(part, mp4)
                doc = {
                    "camera": camera,
                    "start_us": part.start_us,
                    "end_us": part.end_us,
                    "next_start_us": plan.parts[1].start_us if len(plan.parts) > 1 else None,
                }
                tmp = meta.with_suffix(".json.tmp")
                tmp.write_text(json.dumps(doc))
                os.replace(tmp, meta)
                info = self._load(mp4, meta)
                assert info is not None
                self._evict(keep=key)
        with self._guard:
            self._locks.pop(key, None)
        return info

    def _load(self, mp4: Path, meta: Path) -> CachedClip | None:
        try:
            doc: dict[str, Any] = json.loads(meta.read_text())
            st = mp4.stat()
        except (OSError, ValueError):
            return None
        if time.time() - st.st_mtime > self.ttl_s:
            return None
        with contextlib.suppress(OSError):
            os.utime(meta)  # recently used: evicted last
        return CachedClip(
            path=mp4,
            etag=f'"{mp4.stem[:32]}-{st.st_size}"',
            camera=str(doc["camera"]),
            start_us=int(doc["start_us"]),
            end_us=int(doc["end_us"]),
            next_start_us=doc.get("next_start_us"),
        )

    def _evict(self, keep: str) -> None:
        """Drop expired renderings, then the least recently used beyond the size cap.
        A file being streamed stays readable after unlink (the open descriptor)."""
        now = time.time()
        entries: list[tuple[float, int, Path, Path]] = []
        for mp4 in self.dir.glob("*.mp4"):
            meta = mp4.with_suffix(".json")
            try:
                st = mp4.stat()
                used = meta.stat().st_mtime if meta.exists() else st.st_mtime
            except OSError:
                continue
            if mp4.stem != keep and now - st.st_mtime > self.ttl_s:
                mp4.unlink(missing_ok=True)
                meta.unlink(missing_ok=True)
                continue
            entries.append((used, st.st_size, mp4, meta))
        total = sum(e[1] for e in entries)
        for _used, size, mp4, meta in sorted(entries):
            if total <= self.max_bytes:
                break
            if mp4.stem == keep:
                continue
            mp4.unlink(missing_ok=True)
            meta.unlink(missing_ok=True)
            total -= size

    def clear(self) -> None:
        for p in self.dir.glob("*"):
            with contextlib.suppress(OSError):
                p.unlink()


class HlsPlans:
    """A small LRU of HLS plans: a player fetches the playlist and then dozens of parts of
    the same range, each of which needs the plan (cheap to rebuild, cheaper to keep)."""

    def __init__(self, size: int = 32, ttl_s: float = 120.0) -> None:
        self.size = size
        self.ttl_s = ttl_s
        self._plans: OrderedDict[tuple[str, int, int], tuple[float, HlsPlan]] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self, index: Index, camera: str, start_us: int, end_us: int, max_range_us: int
    ) -> HlsPlan:
        key = (camera, start_us, end_us)
        now = time.monotonic()
        with self._lock:
            hit = self._plans.get(key)
            if hit is not None and now - hit[0] < self.ttl_s:
                self._plans.move_to_end(key)
                return hit[1]
        plan = hls_plan(index, camera, start_us, end_us, max_range_us=max_range_us)
        with self._lock:
            self._plans[key] = (now, plan)
            while len(self._plans) > self.size:
                self._plans.popitem(last=False)
        return plan


def jpeg_of(frame: Any, quality: int = 85) -> bytes:
    """Encode a decoded ``av.VideoFrame`` as JPEG (OpenCV is already a dependency of the
    analytics; imported lazily so the API starts without it loaded)."""
    import cv2

    img = frame.to_ndarray(format="bgr24")
    ok, buf = cv2.imencode(".jpg", img, [int(cv2.IMWRITE_JPEG_QUALITY), quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return bytes(buf.tobytes())
