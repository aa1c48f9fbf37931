"""Small units: back-off, health snapshots, error classification, interrupt hook."""

from __future__ import annotations

import random
import threading
import time
from fractions import Fraction
from pathlib import Path

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


def test_read_switch_turns_pyav_read_timeout_off_and_interrupts_on_trigger(
    media: dict[str, Path],
) -> None:
    """ReadSwitch finds PyAV's timeout field by the sentinel, sets it to -1 (no GIL in
    FFmpeg's interrupt callback), and trigger() makes the next read fail with ExitError."""
    import ctypes

    path = media["big_ts"]
    with av.open(str(path), timeout=(5.0, interrupt.READ_SENTINEL)) as c:
        gen = c.demux(c.streams.video[0])
        next(gen)
        sw = interrupt.ReadSwitch(c)
        assert not sw.armed and sw.arm() and sw.armed
        assert sw._addr is not None
        assert ctypes.c_double.from_address(sw._addr).value == -1.0
        n_after = sum(1 for _ in gen)  # reading on works, to the end of the file
        assert n_after > 10
    with av.open(str(path), timeout=(5.0, interrupt.READ_SENTINEL)) as c:
        gen = c.demux(c.streams.video[0])
        next(gen)
        sw = interrupt.ReadSwitch(c)
        assert sw.arm()
        sw.trigger()
        read = 0
        with pytest.raises(av.ExitError):
            for _ in gen:  # what is already buffered may come out, then it stops
                read += 1
        assert read < n_after
        sw.release()
        sw.trigger()  # released: a no-op, not a write into freed memory
        assert not sw.armed


def test_read_switch_refuses_a_container_without_the_sentinel(media: dict[str, Path]) -> None:
    with av.open(str(media["big_ts"]), timeout=(5.0, 7.0)) as c:
        gen = c.demux(c.streams.video[0])
        next(gen)
        assert not interrupt.ReadSwitch(c).arm()


def test_stall_watchdog_calls_the_owner_once_its_read_waited_too_long() -> None:
    calls: list[tuple[str, float]] = []

    class Owner:
        def __init__(self, name: str) -> None:
            self.name = name
            self.last_read = time.monotonic()

        def read_stalled(self, sw: interrupt.ReadSwitch) -> None:
            calls.append((self.name, time.monotonic() - self.last_read))

    dog = interrupt.StallWatchdog(period=0.02)
    slow, fresh = Owner("slow"), Owner("fresh")
    sw_slow, sw_fresh = interrupt.ReadSwitch(None), interrupt.ReadSwitch(None)
    dog.watch(sw_slow, slow, 0.2)
    dog.watch(sw_fresh, fresh, 0.2)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        fresh.last_read = time.monotonic()  # keeps reading
        time.sleep(0.01)
    assert [c[0] for c in calls] == ["slow"]  # once, and only the stalled one
    assert 0.2 <= calls[0][1] <= 0.5
    dog.unwatch(sw_fresh)


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
