"""Recording benchmark: Vigil versus one ``ffmpeg -c copy -f segment`` process per camera.

For each camera count N (``--cameras 10,25,50,100``), two phases run one after the other,
each against a fresh camera simulator (GStreamer RTSP server, ``vigil.sim``) serving N
simulated 1080p H.264 cameras at ~4 Mbit/s, 15 fps, over loopback:

* **vigil**: one recorder process (this file run with ``--runner CONFIG``: ``NVR.open()``,
  ``start()``, and on SIGTERM ``stop()`` and a JSON line of per-camera statistics), with a
  generated configuration that records every camera and runs no analytics.
* **baseline**: what Frigate does for recording, one process per camera:
  ``ffmpeg -rtsp_transport tcp -i URL -c copy -f segment -segment_time 60
  -reset_timestamps 1 out%03d.mp4`` (Debian's ``/usr/bin/ffmpeg``).

Each phase waits until every camera is being recorded, settles, then measures for
``--seconds``: CPU (utime+stime from /proc over the interval; for the baseline summed over
the ffmpeg processes), RSS and PSS (sampled; peak and mean), and the simulator's own CPU and
pacing (``units_sent``, ``max_late_ms``, ``resyncs``). After stopping, packets and bytes are
counted: Vigil's from its runner's statistics and its index (segment ``packets``, file
sizes), the baseline's by demuxing its output files.

A 0-camera Vigil run gives the fixed overhead (an idle recorder process); marginal memory
per camera is (RSS(N) - RSS(0)) / N. Camera counts stop increasing once the simulator
itself falls behind (a resync, or a push later than ``--max-late-ms``).

Run by hand (never in CI): ``make bench-record`` or
``.venv/bin/python bench/record.py --cameras 10,25 --seconds 60 --markdown``.
Results and their interpretation: ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C

FFMPEG = "/usr/bin/ffmpeg"


# =============================================================================================
# The recorder runner (child process): only what `vigil run` does, plus a stats line
# =============================================================================================


def runner_main(config_path: str) -> int:
    """Record the configured cameras until SIGTERM, then print per-camera statistics.

    Prints JSON lines on stdout: ``{"event": "ready"}`` once started, ``{"event": "online",
    "cameras": k}`` whenever the number of cameras with a running session changes, and
    ``{"event": "stats", ...}`` after a clean stop."""
    from vigil.config.loader import load_config
    from vigil.runtime.nvr import NVR
    from vigil.util.log import setup_logging

    cfg = load_config(config_path)
    setup_logging(cfg.logging.level, cfg.logging.format)
    nvr = NVR(cfg)
    nvr.open()
    nvr.start()
    signal.signal(signal.SIGTERM, lambda *_: nvr.request_stop())
    signal.signal(signal.SIGINT, lambda *_: nvr.request_stop())

    def emit(obj: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    emit({"event": "ready", "pid": os.getpid(), "cameras": len(nvr.units)})
    online = -1
    while not nvr.wait(1.0):
        k = sum(1 for u in nvr.units.values() if u.reader.health().state == "online")
        if k != online:
            online = k
            emit({"event": "online", "cameras": k})
    t0 = time.monotonic()
    nvr.stop()
    stop_s = time.monotonic() - t0
    cams: dict[str, Any] = {}
    for name, unit in nvr.units.items():
        h = unit.reader.health()
        row: dict[str, Any] = {
            "packets": h.packets,
            "bytes": h.bytes,
            "dropped": h.dropped_packets,
            "reconnects": h.reconnects,
            "sessions": h.session_id or 0,
            "last_error": h.last_error,
        }
        if unit.recorder is not None:
            rs = unit.recorder.status()
            row.update(
                rec_in=rs.packets_in,
                rec_written=rs.packets_written,
                rec_dropped=dict(rs.dropped),
                segments_closed=rs.segments_closed,
                bytes_closed=rs.bytes_closed,
                rec_state=rs.state,
                rec_error=rs.last_error,
            )
        cams[name] = row
    emit({"event": "stats", "stop_s": round(stop_s, 3), "cameras": cams})
    return 0


# =============================================================================================
# Phases
# =============================================================================================


@dataclass
class Phase:
    kind: str  # "vigil" or "ffmpeg"
    cameras: int
    usage: C.Usage | None = None
    sim: C.Usage | None = None
    load: str = ""
    connect_s: float = 0.0  # from start until every camera records
    stop_s: float = 0.0
    threads: int = 0
    sim_sent: int = 0
    sim_max_late_ms: float = 0.0
    sim_resyncs: int = 0
    received: int = 0  # packets delivered by ingest (+ dropped leading ones) [vigil]
    ingest_dropped: int = 0
    rec_in: int = 0
    rec_written: int = 0
    rec_dropped: int = 0
    seg_packets: int = 0  # sum of segment packets in the index / in the baseline's files
    bitstream_bytes: int = 0  # payload bytes received (vigil) / demuxed from files (ffmpeg)
    disk_bytes: int = 0
    segments: int = 0
    unindexed: int = 0  # segment files on disk that the index does not list
    unindexed_bytes: int = 0
    reconnects: int = 0
    problems: list[str] = field(default_factory=list)
    profile: str = ""


def _sim_cameras(n: int, args: argparse.Namespace) -> list[Any]:
    from vigil.sim.controller import SimCamera

    return [
        SimCamera(
            f"cam{i:03d}",
            source=args.source,
            width=args.width,
            height=args.height,
            fps=args.fps,
            bitrate_kbps=args.bitrate,
            codec="h264",
            duration=args.clip_seconds,
        )
        for i in range(1, n + 1)
    ]


def _sim_stats(sim: Any, phase: Phase) -> None:
    st = sim.status()
    phase.sim_sent = sum(int(c["units_sent"]) for c in st)
    phase.sim_max_late_ms = max((float(c["max_late_ms"]) for c in st), default=0.0)
    phase.sim_resyncs = sum(int(c["resyncs"]) for c in st)


class _Lines:
    """Reads a child's stdout JSON lines in a thread; ``wait_for`` blocks on a predicate."""

    def __init__(self, stream: Any) -> None:
        self.events: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            try:
                ev = json.loads(line)
            except json.JSONDecodeError:
                continue
            with self._cond:
                self.events.append(ev)
                self._cond.notify_all()
        with self._cond:
            self.events.append({"event": "eof"})
            self._cond.notify_all()

    def wait_for(self, pred: Any, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for ev in self.events:
                    if pred(ev):
                        return ev
                    if ev.get("event") == "eof":
                        return None
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def last_online(self) -> int:
        with self._cond:
            ks = [e["cameras"] for e in self.events if e.get("event") == "online"]
        return ks[-1] if ks else 0


def _vigil_config(
    storage: Path, urls: dict[str, str], ingest: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "storage": {"path": str(storage)},
        "recording": {"segment_seconds": 60},
        "ingest": dict(ingest or {}),
        "logging": {"level": "INFO", "format": "console"},
        "cameras": [
            {
                "name": name,
                "main": {"url": url, "transport": "tcp"},
                "recording": {"audio": False},
            }
            for name, url in urls.items()
        ],
    }


def _measure(pids: Any, sim_pid: int | None, seconds: float, pss: bool) -> tuple[Any, Any]:
    rec = C.ProcSampler(pids, interval=1.0, pss=pss).start()
    sim = C.ProcSampler(lambda: [sim_pid], interval=1.0, pss=False).start() if sim_pid else None
    time.sleep(seconds)
    return rec.stop(), (sim.stop() if sim else None)


def _profile(
    pid: int, seconds: float, py_spy: str, out: Path, native: bool, gil: bool = False
) -> str:
    """Sample the recorder with py-spy (native frames included) and summarise where the
    CPU time goes: the share of samples by leaf function and by category."""
    raw = out.with_suffix(".txt")
    cmd = [
        py_spy,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(int(seconds)),
        "--rate",
        "100",
        *(["--native"] if native else ["--nonblocking"]),
        *(["--gil"] if gil else []),
        "--format",
        "raw",
        "--output",
        str(raw),
    ]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
    except subprocess.TimeoutExpired:
        return "py-spy timed out"
    if res.returncode != 0 or not raw.exists():
        return f"py-spy failed: {res.stderr.strip()[-400:]}"
    return summarise_profile(raw)


def summarise_profile(raw: Path, top: int = 14) -> str:
    leaf: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        leaf[frames[-1]] = leaf.get(frames[-1], 0) + n
        for f in set(frames):
            incl[f] = incl.get(f, 0) + n
    if not total:
        return "no samples"

    def short(f: str) -> str:
        return f.replace(str(Path.cwd()) + "/", "").replace("/work/main/", "")[:110]

    lines = [f"{total} samples (100 Hz, active threads only)", "", "by leaf frame:"]
    for f, n in sorted(leaf.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"  {100 * n / total:5.1f} %  {short(f)}")
    lines += ["", "inclusive (vigil frames):"]
    for f, n in sorted(incl.items(), key=lambda kv: -kv[1]):
        if "vigil/" in f and len(lines) < 2 * top + 8:
            lines.append(f"  {100 * n / total:5.1f} %  {short(f)}")
    return "\n".join(lines)


def run_vigil(n: int, args: argparse.Namespace, work: Path, profile: bool) -> Phase:
    from vigil.sim.controller import Simulator

    phase = Phase("vigil", n)
    root = work / f"vigil-{n}"
    storage = root / "storage"
    root.mkdir(parents=True)
    sim_cm: Any = Simulator(cache_dir=args.sim_cache, linger=1.0) if n else contextlib.nullcontext()
    with sim_cm as sim:
        urls: dict[str, str] = {}
        if n:
            sim.start(_sim_cameras(n, args))
            urls = sim.urls()
        cfg = root / "vigil.yaml"
        ingest = {k: json.loads(v) for k, v in (kv.split("=", 1) for kv in args.ingest)}
        cfg.write_text(json.dumps(_vigil_config(storage, urls, ingest), indent=1))  # JSON is YAML
        log = open(root / "vigil.log", "wb")  # noqa: SIM115 - closed below
        t0 = time.monotonic()
        env = dict(os.environ)
        env.update(kv.split("=", 1) for kv in args.vigil_env)
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--runner", str(cfg)],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
            start_new_session=True,
        )
        lines = _Lines(proc.stdout)
        try:
            if lines.wait_for(lambda e: e.get("event") == "ready", 120) is None:
                raise RuntimeError(f"vigil runner did not start; see {root / 'vigil.log'}")
            if n and (
                lines.wait_for(
                    lambda e: e.get("event") == "online" and e["cameras"] >= n, args.connect_timeout
                )
                is None
            ):
                phase.problems.append(f"only {lines.last_online()}/{n} cameras online")
            phase.connect_s = time.monotonic() - t0
            time.sleep(args.settle)
            phase.load = C.load_text()
            phase.threads = C.thread_count(proc.pid)
            seconds = args.seconds if n else min(args.seconds, 15.0)
            phase.usage, phase.sim = _measure(
                lambda: [proc.pid], sim.pid if n else None, seconds, pss=True
            )
            if profile and args.py_spy:
                phase.profile = _profile(
                    proc.pid, args.profile_seconds, args.py_spy, root / "profile", args.native
                )
                phase.profile += "\n\nonly samples holding the GIL:\n" + _profile(
                    proc.pid, args.profile_seconds, args.py_spy, root / "gil", False, gil=True
                )
            if n:
                _sim_stats(sim, phase)
            if lines.last_online() < n:
                phase.problems.append(f"{n - lines.last_online()} camera(s) offline at the end")
        finally:
            C.stop_processes([proc], signal.SIGTERM, timeout=max(30.0, n * 1.0))
            log.close()
        stats = lines.wait_for(lambda e: e.get("event") == "stats", 5)
    if stats is None:
        phase.problems.append(f"runner gave no stats (exit {proc.returncode})")
        return phase
    phase.stop_s = float(stats["stop_s"])
    for name, c in stats["cameras"].items():
        phase.received += c["packets"] + c["dropped"]
        phase.ingest_dropped += c["dropped"]
        phase.bitstream_bytes += c["bytes"]
        phase.rec_in += c.get("rec_in", 0)
        phase.rec_written += c.get("rec_written", 0)
        phase.rec_dropped += sum(c.get("rec_dropped", {}).values())
        phase.reconnects += c["reconnects"]
        if c.get("rec_error"):
            phase.problems.append(f"{name}: recorder error {c['rec_error']}")
    if n:
        _index_totals(storage, phase)
    return phase


