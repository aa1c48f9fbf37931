"""SessionClock: camera timestamps -> per-session media time and wall time, with synthetic
sequences covering the glitches real cameras produce."""

from __future__ import annotations

import itertools
import random
from fractions import Fraction

import pytest

from vigil.ingest.clock import MappedTime, SessionClock

TB90K = Fraction(1, 90_000)
FRAME = 3000  # 90 kHz ticks per frame at 30 fps
FRAME_US = 33_333
T0 = 1_700_000_000_000_000  # a wall time, µs


def video_clock(**kw: object) -> SessionClock:
    c = SessionClock(**kw)  # type: ignore[arg-type]
    c.add_stream(0, TB90K, FRAME_US, reference=True)
    return c


def feed(
    clock: SessionClock,
    raws: list[int | None],
    *,
    start_receipt: int = T0,
    step_us: int = FRAME_US,
    key: int = 0,
) -> list[MappedTime]:
    out = []
    for i, raw in enumerate(raws):
        out.append(clock.map(key, raw, raw, FRAME, start_receipt + i * step_us))
    return out


def assert_strictly_increasing(values: list[int]) -> None:
    assert all(b > a for a, b in itertools.pairwise(values)), values


def test_regular_stream_starts_at_zero_and_anchors_on_first_receipt() -> None:
    c = video_clock()
    base = 123_456_789
    out = feed(c, [base + i * FRAME for i in range(100)])
    assert out[0].dts_us == 0 and out[0].pts_us == 0
    assert out[0].wall_us == T0
    assert [m.dts_us for m in out[:4]] == [0, 33_333, 66_666, 100_000]
    assert all(m.duration_us == 33_333 for m in out)
    # wall time follows the receipt clock (which here runs 1/3 µs per frame slow)
    assert abs(out[-1].wall_us - (T0 + 99 * FRAME_US)) <= 1
    assert c.stats.breaks == c.stats.bumped == 0


def test_b_frames_keep_composition_offset() -> None:
    c = video_clock()
    # decode order I P B B with pts reordered; dts increasing
    seq = [(2 * FRAME, 0), (5 * FRAME, FRAME), (3 * FRAME, 2 * FRAME), (4 * FRAME, 3 * FRAME)]
    out = [c.map(0, p, d, FRAME, T0 + i * FRAME_US) for i, (p, d) in enumerate(seq)]
    assert [m.dts_us for m in out] == [0, 33_333, 66_666, 100_000]
    assert [m.pts_us - m.dts_us for m in out] == [66_666, 133_333, 33_333, 33_333]
    assert all(m.pts_us >= m.dts_us for m in out)
    assert out[0].wall_us == T0 + out[0].pts_us


@pytest.mark.parametrize("glitch", [0, -1, -FRAME, -10 * FRAME])
def test_duplicate_or_small_backward_dts_is_bumped(glitch: int) -> None:
    c = video_clock()
    raws = [i * FRAME for i in range(10)]
    raws[5] = raws[4] + glitch
    out = feed(c, raws)
    dts = [m.dts_us for m in out]
    assert_strictly_increasing(dts)
    assert dts[5] == dts[4] + 1  # bumped by exactly 1 µs
    assert c.stats.bumped >= 1
    assert c.stats.breaks == 0


def test_large_backward_jump_is_a_break() -> None:
    c = video_clock()
    raws = [10_000_000 + i * FRAME for i in range(30)] + [i * FRAME for i in range(30)]
    out = feed(c, raws)
    dts = [m.dts_us for m in out]
    assert_strictly_increasing(dts)
    assert c.stats.breaks == 1
    # continues one frame after the last packet (receipt runs in step with packets)
    assert dts[30] - dts[29] == pytest.approx(FRAME_US, abs=2)
    assert dts[-1] == pytest.approx(59 * FRAME_US, abs=60)


def test_forward_jump_without_real_gap_is_glued_to_receipt_clock() -> None:
    c = video_clock()
    hour = 3600 * 90_000
    raws = [i * FRAME for i in range(30)] + [hour + i * FRAME for i in range(30, 60)]
    out = feed(c, raws)
    dts = [m.dts_us for m in out]
    assert c.stats.breaks == 1
    assert_strictly_increasing(dts)
    assert dts[30] - dts[29] == pytest.approx(FRAME_US, abs=2)
    # wall stays on the receipt clock
    assert out[-1].wall_us == pytest.approx(T0 + 59 * FRAME_US, abs=100)


def test_forward_jump_with_real_outage_keeps_wall_time_true() -> None:
    """Packets stop for 20 s and timestamps jump by 20 s: the media timeline shows the gap
    and wall time stays equal to the receipt time (nothing glued)."""
    c = video_clock()
    out = [c.map(0, i * FRAME, i * FRAME, FRAME, T0 + i * FRAME_US) for i in range(30)]
    gap_ticks = 20 * 90_000
    gap_us = 20_000_000
    for i in range(30, 60):
        raw = i * FRAME + gap_ticks
        out.append(c.map(0, raw, raw, FRAME, T0 + i * FRAME_US + gap_us))
    assert c.stats.breaks == 1
    assert out[30].dts_us - out[29].dts_us == pytest.approx(gap_us + FRAME_US, abs=600)
    assert out[-1].wall_us == pytest.approx(T0 + 59 * FRAME_US + gap_us, abs=600)


