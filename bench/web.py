"""Web benchmark: live latency and timeline clicks in Chromium, event search over a million
events on SQLite and PostgreSQL, and memory per live viewer, each beside a baseline
measured in the same run.

Vigil runs as it does in production: ``vigil run -c <generated config>`` in a child process
(so its RSS and CPU are its own), recording a simulated RTSP camera on loopback whose frames
carry their frame number (``SimCamera(stamp=True)``, decoded with
``vigil.sim.media.read_stamp``; in the page by a JavaScript port of the same reader).

**Send times.** A minimal RTSP client in this process (TCP interleaved, no FFmpeg: it only
reassembles H.264 access units from the RTP packets) is connected to the same camera as
Vigil. The simulator serves one shared pipeline per camera, so both receive each frame at
the same moment; the wall time at which the *last* RTP packet of a frame reaches this
client is that frame's send time. Its access units are decoded afterwards (not while
measuring) to learn the stamp of each.

1. **live**: the camera page (``#/camera/door``, main stream) in Debian's Chromium driven by
   Playwright, once per page load over each transport the page has: **MSE**
   (``?live=mse``: fMP4 over the WebSocket into Media Source Extensions; the page chases
   the live edge) and **WebRTC** (the page's default: H.264 passed through by aiortc,
   the browser's jitter buffer), interleaved page load by page load so both see the same
   machine. ``requestVideoFrameCallback`` on the live ``<video>`` draws the stamp strip
   of every presented frame into a canvas and decodes it; latency =
   ``expectedDisplayTime`` (wall clock) - send time of that frame. The page is reloaded
   for every session, because each page load settles on its own during start-up. For
   MSE a wrapper around ``WebSocket`` (init script) records when each fMP4 fragment
   reached the page (its ``tfdt`` gives the frame), which splits the latency into server
   path (ingest + hub + WebSocket) and browser path (MSE buffering + decode +
   compositing); WebRTC has no such split here. Baseline in the same run: a direct PyAV
   RTSP reader (child process, Vigil's FFmpeg options, slice-threaded decoder):
   decoded-frame time - send time.
2. **click**: on the same page, "15 min" zoom, then clicks at random past instants on the
   timeline canvas; from the ``pointerup`` event (which starts the seek) to the
   ``expectedDisplayTime`` of the first presented frame whose stamp is the frame sent at
   the requested instant (within 2 frames). The browser's network events split off the
   page's ``Range: bytes=0-0`` probe and the video element's request; then the probe is
   sent directly for windows of 10 s to 4 min (first byte vs clip size).
3. **search**: 1,000,000 synthetic events (8 cameras, 6 labels, zones, 30 days) bulk-
   inserted with SQLAlchemy Core into a fresh SQLite file and a fresh PostgreSQL database
   ``vigil_bench``; ``vigil run`` (cameras disabled) serves ``GET /api/events`` over each,
   queried with an admin bearer token by one client (camera; camera + label; zone; a 1 h
   time range; next page via the cursor, from the newest and from 500k events down; 3
   cameras, first page and next pages, which is also the SQL for a user granted 3
   cameras), interleaved request by request with the same page fetched by
   ``EventStore.search`` in this process and by the same SELECT in raw SQLAlchemy Core on
   one open connection (the baselines; the SELECT is checked against the SQL the store
   sends). Queries whose API p99 misses 50 ms are EXPLAINed (with bound parameters, as
   sent). ``--what-if`` measures, on the bench database only (never ``src/``): as raw SQL
   the query Vigil sent before e796752 (``events JOIN cameras``) and 3 cameras as
   ``camera_id IN (...)``; for SQLite the shipped queries through the API, and the same
   raw-SQL forms, without planner statistics and with sampled ones (``analysis_limit``).
4. **viewers**: 50 WebSocket live viewers (``websockets``, bearer token) reading
   continuously; Vigil's RSS and CPU with 0 viewers, with 50, and after they left; frames
   per second received by each viewer.
5. **peers**: ``--peers`` (8) WebSocket viewers, then as many WebRTC peers (aiortc clients
   in this process whose H.264 decoder only counts frames), of the main stream: Vigil's
   CPU and RSS per viewer of each kind (why the grid stays on MSE).

Run by hand only (never in CI), on loopback only::

    .venv/bin/python bench/web.py --markdown --json /tmp/bench-web.json
    .venv/bin/python bench/web.py --only live,click --sessions 3 --clicks 5   # quicker

Needs ``/usr/bin/chromium`` (Debian) and Playwright for Python (no browser download), the
simulator's system GStreamer, and PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres)
for the PostgreSQL half of ``search`` (skipped, and said so, when it is not there).
Results: ``bench/README.md``, section ``web``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--autoplay-policy=no-user-gesture-required",
]
ADMIN = ("admin", "watchful-owl-Lantern-42")
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PG_DB = "vigil_bench"
TARGET_LIVE_MS = 1000.0
TARGET_CLICK_MS = 500.0
TARGET_SEARCH_P99_MS = 50.0


def vigil_command() -> list[str]:
    exe = Path(sys.executable).parent / "vigil"
    if not exe.exists():
        exe = ROOT / ".venv" / "bin" / "vigil"
    return [str(exe)]


def git_state() -> str:
    def git(*a: str) -> str:
        try:
            return subprocess.run(
                ["git", *a], cwd=ROOT, capture_output=True, text=True, timeout=10
            ).stdout.rstrip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    # porcelain lines are "XY path": strip() would eat the X of the first one
    dirty = [line[3:] for line in git("status", "--porcelain", "src").splitlines()]
    return f"commit {git('rev-parse', '--short', 'HEAD') or '?'}" + (
        f", uncommitted changes in {', '.join(dirty)}" if dirty else ", src/ clean"
    )


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return f"load average: {C.load_text()}"


def part_header(title: str, args: argparse.Namespace) -> str:
    load = C.wait_for_load(args.max_load, args.max_wait)
    print(f"\n== {title} ==", flush=True)
    print(f"  {uptime()}", flush=True)
    return load


def pcts(values: list[float]) -> dict[str, float]:
    if not values:
        return {
            "n": 0,
            "p50": float("nan"),
            "p95": float("nan"),
            "p99": float("nan"),
            "max": float("nan"),
            "mean": float("nan"),
        }
    return {
        "n": len(values),
        "p50": C.percentile(values, 50),
        "p95": C.percentile(values, 95),
        "p99": C.percentile(values, 99),
        "max": max(values),
        "mean": sum(values) / len(values),
    }


def f1(x: float) -> str:
    return "n/a" if x != x else f"{x:.1f}"  # x != x: NaN


# -- the reference RTSP client -----------------------------------------------------------------


class RtpRecorder:
    """A minimal RTSP client (RTP over the RTSP TCP connection) that records, for every H.264
    access unit, the wall time (``time.time_ns``) at which its last RTP packet arrived.

    Receiving does nothing but reassemble NAL units, so the timestamps are taken within
    microseconds of the bytes arriving; the units are decoded later by :meth:`decode`, which
    turns them into (send time, frame stamp) pairs and frees them.
    """

    KEEPALIVE_S = 20.0

    def __init__(self, url: str) -> None:
        self.url = url
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 554
        self._sock: socket.socket | None = None
        self._buf = bytearray()
        self._cseq = 0
        self._session = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._units: list[tuple[int, bytes]] = []  # (arrival ns, Annex B access unit)
        self._au = bytearray()
        self._ts: int | None = None
        self._last_arrival = 0
        self.params = b""  # SPS/PPS from the SDP, Annex B
        self.error: str | None = None
        self.packets = 0
        # decoded: parallel lists, arrival order
        self.times: list[int] = []
        self.stamps: list[int | None] = []
        self.by_stamp: dict[int, list[int]] = {}
        self._decoder: Any = None
        self._decoded_units = 0

    # RTSP requests (before PLAY only; later responses are skipped by the reader)
    def _request(self, method: str, url: str, headers: dict[str, str]) -> tuple[int, dict, bytes]:
        assert self._sock is not None
        self._cseq += 1
        lines = [f"{method} {url} RTSP/1.0", f"CSeq: {self._cseq}", "User-Agent: vigil-bench"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self._sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while b"\r\n\r\n" not in self._buf:
            data = self._sock.recv(65536)
            if not data:
                raise ConnectionError(f"RTSP {method}: connection closed")
            self._buf += data
        end = self._buf.index(b"\r\n\r\n")
        head = bytes(self._buf[:end]).decode("latin-1").split("\r\n")
        hdrs = {}
        for line in head[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        n = int(hdrs.get("content-length", "0"))
        while len(self._buf) < end + 4 + n:
            data = self._sock.recv(65536)
            if not data:
                raise ConnectionError(f"RTSP {method}: connection closed")
            self._buf += data
        body = bytes(self._buf[end + 4 : end + 4 + n])
        del self._buf[: end + 4 + n]
        status = int(head[0].split()[1])
        if status != 200:
            raise ConnectionError(f"RTSP {method} {url}: {head[0]}")
        return status, hdrs, body

    def start(self) -> RtpRecorder:
        self._sock = socket.create_connection((self.host, self.port), timeout=10)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _, hdrs, sdp = self._request("DESCRIBE", self.url, {"Accept": "application/sdp"})
        base = hdrs.get("content-base", self.url.rstrip("/") + "/")
        control = None
        in_video = False
        for line in sdp.decode().splitlines():
            if line.startswith("m="):
                in_video = line.startswith("m=video")
            elif in_video and line.startswith("a=control:"):
                control = line.split(":", 1)[1].strip()
            elif in_video and line.startswith("a=fmtp:") and "sprop-parameter-sets=" in line:
                sets = line.split("sprop-parameter-sets=", 1)[1].split(";")[0]
                for b64 in sets.split(","):
                    with contextlib.suppress(ValueError):
                        self.params += b"\x00\x00\x00\x01" + base64.b64decode(b64)
        if control is None:
            raise ConnectionError("no video track in the SDP")
        track = control if control.startswith("rtsp://") else base + control
        _, hdrs, _ = self._request(
            "SETUP", track, {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1"}
        )
        self._session = hdrs.get("session", "").split(";")[0]
        self._request("PLAY", base, {"Session": self._session, "Range": "npt=0.000-"})
        self._sock.settimeout(1.0)
        self._thread = threading.Thread(target=self._run, name="rtp-recorder", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        sock = self._sock
        assert sock is not None
        buf = self._buf
        keepalive = time.monotonic()
        try:
            while not self._stop.is_set():
                if time.monotonic() - keepalive > self.KEEPALIVE_S:
                    keepalive = time.monotonic()
                    self._cseq += 1
                    sock.sendall(
                        (
                            f"GET_PARAMETER {self.url} RTSP/1.0\r\nCSeq: {self._cseq}\r\n"
                            f"Session: {self._session}\r\n\r\n"
                        ).encode()
                    )
                try:
                    data = sock.recv(262144)
                except TimeoutError:
                    continue
                now = time.time_ns()
                if not data:
                    self.error = "the camera closed the connection"
                    return
                buf += data
                self._parse(buf, now)
        except OSError as exc:
            if not self._stop.is_set():
                self.error = f"reference reader: {exc}"

    def _parse(self, buf: bytearray, now: int) -> None:
        while len(buf) >= 4:
            if buf[0] == 0x24:  # '$': interleaved RTP/RTCP
                n = int.from_bytes(buf[2:4], "big")
                if len(buf) < 4 + n:
                    return
                if buf[1] == 0:
                    self._rtp(bytes(buf[4 : 4 + n]), now)
                del buf[: 4 + n]
            elif buf.startswith(b"RTSP/1.0"):  # keep-alive answer
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                n = 0
                for line in bytes(buf[:end]).decode("latin-1").split("\r\n"):
                    if line.lower().startswith("content-length:"):
                        n = int(line.split(":", 1)[1])
                if len(buf) < end + 4 + n:
                    return
                del buf[: end + 4 + n]
            else:  # lost sync: skip to the next '$'
                i = buf.find(b"$", 1)
                if i < 0:
                    buf.clear()
                else:
                    del buf[:i]

    def _rtp(self, pkt: bytes, now: int) -> None:
        if len(pkt) < 13:
            return
        self.packets += 1
        cc = pkt[0] & 0x0F
        off = 12 + 4 * cc
        if pkt[0] & 0x10:  # header extension
            off += 4 + 4 * int.from_bytes(pkt[off + 2 : off + 4], "big")
        end = len(pkt) - (pkt[-1] if pkt[0] & 0x20 else 0)
        marker = pkt[1] & 0x80
        ts = int.from_bytes(pkt[4:8], "big")
        payload = pkt[off:end]
        if not payload:
            return
        if self._ts is not None and ts != self._ts and self._au:
            self._finish(self._last_arrival)  # a unit without its marker packet
        self._ts = ts
        sc = b"\x00\x00\x00\x01"
        nal = payload[0] & 0x1F
        if 1 <= nal <= 23:
            self._au += sc + payload
        elif nal == 24:  # STAP-A
            i = 1
            while i + 2 <= len(payload):
                n = int.from_bytes(payload[i : i + 2], "big")
                self._au += sc + payload[i + 2 : i + 2 + n]
                i += 2 + n
        elif nal == 28 and len(payload) > 2:  # FU-A
            if payload[1] & 0x80:
                self._au += sc + bytes([(payload[0] & 0xE0) | (payload[1] & 0x1F)])
            self._au += payload[2:]
        self._last_arrival = now
        if marker:
            self._finish(now)

    def _finish(self, arrival: int) -> None:
        with self._lock:
            self._units.append((arrival, bytes(self._au)))
        self._au = bytearray()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.sendall(
                    f"TEARDOWN {self.url} RTSP/1.0\r\nCSeq: {self._cseq + 1}\r\n"
                    f"Session: {self._session}\r\n\r\n".encode()
                )
            with contextlib.suppress(OSError):
                self._sock.close()

    def decode(self) -> int:
        """Decode the units received since the last call; returns how many were added."""
        import av

        from vigil.sim.media import read_stamp

        with self._lock:
            units, self._units = self._units, []
        if self._decoder is None:
            self._decoder = av.CodecContext.create("h264", "r")
            self._decoder.thread_type = "SLICE"
        codec = self._decoder
        base = self._decoded_units
        self._decoded_units += len(units)
        out: dict[int, int | None] = {}

        def take(frames: Any) -> None:
            for fr in frames:
                out[int(fr.pts)] = stamp_of(fr, read_stamp)

        for i, (_t, data) in enumerate(units):
            pkt = av.Packet((self.params if base + i == 0 else b"") + data)
            pkt.pts = base + i
            try:
                take(codec.decode(pkt))
            except av.error.FFmpegError:
                continue
        for i, (t, _data) in enumerate(units):
            stamp = out.get(base + i)
            self.times.append(t)
            self.stamps.append(stamp)
            if stamp is not None:
                self.by_stamp.setdefault(stamp, []).append(t)
        return len(units)

    def send_of(self, stamp: int, before_ns: int, window_ns: int) -> int | None:
        """Send time of the latest frame with ``stamp`` at or before ``before_ns`` (and no
        older than ``window_ns`` before it, since stamps repeat every loop of the clip)."""
        times = self.by_stamp.get(stamp)
        if not times:
            return None
        i = bisect.bisect_right(times, before_ns) - 1
        if i < 0 or before_ns - times[i] > window_ns:
            return None
        return times[i]

    def stamp_at(self, wall_ns: int) -> tuple[int | None, int | None]:
        """(stamp, send time) of the newest frame sent at or before ``wall_ns``."""
        i = bisect.bisect_right(self.times, wall_ns) - 1
        while i >= 0 and self.stamps[i] is None:
            i -= 1
        if i < 0:
            return None, None
        return self.stamps[i], self.times[i]


def stamp_of(frame: Any, read_stamp: Callable[[Any], int | None]) -> int | None:
    """The stamp of a decoded PyAV frame, read from its luma plane without conversion."""
    import numpy as np

    plane = frame.planes[0]
    arr = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
    return read_stamp(arr[:, : plane.width])


# -- the Vigil process ------------------------------------------------------------------------


@dataclass
class VigilProc:
    """``vigil run`` in a child process, with an administrator and an API token made
    beforehand in its database."""

    root: Path
    config: dict[str, Any]
    url: str = ""
    token: str = ""
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def start(self, timeout: float = 120.0) -> VigilProc:
        import yaml

        from vigil.api.accounts import Accounts
        from vigil.api.passwords import default_hasher
        from vigil.config.loader import parse_config
        from vigil.index.db import Database

        self.root.mkdir(parents=True, exist_ok=True)
        from vigil.sim.controller import find_free_port

        port = find_free_port()
        self.config.setdefault("api", {}).update(
            {"host": "127.0.0.1", "port": port, "tls": {"enabled": False}}
        )
        path = self.root / "vigil.yaml"
        path.write_text(yaml.safe_dump(self.config, sort_keys=False))
        cfg = parse_config(self.config, str(path))
        db = Database(cfg.database_url())
        try:
            accounts = Accounts(db, default_hasher())
            if accounts.get(ADMIN[0]) is None:
                accounts.create_user(ADMIN[0], ADMIN[1], "admin")
            self.token, _info = accounts.create_token(
                ADMIN[0], "bench", ["admin"], int((time.time() + 86400) * 1e6)
            )
        finally:
            db.close()
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = self.root / "vigil.log"
        log = open(self.log_path, "wb")  # noqa: SIM115 (kept open for the child)
        self.proc = subprocess.Popen(
            [*vigil_command(), "run", "-c", str(path)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=str(self.root),
        )
        log.close()
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vigil run exited ({self.proc.returncode}): {self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/", timeout=2).status_code == 200:
                    return self
            time.sleep(0.3)
        raise RuntimeError(f"vigil run did not answer on {self.url}: {self.log_tail()}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_tail(self, n: int = 15) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def stop(self) -> None:
        if self.proc is not None:
            C.stop_processes([self.proc], timeout=20)
            self.proc = None

    def api(self) -> Any:
        import httpx

        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30
        )


# -- in-page JavaScript -------------------------------------------------------------------------

# Recorded at document start: when every WebSocket message reached the page; for fMP4
# fragments the tfdt (decode time of their first sample), for the init segment the video
# timescale, for the JSON init message the wall/media anchor.
WS_INIT_SCRIPT = r"""
(() => {
  const Orig = window.WebSocket;
  const log = window.__wsLog = [];
  const find = (u8, name, end) => {
    const [a, b, c, d] = [0, 1, 2, 3].map((k) => name.charCodeAt(k));
    for (let i = 0; i + 4 <= end; i++) {
      if (u8[i] === a && u8[i + 1] === b && u8[i + 2] === c && u8[i + 3] === d) return i;
    }
    return -1;
  };
  class BenchWebSocket extends Orig {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (ev) => {
        const t = performance.timeOrigin + performance.now();
        if (typeof ev.data === 'string') {
          try {
            const m = JSON.parse(ev.data);
            log.push({k: m.type, t, media_us: m.media_us, wall_us: m.wall_us});
          } catch (_) { /* not JSON */ }
          return;
        }
        if (!(ev.data instanceof ArrayBuffer)) return;
        const u8 = new Uint8Array(ev.data);
        const dv = new DataView(ev.data);
        const head = Math.min(u8.length, 4096);
        const i = find(u8, 'tfdt', head);
        if (i >= 0) {
          const base = u8[i + 4] === 1 ? Number(dv.getBigUint64(i + 8)) : dv.getUint32(i + 8);
          log.push({k: 'frag', t, base, n: u8.length});
          return;
        }
        const j = find(u8, 'mdhd', head);
        if (j >= 0) {
          const timescale = dv.getUint32(j + (u8[j + 4] === 1 ? 24 : 16));
          log.push({k: 'initseg', t, timescale});
        }
      });
    }
  }
  window.WebSocket = BenchWebSocket;
})();
"""

# Samples every frame a <video> presents (requestVideoFrameCallback; a 4 ms poll of the
# picture where it is missing): [display wall ms, callback wall ms, mediaTime s, stamp,
# presentedFrames]. The stamp decoder is a port of vigil.sim.media.read_stamp that reads
# only the strip (drawImage of the top rows into a canvas).
SAMPLER_JS = r"""
([sel, key]) => {
  const v = document.querySelector(sel);
  if (!v) return null;
  const all = window.__samplers = window.__samplers || {};
  if (all[key]) all[key].stop = true;
  const s = all[key] = {frames: [], stop: false, rvfc: 'requestVideoFrameCallback' in v,
                        waiting: 0};
  v.addEventListener('waiting', () => { if (!s.stop) s.waiting += 1; });
  const ahead = () => (v.buffered.length ? v.buffered.end(v.buffered.length - 1) - v.currentTime
                                         : null);
  const c = document.createElement('canvas');
  const g = c.getContext('2d', {willReadFrequently: true});
  const pyRound = (x) => {  // Python's round(): halves to even
    const f = Math.floor(x), d = x - f;
    if (Math.abs(d - 0.5) < 1e-9) return f % 2 === 0 ? f : f + 1;
    return Math.round(x);
  };
  const stamp = () => {
    const w = v.videoWidth, h = v.videoHeight;
    if (!w || !h) return null;
    const sh = Math.min(h, Math.max(8, 2 * pyRound(h / 32)));
    if (c.width !== w || c.height !== sh) { c.width = w; c.height = sh; }
    g.drawImage(v, 0, 0, w, sh, 0, 0, w, sh);
    const d = g.getImageData(0, 0, w, sh).data;
    const y0 = Math.floor(sh / 4), y1 = Math.max(y0 + 1, Math.floor(3 * sh / 4));
    const lv = [];
    for (let k = 0; k < 32; k++) {
      const x0 = Math.floor(k * w / 32), x1 = Math.floor((k + 1) * w / 32);
      const m = Math.floor((x1 - x0) / 4);
      const xa = x0 + m, xb = Math.max(xa + 1, x1 - m);
      let sum = 0, n = 0;
      for (let y = y0; y < y1; y++) {
        for (let x = xa; x < xb; x++) {
          const i = 4 * (y * w + x);
          sum += d[i] + d[i + 1] + d[i + 2];
          n += 3;
        }
      }
      lv.push(sum / n);
    }
    if (lv[0] - lv[1] < 48) return null;
    const thr = (lv[0] + lv[1]) / 2;
    const bits = lv.map((x) => (x > thr ? 1 : 0));
    const sync = [1, 0, 1, 0, 1];
    for (let j = 0; j < 5; j++) if (bits[27 + j] !== sync[j]) return null;
    let ones = 0, val = 0;
    for (let k = 2; k < 26; k++) { ones += bits[k]; val = val * 2 + bits[k]; }
    if ((ones + bits[26]) % 2) return null;
    return val;
  };
  const T = performance.timeOrigin;
  if (s.rvfc) {
    const onFrame = (now, meta) => {
      if (s.stop) return;
      let st = null;
      try { st = stamp(); } catch (_) { st = null; }
      s.frames.push([T + meta.expectedDisplayTime, T + now, meta.mediaTime, st,
                     meta.presentedFrames, ahead()]);
      v.requestVideoFrameCallback(onFrame);
    };
    v.requestVideoFrameCallback(onFrame);
  } else {
    let last = null;
    const tick = () => {
      if (s.stop) return;
      let st = null;
      try { st = stamp(); } catch (_) { st = null; }
      if (st !== last) {
        const t = T + performance.now();
        s.frames.push([t, t, v.currentTime, st, null, ahead()]);
        last = st;
      }
      setTimeout(tick, 4);
    };
    tick();
  }
  return s.rvfc;
}
"""

COLLECT_JS = r"""
([key, from]) => {
  const s = (window.__samplers || {})[key];
  const frames = s ? s.frames.slice(from) : [];
  const clock = Date.now() - (performance.timeOrigin + performance.now());
  return {frames, ws: window.__wsLog || [], clock, waiting: s ? s.waiting : null};
}
"""

STOP_JS = "(key) => { const s = (window.__samplers || {})[key]; if (s) s.stop = true; }"


def login(page: Any) -> None:
    page.goto("/#/login")
    page.fill("input[name=username]", ADMIN[0])
    page.fill("input[name=password]", ADMIN[1])
    page.click("button[type=submit]")
    page.wait_for_selector("#topbar:not([hidden])", timeout=30000)


LIVE_VIDEO = "#player video.live-video"
PLAYBACK_VIDEO = "#playback"


# -- part 1: live latency ------------------------------------------------------------------------


def pyav_reader_child(url: str, seconds: float) -> int:
    """Child mode: read ``url`` with PyAV as a direct client would, for ``seconds``; print
    one JSON line [[stamp, demuxed ns, decoded ns], ...]."""
    import av

    from vigil.ingest.source import build_url_target
    from vigil.sim.media import read_stamp

    target = build_url_target(url, None, transport="tcp", open_timeout=10, read_timeout=10)
    container = av.open(
        target.url, format=target.format, options=dict(target.options), timeout=(10, 10)
    )
    stream = container.streams.video[0]
    stream.codec_context.thread_type = "SLICE"
    out = []
    demuxed: dict[int, int] = {}
    end = time.monotonic() + seconds
    stop = threading.Event()

    def wait_eof() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=wait_eof, daemon=True).start()
    for pkt in container.demux(stream):
        now = time.time_ns()
        if pkt.pts is not None:
            demuxed[int(pkt.pts)] = now
        for fr in pkt.decode():
            t = time.time_ns()
            out.append([stamp_of(fr, read_stamp), demuxed.get(int(fr.pts or -1)), t])
        if time.monotonic() > end or stop.is_set():
            break
    container.close()
    print(json.dumps(out), flush=True)
    return 0


@dataclass
class LiveResult:
    sessions: list[dict[str, Any]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)  # ms
    server_ms: list[float] = field(default_factory=list)
    browser_ms: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)
    baseline_demux: list[float] = field(default_factory=list)
    unmatched: int = 0
    no_stamp: int = 0
    rvfc: bool = True
    clock_skew_ms: float = 0.0
    windows: list[tuple[int, int]] = field(default_factory=list)  # sampled, wall ns


def frag_index(ws: list[dict[str, Any]]) -> tuple[list[float], list[float]]:
    """(media seconds, arrival wall ms) of every fragment of the last connection."""
    # the last init of the log starts the connection the sampled frames belong to
    start = max((i for i, m in enumerate(ws) if m.get("k") == "initseg"), default=-1)
    if start < 0:
        return [], []
    timescale = ws[start]["timescale"]
    pairs = sorted((m["base"] / timescale, m["t"]) for m in ws[start + 1 :] if m.get("k") == "frag")
    return [p[0] for p in pairs], [p[1] for p in pairs]


def analyse_frames(
    frames: list[list[Any]], ref: RtpRecorder, ws: list[dict[str, Any]], fps: float, res: LiveResult
) -> dict[str, Any]:
    window_ns = int(10e9)
    media, arrivals = frag_index(ws)
    lat, srv, brw = [], [], []
    ahead = [f[5] * 1000 for f in frames if len(f) > 5 and f[5] is not None]
    for disp_ms, _cb_ms, media_s, stamp, *_rest in frames:
        if stamp is None:
            res.no_stamp += 1
            continue
        disp_ns = int(disp_ms * 1e6)
        sent = ref.send_of(stamp, disp_ns + 5_000_000, window_ns)
        if sent is None:
            res.unmatched += 1
            continue
        lat.append((disp_ns - sent) / 1e6)
        if media:
            i = bisect.bisect_left(media, media_s - 0.25 / fps)
            if i < len(media) and abs(media[i] - media_s) < 0.25 / fps:
                srv.append(arrivals[i] - sent / 1e6)
                brw.append(disp_ms - arrivals[i])
    res.latencies += lat
    res.server_ms += srv
    res.browser_ms += brw
    return {
        "frames": len(frames),
        "matched": len(lat),
        **pcts(lat),
        "server_p50": pcts(srv)["p50"],
        "browser_p50": pcts(brw)["p50"],
        "ahead_p50": pcts(ahead)["p50"],
    }


LIVE_PAGES = {"mse": "/#/camera/door?live=mse", "webrtc": "/#/camera/door"}


def live_session(
    args: argparse.Namespace,
    page: Any,
    ref: RtpRecorder,
    res: LiveResult,
    transport: str,
    k: int,
) -> None:
    """One page load of the camera page over ``transport``, sampled for --sample-s."""
    page.goto(LIVE_PAGES[transport])
    page.reload()
    page.wait_for_function(
        f"() => {{ const v = document.querySelector('{LIVE_VIDEO}');"
        " return v && v.readyState >= 2 && v.currentTime > 0; }",
        timeout=30000,
    )
    got_transport = page.get_attribute("#player .live", "data-transport")
    if got_transport != transport:
        raise RuntimeError(f"the page plays over {got_transport}, not {transport}")
    time.sleep(args.warm_s)
    w0 = time.time_ns()
    res.rvfc = bool(page.evaluate(SAMPLER_JS, [LIVE_VIDEO, "live"]))
    time.sleep(args.sample_s)
    res.windows.append((w0 - 2_000_000_000, time.time_ns()))
    got = page.evaluate(COLLECT_JS, ["live", 0])
    page.evaluate(STOP_JS, "live")
    res.clock_skew_ms = max(res.clock_skew_ms, abs(got["clock"]))
    ref.decode()
    ws = got["ws"] if transport == "mse" else []
    row = analyse_frames(got["frames"], ref, ws, args.fps, res)
    row["waiting"] = got["waiting"]
    row["transport"] = transport
    row["page_load"] = k + 1
    row["order"] = w0
    res.sessions.append(row)
    print(
        f"  {transport} page load {k + 1}: {row['matched']}/{row['frames']} frames, latency "
        f"p50 {f1(row['p50'])} ms p95 {f1(row['p95'])} ms (server {f1(row['server_p50'])},"
        f" browser {f1(row['browser_p50'])}); buffered ahead of the playhead p50 "
        f"{f1(row['ahead_p50'])} ms; 'waiting' events {row['waiting']}",
        flush=True,
    )


def bench_live(
    args: argparse.Namespace, vigil: VigilProc, ref: RtpRecorder, cam_url: str, browser: Any
) -> dict[str, LiveResult]:
    res = {"mse": LiveResult(), "webrtc": LiveResult()}
    child = subprocess.Popen(
        [sys.executable, __file__, "--child-pyav", cam_url, "3600"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    context = browser.new_context(base_url=vigil.url, viewport={"width": 1280, "height": 860})
    context.add_init_script(WS_INIT_SCRIPT)
    page = context.new_page()
    try:
        login(page)
        for k in range(args.sessions):
            order = ("mse", "webrtc") if k % 2 == 0 else ("webrtc", "mse")
            for transport in order:
                live_session(args, page, ref, res[transport], transport, k)
    finally:
        context.close()
        try:  # communicate() closes its stdin: the reader stops at EOF
            out, err = child.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            C.stop_processes([child])
            out, err = b"", b"timeout"
    ref.decode()
    try:
        rows = json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        print(f"  PyAV reader failed: {err.decode(errors='replace')[-500:]}")
        rows = []
    settled = rows[0][2] + 3_000_000_000 if rows else 0  # after the reader's probing burst
    windows = res["mse"].windows + res["webrtc"].windows
    base = res["mse"]
    for stamp, demux_ns, dec_ns in rows:
        if stamp is None or dec_ns < settled:
            continue
        sent = ref.send_of(stamp, dec_ns + 5_000_000, int(10e9))
        if sent is None or not any(a <= sent <= b for a, b in windows):
            continue  # only while the page was sampled
        base.baseline.append((dec_ns - sent) / 1e6)
        if demux_ns is not None:
            base.baseline_demux.append((demux_ns - sent) / 1e6)
    return res


# -- part 2: click on the timeline to first frame --------------------------------------------------


CLICK_HOOK_JS = r"""
() => {
  window.__clicks = [];
  const c = document.querySelector('.timeline-canvas');
  c.addEventListener('pointerup', (ev) => window.__clicks.push(ev.timeStamp), {capture: true});
  return true;
}
"""

WAIT_FRAME_JS = r"""
([from, expect, mod, tol]) => {
  const s = window.__samplers && window.__samplers.pb;
  if (!s) return false;
  for (let i = from; i < s.frames.length; i++) {
    const st = s.frames[i][3];
    if (st === null) continue;
    let d = ((st - expect) % mod + mod) % mod;
    if (d > mod / 2) d -= mod;
    if (Math.abs(d) <= tol) return true;
  }
  return false;
}
"""


@dataclass
class ClickResult:
    rows: list[dict[str, Any]] = field(default_factory=list)
    to_frame: list[float] = field(default_factory=list)
    to_any: list[float] = field(default_factory=list)
    to_probe: list[float] = field(default_factory=list)
    by_window: list[dict[str, Any]] = field(default_factory=list)
    to_request: list[float] = field(default_factory=list)
    to_first_byte: list[float] = field(default_factory=list)
    failures: int = 0


def closed_spans(vigil: VigilProc, since_us: int) -> list[tuple[int, int]]:
    now = int(time.time() * 1e6)
    with vigil.api() as api:
        doc = api.get("/api/cameras/door/recordings", params={"start": since_us, "end": now}).json()
    return [(s["start_us"], s["end_us"]) for s in doc.get("segments", [])]


def probe_vs_window(vigil: VigilProc, rng: random.Random) -> list[dict[str, Any]]:
    """The page's probe request (``playback.mp4``, ``Range: bytes=0-0``) sent directly for
    windows of several lengths, each at a new instant (so never from the clip cache): the
    server renders the whole window before its first byte."""
    import statistics

    spans = closed_spans(vigil, int((time.time() - 14 * 60) * 1e6))
    if not spans:
        return []
    first, last = spans[0][0], spans[-1][1]
    out = []
    with vigil.api() as api:
        for window_s in (10, 30, 60, 120, 240):
            window = window_s * 1_000_000
            if last - first < window + 4_000_000:
                continue
            times, sizes = [], []
            for _ in range(3):
                s = rng.randint(first + 1_000_000, last - window - 1_000_000)
                t0 = time.perf_counter()
                r = api.get(
                    "/api/cameras/door/playback.mp4",
                    params={"start": s, "end": s + window},
                    headers={"Range": "bytes=0-0"},
                )
                times.append((time.perf_counter() - t0) * 1000)
                r.raise_for_status()
                sizes.append(int(r.headers.get("content-range", "/0").rpartition("/")[2]))
            out.append(
                {
                    "window_s": window_s,
                    "p50": statistics.median(times),
                    "max": max(times),
                    "mb": statistics.median(sizes) / C.MB,
                }
            )
            print(
                f"  probe of a {window_s:>3} s window: {statistics.median(times):.0f} ms "
                f"(max {max(times):.0f}), clip {statistics.median(sizes) / C.MB:.1f} MB",
                flush=True,
            )
    return out


def bench_click(
    args: argparse.Namespace, vigil: VigilProc, ref: RtpRecorder, browser: Any
) -> ClickResult:
    res = ClickResult()
    rng = random.Random(args.seed)
    frames_per_loop = round(args.clip_s * args.fps)
    context = browser.new_context(base_url=vigil.url, viewport={"width": 1280, "height": 860})
    page = context.new_page()
    net: list[dict[str, Any]] = []  # playback.mp4 requests as the browser's network saw them

    def on_response(resp: Any) -> None:
        if "/playback.mp4" in resp.url:
            t = resp.request.timing  # startTime: epoch ms; responseStart: ms after it
            h = resp.headers
            net.append(
                {
                    "start": t["startTime"],
                    "first_byte": t["startTime"] + t["responseStart"],
                    "range": resp.request.headers.get("range"),
                    "clip_us": int(h.get("x-vigil-end-us", 0)) - int(h.get("x-vigil-start-us", 0)),
                    "bytes": h.get("content-range", "").rpartition("/")[2],
                }
            )

    page.on("response", on_response)
    try:
        login(page)
        page.goto("/#/camera/door")
        page.wait_for_selector(".timeline-canvas")
        page.click("text=15 min")
        time.sleep(1.0)
        page.evaluate(CLICK_HOOK_JS)
        sampler_ready = False
        for i in range(args.clicks):
            spans = [
                (s, e)
                for s, e in closed_spans(vigil, int((time.time() - 14 * 60) * 1e6))
                if e - s > 8e6
            ]
            if not spans:
                raise RuntimeError("no closed segment to click on yet")
            s, e = rng.choice(spans)
            target = rng.randint(s + 3_000_000, e - 3_000_000)
            box = page.locator(".timeline-canvas").bounding_box()
            t0 = int(page.get_attribute(".timeline", "data-start-us"))
            t1 = int(page.get_attribute(".timeline", "data-end-us"))
            x = box["x"] + (target - t0) / (t1 - t0) * box["width"]
            n_before = (
                page.evaluate("() => window.__samplers.pb.frames.length") if sampler_ready else 0
            )
            n_clicks = page.evaluate("() => window.__clicks.length")
            page.mouse.click(x, box["y"] + box["height"] / 2)
            page.wait_for_function(f"() => window.__clicks.length > {n_clicks}")
            click_ms = page.evaluate("() => window.__clicks[window.__clicks.length - 1]")
            requested = int(page.get_attribute("#player", "data-requested-us") or 0)
            if not sampler_ready:
                page.wait_for_selector(f"{PLAYBACK_VIDEO}:not([hidden])")
                page.evaluate(SAMPLER_JS, [PLAYBACK_VIDEO, "pb"])
                sampler_ready = True
            ref.decode()
            expect, sent_ns = ref.stamp_at(requested * 1000)
            row: dict[str, Any] = {"requested_us": requested, "expected": expect}
            if expect is None:
                res.failures += 1
                row["error"] = "no reference frame for the instant"
                res.rows.append(row)
                continue
            try:
                page.wait_for_function(
                    WAIT_FRAME_JS,
                    arg=[n_before, expect, frames_per_loop, 2],
                    timeout=15000,
                    polling=20,
                )
            except Exception as exc:  # playwright TimeoutError
                res.failures += 1
                row["error"] = f"no frame of the instant within 15 s ({type(exc).__name__})"
                res.rows.append(row)
                continue
            got = page.evaluate(COLLECT_JS, ["pb", n_before])
            origin = page.evaluate("() => performance.timeOrigin")
            frames = got["frames"]
            click_wall = origin + click_ms
            # the previous clip keeps playing until the new one loads: the new clip's
            # frames are those that start again near media time 0
            first_any = next((f for f in frames if f[0] >= click_wall and f[2] < 0.5), None)
            match = None
            for f in frames:
                if f[3] is None or f[0] < click_wall:
                    continue
                d = (f[3] - expect) % frames_per_loop
                d = d - frames_per_loop if d > frames_per_loop / 2 else d
                if abs(d) <= 2:
                    match = (f, d)
                    break
            mine = [n for n in net if n["start"] >= click_wall - 1]
            probe = next((n for n in mine if n["range"] == "bytes=0-0"), None)
            media = next((n for n in mine if n["range"] != "bytes=0-0"), None)
            if match is None or first_any is None:
                res.failures += 1
                row["error"] = "frame not in the sampled list"
                res.rows.append(row)
                continue
            f, d = match
            row.update(
                {
                    "to_frame_ms": f[0] - click_wall,
                    "to_any_ms": first_any[0] - click_wall,
                    "first_any_stamp": first_any[3],
                    "media_time": f[2],
                    "stamp_diff": d,
                    "sent_vs_requested_ms": (sent_ns / 1e6 - requested / 1e3) if sent_ns else None,
                }
            )
            if probe is not None and media is not None:
                row["probe_ms"] = probe["first_byte"] - click_wall
                row["clip_s"] = probe["clip_us"] / 1e6
                row["clip_bytes"] = probe["bytes"]
                row["media_request_ms"] = media["start"] - click_wall
                row["first_byte_ms"] = media["first_byte"] - click_wall
            res.to_frame.append(row["to_frame_ms"])
            res.to_any.append(row["to_any_ms"])
            if "media_request_ms" in row:
                res.to_probe.append(row["probe_ms"])
                res.to_request.append(row["media_request_ms"])
                res.to_first_byte.append(row["first_byte_ms"])
            res.rows.append(row)
            print(
                f"  click {i + 1}: {row['to_frame_ms']:.0f} ms to the frame of the instant "
                f"(stamp {f[3]}, expected {expect}, diff {d:+d} frames, media time {f[2]:.3f} s;"
                f" first frame of the clip after {row['to_any_ms']:.0f} ms; video element's "
                f"request after {row.get('media_request_ms', float('nan')):.0f} ms, first byte "
                f"{row.get('first_byte_ms', float('nan')):.0f} ms; the page's Range 0-0 probe "
                f"answered after {row.get('probe_ms', float('nan')):.0f} ms; clip "
                f"{row.get('clip_s', float('nan')):.0f} s, {row.get('clip_bytes', '?')} bytes)",
                flush=True,
            )
            time.sleep(1.0 + rng.random())
        res.by_window = probe_vs_window(vigil, rng)
    finally:
        context.close()
    return res


# -- part 4: live viewers ------------------------------------------------------------------------


@dataclass
class ViewerResult:
    n: int
    rss0_mb: float = 0.0
    rss_n_mb: float = 0.0
    rss_after_mb: float = 0.0
    pss0_mb: float = 0.0
    pss_n_mb: float = 0.0
    cpu0: float = 0.0
    cpu_n: float = 0.0
    client_cpu: float = 0.0
    fps: list[float] = field(default_factory=list)
    mbit: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    threads0: int = 0
    threads_n: int = 0
    connect_s: float = 0.0

    @property
    def per_viewer_mb(self) -> float:
        return (self.rss_n_mb - self.rss0_mb) / self.n if self.n else 0.0


async def _viewers(args: argparse.Namespace, vigil: VigilProc, n: int, res: ViewerResult) -> None:
    import websockets

    ws_url = vigil.url.replace("http://", "ws://") + "/api/cameras/door/live?stream=main"
    me = os.getpid()
    pid = vigil.pid

    # 0 viewers
    s0 = C.ProcSampler(lambda: [pid], interval=0.5).start()
    await asyncio.sleep(args.viewer_measure_s)
    u0 = s0.stop()
    res.rss0_mb, res.pss0_mb, res.cpu0 = u0.rss_mean / C.MB, u0.pss_mean / C.MB, u0.cpu_pct
    res.threads0 = C.thread_count(pid)

    counts = [[0, 0] for _ in range(n)]  # fragments, bytes
    stop = asyncio.Event()

    async def viewer(i: int) -> None:
        try:
            async with websockets.connect(
                ws_url,
                additional_headers={"Authorization": f"Bearer {vigil.token}"},
                max_size=None,
                open_timeout=60,
            ) as ws:
                while not stop.is_set():
                    try:
                        msg = await asyncio.wait_for(ws.recv(), timeout=1.0)
                    except TimeoutError:
                        continue
                    if isinstance(msg, bytes):
                        counts[i][0] += 1
                        counts[i][1] += len(msg)
        except Exception as exc:  # a viewer that was dropped is reported, not fatal
            res.errors.append(f"viewer {i}: {type(exc).__name__}: {exc}")

    t0 = time.monotonic()
    tasks = [asyncio.create_task(viewer(i)) for i in range(n)]
    while sum(1 for c in counts if c[0] > 0) < n and time.monotonic() - t0 < 60:
        await asyncio.sleep(0.1)
    res.connect_s = time.monotonic() - t0
    await asyncio.sleep(args.viewer_warm_s)
    before = [list(c) for c in counts]
    sn = C.ProcSampler(lambda: [pid], interval=0.5).start()
    client_t0 = C.cpu_ticks(me) or 0
    t_start = time.monotonic()
    await asyncio.sleep(args.viewer_measure_s)
    dt = time.monotonic() - t_start
    un = sn.stop()
    client_ticks = (C.cpu_ticks(me) or 0) - client_t0
    after = [list(c) for c in counts]
    res.rss_n_mb, res.pss_n_mb, res.cpu_n = un.rss_mean / C.MB, un.pss_mean / C.MB, un.cpu_pct
    res.threads_n = C.thread_count(pid)
    res.client_cpu = 100.0 * client_ticks / C.CLK_TCK / dt
    res.fps = [(a[0] - b[0]) / dt for a, b in zip(after, before, strict=True)]
    res.mbit = [(a[1] - b[1]) * 8 / dt / 1e6 for a, b in zip(after, before, strict=True)]
    stop.set()
    await asyncio.gather(*tasks)
    await asyncio.sleep(10)
    s2 = C.ProcSampler(lambda: [pid], interval=0.5).start()
    await asyncio.sleep(3)
    res.rss_after_mb = s2.stop().rss_mean / C.MB


def run_in_thread(coro: Any) -> None:
    """``asyncio.run`` in a thread of its own: Playwright's sync API keeps an event loop on
    the main thread."""
    failed: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(coro)
        except BaseException as exc:
            failed.append(exc)

    th = threading.Thread(target=run, name="viewers")
    th.start()
    th.join()
    if failed:
        raise failed[0]


def bench_viewers(args: argparse.Namespace, vigil: VigilProc) -> list[ViewerResult]:
    out = []
    for n in args.viewer_steps:
        res = ViewerResult(n)
        run_in_thread(_viewers(args, vigil, n, res))
        out.append(res)
        print(
            f"  {n} viewers: RSS {res.rss0_mb:.1f} -> {res.rss_n_mb:.1f} MB "
            f"({res.per_viewer_mb * 1024:.0f} KiB/viewer), after {res.rss_after_mb:.1f} MB; "
            f"CPU {res.cpu0:.0f}% -> {res.cpu_n:.0f}%; fps min {min(res.fps):.1f} "
            f"mean {sum(res.fps) / len(res.fps):.1f}; errors {len(res.errors)}",
            flush=True,
        )
    return out


async def _rtc_peers(args: argparse.Namespace, vigil: VigilProc, n: int, res: ViewerResult) -> None:
    """``n`` WebRTC peers (aiortc clients in this process, bearer token) on the camera's
    main stream. The clients do not decode (their H.264 decoder only counts frames): the
    CPU measured is Vigil's, whose side packetizes and encrypts (SRTP) per peer."""
    import httpx
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.codecs import h264

    frames = [0]

    def count(_self: Any, _encoded: Any) -> list[Any]:
        frames[0] += 1
        return []

    h264.H264Decoder.decode = count  # type: ignore[method-assign]
    me = os.getpid()
    pid = vigil.pid
    s0 = C.ProcSampler(lambda: [pid], interval=0.5).start()
    await asyncio.sleep(args.viewer_measure_s)
    u0 = s0.stop()
    res.rss0_mb, res.pss0_mb, res.cpu0 = u0.rss_mean / C.MB, u0.pss_mean / C.MB, u0.cpu_pct
    res.threads0 = C.thread_count(pid)
    pcs = []
    t0 = time.monotonic()
    async with httpx.AsyncClient(
        base_url=vigil.url, headers={"Authorization": f"Bearer {vigil.token}"}, timeout=60
    ) as http:
        for i in range(n):
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            pc.addTransceiver("video", direction="recvonly")
            await pc.setLocalDescription(await pc.createOffer())
            r = await http.post(
                "/api/cameras/door/webrtc?stream=main",
                json={"type": "offer", "sdp": pc.localDescription.sdp},
            )
            if r.status_code != 200:
                res.errors.append(f"peer {i}: HTTP {r.status_code} {r.text[:200]}")
                await pc.close()
                continue
            await pc.setRemoteDescription(RTCSessionDescription(r.json()["sdp"], "answer"))
            pcs.append(pc)
        while time.monotonic() - t0 < 60 and any(p.connectionState != "connected" for p in pcs):
            await asyncio.sleep(0.1)
        res.connect_s = time.monotonic() - t0
        await asyncio.sleep(args.viewer_warm_s)
        f0 = frames[0]
        sn = C.ProcSampler(lambda: [pid], interval=0.5).start()
        client_t0 = C.cpu_ticks(me) or 0
        t_start = time.monotonic()
        await asyncio.sleep(args.viewer_measure_s)
        dt = time.monotonic() - t_start
        un = sn.stop()
        client_ticks = (C.cpu_ticks(me) or 0) - client_t0
        res.rss_n_mb, res.pss_n_mb, res.cpu_n = un.rss_mean / C.MB, un.pss_mean / C.MB, un.cpu_pct
        res.threads_n = C.thread_count(pid)
        res.client_cpu = 100.0 * client_ticks / C.CLK_TCK / dt
        per_peer = (frames[0] - f0) / dt / max(1, len(pcs))
        res.fps = [per_peer] * len(pcs) or [0.0]
        res.mbit = [0.0]
        for pc in pcs:
            await pc.close()
    await asyncio.sleep(10)
    s2 = C.ProcSampler(lambda: [pid], interval=0.5).start()
    await asyncio.sleep(3)
    res.rss_after_mb = s2.stop().rss_mean / C.MB


