"""Mapping camera timestamps to a clean media timeline and to wall-clock time.

Camera clocks are wrong (unset, drifting, jumping when NTP kicks in) and camera timestamps
are glitchy (wrap-around, missing, repeated, jumping at RTCP synchronisation), so nothing
here trusts them beyond "the difference between two nearby packets is roughly right":

* Per session, media time starts at 0 at the first packet (the first video keyframe); all
  streams of the session share that origin so audio stays in sync with video.
* Output dts is strictly increasing per stream: repeated or slightly backward dts are bumped
  by 1 µs; pts keeps its offset from dts (B-frames) and is never below dts.
* A jump forward by more than ``max_jump_us`` or backward by more than ``max_backward_us``
  is a *break*: the stream is re-anchored on the receipt clock (the media position where
  the packet's receipt time says it is, but never before the previous packet plus one frame).
  That keeps ``wall = anchor + media`` true across breaks instead of gluing a 30 s outage
  into 33 ms.
* 32-bit (RTP) and 33-bit (MPEG-TS) wrap-around are unwrapped when FFmpeg did not already.
* Wall time is ``anchor + media + correction``: the anchor is the receipt time of the
  session's first packet and the correction is slewed toward the receipt clock by at most
  ``max_slew_ppm`` (default 500 ppm, as Moonfire NVR does) of elapsed media time. A camera
  whose clock runs 0.1 % fast therefore never drifts away from real time, while network
  jitter moves wall times by at most half a millisecond per second, and wall time of the
  reference (video) stream stays strictly increasing because the slew is far below 100 %.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

US = 1_000_000
_WRAPS = (1 << 32, 1 << 33)  # RTP timestamps, MPEG-TS PTS/DTS


@dataclass(frozen=True, slots=True)
class MappedTime:
    """Times of one packet: media times relative to the session start, wall in µs since the
    Unix epoch (of ``pts_us``)."""

    pts_us: int
    dts_us: int
    duration_us: int
    wall_us: int


@dataclass(slots=True)
class ClockStats:
    """Counters of repairs, for health and debugging."""

    breaks: int = 0  # timestamp discontinuities re-anchored on the receipt clock
    bumped: int = 0  # non-increasing dts bumped by 1 µs
    synthesized: int = 0  # packets without any timestamp
    wraps: int = 0  # 32/33-bit wrap-arounds unwrapped


class _Track:
    """Per-stream state: unwrapping, offset from raw to session media time, last output."""

    __slots__ = (
        "default_duration_us",
        "dur_est_us",
        "last_dts_out",
        "last_raw_us",
        "offset_us",
        "prev_raw",
        "reference",
        "time_base",
        "wrap_offset",
    )

    def __init__(self, time_base: Fraction, default_duration_us: int, reference: bool) -> None:
        if time_base <= 0:
            raise ValueError("time_base must be positive")
        self.time_base = time_base
        self.reference = reference
        self.default_duration_us = max(1, default_duration_us)
        self.dur_est_us = self.default_duration_us
        self.prev_raw: int | None = None
        self.wrap_offset = 0
        self.offset_us: int | None = None
        self.last_raw_us: int | None = None
        self.last_dts_out: int | None = None

    def to_us(self, ticks: int) -> int:
        tb = self.time_base
        return (ticks * tb.numerator * US) // tb.denominator

    def ticks_for_us(self, us: int) -> int:
        tb = self.time_base
        return (us * tb.denominator) // (tb.numerator * US)


class SessionClock:
    """Timestamp mapper for one session (all streams of it).

    Not thread-safe: owned by one camera's ingest thread.

    ``anchor_wall_us``: wall time of media time 0. By default the receipt time of the first
    packet; a session that continues a previous one after a codec change passes the wall
    time the previous clock assigned to that packet, so wall time stays continuous.
    ``slew=False`` disables the correction (files read faster than real time, where the
    receipt clock means nothing).
    """

    def __init__(
        self,
        *,
        anchor_wall_us: int | None = None,
        max_slew_ppm: float = 500.0,
        max_jump_us: int = 5 * US,
        max_backward_us: int = 1 * US,
        slew: bool = True,
    ) -> None:
        if not 0 <= max_slew_ppm <= 1000:
            raise ValueError("max_slew_ppm must be within 0..1000")
        self._anchor: int | None = anchor_wall_us
        self._origin_us: int | None = None  # raw dts (µs) mapped to media 0, shared
        self._corr = 0.0
        self._last_slew_dts: int | None = None
        self._ppm = max_slew_ppm if slew else 0.0
        self._max_jump = max_jump_us
        self._max_back = max_backward_us
        self._tracks: dict[int, _Track] = {}
        self.stats = ClockStats()

    # -- setup -----------------------------------------------------------------------

    def add_stream(
        self,
        key: int,
        time_base: Fraction,
        default_duration_us: int = 33_333,
        *,
        reference: bool = False,
    ) -> None:
        """Register a stream. The reference stream (video) drives the wall-clock slew."""
        self._tracks[key] = _Track(Fraction(time_base), default_duration_us, reference)

    @property
    def anchor_wall_us(self) -> int | None:
        return self._anchor

    @property
    def correction_us(self) -> float:
        """Current slew correction: wall minus (anchor + media)."""
        return self._corr

    def reanchor(self, anchor_wall_us: int) -> None:
        """Move the wall anchor and drop the slew state. Meant for before any wall time of
        this session was published: the reader holds back the packets FFmpeg buffered
        while opening (they all arrive at once, so the first one's receipt time is late by
        the length of that backlog) and re-anchors on the packets that arrived live."""
        self._anchor = anchor_wall_us
        self._corr = 0.0
        self._last_slew_dts = None

    def wall_at(self, media_us: int) -> int:
        """Wall time of a media time of this session (requires a mapped packet)."""
        if self._anchor is None:
            raise RuntimeError("no packet mapped yet")
        return self._anchor + media_us + round(self._corr)

    def last_dts(self, key: int) -> int | None:
        return self._tracks[key].last_dts_out

    # -- mapping ---------------------------------------------------------------------

    def map(
        self,
        key: int,
        pts: int | None,
        dts: int | None,
        duration: int | None,
        receipt_us: int,
    ) -> MappedTime:
        """Map one packet's raw timestamps (in its stream's time base) to session times."""
        tr = self._tracks[key]
        if self._anchor is None:
            self._anchor = receipt_us
        receipt_media = receipt_us - self._anchor - round(self._corr)

        raw = dts if dts is not None else pts
        if raw is None:
            self.stats.synthesized += 1
            if tr.last_dts_out is None:
                dts_out = max(0, receipt_media)
            else:
                dts_out = tr.last_dts_out + tr.dur_est_us
            cto_us = 0
            # keep the raw->media offset meaningful for the next timestamped packet
            if tr.last_raw_us is not None and tr.offset_us is not None:
                tr.last_raw_us = dts_out - tr.offset_us
        else:
            raw_us = tr.to_us(self._unwrap(tr, raw))
            cto_us = 0
            if pts is not None and dts is not None:
                cto = pts - dts
                for m in _WRAPS:
                    if cto < -m // 2:
                        cto += m
                    elif cto > m // 2:
                        cto -= m
                cto_us = max(0, tr.to_us(cto))
                if cto_us > self._max_jump:  # nonsense composition offset
                    cto_us = 0
            if tr.offset_us is None:
                tr.offset_us = self._initial_offset(tr, raw_us, receipt_media)
            else:
                assert tr.last_raw_us is not None
                delta = raw_us - tr.last_raw_us
                if delta > self._max_jump or delta < -self._max_back:
                    self.stats.breaks += 1
                    last = tr.last_dts_out if tr.last_dts_out is not None else 0
                    target = max(last + tr.dur_est_us, receipt_media)
                    tr.offset_us = target - raw_us
                elif delta > 0:
                    # a smoothed frame duration, used for synthesis and re-anchoring
                    tr.dur_est_us = max(1, (tr.dur_est_us * 7 + delta) // 8)
            tr.last_raw_us = raw_us
            dts_out = raw_us + tr.offset_us

        if tr.last_dts_out is not None and dts_out <= tr.last_dts_out:
            dts_out = tr.last_dts_out + 1
            self.stats.bumped += 1
        tr.last_dts_out = dts_out
        pts_out = dts_out + cto_us

        if duration is not None and duration > 0:
            duration_us = max(1, tr.to_us(duration))
        else:
            duration_us = tr.dur_est_us

        if tr.reference or not any(t.reference for t in self._tracks.values()):
            self._slew(dts_out, receipt_us)
        wall = self._anchor + pts_out + round(self._corr)
        return MappedTime(pts_out, dts_out, duration_us, wall)

    # -- internals -------------------------------------------------------------------

    def _initial_offset(self, tr: _Track, raw_us: int, receipt_media: int) -> int:
        """Offset for a stream's first packet: the shared origin when the stream's clock
        agrees with it, the receipt clock when it is wildly off (e.g. RTSP audio before
        the first RTCP sender report)."""
        if self._origin_us is None:
            self._origin_us = raw_us
            return -raw_us
        candidate = raw_us - self._origin_us
        if candidate < -self._max_back or candidate > max(receipt_media, 0) + self._max_jump:
            self.stats.breaks += 1
            return max(receipt_media, 0) - raw_us
        return -self._origin_us

    def _unwrap(self, tr: _Track, raw: int) -> int:
        prev = tr.prev_raw
        if prev is None:
            tr.prev_raw = raw
            return raw + tr.wrap_offset
        d = raw - prev
        max_jump_ticks = tr.ticks_for_us(self._max_jump)
        for m in _WRAPS:
            if not (0 <= prev < m and 0 <= raw < m):
                continue
            if d < -(m // 2) and d + m <= max_jump_ticks:
                tr.wrap_offset += m
                self.stats.wraps += 1
                break
            if d > m // 2 and tr.wrap_offset >= m and m - d <= max_jump_ticks:
                # a late packet from before the wrap: belongs to the previous lap
                return raw + tr.wrap_offset - m
        tr.prev_raw = raw
        return raw + tr.wrap_offset

    def _slew(self, dts_out: int, receipt_us: int) -> None:
        assert self._anchor is not None
        if self._last_slew_dts is None:
            self._last_slew_dts = dts_out
            return
        elapsed = dts_out - self._last_slew_dts
        self._last_slew_dts = dts_out
        if elapsed <= 0 or self._ppm == 0:
            return
        err = receipt_us - (self._anchor + dts_out + self._corr)
        step = self._ppm * elapsed / US
        self._corr += max(-step, min(step, err))
