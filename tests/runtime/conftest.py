"""Fixtures for end-to-end runs of the recorder against simulated RTSP cameras."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from vigil.config.loader import parse_config
from vigil.config.model import VigilConfig
from vigil.index.db import Database
from vigil.index.repository import Index
from vigil.record.verify import verify_playable
from vigil.sim.controller import SimCamera, Simulator

SMALL: dict[str, Any] = {
    "source": "testsrc",
    "width": 320,
    "height": 240,
    "fps": 15.0,
    "bitrate_kbps": 300,
    "duration": 4.0,
}


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    with Simulator() as sim:
        yield sim


def make_config(root: Path, cameras: list[dict[str, Any]], **extra: Any) -> VigilConfig:
    data: dict[str, Any] = {
        "storage": {"path": str(root / "store"), "min_free_bytes": 0, "min_free_percent": 0},
        "recording": {"segment_seconds": 3, "fragment_seconds": 1},
        "ingest": {"stall_timeout": 3, "open_timeout": 3, "backoff_initial": 0.3, "backoff_max": 2},
        "logging": {"level": "INFO"},
        "cameras": cameras,
        **extra,
    }
    (root / "vigil.yaml").write_text(yaml.safe_dump(data))
    return parse_config(data, str(root / "vigil.yaml"))


def sim_camera(name: str, **kw: Any) -> SimCamera:
    return SimCamera(name=name, **{**SMALL, **kw})


def check_storage_consistent(cfg: VigilConfig) -> Index:
    """Every indexed segment exists, hashes right and plays end to end; every file on disk
    is indexed; no partial file is left behind."""
    root = cfg.storage.path
    index = Index(Database(cfg.database_url()), root)
    rows = {seg.path: seg for _, seg in index.segments()}
    files = {p.relative_to(root).as_posix() for p in root.rglob("*.mp4")}
    assert not list(root.rglob("*.part")), "partial segments left after recovery"
    assert files == set(rows), f"index/files differ: {sorted(files ^ set(rows))}"
    for rel, seg in rows.items():
        data = (root / rel).read_bytes()
        assert len(data) == seg.bytes, rel
        assert hashlib.sha256(data).hexdigest() == seg.sha256, rel
        ok, detail = verify_playable(root / rel)
        assert ok, f"{rel}: {detail}"
    return index
