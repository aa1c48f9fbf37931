"""Playback, export and verification benchmark, each beside a baseline measured in the same run.

Footage: real 1080p H.264 segments, 60 s each, made once with ffmpeg (lavfi ``testsrc2``, a
different hue per file, 15 fps, 1 s GOP, ``--bitrate`` kbit/s, default 1000) as fragmented
MP4 the way Vigil's recorder writes them (``empty_moov``, keyframe-led 1 s fragments,
``default_base_moof``, timestamps from 0). They are cached under
``$XDG_CACHE_HOME/vigil/bench`` (``~/.cache/vigil/bench``).

Three measurements:

1. **Open at an instant** (``open_at``): a *week* of 1-minute segment rows (10 080, hard
   links to the cached files laid out as the recorder does) in a fresh SQLite index;
   ``--instants`` random instants. Per instant the layout cache is cleared, then: time to
   the first byte of the fMP4 stream, and to the first frame a decoder gets out of it
   (PyAV reading the stream as it is produced). Baseline: the same index lookup, then
   PyAV opening the segment file itself, seeking to the keyframe before the instant and
   decoding (what a player with direct file access does). Two passes: page cache warm,
   and cold (the source files evicted with ``posix_fadvise(DONTNEED)`` before each
   instant, which touches only these files).
2. **Export** of one hour (60 segments, ``export_mp4``) versus
   ``ffmpeg -f concat -safe 0 -i list.txt -c copy out.mp4`` over the same files; also
   ``export_evidence`` (hash check, assembly, signed manifest, fsync) and, to show where
   the time goes, ffmpeg concat with ``-movflags +faststart``.
3. **Verify**: ``verify_storage`` (hash chain + SHA-256 of every file) versus ``sha256sum``
   of the same 60 files, as throughput in MB/s.

Run by hand: ``.venv/bin/python bench/playback.py --markdown``. Results: ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import av

import _common as C
from vigil.evidence.keys import KeyStore
from vigil.index.db import Database
from vigil.index.repository import Index

FFMPEG = "/usr/bin/ffmpeg"
SHA256SUM = "/usr/bin/sha256sum"
SEG_US = 60_000_000
FPS = 15
WEEK_BASE_US = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z
EXPORT_BASE_US = 1_706_745_600_000_000  # 2024-02-01T00:00:00Z


# -- footage -----------------------------------------------------------------------------------


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vigil" / "bench"


def encode_segment(dest: Path, hue: int, bitrate_kbps: int, width: int, height: int) -> None:
    """60 s of ``testsrc2`` as a Vigil-like fMP4 segment (written to a temp name, renamed)."""
    tmp = dest.with_name(f".{dest.name}.tmp")
    cmd = [
        FFMPEG,
        "-hide_banner",
        "-loglevel",
        "error",
        "-nostdin",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size={width}x{height}:rate={FPS}:duration=60",
        "-vf",
        f"hue=h={hue}",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-profile:v",
        "main",
        "-pix_fmt",
        "yuv420p",
        "-b:v",
        f"{bitrate_kbps}k",
        "-maxrate",
        f"{bitrate_kbps}k",
        "-bufsize",
        f"{2 * bitrate_kbps}k",
        "-g",
        str(FPS),
        "-keyint_min",
        str(FPS),
        "-sc_threshold",
        "0",
        "-bf",
        "0",
        "-movflags",
        "+frag_keyframe+empty_moov+default_base_moof",
        "-frag_duration",
        "1000000",
        "-f",
        "mp4",
        str(tmp),
    ]
    subprocess.run(cmd, check=True, timeout=900)
    os.replace(tmp, dest)


def prepare_footage(args: argparse.Namespace) -> list[Path]:
    d = args.cache / f"seg60-{args.width}x{args.height}-{FPS}fps-{args.bitrate}k"
    d.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(args.distinct):
        p = d / f"seg-{i:02d}.mp4"
        if not p.exists():
            print(f"  encoding {p} (once; cached)", flush=True)
            encode_segment(
                p, (i * 360) // max(1, args.distinct), args.bitrate, args.width, args.height
            )
        out.append(p)
    return out


@dataclass(frozen=True)
class SourceFile:
    path: Path
    size: int
    sha256: str
    packets: int


def describe(path: Path) -> SourceFile:
    data = path.read_bytes()
    with av.open(str(path)) as c:
        packets = sum(1 for p in c.demux(c.streams.video[0]) if p.size)
    return SourceFile(path, len(data), hashlib.sha256(data).hexdigest(), packets)


def seg_path(root: Path, camera: str, start_us: int) -> Path:
    day = datetime.fromtimestamp(start_us / 1_000_000, UTC)
    return root / camera / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}" / f"{start_us}-1.mp4"


def _segment_info(camera: str, path: Path, start_us: int, src: SourceFile, w: int, h: int) -> Any:
    from vigil.record.types import SegmentInfo

    return SegmentInfo(
        camera=camera,
        path=path,
        start_us=start_us,
        end_us=start_us + SEG_US,
        duration_us=SEG_US,
        bytes=src.size,
        packets=src.packets,
        video_codec="h264",
        width=w,
        height=h,
        audio_codec=None,
        sha256=src.sha256,
    )


def build_export_store(
    work: Path, sources: list[SourceFile], n: int, args: argparse.Namespace
) -> tuple[Index, KeyStore, Database, list[Path]]:
    """``n`` contiguous 60 s segments of camera ``exp`` (real copies), indexed and chained
    like the recorder does it (``segment_closed`` with the evidence chain installed)."""
    from vigil.evidence.chain import install_chain

    root = work / "export" / "storage"
    root.mkdir(parents=True)
    db = Database(f"sqlite:///{work / 'export' / 'index.db'}")
    index = Index(db, root)
    keys = KeyStore(work / "export" / "keys")
    install_chain(index, keys)
    files = []
    for i in range(n):
        src = sources[i % len(sources)]
        start = EXPORT_BASE_US + i * SEG_US
        dest = seg_path(root, "exp", start)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src.path, dest)
        with open(dest, "rb+") as f:
            os.fsync(f.fileno())
        index.segment_closed(_segment_info("exp", dest, start, src, args.width, args.height))
        files.append(dest)
    return index, keys, db, files


def build_week_store(
    work: Path, sources: list[SourceFile], args: argparse.Namespace
) -> tuple[Index, Database, int, int]:
    """A week of 1-minute rows of camera ``week``, each a hard link to a cached segment,
    inserted in one transaction (what a week of recording leaves in the index)."""
    from vigil.index.models import Segment

    root = work / "week" / "storage"
    root.mkdir(parents=True)
    db = Database(f"sqlite:///{work / 'week' / 'index.db'}")
    index = Index(db, root)
    cid = index.camera_id("week")
    n = 7 * 24 * 60
    rows = []
    now = time.time_ns() // 1000
    for i in range(n):
        src = sources[i % len(sources)]
        start = WEEK_BASE_US + i * SEG_US
        dest = seg_path(root, "week", start)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src.path, dest)
        except OSError:
            shutil.copyfile(src.path, dest)
        rows.append(
            Segment(
                camera_id=cid,
                path=index.relpath(dest),
                start_us=start,
                end_us=start + SEG_US,
                duration_us=SEG_US,
                bytes=src.size,
                packets=src.packets,
                video_codec="h264",
                width=args.width,
                height=args.height,
                audio_codec=None,
                sha256=src.sha256,
                recovered=False,
                created_us=now,
            )
        )
    with db.session() as s:
        s.add_all(rows)
        s.commit()
    return index, db, WEEK_BASE_US, WEEK_BASE_US + n * SEG_US


def evict(paths: list[Path]) -> None:
    """Drop these files (only these) from the page cache, so the next read hits the disk."""
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def warm(paths: list[Path]) -> None:
    for p in paths:
        with open(p, "rb") as f:
            while f.read(1 << 20):
                pass


# -- 1. open at an instant -----------------------------------------------------------------------


class ChunkReader(io.RawIOBase):
    """A non-seekable file object over a generator of byte chunks (what a browser's MSE or
    a player reading an HTTP response sees), for PyAV to demux the stream as it comes."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._it = chunks
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buf:
            try:
                self._buf = next(self._it)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