def _index_totals(storage: Path, phase: Phase) -> None:
    from vigil.index.db import Database
    from vigil.index.repository import Index

    db = Database(f"sqlite:///{storage / 'vigil.db'}")
    try:
        index = Index(db, storage)
        on_disk = {f.relative_to(storage).as_posix() for f in storage.glob("*/*/*/*/*.mp4")}
        unindexed = on_disk - index.known_paths()
        phase.unindexed = len(unindexed)
        for rel in sorted(unindexed):
            phase.unindexed_bytes += (storage / rel).stat().st_size
        for _cam, seg in index.segments():
            phase.segments += 1
            phase.seg_packets += seg.packets
            size = index.abspath(seg.path).stat().st_size
            phase.disk_bytes += size
            if size != seg.bytes:
                phase.problems.append(f"{seg.path}: {size} bytes on disk, index says {seg.bytes}")
    finally:
        db.close()


def run_ffmpeg(n: int, args: argparse.Namespace, work: Path) -> Phase:
    from vigil.sim.controller import Simulator

    phase = Phase("ffmpeg", n)
    root = work / f"ffmpeg-{n}"
    with Simulator(cache_dir=args.sim_cache, linger=1.0) as sim:
        sim.start(_sim_cameras(n, args))
        procs: list[subprocess.Popen[bytes]] = []
        logs = []
        t0 = time.monotonic()
        try:
            for name, url in sim.urls().items():
                out = root / name
                out.mkdir(parents=True)
                log = open(out / "ffmpeg.log", "wb")  # noqa: SIM115 - closed below
                logs.append(log)
                cmd = [
                    FFMPEG,
                    "-hide_banner",
                    "-nostdin",
                    "-loglevel",
                    "warning",
                    "-rtsp_transport",
                    "tcp",
                    "-i",
                    url,
                    "-c",
                    "copy",
                    "-f",
                    "segment",
                    "-segment_time",
                    "60",
                    "-reset_timestamps",
                    "1",
                    str(out / "out%03d.mp4"),
                ]
                procs.append(
                    subprocess.Popen(
                        cmd,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=log,
                        start_new_session=True,
                    )
                )
            deadline = time.monotonic() + args.connect_timeout
            while time.monotonic() < deadline:
                started = sum(
                    1
                    for d in root.iterdir()
                    if (d / "out000.mp4").exists() and (d / "out000.mp4").stat().st_size > 4096
                )
                if started >= n or any(p.poll() is not None for p in procs):
                    break
                time.sleep(0.5)
            else:
                phase.problems.append(f"only {started}/{n} ffmpeg outputs growing")
            phase.connect_s = time.monotonic() - t0
            time.sleep(args.settle)
            phase.load = C.load_text()
            pids = [p.pid for p in procs]
            phase.threads = sum(C.thread_count(p) for p in pids)
            phase.usage, phase.sim = _measure(lambda: pids, sim.pid, args.seconds, pss=True)
            dead = [p for p in procs if p.poll() is not None]
            if dead:
                phase.problems.append(f"{len(dead)} ffmpeg process(es) exited early")
            _sim_stats(sim, phase)
        finally:
            t1 = time.monotonic()
            C.stop_processes(procs, signal.SIGINT, timeout=30.0)  # ffmpeg writes its trailer
            phase.stop_s = time.monotonic() - t1
            for log in logs:
                log.close()
    _ffmpeg_totals(root, phase)
    return phase


