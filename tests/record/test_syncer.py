"""The fragment syncer: one syncfs per interval for a file system, only after writes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from vigil.record import syncer as syncer_mod


@pytest.mark.skipif(syncer_mod._SYNCFS is None, reason="syncfs is Linux-only")
def test_syncs_once_per_interval_after_marks(tmp_path: Path) -> None:
    s = syncer_mod.FragmentSyncer(tmp_path, interval=0.2)
    time.sleep(0.5)
    assert s.syncs == 0  # nothing written, nothing synced
    for _ in range(20):  # many fragments of many cameras within one interval
        s.mark()
        time.sleep(0.005)
    deadline = time.monotonic() + 3
    while s.syncs == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)
    assert s.syncs == 1


@pytest.mark.skipif(syncer_mod._SYNCFS is None, reason="syncfs is Linux-only")
def test_one_syncer_per_file_system(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    first = syncer_mod.syncer_for(a, 1.0)
    assert first is not None
    assert syncer_mod.syncer_for(b, 0.5) is first
    assert first.interval <= 0.5
