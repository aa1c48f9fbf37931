"""The ``simulate`` command: option handling, YAML config, and a real run ended by Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vigil.sim.cli import app, cameras_from_config, cameras_from_options

from .conftest import open_rtsp, read_packets, require_rtsp_server

DEFAULTS = {"source": "testsrc", "width": 320, "height": 240, "duration": 2.0}


def test_cameras_from_options() -> None:
    cams = cameras_from_options(3, DEFAULTS)
    assert [c.name for c in cams] == ["cam1", "cam2", "cam3"]
    assert len({c.clip_spec() for c in cams}) == 1  # one clip, encoded once


def test_cameras_from_config(tmp_path: Path) -> None:
    cfg = tmp_path / "cams.yaml"
    cfg.write_text(
        "cameras:\n"
        "  - {name: door, size: 640x360, bitrate: 800}\n"
        "  - {codec: h265, audio: true, username: admin, password: pw, transport: udp_only}\n"
    )
    door, second = cameras_from_config(cfg, DEFAULTS)
    assert (door.name, door.width, door.height, door.bitrate_kbps) == ("door", 640, 360, 800)
    assert door.source == "testsrc"
    assert second.name == "cam2" and second.codec == "h265" and second.audio
    assert second.transport == "udp_only" and second.username == "admin"
    cfg.write_text("- {name: x, colour: red}\n")
    with pytest.raises(ValueError, match="colour"):
        cameras_from_config(cfg, DEFAULTS)


def test_prepare_only(tmp_path: Path) -> None:
    args = ["--cameras", "2", "--source", "testsrc", "--size", "160x120", "--duration", "1"]
    result = CliRunner().invoke(app, [*args, "--cache-dir", str(tmp_path), "--prepare-only"])
    assert result.exit_code == 0, result.output
    assert len(list(tmp_path.glob("*.mp4"))) == 1


def test_bad_size_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["--size", "huge", "--prepare-only"])
    assert result.exit_code == 2


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def test_runs_until_ctrl_c() -> None:
    require_rtsp_server()
    env = {**os.environ, "COLUMNS": "200"}
    args = ["--cameras", "2", "--source", "testsrc", "--size", "320x240", "--duration", "2"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "vigil.sim.cli", *args, "--bitrate", "400", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 60
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl-C" in line or time.monotonic() > deadline:
                break
        urls = re.findall(r"rtsp://\S+", "".join(lines))
        assert len(urls) == 2, "".join(lines)
        with open_rtsp(urls[1]) as c:
            assert len(read_packets(c, 3)) == 3
        servers = _children(proc.pid)
        assert len(servers) == 1
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
        assert not Path(f"/proc/{servers[0]}").exists(), "server outlived the CLI"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
