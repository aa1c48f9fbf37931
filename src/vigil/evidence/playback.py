"""Playing back recorded footage: any [start, end) range of a camera, assembled by stream
copy (no decoding, no re-encoding, so what is played is what was recorded).

Two outputs, one packet path:

* ``write_mp4``: a progressive MP4 with the ``moov`` at the front (``+faststart``), which a
  browser can play and seek with HTTP byte ranges, and which is what evidence export
  builds on.
* ``iter_fmp4``: fragmented MP4 produced as it is muxed (a generator of bytes), so an API
  can send the first fragment while later ones are still being read.

**Starting mid-segment.** Stream copy must start on a keyframe, so the output starts at the
keyframe before the requested instant and the frames before it are hidden with an edit list
(FFmpeg's mp4 muxer writes one when the first timestamps are negative; for fMP4 ``delay_moov``
lets it do so in the init segment). The start is snapped to the frame that is on screen at
the requested instant, so that frame is the first one a player presents and
``creation_time`` is its exact wall time.

**Gaps** (documented behaviour). A range that crosses a gap, a codec change, or a missing or
damaged file is planned as several *parts*, each continuous footage with one set of codec
parameters. ``on_gap="split"`` (default) makes one output per part: timestamps inside a file
are never wrong, and the holes are listed with their reasons in ``PlaybackResult.gaps``.
``on_gap="join"`` collapses gaps so compatible parts play as one file: the timestamps run
on across the hole (playback jumps from the last frame before it to the first after), and
the jump is recorded (``Clip.collapsed`` and the wall-clock anchors in the file), so nothing
presents a frame at the wrong time. Parts with different codec parameters are never joined.

**Wall clock.** Each output carries how to turn a presentation time into the instant it was
recorded: ``creation_time`` (first presented frame, µs precision in the ``mdta`` metadata),
a ``com.vigil.wallclock`` metadata item holding ``(media µs, wall µs)`` anchors (one per
jump/drift), and in fragmented output a ``prft`` box before every ``moof``. See
``WallClock.wall_time_of`` and ``read_wall_clock``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av

from vigil.evidence.playback_bmff import (
    BmffError,
    FragmentStamper,
    TrackInfo,
    fragment_samples,
    iter_boxes,
    read_prfts,
)
from vigil.evidence.playback_source import SourceSegment, probe
from vigil.evidence.timeline import (
    HOUR_US,
    MIN_CONTIGUITY_TOLERANCE_US,
    Piece,
    TimelineGap,
    TimeRangeError,
    UnknownCameraError,
    camera_exists,
    contiguity_tolerance_us,
    explain,
    first_segment_after,
    first_segment_at_or_before,
    gap_rows,
    holes,
    merge,
    validate_range,
)
from vigil.index.repository import Index
from vigil.record.fmp4 import ByteCollector

log = logging.getLogger(__name__)

GapMode = Literal["split", "join"]
# One export/stream request may not ask for more than this by default (a day of one camera
# is already tens of GB at high bitrates); callers pass their configured limit.
DEFAULT_PLAYBACK_MAX_RANGE_US = 24 * HOUR_US
# How long open_at() plans ahead; a player asks again (from where it is) to go further.
DEFAULT_OPEN_DURATION_US = 10 * 60 * 1_000_000
WALLCLOCK_KEY = "com.vigil.wallclock"
_ANCHOR_SLACK_US = 1_000  # a new anchor only when the clock would otherwise be off by > 1 ms
_US = Fraction(1, 1_000_000)
_KEEP_TAGS = frozenset({"avc1", "avc3", "hvc1", "hev1", "mp4a"})
_MP4_OPTIONS = {"movflags": "+faststart+use_metadata_tags"}
_FMP4_OPTIONS = {
    "movflags": "+frag_keyframe+empty_moov+default_base_moof+delay_moov+use_metadata_tags",
}


class NoFootageError(LookupError):
    """Nothing playable was recorded in the requested range (the gaps say why)."""

    def __init__(self, message: str, gaps: Sequence[TimelineGap] = ()) -> None:
        super().__init__(message)
        self.gaps = tuple(gaps)


# -- wall clock ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WallClock:
    """Piecewise mapping from presentation time in an output file to capture wall time.

    ``anchors`` are ``(media_us, wall_us)`` pairs sorted by media time: a frame presented at
    ``pts`` (µs, as a player or PyAV reports it, i.e. after the edit list) was recorded at
    ``wall_us + (pts - media_us)`` of the last anchor at or before it. A second anchor exists
    only where wall time does not advance with media time: a collapsed gap (``join``) or
    clock drift between segment files of more than a millisecond."""

    anchors: tuple[tuple[int, int], ...]

    def wall_time_of(self, pts: int | Fraction, time_base: Fraction = _US) -> int:
        """Wall µs of presentation time ``pts`` expressed in ``time_base`` units."""
        media_us = round(Fraction(pts) * time_base * 1_000_000)
        media, wall = self.anchors[0]
        for m, w in self.anchors:
            if m > media_us:
                break
            media, wall = m, w
        return wall + (media_us - media)

    def media_time_of(self, wall_us: int) -> int | None:
        """Presentation µs at which ``wall_us`` is shown, or None if it falls in a collapsed
        gap or outside the file (lets a player seek to a wall instant)."""
        for i, (m, w) in enumerate(self.anchors):
            nxt = self.anchors[i + 1] if i + 1 < len(self.anchors) else None
            end_wall = w + (nxt[0] - m) if nxt else None
            if wall_us >= w and (end_wall is None or wall_us < end_wall):
                return m + (wall_us - w)
        return None

    def to_json(self) -> str:
        return json.dumps(
            {"v": 1, "anchors": [list(a) for a in self.anchors]}, separators=(",", ":")
        )

    @classmethod
    def from_json(cls, text: str) -> WallClock:
        data = json.loads(text)
        return cls(tuple((int(m), int(w)) for m, w in data["anchors"]))


def wall_time_of(clock: WallClock, pts: int | Fraction, time_base: Fraction = _US) -> int:
    """Module-level spelling of ``WallClock.wall_time_of``."""
    return clock.wall_time_of(pts, time_base)


def iso_utc(wall_us: int) -> str:
    """``2024-05-06T07:08:09.123456Z`` (what FFmpeg accepts for ``creation_time``)."""
    secs, rem = divmod(wall_us, 1_000_000)
    return datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{rem:06d}Z"


def read_wall_clock(source: Path | bytes) -> WallClock:
    """The wall clock of an output made here: from the ``com.vigil.wallclock`` metadata of
    a file, or else from ``prft`` boxes (fragmented bytes, e.g. a captured stream or an HLS
    init + parts), or else from ``creation_time`` alone."""
    data: bytes | None = source if isinstance(source, bytes) else None
    if isinstance(source, Path):
        with av.open(str(source)) as c:
            meta = dict(c.metadata)
        if WALLCLOCK_KEY in meta:
            return WallClock.from_json(meta[WALLCLOCK_KEY])
        data = source.read_bytes() if source.stat().st_size < 64 * 1024 * 1024 else None
        if data is None and "creation_time" in meta:
            return WallClock(((0, _parse_iso(meta["creation_time"])),))
    assert data is not None
    meta_clock = _clock_from_moov(data)
    if meta_clock is not None:
        return meta_clock
    tracks, prfts = read_prfts(data)
    by_id = {t.track_id: t for t in tracks}
    anchors: list[tuple[int, int]] = []
    for p in prfts:
        t = by_id.get(p.track_id)
        if t is None:
            continue
        media_us = round(Fraction(p.media_time - t.edit_media_time, t.timescale) * 1_000_000)
        anchors.append((media_us, p.wall_us))
    if not anchors:
        raise ValueError("no wall-clock information (no vigil metadata, prft or moov)")
    return WallClock(_prune(sorted(anchors)))


def _parse_iso(text: str) -> int:
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(dt.timestamp()) * 1_000_000 + dt.microsecond


def _clock_from_moov(data: bytes) -> WallClock | None:
    key = WALLCLOCK_KEY.encode()
    for b in iter_boxes(data):
        if b.type == b"moov":
            moov = data[b.offset : b.end]
            i = moov.find(b'{"v":1,"anchors":')
            if i >= 0 and key in moov:
                end = moov.find(b"]]}", i)
                if end > 0:
                    return WallClock.from_json(moov[i : end + 3].decode())
    return None


def _prune(anchors: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for m, w in anchors:
        if out:
            pm, pw = out[-1]
            if abs(pw + (m - pm) - w) <= _ANCHOR_SLACK_US:
                continue
        out.append((m, w))
    return tuple(out)


# -- planning ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Route:
    """What one source file contributes to a part."""

    source: SourceSegment
    first: int  # index into source.video_fragments() of the first fragment used
    stop: int  # exclusive index of the last fragment used
    to_us: int | None  # wall instant where the part ends inside this file (last route)
    # output seconds = file seconds (timestamp / timescale, as stored in the file) + shift
    shift: Fraction

    def out_us(self, wall_us: int) -> int:
        """Output presentation µs of a wall instant inside this route's file."""
        s = self.source
        file_s = Fraction(wall_us - s.start_us, 1_000_000) + Fraction(s.origin, s.video.timescale)
        return round((file_s + self.shift) * 1_000_000)

    def out_end(self) -> Fraction:
        """Output seconds where this route's video ends (decode end of its last fragment)."""
        _f, t = self.source.video_fragments()[self.stop - 1]
        return Fraction(t.decode_time + t.duration, self.source.video.timescale) + self.shift