def _ffmpeg_totals(root: Path, phase: Phase) -> None:
    import av

    for f in sorted(root.glob("*/out*.mp4")):
        phase.segments += 1
        phase.disk_bytes += f.stat().st_size
        try:
            with av.open(str(f)) as c:
                for pkt in c.demux(c.streams.video[0]):
                    if pkt.size:
                        phase.seg_packets += 1
                        phase.bitstream_bytes += pkt.size
        except (av.FFmpegError, IndexError) as e:
            phase.problems.append(f"{f.relative_to(root)}: unreadable ({e})")


# =============================================================================================
# Report
# =============================================================================================


def _per_cam_mb(x: float, n: int) -> str:
    return f"{x / max(n, 1) / C.MB:.1f}"


def report(
    points: list[tuple[Phase, Phase | None]], idle: Phase | None, args: argparse.Namespace
) -> None:
    md = args.markdown
    rows = []
    for v, f in points:
        n = v.cameras
        assert v.usage is not None
        vu, fu = v.usage, (f.usage if f else None)
        rows.append(
            [
                n,
                C.pct(vu.cpu_pct),
                C.pct(fu.cpu_pct) if fu else "-",
                C.ratio(vu.cpu_pct, fu.cpu_pct) if fu else "-",
                f"{C.mb(vu.rss_peak)} / {C.mb(vu.rss_mean)}",
                _per_cam_mb(vu.rss_peak, n),
                _per_cam_mb(fu.rss_peak, n) if fu else "-",
                C.ratio(vu.rss_peak, fu.rss_peak) if fu else "-",
                _per_cam_mb(vu.pss_peak, n),
                _per_cam_mb(fu.pss_peak, n) if fu else "-",
                C.ratio(vu.pss_peak, fu.pss_peak) if fu else "-",
            ]
        )
    C.print_table(
        f"CPU and memory over {args.seconds:g} s (CPU: % of one core; memory: MB)",
        [
            "cameras",
            "Vigil CPU",
            "ffmpeg CPU (sum)",
            "CPU ratio",
            "Vigil RSS peak / mean",
            "Vigil RSS/cam",
            "ffmpeg RSS/cam",
            "RSS ratio",
            "Vigil PSS/cam",
            "ffmpeg PSS/cam",
            "PSS ratio",
        ],
        rows,
        md,
    )

    if idle is not None and idle.usage is not None:
        base = idle.usage.rss_peak
        rows = []
        prev: Phase | None = None
        for v, _f in points:
            assert v.usage is not None
            slope = "-"
            if prev is not None and prev.usage is not None:
                d = v.cameras - prev.cameras
                slope = f"{(v.usage.rss_peak - prev.usage.rss_peak) / d / C.MB:.2f}"
            rows.append(
                [
                    v.cameras,
                    C.mb(v.usage.rss_peak),
                    f"{(v.usage.rss_peak - base) / v.cameras / C.MB:.2f}",
                    slope,
                    v.threads,
                ]
            )
            prev = v
        C.print_table(
            f"Vigil memory: fixed overhead (0 cameras, idle recorder) {C.mb(base)} MB RSS, "
            f"{C.mb(idle.usage.pss_peak)} MB PSS, {C.pct(idle.usage.cpu_pct, 2)} CPU",
            [
                "cameras",
                "RSS peak MB",
                "(RSS - RSS(0)) / N, MB",
                "slope from previous point, MB/cam",
                "threads",
            ],
            rows,
            md,
        )

    rows = []
    for v, _f in points:
        lost = v.rec_in - v.rec_written
        disk = v.disk_bytes + v.unindexed_bytes
        over = (disk - v.bitstream_bytes) / v.bitstream_bytes if v.bitstream_bytes else 0
        rows.append(
            [
                v.cameras,
                v.sim_sent,
                v.received,
                v.ingest_dropped,
                v.rec_in,
                v.rec_written,
                v.seg_packets,
                lost + v.rec_dropped,
                f"{v.bitstream_bytes / C.MB:.1f}",
                f"{disk / C.MB:.1f}",
                f"{100 * over:.3f} %",
                f"{v.segments} / {v.unindexed}",
                v.reconnects,
            ]
        )
    C.print_table(
        "Vigil packets and bytes (whole run, connect to stop)",
        [
            "cameras",
            "sim sent",
            "received",
            "dropped before 1st keyframe",
            "recorder in",
            "recorder written",
            "in index (segments)",
            "lost",
            "bitstream MB",
            "on disk MB",
            "storage overhead",
            "segment files: indexed / not in index",
            "reconnects",
        ],
        rows,
        md,
    )

    rows = []
    for _v, f in points:
        if f is None:
            continue
        over = (f.disk_bytes - f.bitstream_bytes) / f.bitstream_bytes if f.bitstream_bytes else 0
        rows.append(
            [
                f.cameras,
                f.sim_sent,
                f.seg_packets,
                f"{f.bitstream_bytes / C.MB:.1f}",
                f"{f.disk_bytes / C.MB:.1f}",
                f"{100 * over:.3f} %",
                f.segments,
            ]
        )
    if rows:
        C.print_table(
            "ffmpeg baseline packets and bytes (from its output files)",
            [
                "cameras",
                "sim sent",
                "video packets in files",
                "bitstream MB",
                "on disk MB",
                "storage overhead",
                "files",
            ],
            rows,
            md,
        )

    rows = []
    for v, f in points:
        for p in (v, f):
            if p is None or p.usage is None:
                continue
            rows.append(
                [
                    p.cameras,
                    p.kind,
                    p.load,
                    f"{C.pct(p.usage.cpu_pct)} ({C.pct(p.usage.sys_pct)})",
                    f"{p.usage.ctx_per_s:.0f}",
                    C.pct(p.sim.cpu_pct) if p.sim else "-",
                    p.sim_max_late_ms,
                    p.sim_resyncs,
                    f"{p.connect_s:.1f}",
                    f"{p.stop_s:.1f}",
                    p.threads,
                    "; ".join(p.problems) or "none",
                ]
            )
    C.print_table(
        "Context: load, simulator, connect/stop times",
        [
            "cameras",
            "phase",
            "load avg (1/5/15) at start",
            "recorder CPU (of which kernel)",
            "context switches/s",
            "simulator CPU",
            "sim max late ms",
            "sim resyncs",
            "connect s",
            "stop s",
            "threads",
            "problems",
        ],
        rows,
        md,
    )

    print("\nTargets:")
    for v, f in points:
        assert v.usage is not None
        n = v.cameras
        out = []
        if f is not None and f.usage is not None:
            cr = v.usage.cpu_pct / f.usage.cpu_pct if f.usage.cpu_pct else float("inf")
            out.append(f"CPU/cam ≤ baseline: {'MET' if cr <= 1 else 'NOT MET'} ({cr:.2f}×)")
            mr = v.usage.rss_peak / f.usage.rss_peak
            pr = v.usage.pss_peak / f.usage.pss_peak
            out.append(
                f"memory/cam ≤ ½ baseline: RSS {'MET' if mr <= 0.5 else 'NOT MET'} ({mr:.2f}×), "
                f"PSS {'MET' if pr <= 0.5 else 'NOT MET'} ({pr:.2f}×)"
            )
        lost = v.rec_in - v.rec_written + v.rec_dropped
        index_ok = v.seg_packets == v.rec_written and not v.unindexed
        out.append(
            f"zero packets lost: {'MET' if lost == 0 and index_ok else 'NOT MET'} "
            f"(lost {lost}, index {'=' if index_ok else '≠'} written, "
            f"{v.unindexed} file(s) not indexed)"
        )
        disk = v.disk_bytes + v.unindexed_bytes
        over = (disk - v.bitstream_bytes) / v.bitstream_bytes if v.bitstream_bytes else 0
        out.append(
            f"storage overhead < 1 %: {'MET' if over < 0.01 else 'NOT MET'} ({100 * over:.3f} %)"
        )
        print(f"  {n:>3} cameras: " + "; ".join(out))

    for v, _f in points:
        if v.profile:
            print(
                f"\nProfile of the Vigil recorder at {v.cameras} cameras "
                f"({args.profile_seconds:g} s):\n{v.profile}"
            )


