"""Small units: back-off, health snapshots, error classification, interrupt hook."""

from __future__ import annotations

import random
import threading
import time
from fractions import Fraction

import av
import pytest

from vigil.ingest import interrupt
from vigil.ingest.backoff import Backoff
from vigil.ingest.errors import IngestError, classify
from vigil.ingest.health import HealthTracker


def test_backoff_full_jitter_grows_and_resets() -> None:
    b = Backoff(1.0, 60.0, rng=random.Random(1))
    assert [b.cap(i) for i in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    delays = [b.next_delay() for _ in range(200)]
    for i, d in enumerate(delays):
        assert 0.1 <= d <= b.cap(i) + 1e-9
    tail = delays[10:]
    assert min(tail) < 15 and max(tail) > 45  # spread over [floor, cap]
    assert b.attempt == 200
    b.reset()
    assert b.attempt == 0 and b.next_delay() <= 1.0
    with pytest.raises(ValueError):
        Backoff(0, 1)


def test_health_rates_use_media_time_and_states_record_since() -> None:
    h = HealthTracker("cam", source="rtsp://u:pw@h/x")
    assert h.snapshot().state == "stopped"
    assert "pw" not in h.snapshot().source
    before = h.snapshot().since_wall_us
    time.sleep(0.002)
    h.set_state("online")
    assert h.snapshot().since_wall_us > before
    # a burst of 30 frames at 15 fps arriving at once: 15 fps, not "infinite"
    for i in range(30):
        h.packet(1000, True, 0, i * 66_667)
    snap = h.snapshot()
    assert snap.fps == pytest.approx(15.0, rel=0.01)
    assert snap.bitrate_bps == pytest.approx(30 * 1000 * 8 / 2.0, rel=0.01)
    assert snap.packets == 30 and snap.bytes == 30_000
    h.set_state("stalled")
    assert h.snapshot().fps == 0.0


def test_health_snapshot_is_thread_safe() -> None:
    h = HealthTracker("cam")
    h.set_state("online")
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            h.packet(10, True, i, i * 1000)
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        last = 0
        for _ in range(2000):
            s = h.snapshot()
            assert s.packets >= last and s.bytes == s.packets * 10
            last = s.packets
    finally:
        stop.set()
        t.join()


def test_classify_hides_the_url_ffmpeg_appends() -> None:
    url = "rtsp://admin:hunter22x@cam/stream"
    e = av.HTTPUnauthorizedError(-0x31303134, "Server returned 401 Unauthorized", url)
    assert "hunter22x" in str(e)  # PyAV does leak it...
    err = classify(e, source="rtsp://cam/stream", timeout=5, elapsed=0.1)
    assert err.kind == "unauthorized"
    assert "hunter22x" not in str(err) and "rtsp://cam/stream" in str(err)
    inv = classify(av.InvalidDataError(-1, "Invalid data", url), source="s", timeout=5, elapsed=5)
    assert inv.kind == "timeout"  # an interrupted RTSP handshake looks like invalid data
    inv2 = classify(av.InvalidDataError(-1, "Invalid data", url), source="s", timeout=5, elapsed=1)
    assert inv2.kind == "invalid_data"
    st = classify(
        av.ExitError(-1, "exit", url), source="s", timeout=5, elapsed=5, during_open=False
    )
    assert st.kind == "stalled"
    assert classify(ValueError("x"), source="s", timeout=1, elapsed=0, stopping=True).kind == (
        "stopped"
    )
    assert isinstance(err, IngestError) and err.source == "rtsp://cam/stream"


def test_interrupt_hook_is_installed_and_scoped_to_one_thread() -> None:
    assert interrupt.install()
    import av.container.core as core

    ident = threading.get_ident()
    real = core.time.monotonic()
    interrupt.interrupt(ident)
    try:
        a = core.time.monotonic()
        b = core.time.monotonic()
        assert a > real + 1e8 and b > a + 1e8  # strictly increasing by huge steps
        other: list[float] = []
        t = threading.Thread(target=lambda: other.append(core.time.monotonic()))
        t.start()
        t.join()
        assert other[0] < real + 10  # other threads unaffected
    finally:
        interrupt.clear(ident)
    assert core.time.monotonic() < real + 10


def test_settle_finds_the_anchor_behind_a_probe_backlog() -> None:
    """FFmpeg hands over ~1 s of packets at once after opening; the anchor correction is
    how far the first packet's receipt time was late, found once packets arrive live."""
    from vigil.ingest.reader import _Settle
    from vigil.ingest.types import CodecParams, TimedPacket

    vp = CodecParams(kind="video", codec="h264", time_base=Fraction(1, 90_000))
    t0 = 1_000_000_000
    st = _Settle(vp, None, t0)

    def pkt(dts: int) -> TimedPacket:
        return TimedPacket("video", b"x", dts, dts, 66_666, 0, False)

    for i in range(15):  # backlog: 1 s of media, all received at t0 (+ a little)
        st.add(pkt(i * 66_666), t0 + i * 100, anchor=t0)
        assert not st.ready(t0 + i * 100)
    i = 15
    receipt = t0
    while not st.ready(receipt):  # live: one frame per 66.7 ms, 20 ms network delay
        receipt = t0 + (i - 15) * 66_666 + 20_000
        st.add(pkt(i * 66_666), receipt, anchor=t0)
        i += 1
    assert st.min_err == pytest.approx(-1_000_000 + 20_000, abs=2_000)
    assert receipt - t0 < 400_000  # decided about HOLD_US after the backlog drained


def test_clock_reanchor_moves_wall_time_only() -> None:
    from vigil.ingest.clock import SessionClock

    c = SessionClock()
    c.add_stream(0, Fraction(1, 90_000), 33_333, reference=True)
    m = c.map(0, 0, 0, 3000, 5_000_000)
    assert m.wall_us == 5_000_000
    c.reanchor(4_000_000)
    m2 = c.map(0, 3000, 3000, 3000, 5_033_333)
    assert m2.dts_us == 33_333 and m2.wall_us == 4_033_333
    assert c.wall_at(0) == 4_000_000