@dataclass(frozen=True, slots=True)
class PlaybackPart:
    """Continuous footage (or, with ``join``, footage with collapsed gaps) that one output
    file or stream carries. Times are wall µs; ``start_us`` is the wall time of the first
    presented frame (the frame on screen at the requested start)."""

    camera: str
    start_us: int
    end_us: int
    routes: tuple[Route, ...]
    collapsed: tuple[TimelineGap, ...]
    clock: WallClock
    duration_us: int  # presentation length of the output

    @property
    def keyframe_us(self) -> int:
        """Wall time of the first decodable frame (the keyframe decoding starts from)."""
        r = self.routes[0]
        _f, t = r.source.video_fragments()[r.first]
        return r.source.wall_of_cts(t.min_cts)

    @property
    def has_audio(self) -> bool:
        return self.routes[0].source.layout.audio is not None

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(r.source.rel for r in self.routes)


@dataclass(frozen=True, slots=True)
class PlaybackPlan:
    camera: str
    start_us: int
    end_us: int
    on_gap: GapMode
    parts: tuple[PlaybackPart, ...]
    gaps: tuple[TimelineGap, ...]  # every hole in [start_us, end_us), with reasons


def plan_playback(
    index: Index,
    camera: str,
    start_us: int,
    end_us: int,
    *,
    on_gap: GapMode = "split",
    max_range_us: int = DEFAULT_PLAYBACK_MAX_RANGE_US,
) -> PlaybackPlan:
    """Decide which fragments of which files make up [start_us, end_us) and how their
    timestamps map into the output(s). Probes each file (cached box scans), so missing and
    truncated files become gaps here rather than errors mid-stream."""
    if on_gap not in ("split", "join"):
        raise ValueError(f"on_gap must be 'split' or 'join', not {on_gap!r}")
    validate_range(index, camera, start_us, end_us, max_range_us)
    rows = [seg for _c, seg in index.segments(camera, start_us, end_us)]
    sources: list[tuple[SourceSegment, int]] = []
    damaged: list[TimelineGap] = []
    for seg in rows:
        got = probe(index, seg)
        if isinstance(got, TimelineGap):
            damaged.append(got)
            continue
        if got.truncated and got.end_us < seg.end_us:
            damaged.append(
                TimelineGap(got.end_us, seg.end_us, "truncated", f"{seg.path}: cut short")
            )
        if got.end_us > start_us and got.start_us < end_us:
            sources.append((got, contiguity_tolerance_us(seg.duration_us, seg.packets)))
    runs = merge(Piece(s.start_us, s.end_us, tol) for s, tol in sources)
    clipped = [
        (max(a, start_us), min(b, end_us), n) for a, b, n in runs if b > start_us and a < end_us
    ]
    explained, _markers = gap_rows(index, camera, start_us, end_us)
    reasons = sorted(damaged + explained, key=lambda g: g.start_us)
    gaps = explain(holes(start_us, end_us, clipped), reasons)

    groups: list[list[SourceSegment]] = []
    prev: tuple[SourceSegment, int] | None = None
    for src, tol in sources:
        if prev is not None and groups:
            psrc, ptol = prev
            contiguous = src.start_us <= psrc.end_us + ptol
            if src.signature != psrc.signature or (not contiguous and on_gap == "split"):
                groups.append([])
        else:
            groups.append([])
        groups[-1].append(src)
        prev = (src, tol)
    parts = tuple(
        p for g in groups if (p := _plan_part(camera, g, start_us, end_us, gaps)) is not None
    )
    return PlaybackPlan(camera, start_us, end_us, on_gap, parts, tuple(gaps))


