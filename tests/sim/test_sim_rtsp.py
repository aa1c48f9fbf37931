"""The simulator over real RTSP, read with PyAV the way ingest reads cameras."""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from typing import Any

import av
import pytest

from vigil.sim.controller import SimCamera, Simulator, SimulatorError, find_free_port
from vigil.sim.media import read_stamp

from .conftest import CLIP_SECONDS, SMALL, open_rtsp, read_packets, require_rtsp_server

FRAMES_PER_LOOP = round(SMALL["fps"] * CLIP_SECONDS)


def test_loops_with_increasing_pts_and_frames_in_order(sim: Simulator) -> None:
    """More than one loop of a 2 s clip: PTS keep rising and frames come in clip order."""
    with open_rtsp(sim.url("stamp")) as c:
        stream = c.streams.video[0]
        pts: list[int] = []
        stamps: list[int] = []
        for pkt in c.demux(stream):
            for frame in pkt.decode():
                stamp = read_stamp(frame.to_ndarray(format="gray"))
                assert stamp is not None
                stamps.append(stamp)
            if pkt.pts is not None:
                pts.append(pkt.pts)
            if pts and (pts[-1] - pts[0]) * stream.time_base > 1.6 * CLIP_SECONDS:
                break
    assert all(b > a for a, b in itertools.pairwise(pts)), "PTS must increase"
    step = 1 / SMALL["fps"] / stream.time_base
    assert all(abs((b - a) - step) < 2 for a, b in itertools.pairwise(pts))
    assert all(b == (a + 1) % FRAMES_PER_LOOP for a, b in itertools.pairwise(stamps)), stamps
    assert stamps.count(0) >= 1 and len(stamps) > FRAMES_PER_LOOP  # crossed a loop point


def test_two_viewers_share_one_pipeline(sim: Simulator) -> None:
    with open_rtsp(sim.url("plain")) as a, open_rtsp(sim.url("plain")) as b:
        pa = read_packets(a, 10)
        pb = read_packets(b, 10)
        more_a = read_packets(a, 5)
        assert len(pa) == 10 and len(pb) == 10 and len(more_a) == 5
        for pkts in (pa + more_a, pb):
            assert all(y.pts > x.pts for x, y in itertools.pairwise(pkts))
        status = {c["name"]: c for c in sim.status()}
        assert status["plain"]["pipelines"] == 1
    # The pipeline lingers after the last viewer left, and the next viewer joins it...
    with open_rtsp(sim.url("plain")) as c:
        assert len(read_packets(c, 3)) == 3
        status = {c["name"]: c for c in sim.status()}
        assert status["plain"]["pipelines"] == 1
    # ...but once nobody has watched for ``linger`` seconds it is torn down.
    deadline = time.monotonic() + 6
    while status["plain"]["pipelines"] and time.monotonic() < deadline:
        time.sleep(0.2)
        status = {c["name"]: c for c in sim.status()}
    assert status["plain"]["pipelines"] == 0
    with open_rtsp(sim.url("plain")) as c:
        assert len(read_packets(c, 3)) == 3


def test_h265_camera(sim: Simulator) -> None:
    with open_rtsp(sim.url("hevc")) as c:
        stream = c.streams.video[0]
        assert stream.codec_context.name == "hevc"
        frames = [f for p in read_packets(c, 20) for f in p.decode()]
    assert frames and (frames[-1].width, frames[-1].height) == (320, 240)


def test_audio_camera_has_aac(sim: Simulator) -> None:
    with open_rtsp(sim.url("audio")) as c:
        assert c.streams.audio, "no audio stream"
        astream = c.streams.audio[0]
        assert astream.codec_context.name == "aac"
        assert astream.codec_context.sample_rate == 16000
        pkts = read_packets(c, 8, kind="audio")
    assert len(pkts) == 8
    assert all(y.pts > x.pts for x, y in itertools.pairwise(pkts))


def test_auth(sim: Simulator) -> None:
    with pytest.raises(av.error.HTTPUnauthorizedError):
        open_rtsp(sim.url("auth"))
    wrong = sim.url("auth").replace("rtsp://", "rtsp://admin:nope@")
    with pytest.raises(av.error.HTTPUnauthorizedError):
        open_rtsp(wrong)
    with open_rtsp(sim.url("auth", credentials=True)) as c:
        assert len(read_packets(c, 3)) == 3
    # Credentials of one camera do not open another's... and open cameras stay open.
    with open_rtsp(sim.url("plain")) as c:
        assert len(read_packets(c, 1)) == 1


def test_udp_only_refuses_tcp(sim: Simulator) -> None:
    with pytest.raises(av.FFmpegError):
        open_rtsp(sim.url("udp"), "tcp")
    with open_rtsp(sim.url("udp"), "udp") as c:
        assert len(read_packets(c, 5)) == 5


def test_tcp_only_refuses_udp(sim: Simulator) -> None:
    with pytest.raises(av.FFmpegError):
        open_rtsp(sim.url("tcp"), "udp")
    with open_rtsp(sim.url("tcp"), "tcp") as c:
        assert len(read_packets(c, 3)) == 3