def bench_peers(args: argparse.Namespace, vigil: VigilProc) -> dict[str, ViewerResult]:
    """The same number of WebSocket viewers and WebRTC peers, one after the other."""
    out = {"ws": ViewerResult(args.peers), "webrtc": ViewerResult(args.peers)}
    run_in_thread(_viewers(args, vigil, args.peers, out["ws"]))
    run_in_thread(_rtc_peers(args, vigil, args.peers, out["webrtc"]))
    for kind, res in out.items():
        print(
            f"  {args.peers} {kind} viewers: RSS {res.rss0_mb:.1f} -> {res.rss_n_mb:.1f} MB; "
            f"CPU {res.cpu0:.0f}% -> {res.cpu_n:.0f}%; fps mean "
            f"{sum(res.fps) / len(res.fps):.1f}; client CPU {res.client_cpu:.0f}%; errors "
            f"{len(res.errors)} {res.errors[:2]}",
            flush=True,
        )
    return out


# -- part 3: event search ------------------------------------------------------------------------

CAMERAS = {  # name: (share of events, zones)
    "street": (0.30, ["street", "sidewalk"]),
    "driveway": (0.20, ["driveway", "street"]),
    "porch": (0.14, ["porch", "steps"]),
    "backyard": (0.10, ["lawn", "patio", "shed"]),
    "garage": (0.08, ["garage_door", "driveway"]),
    "side": (0.07, ["gate"]),
    "gate": (0.06, ["gate", "sidewalk"]),
    "shed": (0.05, ["shed"]),
}
LABELS = {"person": 0.55, "car": 0.25, "dog": 0.06, "cat": 0.05, "bicycle": 0.05, "truck": 0.04}
DAYS = 30
CURSOR = "next page (cursor)"
DEEP = "next page, 500k deep"
CAMS3 = "3 cameras"  # an explicit list, or a user granted 3 cameras: the same SQL
CAMS3_NEXT = "3 cameras, next page"
RARE_ZONE = "rare zone"  # a zone no event entered
OTHER_ZONE = "zone of another camera"  # e.g. gate on driveway, which never entered it
ZONE_CAM = "zone+camera"
ZONE_LABEL = "zone+label"
ZONE_NEXT = "zone, next page"
QUERY_KINDS = (
    "camera",
    "camera+label",
    "zone",
    "time range",
    CURSOR,
    DEEP,
    CAMS3,
    CAMS3_NEXT,
    RARE_ZONE,
    OTHER_ZONE,
    ZONE_CAM,
    ZONE_LABEL,
    ZONE_NEXT,
)
CURSOR_KINDS = (CURSOR, DEEP, CAMS3_NEXT, ZONE_NEXT)
PAGE = 48  # the events page's page size