def _snap_start(src: SourceSegment, first: int, instant_us: int) -> int:
    """Wall time of the frame on screen at ``instant_us`` (its presentation start), looking
    at the samples of the fragments from ``first`` on (one moof re-read, usually)."""
    vf = src.video_fragments()
    best: int | None = None
    for frag, _t in vf[first : first + 3]:
        try:
            samples = fragment_samples(src.path, frag, src.video)
        except (OSError, BmffError, ValueError):
            break
        for _dts, cts, _dur in samples:
            w = src.wall_of_cts(cts)
            if w <= instant_us and (best is None or w > best):
                best = w
        if samples and src.wall_of_cts(max(c for _d, c, _u in samples)) > instant_us:
            break
    return best if best is not None else max(instant_us, src.start_us)


def _plan_part(
    camera: str,
    group: list[SourceSegment],
    start_us: int,
    end_us: int,
    gaps: Sequence[TimelineGap],
) -> PlaybackPart | None:
    routes: list[Route] = []
    collapsed: list[TimelineGap] = []
    anchors: list[tuple[int, int]] = []
    part_start = start_us
    prev_route: Route | None = None
    for i, src in enumerate(group):
        vf = src.video_fragments()
        last = i == len(group) - 1
        to_us = end_us if last and src.end_us > end_us else None
        if i == 0:
            from_us = max(start_us, src.start_us)
            first = src.start_fragment(from_us)
            part_start = _snap_start(src, first, from_us)
        else:
            assert prev_route is not None
            prev_end_wall = prev_route.source.end_us
            first = 0
            if src.start_us < prev_end_wall - MIN_CONTIGUITY_TOLERANCE_US:
                # Overlapping files (a recorder restart): skip what was already played,
                # resuming at the first keyframe at or after the previous file's end.
                first = next(
                    (
                        k
                        for k, (_f, t) in enumerate(vf)
                        if t.first_sync and src.wall_of_cts(t.min_cts) >= prev_end_wall
                    ),
                    len(vf),
                )
                if first >= len(vf):
                    continue
            elif src.start_us > prev_end_wall:
                collapsed.extend(
                    g for g in gaps if g.end_us > prev_end_wall and g.start_us < src.start_us
                )
        stop = src.end_fragment(to_us)
        if stop <= first:
            continue
        _f0, t0 = vf[first]
        if prev_route is None:
            shift = Fraction(src.start_us - part_start, 1_000_000) - Fraction(
                src.origin, src.video.timescale
            )
        else:
            shift = prev_route.out_end() - Fraction(t0.decode_time, src.video.timescale)
        route = Route(src, first, stop, to_us, shift)
        routes.append(route)
        anchors.append((route.out_us(src.wall_of_cts(t0.first_cts)), src.wall_of_cts(t0.first_cts)))
        prev_route = route
    if not routes:
        return None
    last_route = routes[-1]
    if last_route.to_us is not None:
        duration = last_route.out_us(last_route.to_us)
        end_wall = last_route.to_us
    else:
        duration = round(last_route.out_end() * 1_000_000)
        end_wall = min(last_route.source.end_us, end_us)
    # Re-base anchors so that the first presented frame is media time 0 exactly.
    anchors = sorted(anchors)
    first_m, first_w = anchors[0]
    anchors[0] = (0, first_w - first_m)
    clock = WallClock(_prune(anchors))
    return PlaybackPart(
        camera=camera,
        start_us=part_start,
        end_us=end_wall,
        routes=tuple(routes),
        collapsed=tuple(collapsed),
        clock=clock,
        duration_us=duration,
    )