# =============================================================================================
# Main
# =============================================================================================


def sim_fell_behind(p: Phase, max_late_ms: float) -> bool:
    return p.sim_resyncs > 0 or p.sim_max_late_ms > max_late_ms


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runner", metavar="CONFIG", help=argparse.SUPPRESS)
    ap.add_argument("--cameras", default="10,25,50,100", help="camera counts (default %(default)s)")
    ap.add_argument("--seconds", type=float, default=60.0, help="measuring time per phase")
    ap.add_argument("--settle", type=float, default=5.0, help="wait after all cameras record")
    ap.add_argument("--connect-timeout", type=float, default=120.0)
    ap.add_argument("--source", default="testsrc", help="simulator source (testsrc, vtest)")
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--fps", type=float, default=15.0)
    ap.add_argument("--bitrate", type=int, default=4000, help="kbit/s")
    ap.add_argument("--clip-seconds", type=float, default=30.0, help="simulator loop length")
    ap.add_argument("--sim-cache", type=Path, default=None, help="simulator clip cache")
    ap.add_argument(
        "--max-late-ms",
        type=float,
        default=500.0,
        help="simulator lateness that counts as not keeping up",
    )
    ap.add_argument("--no-baseline", action="store_true", help="measure Vigil only")
    ap.add_argument("--no-idle", action="store_true", help="skip the 0-camera point")
    ap.add_argument(
        "--max-load",
        type=float,
        default=1.0,
        help="wait for the 1-min load average to drop below this",
    )
    ap.add_argument("--max-wait", type=float, default=300.0, help="longest wait for low load")
    ap.add_argument(
        "--py-spy",
        default=shutil.which("py-spy"),
        help="py-spy binary; profile Vigil at the largest camera count",
    )
    ap.add_argument("--profile-seconds", type=float, default=20.0)
    ap.add_argument("--native", action="store_true", help="py-spy --native (slow, blocking)")
    ap.add_argument(
        "--profile-at",
        type=int,
        default=None,
        help="camera count to profile at (default: the largest)",
    )
    ap.add_argument("--workdir", type=Path, default=None, help="kept; default: a temp dir")
    ap.add_argument("--markdown", action="store_true", help="Markdown tables")
    ap.add_argument(
        "--vigil-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the Vigil process (e.g. MALLOC_ARENA_MAX=2)",
    )
    ap.add_argument(
        "--ingest",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="an ingest option of Vigil's configuration (e.g. shared_read_thread=false)",
    )
    args = ap.parse_args(argv)
    if args.runner:
        return runner_main(args.runner)

    C.require(FFMPEG, "install Debian's ffmpeg")
    counts = [int(x) for x in args.cameras.split(",") if x.strip()]
    info = C.print_machine()
    print(
        f"{'cameras':>13}: {counts}, {args.width}x{args.height} H.264 {args.fps:g} fps "
        f"{args.bitrate} kbit/s ({args.source}), {args.seconds:g} s per phase\n"
    )
    del info
    work = args.workdir or Path(tempfile.mkdtemp(prefix="vigil-bench-record-"))
    work.mkdir(parents=True, exist_ok=True)

    from vigil.sim.controller import Simulator

    with Simulator(cache_dir=args.sim_cache, progress=lambda m: print(f"  {m}")) as sim:
        sim.prepare(_sim_cameras(1, args))  # encode the clip before anything is measured

    points: list[tuple[Phase, Phase | None]] = []
    idle: Phase | None = None
    try:
        if not args.no_idle:
            C.wait_for_load(args.max_load, args.max_wait)
            print("vigil, 0 cameras ...", flush=True)
            idle = run_vigil(0, args, work, profile=False)
        profile_at = args.profile_at if args.profile_at is not None else max(counts)
        for i, n in enumerate(counts):
            last = i == len(counts) - 1
            C.wait_for_load(args.max_load, args.max_wait)
            print(f"vigil, {n} cameras ...", flush=True)
            v = run_vigil(n, args, work, profile=n == profile_at and bool(args.py_spy))
            f = None
            if not args.no_baseline:
                C.wait_for_load(args.max_load, args.max_wait)
                print(f"ffmpeg, {n} cameras ...", flush=True)
                f = run_ffmpeg(n, args, work)
            points.append((v, f))
            with open(work / "results.json", "w") as fh:
                json.dump(
                    [[dataclasses.asdict(p) if p else None for p in pt] for pt in points],
                    fh,
                    indent=1,
                    default=str,
                )
            behind = [p for p in (v, f) if p is not None and sim_fell_behind(p, args.max_late_ms)]
            if behind and not last:
                why = ", ".join(
                    f"{p.kind}: max late {p.sim_max_late_ms} ms, {p.sim_resyncs} resyncs"
                    for p in behind
                )
                print(f"the simulator fell behind at {n} cameras ({why}); not trying more")
                break
    except KeyboardInterrupt:
        print("interrupted; reporting what was measured")
    except Exception:
        traceback.print_exc()
        print("failed; reporting what was measured")
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    if points:
        print(f"\nload average at the end: {C.load_text()}")
        report(points, idle, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