def _weighted(rng: random.Random, table: dict[str, float]) -> str:
    return rng.choices(list(table), weights=list(table.values()))[0]


def fill_events(url: str, n: int, seed: int, now_us: int) -> dict[str, Any]:
    """Bulk-insert ``n`` synthetic events (and their zone rows) with SQLAlchemy Core."""
    from sqlalchemy import insert, select

    from vigil.index.db import Database
    from vigil.index.events_models import EventRow, EventZone
    from vigil.index.models import Camera

    db = Database(url)
    rng = random.Random(seed)
    t0 = time.monotonic()
    events_t, zones_t, cams_t = EventRow.__table__, EventZone.__table__, Camera.__table__
    with db.engine.begin() as conn:
        for name in CAMERAS:
            if conn.execute(select(cams_t.c.id).where(cams_t.c.name == name)).first() is None:
                conn.execute(insert(cams_t), [{"name": name, "created_us": now_us}])
        ids = dict(conn.execute(select(cams_t.c.name, cams_t.c.id)).all())
    span_us = DAYS * 86400 * 1_000_000
    first = now_us - span_us
    starts = sorted(rng.randrange(first, now_us - 60_000_000) for _ in range(n))
    names = list(CAMERAS)
    weights = [CAMERAS[c][0] for c in names]
    batch = 20_000
    zone_rows = 0
    for b in range(0, n, batch):
        rows, zrows = [], []
        for j in range(b, min(n, b + batch)):
            cam = rng.choices(names, weights=weights)[0]
            label = _weighted(rng, LABELS)
            start = starts[j]
            dur = int(min(1800.0, max(1.0, rng.lognormvariate(2.7, 1.0))) * 1e6)
            ongoing = j >= n - 3
            czones = CAMERAS[cam][1]
            k = rng.choices((0, 1, 2), weights=(0.35, 0.45, 0.20))[0]
            zones = rng.sample(czones, min(k, len(czones)))
            track = rng.randrange(1, 1 << 31)
            eid = f"{cam}-{track}-{start // 1000}"
            rows.append(
                {
                    "id": eid,
                    "camera_id": ids[cam],
                    "label": label,
                    "track_id": track,
                    "start_us": start,
                    "end_us": None if ongoing else start + dur,
                    "max_score": round(rng.uniform(0.5, 0.99), 3),
                    "zones": zones,
                    "lines": [],
                    "snapshot": f"{cam}/events/x/{eid}.jpg",
                    "snapshot_us": start + dur // 2,
                    "snapshot_box": [0.1, 0.2, 0.3, 0.4],
                    "stationary": False,
                    "end_reason": None if ongoing else "lost",
                    "hold_id": None,
                    "created_us": start,
                    "updated_us": start + dur,
                }
            )
            zrows += [
                {
                    "event_id": eid,
                    "zone": z,
                    "camera_id": ids[cam],
                    "label": label,
                    "start_us": start,
                }
                for z in zones
            ]
        with db.engine.begin() as conn:
            conn.execute(insert(events_t), rows)
            if zrows:
                conn.execute(insert(zones_t), zrows)
        zone_rows += len(zrows)
        if (b // batch) % 10 == 0:
            print(f"    {b + len(rows):>9,} events ({time.monotonic() - t0:.0f} s)", flush=True)
    secs = time.monotonic() - t0
    if url.startswith("postgresql"):
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    db.close()
    return {
        "events": n,
        "zone_rows": zone_rows,
        "insert_s": secs,
        "first_us": first,
        "now_us": now_us,
    }


def raw_statement(
    p: dict[str, Any],
    camera_ids: dict[str, int],
    *,
    join_cameras: bool = False,
    in_list: bool = False,
) -> Any:
    """The SELECT ``EventStore.search`` issues for the API's parameters when an admin asks
    (same filters, order and limit + 1), in SQLAlchemy Core; :func:`measure_search` checks
    it against the SQL the store really sent. ``events`` alone, cameras by id
    (``camera_ids``: name -> id, mapped by the caller), several cameras as one ordered,
    limited SELECT per camera under a UNION ALL. The keyword arguments are what-ifs:
    ``join_cameras`` is the form Vigil sent before e796752 (``events JOIN cameras``,
    cameras by name, labels first); ``in_list`` writes several cameras as
    ``events.camera_id IN (...)`` instead of the UNION ALL."""
    from sqlalchemy import exists, or_, select, tuple_, union_all

    from vigil.events.store import decode_cursor
    from vigil.index.events_models import EventRow, EventZone
    from vigil.index.models import Camera

    ev, cam, ez = EventRow.__table__, Camera.__table__, EventZone.__table__

    def newest(q: Any) -> Any:
        cols = q.selected_columns
        return q.order_by(cols.start_us.desc(), cols.id.desc()).limit(PAGE + 1)

    cams = p.get("camera")
    labels = p.get("label")
    if join_cameras:
        q = select(ev, cam.c.name).join(cam, cam.c.id == ev.c.camera_id)
        if cams:
            q = q.where(cam.c.name.in_(cams))
        if labels:
            q = q.where(ev.c.label.in_(labels))
    else:
        q = select(ev)
    zone = p.get("zone")
    if zone and not join_cameras:  # one zone in this benchmark: walk its own rows
        return raw_zone_statement(p, camera_ids)
    if zone:
        q = q.where(exists().where(ez.c.event_id == ev.c.id, ez.c.zone.in_(zone)))
    if p.get("end") is not None:
        q = q.where(ev.c.start_us < p["end"])
    if p.get("start") is not None:
        q = q.where(or_(ev.c.end_us.is_(None), ev.c.end_us >= p["start"]))
    if p.get("cursor"):
        c_start, c_id = decode_cursor(p["cursor"])
        q = q.where(tuple_(ev.c.start_us, ev.c.id) < tuple_(c_start, c_id))
    if join_cameras:
        return newest(q)
    ids = sorted({camera_ids[c] for c in cams}) if cams else []
    if len(ids) == 1:
        q = q.where(ev.c.camera_id == ids[0])
    elif ids and in_list:
        q = q.where(ev.c.camera_id.in_(ids))
    if labels:  # one label in this benchmark
        q = q.where(ev.c.label == labels[0])
    if len(ids) < 2 or in_list:
        return newest(q)
    parts = [newest(q.where(ev.c.camera_id == i)).subquery() for i in ids]
    return newest(select(union_all(*(select(s) for s in parts)).subquery()))


def raw_zone_statement(p: dict[str, Any], camera_ids: dict[str, int]) -> Any:
    """The SELECT for one zone (and at most one camera and label): the zone's rows of
    ``event_zones`` newest first by their copy of (start_us, event_id), joined to
    ``events`` by primary key; the label is the zone row's copy."""
    from sqlalchemy import or_, select, tuple_

    from vigil.events.store import decode_cursor
    from vigil.index.events_models import EventRow, EventZone

    ev, ez = EventRow.__table__, EventZone.__table__
    q = select(ev).select_from(ez.join(ev, ev.c.id == ez.c.event_id))
    if p.get("end") is not None:
        q = q.where(ez.c.start_us < p["end"])
    if p.get("start") is not None:
        q = q.where(or_(ev.c.end_us.is_(None), ev.c.end_us >= p["start"]))
    if p.get("cursor"):
        c_start, c_id = decode_cursor(p["cursor"])
        q = q.where(tuple_(ez.c.start_us, ez.c.event_id) < tuple_(c_start, c_id))
    if p.get("camera"):
        q = q.where(ez.c.camera_id == camera_ids[p["camera"][0]])
    if p.get("label"):
        q = q.where(ez.c.label == p["label"][0])
    q = q.where(ez.c.zone == p["zone"][0])
    return q.order_by(ez.c.start_us.desc(), ez.c.event_id.desc()).limit(PAGE + 1)


def store_search(store: Any, p: dict[str, Any]) -> Any:
    """What the route calls for an admin: no camera list unless cameras were asked for."""
    return store.search(
        camera=p.get("camera"),
        label=p.get("label"),
        zone=p.get("zone"),
        start_us=p.get("start"),
        end_us=p.get("end"),
        limit=PAGE,
        cursor=p.get("cursor"),
    )


def _sql_shape(sql: str) -> str:
    """SQL without its column list, labels and whitespace, to compare two renderings."""
    import re

    text = " ".join(sql.split())
    text = re.sub(r"^SELECT .*? FROM ", "SELECT ... FROM ", text)
    text = re.sub(r"\s+AS \w+", "", text)
    return re.sub(r"__\[POSTCOMPILE_\w+\]|\?|%\(\w+\)s", "?", text)


def store_sql(store: Any, p: dict[str, Any]) -> str:
    """The events SELECT that ``EventStore.search`` sends for ``p`` (captured)."""
    from sqlalchemy import event

    seen: list[str] = []

    def grab(_c: Any, _cur: Any, statement: str, *_a: Any) -> None:
        if "FROM events" in statement or "FROM event_zones" in statement:
            seen.append(statement)

    engine = store.db.engine
    event.listen(engine, "before_cursor_execute", grab)
    try:
        store_search(store, p)
    finally:
        event.remove(engine, "before_cursor_execute", grab)
    return seen[-1] if seen else ""


class QueryGen:
    """Random parameters of each query kind (seeded); the cursor kinds follow next_cursor
    from the newest page (or from the event ``deep_rows`` down) onwards, the 3-camera
    one over a fixed set of three cameras."""

    def __init__(self, seed: int, info: dict[str, Any], kind: str) -> None:
        self.rng = random.Random(seed)
        self.info = info
        self.cursor: str | None = info.get("deep_cursor") if kind == DEEP else None
        self.zones = sorted({z for _s, zs in CAMERAS.values() for z in zs})
        self.trio = ["porch", "side", "shed"]  # 26 % of the events
        self.zones_not_on = {
            c: [z for z in self.zones if z not in zs] for c, (_w, zs) in CAMERAS.items()
        }

    def params(self, kind: str) -> dict[str, Any]:
        r = self.rng
        if kind == "camera":
            return {"camera": [r.choice(list(CAMERAS))]}
        if kind == "camera+label":
            return {"camera": [r.choice(list(CAMERAS))], "label": [r.choice(list(LABELS))]}
        if kind == "zone":
            return {"zone": [r.choice(self.zones)]}
        if kind == RARE_ZONE:
            return {"zone": [r.choice(["back_door", "pool", "roof"])]}
        if kind == OTHER_ZONE:
            cam = r.choice(list(CAMERAS))
            return {"camera": [cam], "zone": [r.choice(self.zones_not_on[cam])]}
        if kind == ZONE_CAM:
            cam = r.choice(list(CAMERAS))
            return {"camera": [cam], "zone": [r.choice(CAMERAS[cam][1])]}
        if kind == ZONE_LABEL:
            return {"zone": [r.choice(self.zones)], "label": [r.choice(list(LABELS))]}
        if kind == ZONE_NEXT:
            return {"zone": ["street"], "cursor": self.cursor}
        if kind == "time range":
            start = r.randrange(self.info["first_us"], self.info["now_us"] - 3_600_000_000)
            return {"start": start, "end": start + 3_600_000_000}
        if kind == CAMS3:
            return {"camera": r.sample(list(CAMERAS), 3)}
        if kind == CAMS3_NEXT:
            return {"camera": self.trio, "cursor": self.cursor}
        return {"cursor": self.cursor}


def api_params(p: dict[str, Any]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = [("limit", PAGE)]
    for k in ("camera", "label", "zone"):
        out += [(k, v) for v in p.get(k) or []]
    for k in ("start", "end", "cursor"):
        if p.get(k) is not None:
            out.append((k, p[k]))
    return out


def explain(engine: Any, stmt: Any) -> list[str]:
    """The plan the database uses for ``stmt`` with bound parameters, as the application
    sends it (SQLite: EXPLAIN QUERY PLAN; PostgreSQL: EXPLAIN ANALYZE)."""
    compiled = stmt.compile(engine, compile_kwargs={"render_postcompile": True})
    sql = str(compiled)
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            params = tuple(compiled.params[k] for k in compiled.positiontup or ())
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params).all()
            return [str(r[3]) for r in rows]
        rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + sql, compiled.params).all()
        return [str(r[0]) for r in rows]