# -- packets -----------------------------------------------------------------------------------


def _stream_track(layout_tracks: Sequence[TrackInfo], stream: Any) -> TrackInfo | None:
    for t in layout_tracks:
        if t.track_id == stream.id:
            return t
    return None


def _route_packets(
    route: Route,
    last_dts: dict[str, int],
    with_audio: bool,
) -> Iterator[tuple[str, Any]]:
    """Packets of one route with output timestamps (in the input stream's time base), as
    (kind, packet). ``last_dts`` carries each kind's last output dts across routes so output
    dts stay strictly increasing even where files overlap or clocks jitter."""
    src = route.source
    vf = src.video_fragments()
    skip_pos = vf[route.first][0].offset
    stop_pos = min(vf[route.stop - 1][0].end, src.layout.complete_end)
    tracks = src.layout.tracks
    try:
        container = av.open(str(src.path))
    except (OSError, av.FFmpegError) as e:
        log.warning("cannot open %s for playback: %s; skipping it", src.rel, e)
        return
    with container:
        v_in = container.streams.video[0] if container.streams.video else None
        a_in = container.streams.audio[0] if (with_audio and container.streams.audio) else None
        if v_in is None:
            return
        wanted = [s for s in (v_in, a_in) if s is not None]
        # Per stream: PyAV timestamp - timestamp stored in the file (FFmpeg subtracts a
        # track's edit list); learnt from the first packet of the stream.
        offsets: dict[int, int] = {}
        per_stream: dict[int, tuple[bool, int, int, int]] = {}
        first_dts: dict[int, int] = {}
        for t in tracks:
            for f in src.layout.fragments:
                tr = f.traf(t.track_id)
                if tr is not None and tr.samples:
                    first_dts[t.track_id] = tr.decode_time
                    break
        end_out: int | None = None
        if route.to_us is not None:
            end_out = route.out_us(route.to_us)
        reorder = False
        video_done = False
        try:
            for pkt in container.demux(wanted):
                if pkt.dts is None or pkt.pts is None:
                    continue
                stream = pkt.stream
                tid = stream.id
                if tid not in offsets:
                    offsets[tid] = pkt.dts - first_dts.get(tid, pkt.dts)
                pos = pkt.pos if pkt.pos is not None else -1
                if pos >= 0 and pos + pkt.size > stop_pos:
                    break  # past the last fragment used (or into a truncated tail)
                if pos >= 0 and pos < skip_pos:
                    continue
                conv = per_stream.get(tid)
                if conv is None:
                    # Once per stream, not per packet: Fraction arithmetic on every packet
                    # was a measurable share of export time (bench/playback.py).
                    tb = stream.time_base
                    if _stream_track(tracks, stream) is None or tb is None:
                        conv = per_stream[tid] = (False, 0, 1, 0)
                    else:
                        conv = per_stream[tid] = (
                            True,
                            tb.numerator * 1_000_000,
                            tb.denominator,
                            round(route.shift / tb) - offsets[tid],
                        )
                usable, us_num, us_den, delta = conv
                if not usable:
                    continue
                pts = pkt.pts + delta
                dts = pkt.dts + delta
                # x * tb in µs, rounded half up in integers (round() would round half to
                # even: a half-microsecond difference that matters nowhere)
                out_pts_us = (2 * pts * us_num + us_den) // (2 * us_den)
                out_dts_us = (2 * dts * us_num + us_den) // (2 * us_den)
                if stream is v_in:
                    if video_done:
                        continue
                    if pts != dts:
                        reorder = True
                    if end_out is not None:
                        if out_dts_us >= end_out:
                            video_done = True
                            continue
                        # Without reordering a frame presented after the end is not needed;
                        # with B-frames it may be a reference of one that is, so keep it.
                        if out_pts_us >= end_out and not reorder:
                            continue
                    kind = "video"
                else:
                    if out_pts_us < 0 or (end_out is not None and out_pts_us >= end_out):
                        continue
                    kind = "audio"
                prev = last_dts.get(kind)
                if prev is not None and dts <= prev:
                    if kind == "audio":
                        continue  # overlapping audio at a file boundary: drop, don't squeeze
                    dts = prev + 1
                    pts = max(pts, dts)
                last_dts[kind] = dts
                pkt.pts = pts
                pkt.dts = dts
                yield kind, pkt
                if video_done and (a_in is None or (end_out is not None and out_pts_us >= end_out)):
                    break
        except (av.FFmpegError, OSError, EOFError) as e:
            log.warning("error reading %s at playback (%s); using what was read", src.rel, e)