@dataclass
class OpenSample:
    first_byte_s: float
    first_frame_s: float
    frame_offset_s: float  # presentation time of that frame, relative to the instant


def vigil_open(index: Index, instant_us: int) -> OpenSample:
    from vigil.evidence.playback import open_at
    from vigil.evidence.playback_bmff import layouts

    layouts.clear()
    t0 = time.perf_counter()
    stream = open_at(index, "week", instant_us)
    it = iter(stream.chunks)
    first = next(it)
    t_byte = time.perf_counter() - t0

    def chunks() -> Iterator[bytes]:
        yield first
        yield from it

    reader = ChunkReader(chunks())
    with av.open(reader, "r", format="mp4") as c:
        v = c.streams.video[0]
        for pkt in c.demux(v):
            frames = pkt.decode()
            if frames:
                t_frame = time.perf_counter() - t0
                fr = frames[0]
                assert fr.pts is not None and v.time_base is not None
                wall = stream.clock.wall_time_of(fr.pts, Fraction(v.time_base))
                offset = (wall - instant_us) / 1e6
                break
        else:
            raise RuntimeError("no frame decoded from the stream")
    close = getattr(stream.chunks, "close", None)
    if close is not None:
        close()
    return OpenSample(t_byte, t_frame, offset)


def direct_open(index: Index, instant_us: int) -> OpenSample:
    """Baseline: index lookup, then PyAV on the file: seek to the keyframe before the
    instant and decode the first frame."""
    from vigil.evidence.timeline import first_segment_at_or_before

    t0 = time.perf_counter()
    seg = first_segment_at_or_before(index, "week", instant_us)
    assert seg is not None
    path = index.abspath(seg.path)
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        tb = v.time_base
        assert tb is not None
        target = int((instant_us - seg.start_us) / 1e6 / tb)
        c.seek(target, stream=v, backward=True, any_frame=False)
        t_byte = 0.0
        for pkt in c.demux(v):
            if not t_byte:
                t_byte = time.perf_counter() - t0
            frames = pkt.decode()
            if frames:
                t_frame = time.perf_counter() - t0
                fr = frames[0]
                assert fr.pts is not None
                offset = (seg.start_us + float(fr.pts * tb) * 1e6 - instant_us) / 1e6
                break
        else:
            raise RuntimeError("no frame decoded from the file")
    return OpenSample(t_byte, t_frame, offset)