def test_small_forward_gap_is_kept() -> None:
    c = video_clock()
    raws = [i * FRAME for i in range(10)] + [i * FRAME + 2 * 90_000 for i in range(10, 20)]
    out = feed(c, raws)
    assert c.stats.breaks == 0
    assert out[10].dts_us - out[9].dts_us == pytest.approx(2_033_333, abs=2)


@pytest.mark.parametrize("modulus_bits", [33, 32])
def test_wraparound_is_unwrapped(modulus_bits: int) -> None:
    m = 1 << modulus_bits
    c = video_clock()
    start = m - 45 * FRAME
    raws = [(start + i * FRAME) % m for i in range(90)]
    assert raws[50] < raws[40]  # the sequence really wraps
    out = feed(c, raws)
    dts = [x.dts_us for x in out]
    assert [b - a for a, b in itertools.pairwise(dts)] == pytest.approx([FRAME_US] * 89, abs=1)
    assert c.stats.wraps == 1
    assert c.stats.breaks == 0


def test_late_packet_from_before_the_wrap() -> None:
    m = 1 << 33
    c = SessionClock()
    c.add_stream(0, TB90K, FRAME_US, reference=True)
    c.add_stream(1, TB90K, 20_000)
    v = c.map(0, m - 9000, m - 9000, FRAME, T0)
    a1 = c.map(1, m - 4000, m - 4000, 1800, T0 + 40_000)
    a2 = c.map(1, 500, 500, 1800, T0 + 80_000)  # wrapped
    a3 = c.map(1, m - 1000, m - 1000, 1800, T0 + 90_000)  # late, from before the wrap
    a4 = c.map(1, 2300, 2300, 1800, T0 + 100_000)
    assert v.dts_us == 0
    assert a1.dts_us == pytest.approx(55_555, abs=1)
    assert a2.dts_us == pytest.approx((9000 + 500) * 1_000_000 // 90_000, abs=1)
    assert a3.dts_us == a2.dts_us + 1  # earlier than a2: bumped, not 26 hours later
    assert a4.dts_us == pytest.approx((9000 + 2300) * 1_000_000 // 90_000, abs=1)
    assert c.stats.breaks == 0


def test_missing_pts_uses_dts_and_missing_dts_uses_pts() -> None:
    c = video_clock()
    a = c.map(0, None, 9000, FRAME, T0)
    b = c.map(0, 12000, None, FRAME, T0 + FRAME_US)
    assert (a.pts_us, a.dts_us) == (0, 0)
    assert (b.pts_us, b.dts_us) == (33_333, 33_333)


def test_missing_timestamps_are_synthesized_from_frame_rate() -> None:
    c = video_clock()
    out = [c.map(0, i * FRAME, i * FRAME, None, T0 + i * FRAME_US) for i in range(5)]
    out += [c.map(0, None, None, None, T0 + i * FRAME_US) for i in range(5, 8)]
    out += [c.map(0, i * FRAME, i * FRAME, None, T0 + i * FRAME_US) for i in range(8, 12)]
    dts = [m.dts_us for m in out]
    assert_strictly_increasing(dts)
    assert c.stats.synthesized == 3
    assert dts[5] == pytest.approx(5 * FRAME_US, abs=3)
    assert dts[7] == pytest.approx(7 * FRAME_US, abs=5)
    assert dts[11] == pytest.approx(11 * FRAME_US, abs=5)
    assert all(m.duration_us == pytest.approx(FRAME_US, abs=2) for m in out)


def test_first_packet_without_timestamps() -> None:
    c = video_clock()
    a = c.map(0, None, None, None, T0)
    b = c.map(0, 343, 343, None, T0 + 4_000)
    c2 = c.map(0, 343 + FRAME, 343 + FRAME, None, T0 + 37_000)
    assert a.dts_us == 0
    assert b.dts_us > a.dts_us
    assert c2.dts_us > b.dts_us


def test_audio_shares_the_video_origin() -> None:
    c = SessionClock()
    c.add_stream(0, TB90K, FRAME_US, reference=True)
    c.add_stream(1, Fraction(1, 16_000), 64_000)
    v = c.map(0, 900_000, 900_000, FRAME, T0)  # 10 s
    a = c.map(1, 161_600, 161_600, 1024, T0 + 5_000)  # 10.1 s in the audio time base
    assert v.dts_us == 0
    assert a.dts_us == 100_000
    assert a.duration_us == 64_000
    assert a.wall_us == T0 + 100_000


def test_stream_far_from_origin_uses_receipt_clock() -> None:
    """RTSP before the first RTCP report: audio timestamps unrelated to video."""
    c = SessionClock()
    c.add_stream(0, TB90K, FRAME_US, reference=True)
    c.add_stream(1, Fraction(1, 8000), 128_000)
    c.map(0, 10**9, 10**9, FRAME, T0)
    a = c.map(1, 0, 0, 1024, T0 + 250_000)
    assert a.dts_us == pytest.approx(250_000, abs=1)
    assert c.stats.breaks == 1


def test_given_anchor_is_used() -> None:
    c = video_clock(anchor_wall_us=T0 - 5_000)
    m = c.map(0, 0, 0, FRAME, T0)
    assert m.dts_us == 0
    assert m.wall_us == T0 - 5_000


@pytest.mark.parametrize("ppm", [-1, 1001])
def test_slew_limit_is_validated(ppm: float) -> None:
    with pytest.raises(ValueError):
        SessionClock(max_slew_ppm=ppm)


@pytest.mark.parametrize("drift_ppm", [-300, 200, 450])
def test_slew_tracks_a_drifting_camera_clock(drift_ppm: int) -> None:
    """A camera clock off by less than the slew limit: wall time converges to the receipt
    clock and each step changes wall-vs-media by at most the slew limit."""
    c = video_clock(max_slew_ppm=500)
    prev: MappedTime | None = None
    n = 30 * 60 * 20  # 20 minutes at 30 fps
    worst_step = 0.0
    for i in range(n):
        media_us = i * FRAME_US
        receipt = T0 + round(media_us * (1 - drift_ppm / 1e6))
        m = c.map(0, i * FRAME, i * FRAME, FRAME, receipt)
        if prev is not None:
            d_media = m.pts_us - prev.pts_us
            worst_step = max(worst_step, abs((m.wall_us - prev.wall_us) - d_media) / d_media)
        prev = m
    assert prev is not None
    final_receipt = T0 + round((n - 1) * FRAME_US * (1 - drift_ppm / 1e6))
    assert abs(prev.wall_us - final_receipt) < 2_000
    assert worst_step <= 500e-6 + 1 / FRAME_US  # rounding of 1 µs


def test_jitter_does_not_shake_wall_time() -> None:
    rng = random.Random(7)
    c = video_clock()
    walls = []
    delays = [rng.randint(0, 80_000) for _ in range(3000)]
    for i in range(3000):
        receipt = T0 + i * FRAME_US + delays[i]
        walls.append(c.map(0, i * FRAME, i * FRAME, FRAME, receipt).wall_us)
    steps = [b - a for a, b in itertools.pairwise(walls)]
    assert all(abs(s - FRAME_US) <= 20 for s in steps)  # <= 500 ppm of a frame + rounding
    # the anchor carried the first packet's delay; the correction converges to the
    # typical (mean 40 ms) delay relative to it
    assert abs(c.correction_us - (40_000 - delays[0])) < 15_000


@pytest.mark.parametrize("seed", range(12))
def test_random_glitches_keep_invariants(seed: int) -> None:
    """Property test: whatever the camera sends, output dts is strictly increasing per
    stream, pts >= dts, the session starts at 0 and reference wall time increases."""
    rng = random.Random(seed)
    c = SessionClock()
    c.add_stream(0, TB90K, FRAME_US, reference=True)
    c.add_stream(1, Fraction(1, 16_000), 64_000)
    raw_v = rng.randrange(0, 1 << 33)
    raw_a = raw_v * 16_000 // 90_000
    receipt = T0
    last: dict[int, int] = {}
    walls: list[int] = []
    first = True
    for _ in range(2000):
        receipt += rng.randint(0, 60_000)
        if first or rng.random() < 0.7:  # sessions start with video
            r = rng.random()
            if r < 0.02:
                raw_v += rng.randint(-(10**9), 10**9)  # wild jump
            elif r < 0.05:
                raw_v -= rng.randint(0, 3 * FRAME)  # small backward glitch
            else:
                raw_v += FRAME
            raw_v %= 1 << 33
            dts: int | None = raw_v
            pts: int | None = raw_v + rng.choice([0, 0, FRAME, 2 * FRAME])
            if rng.random() < 0.03:
                pts = None
            if rng.random() < 0.03:
                dts = None
                if rng.random() < 0.5:
                    pts = None
            m = c.map(0, pts, dts, rng.choice([FRAME, None]), receipt)
            key = 0
            if first:
                assert m.dts_us == 0
                first = False
            walls.append(m.wall_us - (m.pts_us - m.dts_us))
        else:
            raw_a += 1024 if rng.random() > 0.02 else rng.randint(-(10**7), 10**7)
            raw_a %= 1 << 32
            m = c.map(1, raw_a, raw_a, 1024, receipt)
            key = 1
        assert m.pts_us >= m.dts_us
        assert m.duration_us > 0
        if key in last:
            assert m.dts_us > last[key]
        last[key] = m.dts_us
    assert_strictly_increasing(walls)