def _packets(part: PlaybackPart) -> Iterator[tuple[str, Any]]:
    last_dts: dict[str, int] = {}
    for route in part.routes:
        yield from _route_packets(route, last_dts, part.has_audio)


def _add_streams(out: Any, part: PlaybackPart) -> dict[str, Any]:
    """Output streams copied from the first file's streams (all files of a part share codec
    parameters: the plan splits parts where the init segments differ)."""
    src = part.routes[0].source
    streams: dict[str, Any] = {}
    with av.open(str(src.path)) as c:
        v = c.streams.video[0]
        streams["video"] = out.add_stream_from_template(v)
        if part.has_audio and c.streams.audio:
            streams["audio"] = out.add_stream_from_template(c.streams.audio[0])
        for kind, ist in (("video", v), ("audio", c.streams.audio[0] if c.streams.audio else None)):
            # Templates do not carry the sample entry tag, and the muxer's default for HEVC
            # is hev1, which Safari and Chrome refuse; keep what the recording used.
            tag = ist.codec_context.codec_tag if ist is not None else ""
            if kind in streams and tag in _KEEP_TAGS:
                streams[kind].codec_context.codec_tag = tag
    return streams


def _metadata(part: PlaybackPart) -> dict[str, str]:
    return {
        "creation_time": iso_utc(part.start_us),
        WALLCLOCK_KEY: part.clock.to_json(),
        "comment": f"Vigil recording of camera {part.camera} from {iso_utc(part.start_us)}",
    }


