"""`vigil status`, `vigil cameras list` and `vigil cameras test` against a running recorder
and real simulated cameras; credentials never appear in what they print."""

from __future__ import annotations

import time
from pathlib import Path

from typer.testing import CliRunner

from tests.runtime.conftest import make_config, sim_camera
from vigil.cli.main import app
from vigil.runtime.nvr import NVR
from vigil.sim.controller import Simulator

runner = CliRunner()
SECRET = "n0t-For-Logs-42"


def test_status_and_cameras(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setenv("CAM_PW", SECRET)
    with Simulator() as sim:
        sim.start([sim_camera("door"), sim_camera("gate", username="admin", password=SECRET)])
        cfg = make_config(
            tmp_path,
            [
                {"name": "door", "main": {"url": sim.url("door")}},
                {
                    "name": "gate",
                    "main": {"url": sim.url("gate")},
                    "credentials": {"username": "admin", "password_env": "CAM_PW"},
                },
                {"name": "attic", "main": {"url": "rtsp://127.0.0.1:9/none"}},
            ],
        )
        cfg_path = str(tmp_path / "vigil.yaml")
        out = runner.invoke(app, ["status", "-c", cfg_path]).output
        assert "never run" in out

        nvr = NVR(cfg)
        nvr.open()
        nvr.start()
        try:
            time.sleep(6)
            out = runner.invoke(app, ["status", "-c", cfg_path]).output
        finally:
            nvr.stop()
        lines = {ln.split("│")[1].strip(): ln for ln in out.splitlines() if ln.count("│") > 5}
        assert "online" in lines["door"] and "recording" in lines["door"], out
        assert "online" in lines["gate"] and "320x240" in lines["gate"], out
        assert "offline" in lines["attic"] or "connecting" in lines["attic"], out
        assert SECRET not in out

        out = runner.invoke(app, ["status", "-c", cfg_path]).output
        assert "stopped" in out or "not running" in out

        res = runner.invoke(app, ["cameras", "list", "-c", cfg_path])
        assert res.exit_code == 0 and "gate" in res.output and SECRET not in res.output

        res = runner.invoke(app, ["cameras", "test", sim.url("door")])
        assert res.exit_code == 0, res.output
        assert "h264 320x240" in res.output and "fps" in res.output

        url_with_secret = sim.url("gate", credentials=True)
        assert SECRET in url_with_secret
        res = runner.invoke(app, ["cameras", "test", url_with_secret])
        assert res.exit_code == 0 and SECRET not in res.output, res.output

        res = runner.invoke(app, ["cameras", "test", "rtsp://127.0.0.1:9/none", "--timeout", "2"])
        assert res.exit_code == 1 and "refused" in res.output
        res = runner.invoke(app, ["cameras", "test", "file:///etc/passwd"])
        assert res.exit_code == 2 and "scheme" in res.output