def bench_open(
    index: Index, start_us: int, end_us: int, sources: list[Path], args: argparse.Namespace
) -> list[list[Any]]:
    rng = random.Random(args.seed)
    instants = [rng.randrange(start_us, end_us) for _ in range(args.instants)]
    # one untimed round first: imports, SQLite connection pool, FFmpeg's codec tables
    vigil_open(index, instants[0])
    direct_open(index, instants[0])
    rows = []
    for cold in (False, True):
        results: dict[str, list[OpenSample]] = {"vigil": [], "direct": []}
        for i, t in enumerate(instants):
            order = [("vigil", vigil_open), ("direct", direct_open)]
            if i % 2:
                order.reverse()
            for name, fn in order:
                if cold:
                    evict(sources)
                results[name].append(fn(index, t))
        state = "cold" if cold else "warm"
        v, d = results["vigil"], results["direct"]
        for label, get in (
            ("first byte", lambda s: s.first_byte_s),
            ("first frame", lambda s: s.first_frame_s),
        ):
            vs = [get(s) * 1000 for s in v]
            ds = [get(s) * 1000 for s in d]
            rows.append(
                [
                    f"{label}, page cache {state}",
                    f"{C.percentile(vs, 50):.1f}",
                    f"{C.percentile(vs, 95):.1f}",
                    f"{max(vs):.1f}",
                    f"{C.percentile(ds, 50):.1f}",
                    f"{C.percentile(ds, 95):.1f}",
                    C.ratio(C.percentile(vs, 50), C.percentile(ds, 50)),
                    C.ratio(C.percentile(vs, 95), C.percentile(ds, 95)),
                ]
            )
        offs_v = sorted(s.frame_offset_s for s in v)
        offs_d = sorted(s.frame_offset_s for s in d)
        print(
            f"  {state}: first frame shown minus instant: Vigil {offs_v[0]:+.3f}.."
            f"{offs_v[-1]:+.3f} s, direct {offs_d[0]:+.3f}..{offs_d[-1]:+.3f} s"
        )
    return rows


