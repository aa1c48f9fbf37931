"""kill -9 the recorder at random moments; recovery must leave only playable segments,
an index that matches the files exactly, and lose at most about one fragment per kill."""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vigil.record import describe_segment, recover_storage, scan_partials, verify_playable
from vigil.record.paths import parse_segment_name
from vigil.record.types import SegmentInfo

from .feeder import JsonLinesCatalog

CHILD = Path(__file__).with_name("crash_child.py")
FRAGMENT_US = 1_000_000
# One fragment, plus one frame that may have been muxed but not yet logged by the child,
# plus scheduling slack.
LOSS_BOUND_US = FRAGMENT_US + 200_000
KILLS = 14
SPEED = 4.0  # 4x real time: a 14 s clip takes 3.5 s


def _fed_video(log: Path) -> list[int]:
    """wall_us of the video packets the child had fed when it died (complete lines only)."""
    out: list[int] = []
    text = log.read_bytes().decode(errors="replace")
    for line in text.split("\n")[:-1]:  # the last element is empty or a torn line
        parts = line.split()
        if len(parts) == 4 and parts[0] == "video":
            out.append(int(parts[2]))
    return out


def _segments_on_disk(root: Path) -> set[Path]:
    return {p for p in root.rglob("*.mp4") if p.is_file()}


@pytest.mark.slow
def test_kill9_loop(tmp_path: Path, clips: dict[str, Path]) -> None:
    seed = int(os.environ.get("VIGIL_CRASH_SEED", "20240601"))
    rng = random.Random(seed)
    root = tmp_path / "store"
    catalog = JsonLinesCatalog(tmp_path / "catalog.jsonl")
    clip = clips["h264_aac"]
    wall = 1_700_000_000_000_000
    orphans = 0
    report: list[str] = []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for kill in range(KILLS):
        session = kill + 1
        log = tmp_path / f"fed-{session}.log"
        proc = subprocess.Popen(
            [sys.executable, str(CHILD), str(clip), str(root), str(catalog.path), str(log),
             str(session), str(wall), str(SPEED)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        try:
            # Wait until feeding has started, then kill at a random moment within it
            # (including around segment cuts at 3, 6, 9 s of media).
            deadline = time.monotonic() + 30
            while not (log.exists() and log.stat().st_size > 0):
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                assert time.monotonic() < deadline, "child never started feeding"
                time.sleep(0.01)
            time.sleep(rng.uniform(0.05, 14 / SPEED))
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
            if proc.stderr is not None:
                proc.stderr.close()
        # Startup after the crash: recover part files, then reconcile renamed files the
        # catalog never heard of (killed between rename and report).
        recover_storage(root, catalog)
        segs, _gaps = catalog.read()
        known = {Path(s["path"]) for s in segs}
        for path in sorted(_segments_on_disk(root) - known):
            info = describe_segment(path, "cam")
            catalog.segment_closed(info)
            orphans += 1
        assert scan_partials(root) == []

        fed = _fed_video(log)
        mine = [s for s in catalog.read()[0]
                if parse_segment_name(Path(s["path"]).name)[1] == session]
        if not fed:
            report.append(f"kill {kill}: before the first packet")
            continue
        # The last fed video frame ends one frame after its wall time.
        fed_end = fed[-1] + 40_000
        recorded_end = max((s["end_us"] for s in mine), default=fed[0])
        lost = fed_end - recorded_end
        report.append(f"kill {kill}: fed {(fed_end - fed[0]) / 1e6:.2f}s, "
                      f"segments {len(mine)}, lost {lost / 1e6:.3f}s")
        assert lost <= LOSS_BOUND_US, "\n".join(report)
        # Recovered media is contiguous within the session: no hole between segments.
        mine.sort(key=lambda s: s["start_us"])
        for prev, nxt in itertools.pairwise(mine):
            assert nxt["start_us"] == prev["end_us"], "\n".join(report)
        wall += 20_000_000

    # The index matches the files exactly, and every file plays end to end.
    segs, _ = catalog.read()
    paths = [Path(s["path"]) for s in segs]
    assert len(paths) == len(set(paths)), "a segment was reported twice"
    assert set(paths) == _segments_on_disk(root)
    recovered = 0
    for s in segs:
        p = Path(s["path"])
        assert p.stat().st_size == s["bytes"]
        assert hashlib.sha256(p.read_bytes()).hexdigest() == s["sha256"]
        info: SegmentInfo = describe_segment(p, "cam")
        assert (info.packets, info.duration_us) == (s["packets"], s["duration_us"])
        ok, detail = verify_playable(p)
        assert ok, f"{p.name}: {detail}"
        recovered += bool(s["recovered"])
    print(f"seed {seed}: {len(segs)} segments, {recovered} recovered, {orphans} orphans")
    print("\n".join(report))
    # Kills before the first fragment or after the clip ended leave nothing to recover.
    assert recovered >= KILLS // 3, "most kills should have interrupted a segment"