def deep_cursor(url: str, rows: int) -> str:
    """A cursor ``rows`` events down from the newest (as next_cursor would name it)."""
    from sqlalchemy import create_engine, text

    from vigil.events.store import encode_cursor

    engine = create_engine(url)
    with engine.connect() as conn:
        start_us, event_id = conn.execute(
            text(
                "SELECT start_us, id FROM events ORDER BY start_us DESC, id DESC LIMIT 1 OFFSET :n"
            ),
            {"n": rows - 1},
        ).one()
    engine.dispose()
    return encode_cursor(int(start_us), str(event_id))


def measure_search(
    backend: str,
    url: str,
    vigil: VigilProc,
    info: dict[str, Any],
    args: argparse.Namespace,
    kinds: tuple[str, ...] = QUERY_KINDS,
    label: str = "",
    rewrite: dict[str, bool] | None = None,
) -> list[dict[str, Any]]:
    """Per query kind: API, EventStore.search and raw Core times, interleaved request by
    request (rotating the order). With ``rewrite`` only the raw SQL is run, rewritten."""
    from sqlalchemy import create_engine, text

    from vigil.events.store import EventStore
    from vigil.index.db import Database
    from vigil.index.repository import Index

    db = Database(url, run_migrations=False)
    store = EventStore(Index(db, vigil.root / "store"))
    raw_engine = create_engine(url)
    hows = ["raw"] if rewrite else ["api", "store", "raw"]
    rw = dict(rewrite or {})
    with raw_engine.connect() as c:  # the caller's camera lookup (the store caches its own)
        cam_ids: dict[str, int] = dict(c.execute(text("SELECT name, id FROM cameras")).all())
    out = []
    with vigil.api() as api, raw_engine.connect() as conn:
        for kind in kinds:
            gen = QueryGen(args.seed, info, kind)
            t: dict[str, list[float]] = {h: [] for h in ("api", "store", "raw")}
            checked = False
            budget_end = time.monotonic() + args.query_budget_s
            i = 0
            warm = args.query_warmup
            nxt = None
            while i < args.requests + warm:
                p = gen.params(kind)
                order = hows[i % len(hows) :] + hows[: i % len(hows)]
                got: dict[str, Any] = {}
                for how in order:
                    t0 = time.perf_counter()
                    if how == "api":
                        r = api.get("/api/events", params=api_params(p))
                        dt = time.perf_counter() - t0
                        r.raise_for_status()
                        doc = r.json()
                        got["api"] = [e["id"] for e in doc["events"]]
                        nxt = doc["next_cursor"]
                    elif how == "store":
                        page = store_search(store, p)
                        dt = time.perf_counter() - t0
                        got["store"] = [e.id for e in page.items]
                    else:
                        stmt = raw_statement(p, cam_ids, **rw)  # built before the clock
                        t0 = time.perf_counter()
                        rows = conn.execute(stmt).all()
                        dt = time.perf_counter() - t0
                        got["raw"] = [row.id for row in rows[:PAGE]]
                        if rewrite:
                            from vigil.events.store import encode_cursor

                            last = rows[PAGE - 1] if len(rows) > PAGE else None
                            nxt = encode_cursor(last.start_us, last.id) if last else None
                    if i >= warm:
                        t[how].append(dt * 1000)
                if not checked:
                    mine = str(
                        raw_statement(p, cam_ids, **rw).compile(
                            raw_engine, compile_kwargs={"render_postcompile": True}
                        )
                    )
                    theirs = store_sql(store, p)
                    if not rewrite and _sql_shape(mine) != _sql_shape(theirs):
                        print(
                            f"  NOTE {backend} {kind}: the raw SQL baseline is not the SQL "
                            f"EventStore.search sends:\n    bench: {_sql_shape(mine)}\n"
                            f"    store: {_sql_shape(theirs)}"
                        )
                    want = got.get("api")
                    if rewrite:  # the rewrite must return what the shipped query returns
                        want = [r.id for r in conn.execute(raw_statement(p, cam_ids)).all()][:PAGE]
                    if any(got[h] != want for h in hows):
                        raise AssertionError(f"{backend} {kind}{label}: results disagree")
                    checked = True
                if kind in CURSOR_KINDS:
                    gen.cursor = nxt
                i += 1
                if time.monotonic() > budget_end and i >= warm + args.min_requests:
                    break
            row: dict[str, Any] = {
                "backend": backend,
                "kind": kind,
                "label": label,
                "rewrite": bool(rewrite),
                **{f"{k}_{m}": v for k in t for m, v in pcts(t[k]).items()},
            }
            head = "api" if not rewrite else "raw"
            sample = gen.params(kind)
            row["plan"] = (
                explain(raw_engine, raw_statement(sample, cam_ids, **rw))
                if (row[f"{head}_p99"] >= TARGET_SEARCH_P99_MS or args.explain_all)
                else []
            )
            out.append(row)
            print(
                f"  {backend:<10} {kind + label:<48} n={row[f'{head}_n']:<4} API p50 "
                f"{f1(row['api_p50']):>6} p99 {f1(row['api_p99']):>6} | store p50 "
                f"{f1(row['store_p50']):>6} p99 {f1(row['store_p99']):>6} | SQL p50 "
                f"{f1(row['raw_p50']):>6} p99 {f1(row['raw_p99']):>6} ms",
                flush=True,
            )
            for line in row["plan"]:
                print(f"      plan: {line}")
    raw_engine.dispose()
    db.close()
    return out