# -- 2. export -------------------------------------------------------------------------------


@dataclass
class Timed:
    wall_s: float
    cpu_s: float
    out_bytes: int


def timed_self(fn: Callable[[], Path]) -> Timed:
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    out = fn()
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    size = (
        sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        if out.is_dir()
        else (out.stat().st_size)
    )
    return Timed(wall, cpu, size)


def timed_child(cmd: list[str], out: Path | None) -> Timed:
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, timeout=1800)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return Timed(wall, cpu, out.stat().st_size if out is not None else 0)


def video_frames(path: Path) -> int:
    with av.open(str(path)) as c:
        return int(c.streams.video[0].frames)


def bench_export(
    index: Index, keys: KeyStore, files: list[Path], work: Path, args: argparse.Namespace
) -> tuple[list[list[Any]], str]:
    from vigil.evidence.export import export_evidence
    from vigil.evidence.playback import export_mp4

    out = work / "out"
    out.mkdir()
    listing = work / "concat.txt"
    listing.write_text("".join(f"file '{p}'\n" for p in files))
    start, end = EXPORT_BASE_US, EXPORT_BASE_US + len(files) * SEG_US

    def vigil_export() -> Path:
        dest = out / "vigil.mp4"
        res = export_mp4(index, "exp", start, end, dest)
        assert len(res.clips) == 1, res.gaps
        return dest

    def vigil_evidence() -> Path:
        return export_evidence(
            index, keys, "exp", start, end, "benchmark", "", "bench", out / "evidence"
        )

    def concat_cmd(dest: Path, faststart: bool) -> list[str]:
        cmd = [
            FFMPEG,
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            "-y",
            "-f",
            "concat",
            "-safe",
            "0",
            "-i",
            str(listing),
            "-c",
            "copy",
        ]
        if faststart:
            cmd += ["-movflags", "+faststart"]
        return [*cmd, str(dest)]

    outputs = {
        "vigil export_mp4": out / "vigil.mp4",
        "ffmpeg concat -c copy": out / "ff.mp4",
    }
    checks: dict[str, int] = {}
    jobs: list[tuple[str, Callable[[], Timed]]] = [
        ("vigil export_mp4", lambda: timed_self(vigil_export)),
        (
            "ffmpeg concat -c copy",
            lambda: timed_child(concat_cmd(out / "ff.mp4", False), out / "ff.mp4"),
        ),
        ("vigil export_evidence", lambda: timed_self(vigil_evidence)),
        (
            "ffmpeg concat -c copy +faststart",
            lambda: timed_child(concat_cmd(out / "ffs.mp4", True), out / "ffs.mp4"),
        ),
    ]
    rows: list[list[Any]] = []
    for cold in (False, True):
        runs: dict[str, list[Timed]] = {name: [] for name, _ in jobs}
        for r in range(args.repeat):
            order = jobs if r % 2 == 0 else jobs[::-1]
            for name, job in order:
                if cold:
                    evict(files)
                else:
                    warm(files)
                runs[name].append(job())
                if name in outputs and name not in checks:
                    checks[name] = video_frames(outputs[name])
                for p in out.iterdir():
                    if p.is_dir():
                        shutil.rmtree(p)
                    else:
                        p.unlink()
        base = C.percentile([t.wall_s for t in runs["ffmpeg concat -c copy"]], 50)
        for name, ts in runs.items():
            wall = C.percentile([t.wall_s for t in ts], 50)
            cpu = C.percentile([t.cpu_s for t in ts], 50)
            rows.append(
                [
                    name,
                    "cold" if cold else "warm",
                    f"{wall:.2f}",
                    f"{min(t.wall_s for t in ts):.2f}",
                    f"{cpu:.2f}",
                    f"{ts[0].out_bytes / C.MB:.1f}",
                    C.ratio(wall, base),
                ]
            )
    note = ", ".join(f"{k}: {v} video frames" for k, v in sorted(checks.items()))
    return rows, note


