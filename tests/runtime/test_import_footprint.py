"""A recorder loads only the libraries its configuration needs.

Every library is tens of MB of resident memory in a process that runs for months: MQTT
(aiomqtt/paho), webhooks (httpx, which drags in click and rich), Alembic (with Mako and
Pygments) for an up-to-date database, NumPy without analytics, and PyAV/FFmpeg when every
camera is read by Vigil's own RTSP client and its init segments are written by hand. A
fresh interpreter runs what ``vigil run`` and ``bench/record.py --runner`` run (load the
configuration, open, start, record a few seconds, stop) and reports ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.runtime.conftest import check_storage_consistent, make_config, sim_camera
from vigil.sim.controller import Simulator

# Must not be loaded by a recorder without MQTT, webhooks, analytics or FFmpeg-read cameras.
LAZY = ("aiomqtt", "paho", "httpx", "click", "rich", "typer", "alembic", "mako", "numpy", "av")

_RUNNER = """
import json, sys, time
from vigil.config.loader import load_config
from vigil.runtime.nvr import NVR
from vigil.util.log import setup_logging

cfg = load_config(sys.argv[1])
setup_logging(cfg.logging.level, cfg.logging.format)
nvr = NVR(cfg)
nvr.open()
nvr.start()
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    time.sleep(0.2)
    closed = sum(u.recorder.status().segments_closed for u in nvr.units.values() if u.recorder)
    if closed >= len(nvr.units):
        break
time.sleep(2.5)  # one more status loop pass
nvr.stop()
print(json.dumps({
    "closed": closed,
    "modules": sorted({m.split(".")[0] for m in sys.modules}),
}))
"""


def _run(cfg_path: Path) -> dict[str, object]:
    res = subprocess.run(
        [sys.executable, "-c", _RUNNER, str(cfg_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    out: dict[str, object] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


def test_native_recorder_loads_no_optional_library(tmp_path: Path) -> None:
    with Simulator() as sim:
        sim.start([sim_camera("a", audio=True), sim_camera("b", codec="h265")])
        cfg = make_config(
            tmp_path,
            [
                {"name": "a", "main": {"url": sim.url("a")}},
                {"name": "b", "main": {"url": sim.url("b")}},
            ],
            recording={"segment_seconds": 2, "fragment_seconds": 1},
        )
        cfg_path = tmp_path / "vigil.yaml"
        first = _run(cfg_path)  # fresh database: migrated by a child process
        second = _run(cfg_path)  # up-to-date database: Alembic not needed at all
    for out in (first, second):
        assert isinstance(out["closed"], int) and out["closed"] >= 2, out
        modules = set(out["modules"])  # type: ignore[call-overload]
        assert "vigil" in modules and "sqlalchemy" in modules
        loaded = sorted(modules & set(LAZY))
        assert loaded == [], f"a native recorder loaded {loaded}"
    # What was recorded without PyAV (hand-written H.264+AAC and H.265 init segments,
    # fragments) decodes end to end with it.
    index = check_storage_consistent(cfg)
    assert {s.video_codec for _, s in index.segments()} == {"h264", "hevc"}
    assert {s.audio_codec for _, s in index.segments("a")} == {"aac"}