def _drain(container: Any) -> float:
    """Read until the connection ends; return when that happened (monotonic)."""
    try:
        for _ in container.demux():
            pass
    except (av.FFmpegError, OSError):
        pass
    return time.monotonic()


def test_stop_disconnects_and_refuses_then_start(sim: Simulator) -> None:
    viewer = open_rtsp(sim.url("stopme"), timeout=6.0)
    try:
        assert len(read_packets(viewer, 3)) == 3
        ended: list[float] = []
        reader = threading.Thread(target=lambda: ended.append(_drain(viewer)))
        reader.start()
        stopped_at = time.monotonic()
        sim.stop_camera("stopme")
        reader.join(8.0)
        assert ended and ended[0] - stopped_at < 5.0, "viewer was not disconnected"
    finally:
        viewer.close()
    with pytest.raises(av.error.HTTPNotFoundError):
        open_rtsp(sim.url("stopme"))
    sim.start_camera("stopme")
    with open_rtsp(sim.url("stopme")) as c:
        assert len(read_packets(c, 3)) == 3


def test_stall_keeps_connection_but_sends_nothing(sim: Simulator) -> None:
    stall_seconds = 2.5
    arrivals: list[tuple[float, int]] = []
    with open_rtsp(sim.url("stallme"), timeout=15.0) as c:
        stream = c.streams.video[0]

        unstalled_at: list[float] = []

        def reader() -> None:
            after = 0
            for pkt in c.demux(stream):
                if pkt.pts is not None:
                    arrivals.append((time.monotonic(), pkt.pts))
                    after += bool(unstalled_at)
                if after >= 8 or (arrivals and time.monotonic() - arrivals[0][0] > 12):
                    return

        thread = threading.Thread(target=reader)
        thread.start()
        deadline = time.monotonic() + 5
        while len(arrivals) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        sim.stall("stallme")
        stalled_at = time.monotonic()
        time.sleep(stall_seconds)
        sim.unstall("stallme")
        unstalled_at.append(time.monotonic())
        thread.join(10)
        assert not thread.is_alive()
    during = [a for a in arrivals if stalled_at + 0.3 < a[0] < stalled_at + stall_seconds]
    after = [a for a in arrivals if a[0] > stalled_at + stall_seconds]
    assert not during, f"{len(during)} packets during the stall"
    assert len(after) >= 5, "no packets on the same connection after unstall"
    gap = max(b[0] - a[0] for a, b in itertools.pairwise(arrivals))
    assert gap >= stall_seconds - 0.5
    # The camera's clock kept running: the PTS jump covers the stall.
    pts_jump = max(b[1] - a[1] for a, b in itertools.pairwise(arrivals))
    assert pts_jump * stream.time_base >= stall_seconds - 0.5


def test_switch_resolution_in_band_and_for_new_viewers(sim: Simulator) -> None:
    with open_rtsp(sim.url("switchme"), timeout=10.0) as old:
        assert len(read_packets(old, 3)) == 3
        reply = sim.switch("switchme", SimCamera("x", **{**SMALL, "width": 480, "height": 272}))
        assert reply["in_place"] is True
        with open_rtsp(sim.url("switchme")) as new:
            frames = [f for p in read_packets(new, 20) for f in p.decode()]
            assert frames and (frames[-1].width, frames[-1].height) == (480, 272)
        # The viewer connected before the switch sees the new size on the same connection.
        sizes = {(f.width, f.height) for p in read_packets(old, 40) for f in p.decode()}
        assert (480, 272) in sizes
    assert sim.cameras["switchme"].width == 480


def test_switch_codec_reboots_camera(sim: Simulator) -> None:
    reply = sim.switch("switchme", SimCamera("x", **{**SMALL, "codec": "h265"}))
    assert reply["in_place"] is False
    with open_rtsp(sim.url("switchme")) as c:
        assert c.streams.video[0].codec_context.name == "hevc"
        assert len(read_packets(c, 3)) == 3


def test_unknown_camera_command_fails(sim: Simulator) -> None:
    with pytest.raises(KeyError):
        sim.stall("nope")


def test_close_reaps_server_and_explicit_port() -> None:
    require_rtsp_server()
    port = find_free_port()
    simulator = Simulator(port=port)
    simulator.start([SimCamera("one", **SMALL)])
    pid = simulator.pid
    assert pid is not None and simulator.port == port
    assert simulator.url("one") == f"rtsp://127.0.0.1:{port}/one"
    simulator.close()
    assert simulator.returncode == 0  # exited by itself when its stdin closed
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    simulator.close()  # idempotent
    with pytest.raises(SimulatorError):
        simulator.stall("one")


def test_sigterm_exits_cleanly() -> None:
    require_rtsp_server()
    with Simulator() as simulator:
        simulator.start([SimCamera("one", **SMALL)])
        assert simulator.pid is not None
        os.kill(simulator.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while simulator.running and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not simulator.running
    assert simulator.returncode == 0


def test_port_in_use_is_reported() -> None:
    require_rtsp_server()
    with Simulator() as first:
        first.start([SimCamera("one", **SMALL)])
        with Simulator(port=first.port) as second, pytest.raises(SimulatorError):
            second.start([SimCamera("two", **SMALL)])
