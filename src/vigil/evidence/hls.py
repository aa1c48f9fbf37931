"""HLS (fMP4) playlists over recorded footage, for scrubbing in a browser (hls.js, Safari).

Parts are served straight from the recorded fragments: a part is a run of the source file's
own ``moof``/``mdat`` fragments (each starts on a keyframe), cut at keyframes into parts of
at most ``max_part_us`` (6 s by default; longer only if the camera's keyframe interval is),
with the source file's ``ftyp``+``moov`` as the init segment. Serving a part therefore
reads a few hundred kB and rewrites a few header fields; nothing is demuxed or re-encoded.

Why the headers are rewritten instead of serving raw byte ranges of the files
(``EXT-X-BYTERANGE``): every segment file starts at decode time 0, but HLS requires media
timestamps to run on continuously between segments without a discontinuity tag. Each
fragment's ``tfdt`` is therefore moved onto one playlist timeline (continuous across the
files of a recording, collapsed across gaps), its ``mfhd`` sequence number renumbered, and a
``prft`` box with the capture wall time put in front of it.

Playlist: ``EXT-X-VERSION:7``, ``EXT-X-MAP`` (a new one whenever the codec parameters
change), ``EXT-X-PROGRAM-DATE-TIME`` on every part (wall time of its first presented
frame, millisecond precision), ``EXT-X-DISCONTINUITY`` at every gap and codec change, and
``EXT-X-START`` pointing at the requested instant. Parts are whole source fragments, so
the playlist runs from the keyframe before the start to the end of the fragment holding the
end (up to a keyframe interval either side; exact trimming is what the MP4 export is for).
The playlist is a VOD snapshot of what is indexed when it is built.

URLs: ``{base_url}/init/{k}.mp4`` and ``{base_url}/part/{n}.m4s``; the API routes them to
``hls_init``/``hls_part`` with the same camera and range (the plan is deterministic, and
file layouts are cached, so recomputing it per request is cheap), or keeps the ``HlsPlan``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction

from vigil.evidence.playback import (
    DEFAULT_PLAYBACK_MAX_RANGE_US,
    NoFootageError,
    PlaybackPart,
    plan_playback,
)
from vigil.evidence.playback_bmff import prft_box, rewrite_fragment
from vigil.evidence.playback_source import SourceSegment
from vigil.evidence.timeline import TimelineGap
from vigil.index.repository import Index

DEFAULT_MAX_PART_US = 6_000_000


@dataclass(frozen=True, slots=True)
class HlsPart:
    """One media segment ("part") of the playlist."""

    n: int
    source: SourceSegment
    first: int  # index into source.video_fragments()
    stop: int  # exclusive
    shift: Fraction  # playlist media seconds = file seconds + shift
    duration: Fraction  # seconds (video decode duration of its fragments)
    media_start: Fraction  # playlist media time (s) of its first video sample's decode time
    wall_us: int  # capture time of its first presented frame (EXT-X-PROGRAM-DATE-TIME)
    init: int  # which init segment it needs
    discontinuity: bool  # a gap or codec change precedes it
    first_sequence: int  # mfhd sequence number of its first fragment


def _pdt(wall_us: int) -> str:
    ms = (wall_us + 500) // 1000
    secs, rem = divmod(ms, 1000)
    return datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{rem:03d}Z"


@dataclass(frozen=True, slots=True)
class HlsPlan:
    camera: str
    start_us: int
    end_us: int
    parts: tuple[HlsPart, ...]
    inits: tuple[SourceSegment, ...]  # source whose ftyp+moov is init segment k
    gaps: tuple[TimelineGap, ...]
    start_offset: Fraction  # playlist media time (s) of the requested start

    @property
    def target_duration(self) -> int:
        return max(1, math.ceil(max((p.duration for p in self.parts), default=Fraction(1))))

    def playlist(self, base_url: str) -> str:
        """The media playlist text (UTF-8, ``application/vnd.apple.mpegurl``)."""
        base = base_url.rstrip("/")
        independent = all(p.source.video_fragments()[p.first][1].first_sync for p in self.parts)
        lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:7",
            f"#EXT-X-TARGETDURATION:{self.target_duration}",
            "#EXT-X-MEDIA-SEQUENCE:0",
            "#EXT-X-PLAYLIST-TYPE:VOD",
        ]
        if independent:
            lines.append("#EXT-X-INDEPENDENT-SEGMENTS")
        lines.append(f"#EXT-X-START:TIME-OFFSET={float(self.start_offset):.6f},PRECISE=YES")
        current_init = -1
        for p in self.parts:
            if p.discontinuity:
                lines.append("#EXT-X-DISCONTINUITY")
            if p.init != current_init:
                lines.append(f'#EXT-X-MAP:URI="{base}/init/{p.init}.mp4"')
                current_init = p.init
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{_pdt(p.wall_us)}")
            lines.append(f"#EXTINF:{float(p.duration):.6f},")
            lines.append(f"{base}/part/{p.n}.m4s")
        lines.append("#EXT-X-ENDLIST")
        return "\n".join(lines) + "\n"

    def init_segment(self, k: int) -> bytes:
        """Bytes of init segment ``k`` (the source file's ftyp + moov, unchanged)."""
        if not 0 <= k < len(self.inits):
            raise IndexError(f"no init segment {k}")
        return self.inits[k].layout.init

    def part_bytes(self, n: int) -> bytes:
        """Bytes of part ``n``: its fragments with playlist-timeline headers, each after a
        ``prft``. Raises ``IndexError`` for a bad ``n`` and ``OSError`` if the source file
        vanished since the plan was made."""
        if not 0 <= n < len(self.parts):
            raise IndexError(f"no part {n}")
        p = self.parts[n]
        src = p.source
        frags = src.video_fragments()[p.first : p.stop]
        lo, hi = frags[0][0].offset, frags[-1][0].end
        with open(src.path, "rb") as f:
            f.seek(lo)
            data = f.read(hi - lo)
        if len(data) != hi - lo:
            raise OSError(f"{src.rel} is shorter than when the playlist was made")
        tracks = {t.track_id: t for t in src.layout.tracks}
        out: list[bytes] = []
        for i, (frag, vtraf) in enumerate(frags):
            times = {
                t.track_id: t.decode_time + round(p.shift * tracks[t.track_id].timescale)
                for t in frag.trafs
                if t.track_id in tracks
            }
            v_shift = round(p.shift * src.video.timescale)
            out.append(
                prft_box(
                    src.video.track_id, src.wall_of_cts(vtraf.first_cts), vtraf.first_cts + v_shift
                )
            )
            raw = data[frag.offset - lo : frag.end - lo]
            out.append(rewrite_fragment(raw, frag, times, sequence=p.first_sequence + i))
        return b"".join(out)


def _cut(src: SourceSegment, first: int, stop: int, max_part: Fraction) -> list[tuple[int, int]]:
    """Split fragments [first, stop) into runs of at most ``max_part`` seconds, cutting only
    before keyframe-led fragments."""
    vf = src.video_fragments()
    ts = src.video.timescale
    runs: list[tuple[int, int]] = []
    a = first
    dur = Fraction(0)
    for i in range(first, stop):
        d = Fraction(vf[i][1].duration, ts)
        if i > a and vf[i][1].first_sync and dur + d > max_part:
            runs.append((a, i))
            a, dur = i, Fraction(0)
        dur += d
    if stop > a:
        runs.append((a, stop))
    return runs


def hls_plan(
    index: Index,
    camera: str,
    start_us: int,
    end_us: int,
    *,
    max_part_us: int = DEFAULT_MAX_PART_US,
    max_range_us: int = DEFAULT_PLAYBACK_MAX_RANGE_US,
) -> HlsPlan:
    """Plan the playlist for [start_us, end_us). Raises ``TimeRangeError`` for a bad request
    and ``NoFootageError`` when nothing playable was recorded in the range."""
    plan = plan_playback(index, camera, start_us, end_us, on_gap="split", max_range_us=max_range_us)
    if not plan.parts:
        raise NoFootageError(f"no playable footage of {camera!r} in the range", plan.gaps)
    max_part = Fraction(max_part_us, 1_000_000)
    parts: list[HlsPart] = []
    inits: list[SourceSegment] = []
    media_end = Fraction(0)  # playlist media time where the previous part ended
    seq = 1
    start_offset = Fraction(0)
    for pi, pp in enumerate(plan.parts):
        delta = _part_delta(pp, pi == 0, media_end)
        if pi == 0:
            start_offset = delta  # the requested start is at route time 0
        if not inits or inits[-1].signature != pp.routes[0].source.signature:
            inits.append(pp.routes[0].source)
        for ri, route in enumerate(pp.routes):
            src = route.source
            ts = src.video.timescale
            shift = route.shift + delta
            for k, (a, b) in enumerate(_cut(src, route.first, route.stop, max_part)):
                vf = src.video_fragments()
                duration = sum((Fraction(vf[i][1].duration, ts) for i in range(a, b)), Fraction(0))
                parts.append(
                    HlsPart(
                        n=len(parts),
                        source=src,
                        first=a,
                        stop=b,
                        shift=shift,
                        duration=duration,
                        media_start=Fraction(vf[a][1].decode_time, ts) + shift,
                        wall_us=src.wall_of_cts(vf[a][1].min_cts),
                        init=len(inits) - 1,
                        discontinuity=pi > 0 and ri == 0 and k == 0,
                        first_sequence=seq,
                    )
                )
                seq += b - a
            media_end = route.out_end() + delta
    return HlsPlan(camera, start_us, end_us, tuple(parts), tuple(inits), plan.gaps, start_offset)


def _part_delta(pp: PlaybackPart, first: bool, media_end: Fraction) -> Fraction:
    """Offset from a playback part's output timeline (0 = its first presented frame) to the
    playlist timeline: the first part starts at 0 with its earliest sample (so no decode
    time is negative), later parts continue where the previous one ended."""
    r = pp.routes[0]
    src = r.source
    frag, vtraf = src.video_fragments()[r.first]
    tracks = {t.track_id: t for t in src.layout.tracks}
    if first:
        earliest = min(
            Fraction(t.decode_time, tracks[t.track_id].timescale)
            for t in frag.trafs
            if t.track_id in tracks and t.samples
        )
        return -(earliest + r.shift)
    return media_end - (Fraction(vtraf.decode_time, src.video.timescale) + r.shift)


def hls_playlist(
    index: Index,
    camera: str,
    start_us: int,
    end_us: int,
    base_url: str,
    *,
    max_part_us: int = DEFAULT_MAX_PART_US,
    max_range_us: int = DEFAULT_PLAYBACK_MAX_RANGE_US,
) -> str:
    """The HLS media playlist for [start_us, end_us) of ``camera`` (see module docs)."""
    return hls_plan(
        index, camera, start_us, end_us, max_part_us=max_part_us, max_range_us=max_range_us
    ).playlist(base_url)


def hls_init(
    index: Index,
    camera: str,
    start_us: int,
    end_us: int,
    k: int,
    *,
    max_part_us: int = DEFAULT_MAX_PART_US,
) -> bytes:
    """Bytes of init segment ``k`` of the playlist for the same arguments."""
    return hls_plan(index, camera, start_us, end_us, max_part_us=max_part_us).init_segment(k)


def hls_part(
    index: Index,
    camera: str,
    start_us: int,
    end_us: int,
    n: int,
    *,
    max_part_us: int = DEFAULT_MAX_PART_US,
) -> bytes:
    """Bytes of part ``n`` of the playlist for the same arguments."""
    return hls_plan(index, camera, start_us, end_us, max_part_us=max_part_us).part_bytes(n)


def parse_playlist(text: str) -> list[dict[str, object]]:
    """Minimal parser of the playlists made here (tests, tools): one dict per part with
    ``uri``, ``duration``, ``pdt``, ``map`` and ``discontinuity``."""
    out: list[dict[str, object]] = []
    cur: dict[str, object] = {}
    current_map = ""
    for line in text.splitlines():
        if line.startswith("#EXT-X-MAP:"):
            current_map = line.split('URI="', 1)[1].rstrip('"')
        elif line == "#EXT-X-DISCONTINUITY":
            cur["discontinuity"] = True
        elif line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            cur["pdt"] = line.split(":", 1)[1]
        elif line.startswith("#EXTINF:"):
            cur["duration"] = float(line.split(":", 1)[1].split(",", 1)[0])
        elif line and not line.startswith("#"):
            cur.setdefault("discontinuity", False)
            cur["uri"] = line
            cur["map"] = current_map
            out.append(cur)
            cur = {}
    return out


__all__: Sequence[str] = (
    "DEFAULT_MAX_PART_US",
    "HlsPart",
    "HlsPlan",
    "hls_init",
    "hls_part",
    "hls_plan",
    "hls_playlist",
    "parse_playlist",
)