def _mux(out: Any, part: PlaybackPart, streams: dict[str, Any]) -> Iterator[None]:
    """Mux the part's packets into ``out``, yielding after each packet (so a streaming
    caller can hand on whatever the muxer has written)."""
    for kind, pkt in _packets(part):
        ost = streams.get(kind)
        if ost is None:
            continue
        pkt.stream = ost
        out.mux(pkt)
        yield None


# -- outputs -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Clip:
    """One written output file."""

    path: Path
    camera: str
    start_us: int  # wall time of the first presented frame
    end_us: int  # wall time where the footage ends
    duration_us: int  # presentation length (gaps collapsed with ``join`` are not in it)
    clock: WallClock
    collapsed: tuple[TimelineGap, ...]
    segments: tuple[str, ...]  # source files (relative to the storage root)
    bytes: int

    def wall_time_of(self, pts: int | Fraction, time_base: Fraction = _US) -> int:
        return self.clock.wall_time_of(pts, time_base)


@dataclass(frozen=True, slots=True)
class PlaybackResult:
    clips: tuple[Clip, ...]
    gaps: tuple[TimelineGap, ...]
    plan: PlaybackPlan = field(repr=False)


def write_mp4(part: PlaybackPart, dest: Path) -> Clip:
    """Write ``part`` as a progressive MP4 at ``dest`` (atomically: temp file + rename, so a
    half-written file is never served)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        out = av.open(str(tmp), "w", format="mp4", options=dict(_MP4_OPTIONS))
        try:
            out.metadata.update(_metadata(part))
            streams = _add_streams(out, part)
            for _ in _mux(out, part, streams):
                pass
        finally:
            out.close()
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return Clip(
        path=dest,
        camera=part.camera,
        start_us=part.start_us,
        end_us=part.end_us,
        duration_us=part.duration_us,
        clock=part.clock,
        collapsed=part.collapsed,
        segments=part.segments,
        bytes=dest.stat().st_size,
    )


def iter_fmp4(part: PlaybackPart) -> Iterator[bytes]:
    """Fragmented MP4 of ``part``, yielded fragment by fragment as it is muxed. The first
    chunk (init segment + first fragment) is ready as soon as one GOP has been read. Each
    ``moof`` is preceded by a ``prft`` box carrying the fragment's capture wall time."""
    sink = ByteCollector()

    def wall_of(cts: int, track: TrackInfo) -> int | None:
        pts = Fraction(cts - track.edit_media_time, track.timescale)
        return part.clock.wall_time_of(pts, Fraction(1))

    stamper = FragmentStamper(wall_of)
    out = av.open(sink, "w", format="mp4", options=dict(_FMP4_OPTIONS))
    closed = False
    try:
        out.metadata.update(_metadata(part))
        streams = _add_streams(out, part)
        for _ in _mux(out, part, streams):
            data = sink.take()
            if data:
                chunk = stamper.feed(data)
                if chunk:
                    yield chunk
        out.close()
        closed = True
        tail = stamper.feed(sink.take()) + stamper.flush()
        if tail:
            yield tail
    finally:
        if not closed:
            out.close()


