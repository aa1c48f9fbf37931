"""``vigil cameras test URL``: open a source once, read a little, say what it is or why not.

Probing uses exactly the open path of the recorder (same URL building, whitelists,
timeouts, error classification, and the same reader: Vigil's own RTSP client for plain
``rtsp://`` over TCP, falling back to FFmpeg where the recorder would), so "the probe
works" means "recording will work".
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from vigil.config.model import Credentials, StreamSource
from vigil.ingest.bitstream import (
    BitstreamError,
    ParameterSets,
    detect_framing,
    jpeg_dimensions,
    leading_parameter_sets,
    parse_extradata,
)
from vigil.ingest.errors import IngestError, classify
from vigil.ingest.reader import UNTIMED_FORMATS
from vigil.ingest.rtsp import NativeUnsupported, open_native
from vigil.ingest.source import (
    OpenTarget,
    build_target,
    build_url_target,
    open_input,
    reads_natively,
)
from vigil.util.redact import redact_url


@dataclass(frozen=True, slots=True)
class AudioInfo:
    codec: str
    sample_rate: int
    channels: int


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What a probe found. ``ok`` is False when the source could not be opened or had no
    usable video; ``error_kind``/``error`` then say why (redacted, human-readable)."""

    ok: bool
    source: str  # redacted
    format: str | None = None  # FFmpeg demuxer name
    video_codec: str | None = None
    width: int = 0
    height: int = 0
    fps: float | None = None  # from packet timestamps when possible, else stream metadata
    keyframe_interval_s: float | None = None
    bitrate_bps: float | None = None
    audio: AudioInfo | None = None
    packets: int = 0
    open_seconds: float = 0.0
    error_kind: str | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)


def probe(
    source: StreamSource | str,
    credentials: Credentials | None = None,
    timeout: float = 10.0,
    *,
    max_packets: int = 120,
    max_seconds: float = 4.0,
    rtsp_client: str = "native",
) -> ProbeResult:
    """Open ``source`` (a configured source or a URL), read up to ``max_packets`` packets
    or ``max_seconds`` of wall time, and describe the stream. Never raises for camera
    problems: they are reported in the result."""
    display = source if isinstance(source, str) else (source.url or str(source.file))
    notes: list[str] = []
    t0 = time.monotonic()
    try:
        if isinstance(source, str):
            target = build_url_target(
                source, credentials, open_timeout=timeout, read_timeout=timeout
            )
        else:
            target = build_target(source, credentials, open_timeout=timeout, read_timeout=timeout)
        display = target.display
        container = _open(target, timeout, rtsp_client, notes)
    except IngestError as err:
        return ProbeResult(
            ok=False,
            source=err.source or redact_url(display),
            open_seconds=round(time.monotonic() - t0, 3),
            error_kind=err.kind,
            error=err.message,
        )
    open_seconds = round(time.monotonic() - t0, 3)
    try:
        result = _read(container, target, timeout, max_packets, max_seconds, open_seconds)
    finally:
        container.close()
    result.notes[:0] = notes
    return result


def _open(target: OpenTarget, timeout: float, rtsp_client: str, notes: list[str]) -> Any:
    if reads_natively(target, rtsp_client):
        try:
            return open_native(
                target.url, target.display, open_timeout=timeout, stall_timeout=timeout
            )
        except NativeUnsupported as exc:
            notes.append(f"{exc.message}: read through FFmpeg")
    return open_input(target, open_timeout=timeout, read_timeout=timeout)