# -- 3. verify -------------------------------------------------------------------------------


def bench_verify(
    index: Index, keys: KeyStore, files: list[Path], args: argparse.Namespace
) -> list[list[Any]]:
    from vigil.evidence.verify import verify_storage

    total = sum(p.stat().st_size for p in files)
    problems: list[str] = []

    def vigil(workers: int | None) -> Callable[[], Timed]:
        def run() -> Timed:
            r0 = resource.getrusage(resource.RUSAGE_SELF)
            t0 = time.perf_counter()
            rep = verify_storage(index, "exp", keys, workers=workers)
            wall = time.perf_counter() - t0
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            if rep.problems:
                problems.append(str(rep.problems[0]))
            hashed = rep.checked.get("bytes_hashed", 0)
            if hashed != total:
                problems.append(f"verify hashed {hashed} bytes, not {total}")
            cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
            return Timed(wall, cpu, 0)

        return run

    jobs: list[tuple[str, Callable[[], Timed]]] = [
        ("vigil verify_storage (default workers)", vigil(None)),
        ("sha256sum", lambda: timed_child([SHA256SUM, *map(str, files)], None)),
        ("vigil verify_storage (workers=1)", vigil(1)),
    ]
    rows: list[list[Any]] = []
    for cold in (False, True):
        runs: dict[str, list[Timed]] = {name: [] for name, _ in jobs}
        for r in range(args.repeat):
            order = jobs if r % 2 == 0 else jobs[::-1]
            for name, job in order:
                if cold:
                    evict(files)
                else:
                    warm(files)
                runs[name].append(job())
        base = C.percentile([t.wall_s for t in runs["sha256sum"]], 50)
        for name, ts in runs.items():
            wall = C.percentile([t.wall_s for t in ts], 50)
            rows.append(
                [
                    name,
                    "cold" if cold else "warm",
                    f"{wall:.3f}",
                    f"{total / wall / 1e6:.0f}",
                    f"{C.percentile([t.cpu_s for t in ts], 50):.2f}",
                    C.ratio(wall, base),
                ]
            )
    if problems:
        print(f"  verify reported problems: {problems[0]}")
    return rows


# -- profile ---------------------------------------------------------------------------------


def profile(label: str, fn: Callable[[], Any], top: int = 18) -> None:
    """cProfile ``fn`` and print the functions with the most cumulative time."""
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    out = io.StringIO()
    st = pstats.Stats(prof, stream=out)
    st.sort_stats("cumulative").print_stats(top)
    text = out.getvalue()
    text = text[text.find("   ncalls") :] if "   ncalls" in text else text
    print(f"\nprofile: {label}\n{text.replace(str(Path.cwd()) + '/', '')}")