# -- one-call entry points -------------------------------------------------------------------


def export_mp4(
    index: Index,
    camera: str,
    start_us: int,
    end_us: int,
    dest: Path,
    *,
    on_gap: GapMode = "split",
    max_range_us: int = DEFAULT_PLAYBACK_MAX_RANGE_US,
) -> PlaybackResult:
    """Write [start_us, end_us) of ``camera`` as progressive MP4 file(s).

    One part → ``dest``. Several parts (gaps with ``split``, or a codec change) →
    ``dest`` with ``-001``, ``-002``, ... inserted before the suffix, in time order; every
    clip and every gap between them is in the result. Raises ``TimeRangeError`` for a bad
    request and ``NoFootageError`` if nothing playable exists in the range."""
    plan = plan_playback(index, camera, start_us, end_us, on_gap=on_gap, max_range_us=max_range_us)
    if not plan.parts:
        raise NoFootageError(f"no playable footage of {camera!r} in the range", plan.gaps)
    clips: list[Clip] = []
    for i, part in enumerate(plan.parts):
        path = (
            dest
            if len(plan.parts) == 1
            else dest.with_name(f"{dest.stem}-{i + 1:03d}{dest.suffix}")
        )
        clips.append(write_mp4(part, path))
    return PlaybackResult(tuple(clips), plan.gaps, plan)


@dataclass(frozen=True, slots=True)
class PlaybackStream:
    """A fragmented-MP4 stream ready to send: ``chunks`` is lazy (nothing is read until it
    is iterated). ``start_us`` is the wall time of the first presented frame, which is at
    media time 0 if the player honours the edit list; ``skip_us`` says how far after the
    first decodable frame that is, for players that ignore edit lists in fMP4."""

    camera: str
    requested_us: int
    start_us: int
    keyframe_us: int
    end_us: int
    clock: WallClock
    chunks: Iterator[bytes]
    gaps: tuple[TimelineGap, ...]
    content_type: str = "video/mp4"

    @property
    def skip_us(self) -> int:
        return self.start_us - self.keyframe_us


