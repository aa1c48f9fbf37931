"""`kill -9` of the real `vigil run` process, again and again, in the middle of writing.

After every kill the next start recovers the partial segments. At the end every indexed
segment must exist, hash right and decode end to end, the index must match the files
exactly, and each kill may lose at most about one fragment of footage.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.runtime.conftest import check_storage_consistent, make_config, sim_camera
from vigil.index.db import Database
from vigil.index.repository import Index
from vigil.runtime.nvr import NVR
from vigil.sim.controller import Simulator

KILLS = 6
FRAGMENT_S = 1.0
# The last fragment may be lost, plus the frame being received and scheduling jitter on a
# loaded 2-core machine.
MAX_LOSS_S = FRAGMENT_S + 0.6


def _start(cfg_path: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "vigil.cli.main", "run", "-c", str(cfg_path)],
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
        start_new_session=True,
    )


def test_kill9_loop_loses_at_most_a_fragment(tmp_path: Path, simulator: Simulator) -> None:
    simulator.start([sim_camera("a"), sim_camera("b", audio=True)])
    cfg = make_config(
        tmp_path,
        [
            {"name": "a", "main": {"url": simulator.url("a")}},
            {"name": "b", "main": {"url": simulator.url("b")}},
        ],
    )
    root = cfg.storage.path
    rng = random.Random(1234)
    kills_us: list[int] = []
    log = tmp_path / "vigil.log"
    for _ in range(KILLS):
        stale = set(root.rglob("*.part"))  # left by the previous kill, recovered at start
        proc = _start(tmp_path / "vigil.yaml", log)
        try:
            # Wait until both cameras write new segments, then kill at a random moment.
            def fresh(stale: set[Path] = stale) -> int:
                return len(set(root.rglob("*.part")) - stale)

            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and fresh() < 2:
                time.sleep(0.1)
            assert fresh() >= 2, log.read_text()[-3000:]
            time.sleep(rng.uniform(1.5, 4.5))
        finally:
            kills_us.append(time.time_ns() // 1000)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    # The next start recovers what the last kill left behind.
    nvr = NVR(cfg)
    nvr.open()
    nvr.reconcile()
    nvr.stop()

    index: Index = check_storage_consistent(cfg)
    segs = index.segments()
    assert sum(1 for _, s in segs if s.recovered) >= KILLS, "each kill leaves a partial"
    for cam in ("a", "b"):
        ends = sorted(s.end_us for n, s in segs if n == cam)
        losses = []
        for k in kills_us:
            before = [e for e in ends if e <= k + 500_000]
            assert before, f"{cam}: nothing recorded before the kill at {k}"
            losses.append(round((k - before[-1]) / 1e6, 2))
        assert max(losses) <= MAX_LOSS_S, f"{cam}: seconds lost per kill: {losses}"
        # Every restart shows up as an explicit gap, not as unexplained missing time.
        restarts = [g for n, g in index.gaps(cam) if n == cam and g.reason == "restart"]
        assert len(restarts) >= KILLS - 1, f"{cam}: {len(restarts)} restart gaps"
    Database(cfg.database_url()).close()