# -- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--instants", type=int, default=50, help="random instants (open at)")
    ap.add_argument("--segments", type=int, default=60, help="segments exported (60 = 1 h)")
    ap.add_argument(
        "--distinct",
        type=int,
        default=10,
        help="distinct encoded segment files (reused round-robin)",
    )
    ap.add_argument("--bitrate", type=int, default=1000, help="kbit/s of the footage")
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--repeat", type=int, default=3, help="runs per export/verify variant")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cache", type=Path, default=cache_root(), help="encoded footage cache")
    ap.add_argument("--workdir", type=Path, default=None, help="kept; default: a temp dir")
    ap.add_argument("--max-load", type=float, default=1.0)
    ap.add_argument("--max-wait", type=float, default=300.0)
    ap.add_argument("--only", choices=("open", "export", "verify"), action="append")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--profile", action="store_true", help="cProfile Vigil's side afterwards")
    args = ap.parse_args(argv)
    only = set(args.only or ("open", "export", "verify"))

    C.require(FFMPEG, "install Debian's ffmpeg")
    C.print_machine()
    print(
        f"{'footage':>13}: {args.width}x{args.height} H.264 {FPS} fps, 1 s GOP, "
        f"{args.bitrate} kbit/s, 60 s fMP4 segments, {args.distinct} distinct files\n"
    )
    paths = prepare_footage(args)
    sources = [describe(p) for p in paths]
    work = args.workdir or Path(tempfile.mkdtemp(prefix="vigil-bench-playback-"))
    work.mkdir(parents=True, exist_ok=True)
    dbs: list[Database] = []
    try:
        if "open" in only:
            print("building a week of index rows ...", flush=True)
            windex, wdb, w0, w1 = build_week_store(work, sources, args)
            dbs.append(wdb)
            load = C.wait_for_load(args.max_load, args.max_wait)
            print(f"open at {args.instants} random instants (load {load}) ...", flush=True)
            rows = bench_open(windex, w0, w1, paths, args)
            C.print_table(
                f"Open at a random instant of a week (10 080 segments), {args.instants} "
                f"instants, ms (load at start {load})",
                [
                    "measure",
                    "Vigil p50",
                    "Vigil p95",
                    "Vigil max",
                    "direct p50",
                    "direct p95",
                    "ratio p50",
                    "ratio p95",
                ],
                rows,
                args.markdown,
            )
        if "export" in only or "verify" in only:
            print(f"building {args.segments} segments to export ...", flush=True)
            eindex, keys, edb, files = build_export_store(work, sources, args.segments, args)
            dbs.append(edb)
            total = sum(p.stat().st_size for p in files)
            print(f"  {len(files)} files, {total / C.MB:.0f} MB")
            if "export" in only:
                load = C.wait_for_load(args.max_load, args.max_wait)
                print(f"export ({args.repeat} runs each, load {load}) ...", flush=True)
                rows, note = bench_export(eindex, keys, files, work, args)
                C.print_table(
                    f"Export of {len(files)} min of {args.width}x{args.height} "
                    f"({total / C.MB:.0f} MB), median of {args.repeat}, s (load at start "
                    f"{load}; {note})",
                    [
                        "method",
                        "page cache",
                        "wall s (median)",
                        "wall s (best)",
                        "CPU s",
                        "output MB",
                        "wall ratio to concat",
                    ],
                    rows,
                    args.markdown,
                )
            if "verify" in only:
                load = C.wait_for_load(args.max_load, args.max_wait)
                print(f"verify ({args.repeat} runs each, load {load}) ...", flush=True)
                rows = bench_verify(eindex, keys, files, args)
                C.print_table(
                    f"Verify {len(files)} files ({total / C.MB:.0f} MB), median of "
                    f"{args.repeat} (load at start {load})",
                    ["method", "page cache", "wall s", "MB/s", "CPU s", "time ratio to sha256sum"],
                    rows,
                    args.markdown,
                )
        if args.profile:
            if "open" in only:
                rng = random.Random(args.seed + 1)
                ts = [rng.randrange(w0, w1) for _ in range(10)]
                profile("10 × open_at + first frame", lambda: [vigil_open(windex, t) for t in ts])
            if "export" in only:
                dest = work / "profile.mp4"
                end = EXPORT_BASE_US + len(files) * SEG_US
                from vigil.evidence.playback import export_mp4

                profile("export_mp4", lambda: export_mp4(eindex, "exp", EXPORT_BASE_US, end, dest))
                dest.unlink()
    finally:
        for db in dbs:
            db.close()
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"load average at the end: {C.load_text()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