def _stream_of(
    part: PlaybackPart, requested_us: int, gaps: Sequence[TimelineGap]
) -> PlaybackStream:
    return PlaybackStream(
        camera=part.camera,
        requested_us=requested_us,
        start_us=part.start_us,
        keyframe_us=part.keyframe_us,
        end_us=part.end_us,
        clock=part.clock,
        chunks=iter_fmp4(part),
        gaps=tuple(gaps),
    )


def stream_fmp4(
    index: Index,
    camera: str,
    start_us: int,
    end_us: int,
    *,
    on_gap: GapMode = "join",
    max_range_us: int = DEFAULT_PLAYBACK_MAX_RANGE_US,
) -> PlaybackStream:
    """A single fragmented-MP4 stream of the range. A stream is one timeline, so the default
    here is ``join`` (gaps collapsed, jumps in the ``prft`` boxes and the wall-clock
    metadata); with ``split``, or at a codec change, the stream ends with the first part and
    the caller continues from the next part's start (all gaps are in ``gaps``)."""
    plan = plan_playback(index, camera, start_us, end_us, on_gap=on_gap, max_range_us=max_range_us)
    if not plan.parts:
        raise NoFootageError(f"no playable footage of {camera!r} in the range", plan.gaps)
    return _stream_of(plan.parts[0], start_us, plan.gaps)


def open_at(
    index: Index,
    camera: str,
    instant_us: int,
    *,
    duration_us: int = DEFAULT_OPEN_DURATION_US,
    on_gap: GapMode = "split",
) -> PlaybackStream:
    """Start playing at ``instant_us`` as fast as possible: one indexed lookup for the
    segment, one cached box scan, and fragments from the keyframe before the instant, up to
    ``duration_us`` later. If the instant falls in a gap, playback starts at the next
    recording (``start_us`` says where) rather than failing."""
    if duration_us <= 0:
        raise TimeRangeError("duration_us must be positive")
    if not camera_exists(index, camera):
        raise UnknownCameraError(f"unknown camera {camera!r}")
    seg = first_segment_at_or_before(index, camera, instant_us)
    begin = instant_us
    if seg is None or seg.end_us <= instant_us:
        nxt = first_segment_after(index, camera, instant_us)
        if nxt is None:
            raise NoFootageError(f"no footage of {camera!r} at or after the instant")
        begin = nxt.start_us
    plan = plan_playback(
        index, camera, begin, begin + duration_us, on_gap=on_gap, max_range_us=duration_us
    )
    if not plan.parts:
        raise NoFootageError(f"no playable footage of {camera!r} near the instant", plan.gaps)
    return _stream_of(plan.parts[0], instant_us, plan.gaps)


def frame_at(index: Index, camera: str, instant_us: int) -> tuple[av.VideoFrame, int]:
    """Decode the frame on screen at ``instant_us`` (for thumbnails and scrub previews):
    returns the frame and its wall time. Decodes from the preceding keyframe only."""
    plan = plan_playback(index, camera, instant_us, instant_us + 1, max_range_us=2)
    if not plan.parts:
        raise NoFootageError(f"no footage of {camera!r} at the instant", plan.gaps)
    part = plan.parts[0]
    r = part.routes[0]
    src = r.source
    best: tuple[av.VideoFrame, int] | None = None
    skip_pos = src.video_fragments()[r.first][0].offset
    with av.open(str(src.path)) as c:
        v = c.streams.video[0]
        origin: int | None = None
        for pkt in c.demux(v):
            if pkt.dts is None:
                continue
            if origin is None:
                origin = pkt.dts  # media time 0 of the segment's wall clock
            if pkt.pos is not None and 0 <= pkt.pos < skip_pos:
                continue
            for frame in pkt.decode():
                assert origin is not None and frame.pts is not None and v.time_base
                wall = src.start_us + round((frame.pts - origin) * v.time_base * 1_000_000)
                if wall <= instant_us:
                    best = (frame, wall)
                else:
                    return best if best is not None else (frame, wall)
    if best is None:
        raise NoFootageError(f"no decodable frame of {camera!r} at the instant")
    return best
