"""A camera whose substream (used for analytics) dies while the main stream lives: the main
stream keeps recording without a gap, the status says the substream is down, and analytics
resumes by itself when the substream returns."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

from tests.runtime.conftest import check_storage_consistent, make_config, sim_camera
from vigil.runtime.nvr import NVR
from vigil.sim.controller import Simulator


def _frames(nvr: NVR) -> int:
    sink = nvr.units["cam"].analytics
    assert sink is not None
    return sink.stats.frames_analysed


def test_substream_death_leaves_recording_alone(tmp_path: Path) -> None:
    with Simulator() as sim:
        sim.start([sim_camera("main"), sim_camera("sub", width=160, height=120)])
        cfg = make_config(
            tmp_path,
            [
                {
                    "name": "cam",
                    "main": {"url": sim.url("main")},
                    "sub": {"url": sim.url("sub")},
                    "analytics": {"enabled": True, "fps": 5, "detector": {"type": "none"}},
                }
            ],
        )
        nvr = NVR(cfg)
        nvr.open()
        nvr.start()
        try:
            unit = nvr.units["cam"]
            assert unit.sub_reader is not None
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and _frames(nvr) < 10:
                time.sleep(0.2)
            assert _frames(nvr) >= 10, "analytics never ran on the substream"

            sim.stop_camera("sub")
            time.sleep(4)
            frozen = _frames(nvr)
            time.sleep(3)
            assert _frames(nvr) - frozen <= 1, "analytics kept running without a substream"
            nvr.write_status()
            status = {r.camera: r for r in nvr.index.statuses()}  # type: ignore[union-attr]
            assert status["cam"].state == "online"
            assert "substream" in status["cam"].detail, status["cam"].detail
            assert unit.recorder is not None and unit.recorder.status().state == "recording"

            sim.start_camera("sub")
            deadline = time.monotonic() + 25
            while time.monotonic() < deadline and _frames(nvr) < frozen + 10:
                time.sleep(0.2)
            assert _frames(nvr) >= frozen + 10, "analytics did not resume"
        finally:
            nvr.stop()

    index = check_storage_consistent(cfg)
    segs = [s for _, s in index.segments("cam")]
    for a, b in itertools.pairwise(segs):
        assert b.start_us - a.end_us < 200_000, "main stream recording has a hole"
