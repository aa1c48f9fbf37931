"""Fixtures for the simulator tests: real RTSP servers on free ports, always reaped."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from functools import cache
from typing import Any

import av
import pytest

from vigil.sim.controller import SYSTEM_PYTHON, SimCamera, Simulator

#: Small, short clips: a 2 s loop lets a test see several loops in a few seconds.
SMALL: dict[str, Any] = {
    "source": "testsrc",
    "width": 320,
    "height": 240,
    "fps": 15.0,
    "bitrate_kbps": 400,
    "duration": 2.0,
}
CLIP_SECONDS = 2.0


@cache
def _rtsp_server_missing() -> str | None:
    """Why the RTSP server cannot run here, or ``None`` if it can."""
    if shutil.which("ffmpeg") is None:
        return "ffmpeg is not installed"
    probe = "import gi; gi.require_version('GstRtspServer', '1.0')"
    try:
        subprocess.run([SYSTEM_PYTHON, "-c", probe], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        return f"{SYSTEM_PYTHON} lacks python3-gi / gir1.2-gst-rtsp-server-1.0"
    return None


def require_rtsp_server() -> None:
    """Skip (with the reason) on machines without Debian's GStreamer RTSP server."""
    reason = _rtsp_server_missing()
    if reason:
        pytest.fail(f"{reason}: run scripts/setup.sh (make test installs it)", pytrace=False)


def open_rtsp(url: str, transport: str = "tcp", timeout: float = 8.0) -> Any:
    """Open an RTSP URL with PyAV, probing briefly (the SDP already has the parameters)."""
    return av.open(
        url,
        options={"rtsp_transport": transport, "analyzeduration": "300000"},
        timeout=timeout,
    )


def read_packets(
    container: Any, count: int, seconds: float = 8.0, kind: str = "video"
) -> list[Any]:
    """Up to ``count`` packets of one kind with a PTS, giving up after ``seconds``."""
    out = []
    deadline = time.monotonic() + seconds
    for pkt in container.demux():
        if pkt.stream.type == kind and pkt.pts is not None:
            out.append(pkt)
            if len(out) >= count:
                break
        if time.monotonic() > deadline:
            break
    return out


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    """One server with a camera per scenario, so fault tests do not disturb each other."""
    require_rtsp_server()
    cams = [
        SimCamera("stamp", stamp=True, **SMALL),
        SimCamera("plain", **SMALL),
        SimCamera("hevc", **{**SMALL, "codec": "h265"}),
        SimCamera("audio", audio=True, **SMALL),
        SimCamera("auth", username="admin", password="s3cret pw!", **SMALL),
        SimCamera("udp", transport="udp_only", **SMALL),
        SimCamera("tcp", transport="tcp_only", **SMALL),
        SimCamera("stopme", **SMALL),
        SimCamera("stallme", **SMALL),
        SimCamera("switchme", **SMALL),
    ]
    with Simulator(linger=2.0) as simulator:
        simulator.start(cams)
        yield simulator
