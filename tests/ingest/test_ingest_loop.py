"""The shared ingest loop: connection generators resumed by socket readiness or by their
deadline, results and errors handed back to the waiting camera threads; and CameraReader
reading native RTSP cameras on it (against the real GStreamer RTSP server)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Generator, Iterator

import pytest

from tests.ingest.ingest_helpers import GstRtspServer, RecordingSink, have_gst_rtsp, wait_until
from vigil.config.model import IngestConfig, StreamSource
from vigil.ingest.loop import ReadLoop
from vigil.ingest.reader import CameraReader
from vigil.ingest.types import StreamSession, TimedPacket


@pytest.fixture
def loop() -> ReadLoop:
    return ReadLoop(batch=0.0, name="test-ingest-loop")


@pytest.fixture
def pairs() -> Iterator[list[tuple[socket.socket, socket.socket]]]:
    made: list[tuple[socket.socket, socket.socket]] = []
    yield made
    for a, b in made:
        a.close()
        b.close()


def pair(pairs: list[tuple[socket.socket, socket.socket]]) -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    a.setblocking(False)
    pairs.append((a, b))
    return a, b


def reader_steps(
    sock: socket.socket, want: int, log: list[str]
) -> Generator[float, None, bytes]:
    """Reads ``want`` bytes without blocking, yielding when the socket is empty."""
    got = b""
    while len(got) < want:
        try:
            chunk = sock.recv(want - len(got))
        except BlockingIOError:
            log.append(threading.current_thread().name)
            yield time.monotonic() + 60
            continue
        if not chunk:
            raise ConnectionError("closed")
        got += chunk
    return got


def test_many_connections_are_served_by_one_thread(
    loop: ReadLoop, pairs: list[tuple[socket.socket, socket.socket]]
) -> None:
    n = 20
    results: dict[int, bytes] = {}
    thread_names: list[str] = []
    socks = [pair(pairs) for _ in range(n)]

    def camera(i: int) -> None:
        a, _ = socks[i]
        results[i] = loop.run(reader_steps(a, 1000, thread_names), a.fileno())

    threads = [threading.Thread(target=camera, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    assert wait_until(lambda: loop.connections == n and len(thread_names) >= n, 5)
    for i, (_, b) in enumerate(socks):  # data in pieces, interleaved across cameras
        b.sendall(bytes([i]) * 400)
    for i, (_, b) in enumerate(socks):
        b.sendall(bytes([i]) * 600)
    for t in threads:
        t.join(5)
        assert not t.is_alive()
    assert results == {i: bytes([i]) * 1000 for i in range(n)}
    assert set(thread_names) == {"test-ingest-loop"}
    assert loop.connections == 0


def test_a_silent_connection_is_resumed_at_its_deadline(
    loop: ReadLoop, pairs: list[tuple[socket.socket, socket.socket]]
) -> None:
    a, _ = pair(pairs)
    resumed: list[float] = []

    def steps() -> Generator[float, None, str]:
        start = time.monotonic()
        yield start + 0.3  # nothing will arrive: only the deadline can resume us
        resumed.append(time.monotonic() - start)
        return "timer"

    assert loop.run(steps(), a.fileno()) == "timer"
    assert 0.28 <= resumed[0] < 1.0


def test_errors_reach_the_waiting_thread_and_the_loop_goes_on(
    loop: ReadLoop, pairs: list[tuple[socket.socket, socket.socket]]
) -> None:
    a, b = pair(pairs)

    def failing() -> Generator[float, None, None]:
        yield time.monotonic() + 60
        raise ValueError("boom")

    b.sendall(b"x")
    with pytest.raises(ValueError, match="boom"):
        loop.run(failing(), a.fileno())
    c, d = pair(pairs)
    d.sendall(b"y" * 10)
    assert loop.run(reader_steps(c, 10, []), c.fileno()) == b"y" * 10


def test_a_connection_closing_its_socket_frees_the_descriptor_for_reuse(
    loop: ReadLoop,
) -> None:
    """The generator closes its socket as it ends; the next connection may get the same
    descriptor number and must still be watched."""
    for _ in range(5):
        a, b = socket.socketpair()
        a.setblocking(False)
        b.sendall(b"z" * 5)

        def steps(sock: socket.socket = a) -> Generator[float, None, bytes]:
            try:
                return (yield from reader_steps(sock, 5, []))
            finally:
                sock.close()

        try:
            assert loop.run(steps(), a.fileno()) == b"z" * 5
        finally:
            b.close()


def test_run_from_the_loop_thread_is_refused(
    loop: ReadLoop, pairs: list[tuple[socket.socket, socket.socket]]
) -> None:
    a, _ = pair(pairs)

    def nested() -> Generator[float, None, str]:
        yield time.monotonic()
        try:
            loop.run(reader_steps(a, 1, []), a.fileno())
        except RuntimeError as exc:
            return str(exc)
        return "ran"

    assert "loop thread" in loop.run(nested(), a.fileno())


def test_a_slow_step_is_reported(
    loop: ReadLoop,
    pairs: list[tuple[socket.socket, socket.socket]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, _ = pair(pairs)

    def slow() -> Generator[float, None, None]:
        time.sleep(0.6)  # a sink stuck on a slow disk
        return
        yield 0.0

    with caplog.at_level("WARNING", logger="vigil.ingest.loop"):
        loop.run(slow(), a.fileno(), "cam9/main")
    assert loop.slowest_step >= 0.6
    assert any("cam9/main" in r.getMessage() and "0.6 s" in r.getMessage() for r in caplog.records)


# --------------------------------------------------------------------------- with readers

CFG = IngestConfig(stall_timeout=2.0, open_timeout=5.0, backoff_initial=0.2, backoff_max=0.5)


def gst_required() -> None:
    if not have_gst_rtsp():  # installed by scripts/setup.sh: its absence is a set-up bug
        pytest.fail("GStreamer RTSP server not available: run scripts/setup.sh", pytrace=False)


class ThreadSink(RecordingSink):
    """Also records which thread delivered the packets."""

    def __init__(self) -> None:
        super().__init__(keep_data=False)
        self.threads: set[str] = set()

    def packet(self, session: StreamSession, pkt: TimedPacket) -> None:
        self.threads.add(threading.current_thread().name)
        super().packet(session, pkt)


def start_readers(
    url: str, sinks: list[ThreadSink] | list[RecordingSink], cfg: IngestConfig, name: str
) -> list[CameraReader]:
    """One started reader of ``url`` per sink, named ``name.format(i)``."""
    readers = [
        CameraReader(name.format(i), StreamSource(url=url), [sink], config=cfg)
        for i, sink in enumerate(sinks)
    ]
    for r in readers:
        r.start()
    return readers


@pytest.mark.parametrize("shared", [True, False], ids=["shared-thread", "thread-per-camera"])
def test_native_cameras_are_read_on_the_shared_loop(shared: bool) -> None:
    gst_required()
    cfg = CFG.model_copy(update={"shared_read_thread": shared})
    loop = ReadLoop.shared()
    before = loop.connections
    with GstRtspServer() as srv:
        sinks = [ThreadSink() for _ in range(3)]
        readers = start_readers(srv.url, sinks, cfg, f"loop{{}}-{shared}")
        try:
            for s in sinks:
                assert s.wait_for(lambda s: len(s.packets) >= 20, 15)
            assert loop.connections == before + (3 if shared else 0)
            assert all(r.health().state == "online" for r in readers)
        finally:
            t = time.monotonic()
            for r in readers:
                assert r.stop()
            stop_s = time.monotonic() - t
    assert stop_s < 2.0
    assert wait_until(lambda: loop.connections == before, 2)
    for i, s in enumerate(sinks):
        expected = {"ingest-loop"} if shared else {f"ingest-loop{i}-{shared}-main"}
        assert s.threads == expected
        assert s.ended == [(s.sessions[0].session_id, "stopped")]


def test_stop_from_a_sink_on_the_loop_thread_does_not_deadlock() -> None:
    gst_required()
    with GstRtspServer() as srv:
        holder: list[CameraReader] = []
        answers: list[bool] = []

        class StoppingSink(RecordingSink):
            def packet(self, session: StreamSession, pkt: TimedPacket) -> None:
                super().packet(session, pkt)
                if len(self.packets) == 10:
                    t = time.monotonic()
                    answers.append(holder[0].stop(timeout=2.0))
                    answers.append(time.monotonic() - t < 0.5)

        sink = StoppingSink(keep_data=False)
        reader = CameraReader("loop-stopper", StreamSource(url=srv.url), [sink], config=CFG)
        holder.append(reader)
        reader.start()
        try:
            assert wait_until(lambda: not reader.running, 15)
        finally:
            reader.stop()
    assert answers == [False, True]  # not joined from the loop; the loop then ended it
    assert sink.ended and sink.ended[0][1] == "stopped"


def test_readers_stopped_together_end_in_one_pass_of_the_loop() -> None:
    """NVR.stop requests every reader's stop before joining any: with a long batch the
    loop then ends all connections in one pass instead of one per batch interval."""
    gst_required()
    cfg = CFG.model_copy(update={"read_batch_ms": 200})
    with GstRtspServer() as srv:
        sinks = [RecordingSink(keep_data=False) for _ in range(8)]
        readers = start_readers(srv.url, sinks, cfg, "together{}")
        try:
            for s in sinks:
                assert s.wait_for(lambda s: len(s.packets) >= 5, 15)
        finally:
            t = time.monotonic()
            for r in readers:
                r.request_stop()
            assert all(r.stop(timeout=5.0) for r in readers)
            took = time.monotonic() - t
    assert took < 1.0  # one at a time would take at least 8 x 0.2 s
    assert all(s.ended and s.ended[-1][1] == "stopped" for s in sinks)