def _read(
    container: Any,
    target: OpenTarget,
    timeout: float,
    max_packets: int,
    max_seconds: float,
    open_seconds: float,
) -> ProbeResult:
    fmt = str(container.format.name) if container.format is not None else None
    videos = [s for s in container.streams.video if s.codec_context is not None]
    audios = [s for s in container.streams.audio if s.codec_context is not None]
    audio = None
    if audios:
        acc = audios[0].codec_context
        audio = AudioInfo(
            codec=str(acc.name),
            sample_rate=int(acc.sample_rate or 0),
            channels=int(getattr(acc, "channels", 0) or 0),
        )
    if not videos:
        return ProbeResult(
            ok=False,
            source=target.display,
            format=fmt,
            audio=audio,
            open_seconds=open_seconds,
            error_kind="not_video",
            error="the stream has no video track",
        )
    video = videos[0]
    cc = video.codec_context
    codec = str(cc.name)
    width, height = int(cc.width or 0), int(cc.height or 0)
    notes: list[str] = []
    tb = Fraction(video.time_base)
    dts_list: list[int] = []
    arrivals: list[float] = []
    key_times: list[float] = []
    total_bytes = 0
    packets = 0
    error_kind = error = None
    sized = False
    start = time.monotonic()
    t_read = start
    try:
        for pkt in container.demux(video, *audios[:1]):
            t_read = time.monotonic()
            if pkt.size == 0:
                continue
            packets += 1
            total_bytes += pkt.size
            if pkt.stream is video:
                arrivals.append(t_read)
                ts = pkt.dts if pkt.dts is not None else pkt.pts
                if ts is not None:
                    dts_list.append(int(ts))
                    if pkt.is_keyframe:
                        key_times.append(float(ts * tb))
                if pkt.is_keyframe and not sized:
                    size = _keyframe_size(codec, cc.extradata, bytes(pkt))
                    if size is not None:
                        width, height = size
                        sized = True
            if packets >= max_packets or time.monotonic() - start >= max_seconds:
                break
    except IngestError as native_err:  # Vigil's RTSP client classifies its own failures
        error_kind, error = native_err.kind, native_err.message
    except Exception as exc:
        err = classify(
            exc,
            source=target.display,
            timeout=timeout,
            elapsed=time.monotonic() - t_read,
            during_open=False,
        )
        error_kind, error = err.kind, err.message
    elapsed = max(time.monotonic() - start, 1e-3)

    if target.scheme != "file" and fmt in UNTIMED_FORMATS:
        # timestamps invented by FFmpeg (25 fps); the arrival times are the real rate
        fps = _fps([round(t * 1e6) for t in arrivals], Fraction(1, 1_000_000), min_delta=2_000)
        if fps is not None:
            notes.append("frame rate from arrival times (the format has no timestamps)")
    else:
        fps = _fps(dts_list, tb)
    if fps is None:
        rate = video.average_rate or video.guessed_rate
        fps = round(float(rate), 3) if rate else None
        if fps is not None:
            notes.append("frame rate from stream metadata")
    gop = None
    if len(key_times) >= 2:
        gop = round((key_times[-1] - key_times[0]) / (len(key_times) - 1), 3)
    if not key_times:
        notes.append("no keyframe seen while probing")
    return ProbeResult(
        ok=error_kind is None and packets > 0,
        source=target.display,
        format=fmt,
        video_codec=codec,
        width=width,
        height=height,
        fps=fps,
        keyframe_interval_s=gop,
        bitrate_bps=round(total_bytes * 8 / elapsed, 1) if target.scheme != "file" else None,
        audio=audio,
        packets=packets,
        open_seconds=open_seconds,
        error_kind=error_kind if error_kind else (None if packets else "eof"),
        error=error if error else (None if packets else "no packet received"),
        notes=notes,
    )


def _fps(dts: list[int], tb: Fraction, min_delta: int = 1) -> float | None:
    """Frame rate from the median interval between video packets. ``min_delta`` skips the
    near-zero intervals of the burst FFmpeg delivers after probing (arrival times)."""
    deltas = sorted(b - a for a, b in itertools.pairwise(dts) if b - a >= min_delta)
    if len(deltas) < 3:
        return None
    median = deltas[len(deltas) // 2] * tb
    return round(1 / float(median), 3) if median > 0 else None


def _keyframe_size(codec: str, extradata: bytes | None, data: bytes) -> tuple[int, int] | None:
    try:
        if codec in ("h264", "hevc"):
            parsed = parse_extradata(codec, bytes(extradata) if extradata else None)
            framing = parsed.framing if parsed else detect_framing(data)
            length = parsed.length_size if parsed else 4
            sets = (parsed.sets if parsed else ParameterSets(codec)).merged(
                leading_parameter_sets(codec, data, framing, length)
            )
            info = sets.sps_info()
            return (info.width, info.height) if info else None
        if codec == "mjpeg":
            return jpeg_dimensions(data)
    except BitstreamError:
        return None
    return None
