"""Retention: oldest first, holds respected, size caps, watermark, crash-safe deletion."""

from __future__ import annotations

from pathlib import Path

import pytest

from vigil.config.loader import parse_config
from vigil.config.model import VigilConfig
from vigil.index.db import Database
from vigil.index.repository import Index
from vigil.record.types import SegmentInfo
from vigil.storage.retention import Retention

MIN = 60_000_000
NOW = 1_800_000_000_000_000


def _config(root: Path, **retention: object) -> VigilConfig:
    return parse_config(
        {
            "storage": {"path": str(root), "min_free_bytes": 0, "min_free_percent": 0},
            "retention": retention or {"max_age": None},
            "cameras": [
                {"name": "a", "main": {"url": "rtsp://h/a"}},
                {"name": "b", "main": {"url": "rtsp://h/b"}},
            ],
        }
    )


def _add(index: Index, root: Path, cam: str, start: int, size: int = 1000) -> Path:
    p = root / cam / f"{start}.mp4"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"\0" * size)
    index.segment_closed(
        SegmentInfo(cam, p, start, start + MIN, MIN, size, 10, "h264", 640, 360, None, "0" * 64)
    )
    return p


@pytest.fixture
def index(tmp_path: Path) -> Index:
    return Index(Database(f"sqlite:///{tmp_path / 'vigil.db'}"), tmp_path)


def test_max_age_deletes_only_old_segments(index: Index, tmp_path: Path) -> None:
    files = [_add(index, tmp_path, "a", NOW - (10 - i) * MIN) for i in range(10)]
    rep = Retention(_config(tmp_path, max_age=300), index).run_once(NOW)
    # A segment goes once its end is older than max_age (5 min): the first five here.
    kept = [s.start_us for _, s in index.segments("a")]
    assert kept == [NOW - (10 - i) * MIN for i in range(5, 10)]
    assert rep.deleted == {"a": 5}
    assert all(not f.exists() for f in files[:5])
    assert all(f.exists() for f in files[5:])


def test_holds_are_never_deleted(index: Index, tmp_path: Path) -> None:
    files = [_add(index, tmp_path, "a", NOW - (10 - i) * MIN) for i in range(10)]
    index.add_hold("a", NOW - 10 * MIN + 1, NOW - 10 * MIN + 2, "event", "ev1")
    Retention(_config(tmp_path, max_age=60), index).run_once(NOW)
    assert files[0].exists(), "held segment was deleted"
    assert index.segments("a")[0][1].start_us == NOW - 10 * MIN


def test_expired_hold_no_longer_protects(index: Index, tmp_path: Path) -> None:
    f = _add(index, tmp_path, "a", NOW - 10 * MIN)
    index.add_hold("a", NOW - 10 * MIN, NOW - 9 * MIN, "event", expires_us=1)
    Retention(_config(tmp_path, max_age=60), index).run_once(NOW)
    assert not f.exists()


def test_max_bytes_keeps_newest(index: Index, tmp_path: Path) -> None:
    for i in range(10):
        _add(index, tmp_path, "a", NOW - (10 - i) * MIN, size=1000)
    _add(index, tmp_path, "b", NOW - 20 * MIN, size=1000)
    Retention(_config(tmp_path, max_bytes=3500), index).run_once(NOW)
    assert index.usage()["a"] == (3, 3000)
    assert [s.start_us for _, s in index.segments("a")] == [NOW - 3 * MIN, NOW - 2 * MIN, NOW - MIN]
    assert index.usage()["b"] == (1, 1000), "other cameras are not touched by a's cap"


def test_max_bytes_blocked_by_holds_reports(index: Index, tmp_path: Path) -> None:
    for i in range(3):
        _add(index, tmp_path, "a", NOW - (3 - i) * MIN)
    index.add_hold("a", 0, NOW, "legal")
    rep = Retention(_config(tmp_path, max_bytes=1000), index).run_once(NOW)
    assert rep.count() == 0 and any("held" in b for b in rep.blocked)


def test_watermark_deletes_globally_oldest(index: Index, tmp_path: Path) -> None:
    _add(index, tmp_path, "a", NOW - 5 * MIN)
    oldest = _add(index, tmp_path, "b", NOW - 9 * MIN)
    _add(index, tmp_path, "a", NOW - 4 * MIN)
    cfg = parse_config(
        {
            "storage": {"path": str(tmp_path), "min_free_bytes": 1200, "min_free_percent": 0},
            "cameras": [
                {"name": "a", "main": {"url": "rtsp://h/a"}},
                {"name": "b", "main": {"url": "rtsp://h/b"}},
            ],
        }
    )
    freed: list[tuple[int, str]] = []

    def usage(_: Path) -> tuple[int, int]:
        return 10_000, 500 + 1000 * len(freed)

    r = Retention(cfg, index, usage=usage)
    orig = r._unlink

    def tracking(pending: list[tuple[int, str]]) -> None:
        freed.extend(pending)
        orig(pending)

    r._unlink = tracking  # type: ignore[method-assign]
    rep = r.run_once(NOW)
    assert rep.count() == 1 and not oldest.exists()
    assert len(index.segments()) == 2


def test_watermark_with_everything_held_reports_full(index: Index, tmp_path: Path) -> None:
    _add(index, tmp_path, "a", NOW - 5 * MIN)
    index.add_hold("a", 0, NOW, "legal")
    cfg = parse_config({"storage": {"path": str(tmp_path), "min_free_bytes": 10**18}})
    rep = Retention(cfg, index, usage=lambda _: (10, 0)).run_once(NOW)
    assert rep.count() == 0 and "nothing unheld" in rep.blocked[0]


def test_interrupted_delete_is_finished(index: Index, tmp_path: Path) -> None:
    f = _add(index, tmp_path, "a", NOW - 10 * MIN)
    seg = index.segments("a")[0][1]
    index.begin_delete([seg.id], "max_age")  # crash here: row gone, file still present
    assert f.exists() and index.garbage()
    Retention(_config(tmp_path), index).finish_pending()
    assert not f.exists() and index.garbage() == []