def search_vigil_config(root: Path, url: str) -> dict[str, Any]:
    return {
        "storage": {"path": str(root / "store")},
        "database": {"url": url},
        "logging": {"level": "WARNING"},
        "events": {"retention": "400d"},
        "api": {"export_dir": str(root / "exports"), "cache_dir": str(root / "cache")},
        "cameras": [
            {"name": c, "enabled": False, "main": {"url": f"rtsp://127.0.0.1:9/{c}"}}
            for c in CAMERAS
        ],
    }


@contextlib.contextmanager
def pg_database() -> Iterator[str | None]:
    """A fresh ``vigil_bench`` database, dropped afterwards; None when PostgreSQL is absent."""
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)"))
            conn.execute(text(f"CREATE DATABASE {PG_DB}"))
    except Exception as exc:
        print(f"  PostgreSQL unavailable ({type(exc).__name__}: {exc}): skipped")
        admin.dispose()
        yield None
        return
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{PG_DB}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)"))
        admin.dispose()


def bench_search(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    now_us = int(time.time() * 1e6)
    results: dict[str, Any] = {"rows": [], "fill": {}, "what_if": []}
    backends = [b for b in ("sqlite", "postgresql") if b in args.backends]
    for backend in backends:
        root = work / f"search-{backend}"
        root.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as stack:
            if backend == "sqlite":
                url = f"sqlite:///{root / 'store' / 'vigil.db'}"
            else:
                got = stack.enter_context(pg_database())
                if got is None:
                    continue
                url = got
            part_header(f"3. search: {backend}, bulk insert of {args.events:,} events", args)
            info = fill_events(url, args.events, args.seed, now_us)
            info["deep_cursor"] = deep_cursor(url, min(args.deep_rows, args.events - 1000))
            results["fill"][backend] = info
            print(f"  inserted in {info['insert_s']:.0f} s ({info['zone_rows']:,} zone rows)")
            vigil = VigilProc(root, search_vigil_config(root, url))
            stack.callback(vigil.stop)
            vigil.start()
            if backend == "sqlite":
                waited = wait_sqlite_stats(url)
                info["stats_after_s"] = waited
                print(
                    "  planner statistics (the recorder's ANALYZE): "
                    + (f"present after {waited:.1f} s" if waited is not None else "NONE after 90 s")
                )
            load = part_header(f"3. search: {backend}, queries", args)
            rows = measure_search(backend, url, vigil, info, args)
            for r in rows:
                r["load"] = load
            results["rows"] += rows
            if args.what_if:
                results["what_if"] += what_if(backend, url, vigil, info, args, rows)
    return results


def wait_sqlite_stats(url: str, timeout: float = 90.0) -> float | None:
    """Seconds until the recorder's first ``ANALYZE`` left planner statistics in the
    SQLite index (None if none appeared): the shipped state of a running Vigil."""
    from sqlalchemy import create_engine

    engine = create_engine(url)
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < timeout:
            with engine.connect() as conn:
                if (
                    conn.exec_driver_sql(
                        "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'"
                    ).scalar()
                    and conn.exec_driver_sql("SELECT count(*) FROM sqlite_stat1").scalar()
                ):
                    return time.monotonic() - t0
            time.sleep(0.5)
        return None
    finally:
        engine.dispose()


def what_if(
    backend: str,
    url: str,
    vigil: VigilProc,
    info: dict[str, Any],
    args: argparse.Namespace,
    rows: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Comparisons on the bench database only (``src/`` is not touched), as raw SQL: the
    query Vigil sent before e796752 (``events JOIN cameras``) and several cameras as
    ``camera_id IN (...)`` instead of one SELECT per camera. For SQLite also the shipped
    queries through the API without planner statistics (``sqlite_stat1`` dropped, as
    before the first ``ANALYZE`` of a new index) and with sampled statistics
    (``analysis_limit=1000``, what misled SQLite into a full sort before 950a5ae), each
    beside the raw-SQL what-ifs in the same state."""
    from sqlalchemy import create_engine

    load = part_header(f"3. search: {backend}, what-if", args)
    out: list[dict[str, Any]] = []
    join = " [SQL before e796752: JOIN with cameras]"
    in_list = " [SQL: camera_id IN (...)]"
    many = (CAMS3, CAMS3_NEXT)

    def forms(state: str) -> None:
        nonlocal out
        out += measure_search(
            backend, url, vigil, info, args, QUERY_KINDS, state + join, {"join_cameras": True}
        )
        out += measure_search(
            backend, url, vigil, info, args, many, state + in_list, {"in_list": True}
        )

    forms("")
    if backend == "sqlite":
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS sqlite_stat1")
        out += measure_search(
            backend, url, vigil, info, args, QUERY_KINDS, " [no planner statistics]"
        )
        forms(" [no planner statistics]")
        t0 = time.monotonic()
        with engine.begin() as conn:
            conn.exec_driver_sql("PRAGMA analysis_limit=1000")
            conn.exec_driver_sql("ANALYZE")
        print(f"  sampled ANALYZE took {time.monotonic() - t0:.1f} s")
        engine.dispose()
        sampled = " [sampled ANALYZE, analysis_limit=1000]"
        out += measure_search(backend, url, vigil, info, args, QUERY_KINDS, sampled)
        forms(sampled)
    for r in out:
        r["load"] = load
    return out


# -- report ------------------------------------------------------------------------------------


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    md = args.markdown
    live = results.get("live")
    if live:
        rows = []
        rows.append(
            [
                "Vigil in Chromium (display - send)",
                live["n"],
                f1(live["p50"]),
                f1(live["p95"]),
                f1(live["max"]),
                live["load"],
            ]
        )
        rows.append(
            [
                "  of which server path (send -> fragment in the page)",
                live["server"]["n"],
                f1(live["server"]["p50"]),
                f1(live["server"]["p95"]),
                f1(live["server"]["max"]),
                "",
            ]
        )
        rows.append(
            [
                "  of which browser (fragment in the page -> displayed)",
                live["browser"]["n"],
                f1(live["browser"]["p50"]),
                f1(live["browser"]["p95"]),
                f1(live["browser"]["max"]),
                "",
            ]
        )
        b = live["baseline"]
        rows.append(
            [
                "baseline: direct PyAV reader, decoded - send",
                b["n"],
                f1(b["p50"]),
                f1(b["p95"]),
                f1(b["max"]),
                "",
            ]
        )
        bd = live["baseline_demux"]
        rows.append(
            [
                "  (its demuxer hands the packet over: demuxed - send)",
                bd["n"],
                f1(bd["p50"]),
                f1(bd["p95"]),
                f1(bd["max"]),
                "",
            ]
        )
        rtc = live.get("webrtc")
        if rtc:
            rows.insert(
                3,
                [
                    "Vigil WebRTC in Chromium (display - send)",
                    rtc["n"],
                    f1(rtc["p50"]),
                    f1(rtc["p95"]),
                    f1(rtc["max"]),
                    "",
                ],
            )
        rows[0][0] = "Vigil MSE in Chromium (display - send)"
        C.print_table(
            "1. live latency (ms)", ["path", "frames", "p50", "p95", "max", "load"], rows, md
        )
        sessions = live["sessions"] + (rtc["sessions"] if rtc else [])
        sessions.sort(key=lambda r: r.get("order", 0))
        srows = [
            [
                f"{s.get('page_load', i + 1)} {s.get('transport', 'mse')}",
                s["matched"],
                f1(s["p50"]),
                f1(s["p95"]),
                f1(s["server_p50"]),
                f1(s["browser_p50"]),
                f1(s["ahead_p50"]),
                s["waiting"],
            ]
            for i, s in enumerate(sessions)
        ]
        C.print_table(
            "1b. live latency per page load (ms)",
            [
                "page load",
                "frames",
                "p50",
                "p95",
                "server p50",
                "browser p50",
                "buffered ahead p50",
                "stalls ('waiting')",
            ],
            srows,
            md,
        )
    click = results.get("click")
    if click:
        steps = [
            ("click -> first frame of the requested instant", "to_frame"),
            ("click -> first frame of the new clip (any stamp)", "to_any"),
            ("click -> the page's Range 0-0 probe of the clip answered", "to_probe"),
            ("click -> the <video> requests the clip", "to_request"),
            ("click -> first byte of the clip at the <video>", "to_first_byte"),
        ]
        rows = [
            [name, click[k]["n"], f1(click[k]["p50"]), f1(click[k]["p95"]), f1(click[k]["max"])]
            for name, k in steps
            if k in click
        ]
        C.print_table(
            f"2. timeline click (ms; load {click['load']}; failures {click['failures']})",
            ["measure", "clicks", "p50", "p95", "max"],
            rows,
            md,
        )
        if click.get("by_window"):
            C.print_table(
                "2b. first byte of playback.mp4 (Range 0-0, as the page's probe) by window length",
                ["window", "p50 ms", "max ms", "clip MB"],
                [
                    [f"{w['window_s']} s", f1(w["p50"]), f1(w["max"]), f"{w['mb']:.1f}"]
                    for w in click["by_window"]
                ],
                md,
            )
    search = results.get("search")
    if search and search["rows"]:
        rows = []
        for r in search["rows"] + search.get("what_if", []):
            head = "raw" if r.get("rewrite") else "api"
            rows.append(
                [
                    r["backend"],
                    r["kind"] + r.get("label", ""),
                    r[f"{head}_n"],
                    f1(r["api_p50"]),
                    f1(r["api_p99"]),
                    f1(r["store_p50"]),
                    f1(r["store_p99"]),
                    f1(r["raw_p50"]),
                    f1(r["raw_p99"]),
                    "" if r.get("rewrite") else C.ratio(r["api_p50"], r["raw_p50"]),
                    ("yes" if r[f"{head}_p99"] < TARGET_SEARCH_P99_MS else "**no**")
                    + (" (SQL)" if r.get("rewrite") else ""),
                ]
            )
        C.print_table(
            "3. GET /api/events over 1M events (ms; one client; page of 48)",
            [
                "db",
                "query",
                "n",
                "API p50",
                "API p99",
                "store p50",
                "store p99",
                "SQL p50",
                "SQL p99",
                "API/SQL p50",
                "p99 < 50 ms",
            ],
            rows,
            md,
        )
    viewers = results.get("viewers")
    if viewers:
        rows = []
        for v in viewers:
            rows.append(
                [
                    v["n"],
                    f"{v['rss0_mb']:.1f}",
                    f"{v['rss_n_mb']:.1f}",
                    f"{v['per_viewer_kib']:.0f}",
                    f"{v['rss_after_mb']:.1f}",
                    f"{v['cpu0']:.0f} % -> {v['cpu_n']:.0f} %",
                    f"{v['fps_min']:.1f} / {v['fps_mean']:.1f} / {v['fps_max']:.1f}",
                    f"{v['mbit_mean']:.2f}",
                    len(v["errors"]),
                    f"{v['client_cpu']:.0f} %",
                    v["load"],
                ]
            )
        C.print_table(
            "4. live viewers on loopback (Vigil process)",
            [
                "viewers",
                "RSS 0 MB",
                "RSS n MB",
                "KiB/viewer",
                "RSS after MB",
                "CPU",
                "fps min/mean/max",
                "Mbit/s each",
                "errors",
                "client CPU",
                "load",
            ],
            rows,
            md,
        )

    peers = results.get("peers")
    if peers:
        rows = [
            [
                {"ws": "WebSocket (fMP4)", "webrtc": "WebRTC (aiortc)"}[kind],
                v["n"],
                f"{v['rss0_mb']:.1f} -> {v['rss_n_mb']:.1f}",
                f"{v['per_viewer_kib']:.0f}",
                f"{v['cpu0']:.0f} % -> {v['cpu_n']:.0f} %",
                f"{(v['cpu_n'] - v['cpu0']) / max(1, v['n']):.1f} %",
                f"{v['fps_mean']:.1f}",
                len(v["errors"]),
                f"{v['client_cpu']:.0f} %",
                v["load"],
            ]
            for kind, v in peers.items()
        ]
        C.print_table(
            "5. WebSocket viewers vs WebRTC peers of one camera (Vigil process)",
            [
                "kind",
                "n",
                "RSS MB",
                "KiB/viewer",
                "CPU",
                "CPU per viewer",
                "fps mean",
                "errors",
                "client CPU",
                "load",
            ],
            rows,
            md,
        )


# -- main ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--only",
        default="live,click,search,viewers,peers",
        help="comma list of parts: live, click, search, viewers, peers",
    )
    ap.add_argument("--markdown", action="store_true", help="Markdown tables")
    ap.add_argument("--json", type=Path, help="write all numbers here")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--max-load",
        type=float,
        default=3.0,
        help="wait for the 1-min load average to drop below this before a part",
    )
    ap.add_argument("--max-wait", type=float, default=120.0)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--fps", type=float, default=15.0)
    ap.add_argument("--bitrate", type=int, default=2000, help="camera kbit/s")
    ap.add_argument("--clip-s", type=float, default=60.0, help="loop length of the camera clip")
    ap.add_argument(
        "--sessions", type=int, default=8, help="page loads per transport for the live part"
    )
    ap.add_argument("--warm-s", type=float, default=2.0)
    ap.add_argument("--sample-s", type=float, default=10.0)
    ap.add_argument("--clicks", type=int, default=10)
    ap.add_argument(
        "--min-footage-s",
        type=float,
        default=150.0,
        help="closed footage wanted before the click part",
    )
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--min-requests", type=int, default=30)
    ap.add_argument("--query-warmup", type=int, default=10)
    ap.add_argument(
        "--query-budget-s",
        type=float,
        default=90.0,
        help="stop a query kind after this long (at least --min-requests)",
    )
    ap.add_argument(
        "--deep-rows",
        type=int,
        default=500_000,
        help="where the deep cursor kind starts (events from the newest)",
    )
    ap.add_argument("--explain-all", action="store_true")
    ap.add_argument(
        "--what-if",
        action="store_true",
        help="try fixes on the bench database / as raw SQL for missed queries",
    )
    ap.add_argument("--viewers", type=int, default=50)
    ap.add_argument("--peers", type=int, default=8, help="WebSocket viewers and WebRTC peers")
    ap.add_argument("--viewer-warm-s", type=float, default=10.0)
    ap.add_argument("--viewer-measure-s", type=float, default=20.0)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--child-pyav", nargs=2, metavar=("URL", "SECONDS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child_pyav:
        return pyav_reader_child(args.child_pyav[0], float(args.child_pyav[1]))
    parts = {p.strip() for p in args.only.split(",") if p.strip()}
    args.backends = {b.strip() for b in args.backends.split(",")}
    args.viewer_steps = [args.viewers]

    info = C.print_machine()
    print(f"{'uptime':>13}: {uptime()}")
    info["vigil"] = git_state()
    print(f"{'vigil':>13}: {info['vigil']}")
    results: dict[str, Any] = {"machine": info, "argv": sys.argv, "parts": {}}
    work = Path(tempfile.mkdtemp(prefix="vigil-bench-web-"))
    print(f"{'work dir':>13}: {work}")
    try:
        if parts & {"live", "click", "viewers", "peers"}:
            run_camera_parts(args, parts, work, results)
        if "search" in parts:
            results["search"] = bench_search(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    results["load_end"] = C.load_text()
    print(f"\nload average at the end: {results['load_end']}")
    report(results, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


def run_camera_parts(
    args: argparse.Namespace, parts: set[str], work: Path, results: dict[str, Any]
) -> None:
    from vigil.sim.controller import SimCamera, Simulator

    cam = SimCamera(
        "door",
        source="testsrc",
        width=args.width,
        height=args.height,
        fps=args.fps,
        bitrate_kbps=args.bitrate,
        duration=args.clip_s,
        gop_seconds=1.0,
        stamp=True,
    )
    with contextlib.ExitStack() as stack:
        sim = stack.enter_context(Simulator(progress=lambda m: print(f"  sim: {m}", flush=True)))
        sim.start([cam])
        cam_url = sim.url("door")
        ref = RtpRecorder(cam_url).start()  # before Vigil: every recorded frame is known
        stack.callback(ref.stop)
        config = {
            "storage": {"path": str(work / "camera" / "store")},
            "logging": {"level": "WARNING"},
            "api": {
                "export_dir": str(work / "camera" / "exports"),
                "cache_dir": str(work / "camera" / "cache"),
                "webrtc": {"max_peers": 64, "max_peers_per_user": 64},  # part "peers"
            },
            "cameras": [{"name": "door", "title": "Door", "main": {"url": cam_url}}],
        }
        vigil = VigilProc(work / "camera", config)
        stack.callback(vigil.stop)
        vigil.start()
        t_start = time.monotonic()
        print(
            f"  Vigil pid {vigil.pid} on {vigil.url}; camera {cam_url} "
            f"({args.width}x{args.height} {args.fps:g} fps {args.bitrate} kbit/s, GOP 1 s)"
        )
        browser = None
        if parts & {"live", "click"}:
            from playwright.sync_api import sync_playwright

            pw = stack.enter_context(sync_playwright())
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            stack.callback(browser.close)
            results["chromium"] = browser.version
        if "live" in parts:
            time.sleep(3)
            load = part_header("1. live latency in Chromium", args)
            both = bench_live(args, vigil, ref, cam_url, browser)
            res, rtc = both["mse"], both["webrtc"]
            results["live"] = {
                "load": load,
                **pcts(res.latencies),
                "sessions": res.sessions,
                "server": pcts(res.server_ms),
                "browser": pcts(res.browser_ms),
                "baseline": pcts(res.baseline),
                "baseline_demux": pcts(res.baseline_demux),
                "unmatched": res.unmatched,
                "no_stamp": res.no_stamp,
                "rvfc": res.rvfc,
                "clock_skew_ms": res.clock_skew_ms,
                "webrtc": {
                    **pcts(rtc.latencies),
                    "sessions": rtc.sessions,
                    "unmatched": rtc.unmatched,
                    "no_stamp": rtc.no_stamp,
                    "clock_skew_ms": rtc.clock_skew_ms,
                },
            }
            print(
                f"  frames without a readable stamp: MSE {res.no_stamp}, WebRTC "
                f"{rtc.no_stamp}; without a reference frame: MSE {res.unmatched}, WebRTC "
                f"{rtc.unmatched}; requestVideoFrameCallback: {res.rvfc}"
            )
        if "viewers" in parts:
            ref.decode()
            load = part_header(f"4. {args.viewers} live viewers", args)
            out = bench_viewers(args, vigil)
            results["viewers"] = [
                {
                    **{k: v for k, v in vars(r).items() if k not in ("fps", "mbit")},
                    "per_viewer_kib": r.per_viewer_mb * 1024,
                    "fps_min": min(r.fps),
                    "fps_mean": sum(r.fps) / len(r.fps),
                    "fps_max": max(r.fps),
                    "mbit_mean": sum(r.mbit) / len(r.mbit),
                    "load": load,
                }
                for r in out
            ]
        if "peers" in parts:
            ref.decode()
            title = f"5. {args.peers} WebSocket viewers vs {args.peers} WebRTC peers"
            load = part_header(title, args)
            both = bench_peers(args, vigil)
            results["peers"] = {
                kind: {
                    **{k: v for k, v in vars(r).items() if k not in ("fps", "mbit")},
                    "per_viewer_kib": (r.rss_n_mb - r.rss0_mb) / max(1, r.n) * 1024,
                    "fps_mean": sum(r.fps) / len(r.fps),
                    "load": load,
                }
                for kind, r in both.items()
            }
        if "click" in parts:
            wait = args.min_footage_s - (time.monotonic() - t_start)
            if wait > 0:
                print(f"  waiting {wait:.0f} s for footage to click on")
                time.sleep(wait)
            load = part_header("2. timeline click to first frame", args)
            cres = bench_click(args, vigil, ref, browser)
            results["click"] = {
                "load": load,
                "to_frame": pcts(cres.to_frame),
                "to_any": pcts(cres.to_any),
                "to_probe": pcts(cres.to_probe),
                "by_window": cres.by_window,
                "to_request": pcts(cres.to_request),
                "to_first_byte": pcts(cres.to_first_byte),
                "failures": cres.failures,
                "rows": cres.rows,
            }
        if ref.error:
            print(f"  reference reader: {ref.error}")
        results["reference_packets"] = ref.packets


if __name__ == "__main__":
    sys.exit(main())
