"""Test helpers: make clips with ffmpeg and feed them to a PacketSink like ingest would.

Shared by the in-process tests and the crash child process (which imports it by path).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av

from vigil.ingest.types import CodecParams, PacketSink, StreamSession, TimedPacket
from vigil.record.types import GapInfo, SegmentInfo

Variant = Literal[
    "as_is",  # extradata and packets exactly as demuxed
    "annexb_from_mp4",  # avcC/hvcC extradata kept, packets converted to Annex B (mixed)
    "no_extradata",  # extradata None (parameter sets in-band only)
    "annexb_extradata_lp_packets",  # Annex B extradata, length-prefixed packets (mixed)
]

# --- media ------------------------------------------------------------------------------


def make_clip(
    path: Path,
    *,
    codec: Literal["h264", "hevc"] = "h264",
    seconds: float = 12,
    size: str = "640x360",
    fps: int = 25,
    gop: int = 25,
    audio: bool = False,
    bitrate: str = "1M",
    bframes: int = 0,
    container: Literal["mp4", "ts"] = "mp4",
) -> Path:
    """An ffmpeg testsrc2 clip with a fixed GOP (list args, no shell)."""
    args = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}"]
    if audio:
        args += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
    args += ["-t", str(seconds), "-pix_fmt", "yuv420p", "-b:v", bitrate]
    if codec == "h264":
        args += ["-c:v", "libx264", "-preset", "ultrafast", "-g", str(gop),
                 "-keyint_min", str(gop), "-sc_threshold", "0", "-bf", str(bframes)]
    else:
        args += ["-c:v", "libx265", "-preset", "ultrafast",
                 "-x265-params",
                 f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes={bframes}:log-level=error"]
    if audio:
        args += ["-c:a", "aac", "-b:a", "64k"]
    args += ["-f", "mpegts" if container == "ts" else "mp4", str(path)]
    subprocess.run(args, check=True, timeout=120)
    return path


# --- feeding ----------------------------------------------------------------------------


def codec_params(stream: Any, extradata: bytes | Literal["keep"] | None = "keep") -> CodecParams:
    ctx = stream.codec_context
    ed = (bytes(ctx.extradata) if ctx.extradata else None) if extradata == "keep" else extradata
    if stream.type == "video":
        return CodecParams("video", ctx.name, Fraction(stream.time_base), ed,
                           width=ctx.width, height=ctx.height)
    return CodecParams("audio", ctx.name, Fraction(stream.time_base), ed,
                       sample_rate=ctx.sample_rate, channels=ctx.channels)


def _to_annexb(data: bytes) -> bytes:
    """Length-prefixed (4-byte) → Annex B, independently of the code under test."""
    out = bytearray()
    i = 0
    while i + 4 <= len(data):
        n = int.from_bytes(data[i : i + 4], "big")
        out += b"\x00\x00\x00\x01" + data[i + 4 : i + 4 + n]
        i += 4 + n
    return bytes(out)


def _annexb_parameter_sets(path: Path) -> bytes:
    """Annex B extradata for a clip, taken from an MPEG-TS remux made by ffmpeg."""
    ts = path.with_suffix(".ps.ts")
    if not ts.exists():
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(path),
                        "-an", "-c", "copy", "-t", "1", "-f", "mpegts", str(ts)],
                       check=True, timeout=60)
    with av.open(str(ts)) as c:
        ed = c.streams.video[0].codec_context.extradata
        assert ed and (ed[:3] == b"\x00\x00\x01" or ed[:4] == b"\x00\x00\x00\x01")
        return bytes(ed)


@dataclass
class FeedResult:
    session: StreamSession
    fed: int = 0
    fed_video: int = 0
    fed_audio: int = 0
    fed_bytes: int = 0
    last_dts_us: int = 0
    last_wall_us: int = 0
    first_wall_us: int = 0
    fed_by_kind: dict[str, int] = field(default_factory=dict)


def feed_file(
    sink: PacketSink,
    path: Path,
    *,
    camera: str = "cam",
    session_id: int = 1,
    wall_start_us: int = 1_700_000_000_000_000,
    audio: bool = True,
    variant: Variant = "as_is",
    template: bool = True,
    speed: float | None = None,
    end_reason: str | None = "eof",
    max_seconds: float | None = None,
    on_packet: Callable[[TimedPacket, FeedResult], None] | None = None,
    stop: threading.Event | None = None,
) -> FeedResult:
    """Demux ``path`` with PyAV and feed it as one session, like ingest would.

    Times become µs on a session timeline starting at the first packet's dts; wall time is
    ``wall_start_us`` + pts. ``speed`` paces packets (1.0 = real time, None = as fast as
    possible). ``end_reason`` None leaves the session open (as a crash would).
    """
    container = av.open(str(path))
    vs = container.streams.video[0]
    as_ = container.streams.audio[0] if (audio and container.streams.audio) else None
    v_extradata: bytes | Literal["keep"] | None = "keep"
    if variant == "no_extradata":
        v_extradata = None
    elif variant == "annexb_extradata_lp_packets":
        v_extradata = _annexb_parameter_sets(path)
    session = StreamSession(
        camera=camera,
        session_id=session_id,
        video=codec_params(vs, v_extradata),
        audio=codec_params(as_) if as_ is not None else None,
        started_wall_us=wall_start_us,
        video_template=vs if template else None,
        audio_template=as_ if (template and as_ is not None) else None,
        source=path.name,
    )
    result = FeedResult(session)
    sink.session_started(session)
    streams = [vs] + ([as_] if as_ is not None else [])
    origin: int | None = None
    t0 = time.monotonic()
    try:
        for p in container.demux(streams):
            if p.dts is None or p.size == 0:
                continue
            if stop is not None and stop.is_set():
                break
            tb = p.time_base
            dts_us = round(p.dts * tb * 1_000_000)
            pts_us = round((p.pts if p.pts is not None else p.dts) * tb * 1_000_000)
            if origin is None:
                origin = dts_us
            dts_us -= origin
            pts_us -= origin
            if max_seconds is not None and dts_us > max_seconds * 1_000_000:
                break
            kind = p.stream.type
            data = bytes(p)
            if kind == "video" and variant == "annexb_from_mp4":
                data = _to_annexb(data)
            pkt = TimedPacket(
                kind=kind,
                data=data,
                pts_us=pts_us,
                dts_us=dts_us,
                duration_us=round((p.duration or 0) * tb * 1_000_000),
                wall_us=wall_start_us + pts_us,
                keyframe=bool(p.is_keyframe),
            )
            if speed:
                delay = dts_us / 1_000_000 / speed - (time.monotonic() - t0)
                if delay > 0:
                    time.sleep(delay)
            sink.packet(session, pkt)
            result.fed += 1
            result.fed_bytes += len(data)
            result.fed_by_kind[kind] = result.fed_by_kind.get(kind, 0) + 1
            if kind == "video":
                result.fed_video += 1
            else:
                result.fed_audio += 1
            result.last_dts_us = max(result.last_dts_us, dts_us)
            result.last_wall_us = max(result.last_wall_us, pkt.wall_us)
            if result.first_wall_us == 0:
                result.first_wall_us = pkt.wall_us
            if on_packet is not None:
                on_packet(pkt, result)
    finally:
        container.close()
    if end_reason is not None:
        sink.session_ended(session, end_reason)
    return result


# --- catalogs ---------------------------------------------------------------------------


class MemoryCatalog:
    """Thread-safe in-memory SegmentCatalog."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.segments: list[SegmentInfo] = []
        self.gaps: list[GapInfo] = []

    def segment_closed(self, info: SegmentInfo) -> None:
        with self._lock:
            self.segments.append(info)

    def gap(self, info: GapInfo) -> None:
        with self._lock:
            self.gaps.append(info)


class JsonLinesCatalog:
    """Appends one JSON object per report and fsyncs, like a durable index would."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def _append(self, obj: dict[str, Any]) -> None:
        line = (json.dumps(obj) + "\n").encode()
        with self._lock, self.path.open("a+b") as f:
            end = f.seek(0, 2)
            if end > 0:
                f.seek(end - 1)
                if f.read(1) != b"\n":  # a torn line from a crash: start a fresh one
                    line = b"\n" + line
            f.write(line)
            f.flush()

    def segment_closed(self, info: SegmentInfo) -> None:
        d = {k: getattr(info, k) for k in SegmentInfo.__dataclass_fields__}
        d["path"] = str(info.path)
        self._append({"type": "segment", **d})

    def gap(self, info: GapInfo) -> None:
        self._append({"type": "gap", **{k: getattr(info, k) for k in GapInfo.__dataclass_fields__}})

    def read(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(segments, gaps); a torn last line (crash mid-append) is ignored."""
        segs: list[dict[str, Any]] = []
        gaps: list[dict[str, Any]] = []
        if not self.path.exists():
            return segs, gaps
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            (segs if obj.pop("type") == "segment" else gaps).append(obj)
        return segs, gaps
