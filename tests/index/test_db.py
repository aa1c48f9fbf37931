"""The index: migrations match the models, segments/gaps/holds round-trip, delete ordering."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from tests.events.conftest import pg_url
from vigil.index.db import (
    HEAD_REVISION,
    Database,
    MigrationError,
    alembic_config,
    create_db_engine,
    current_revisions,
    schema_is_current,
    upgrade,
)
from vigil.index.models import Base
from vigil.index.repository import Index
from vigil.record.types import GapInfo, SegmentInfo


def _info(root: Path, cam: str, start: int, dur: int = 60_000_000, name: str = "") -> SegmentInfo:
    p = root / cam / (name or f"{start}.mp4")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"x")
    return SegmentInfo(
        camera=cam,
        path=p,
        start_us=start,
        end_us=start + dur,
        duration_us=dur,
        bytes=1000,
        packets=10,
        video_codec="h264",
        width=640,
        height=360,
        audio_codec=None,
        sha256="0" * 64,
    )


@pytest.fixture
def index(tmp_path: Path) -> Index:
    db = Database(f"sqlite:///{tmp_path / 'vigil.db'}")
    return Index(db, tmp_path)


def test_migrations_match_models(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    assert schema_is_current(db.engine)
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations differ: {diff}"


def test_migrate_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    Database(url).close()
    db = Database(url)
    assert schema_is_current(db.engine)


def test_head_revision_is_alembics_head() -> None:
    """HEAD_REVISION decides whether Alembic is needed at all: a new migration must
    update it, or existing databases would never be upgraded."""
    assert ScriptDirectory.from_config(alembic_config()).get_heads() == [HEAD_REVISION]


def test_current_database_opens_without_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    Database(url).close()
    code = (
        "import sys\n"
        "from vigil.index.db import Database\n"
        f"Database({url!r}, isolated=True).close()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako')))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_isolated_migration_in_child_process(backend: str, tmp_path: Path) -> None:
    """The recorder's way: a fresh database and an old one are upgraded by
    ``python -m vigil.index.migrate``; Alembic is never imported by the caller."""
    code = (
        "import sys\n"
        "from vigil.index.db import Database, schema_is_current\n"
        "db = Database(sys.argv[1], isolated=True)\n"
        "print(any(m.split('.')[0] == 'alembic' for m in sys.modules))\n"
        "print(schema_is_current(db.engine))\n"
    )
    with contextlib.ExitStack() as stack:
        if backend == "sqlite":
            urls = [f"sqlite:///{tmp_path / 'fresh.db'}", f"sqlite:///{tmp_path / 'old.db'}"]
        else:
            urls = [stack.enter_context(pg_url()), stack.enter_context(pg_url())]
        old = create_db_engine(urls[1])
        _upgrade_to(old, "0004")
        assert current_revisions(old) == {"0004"}
        old.dispose()
        for url in urls:
            res = subprocess.run(
                [sys.executable, "-c", code, url], capture_output=True, text=True, timeout=120
            )
            assert res.returncode == 0, res.stderr
            assert res.stdout.split() == ["False", "True"]


def test_isolated_migration_failure_is_reported(tmp_path: Path) -> None:
    """A database newer than this Vigil (unknown revision): Alembic's error comes back."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    Database(url).close()
    engine = create_db_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(MigrationError, match="9999"):
        Database(url, isolated=True)
    assert current_revisions(engine) == {"9999"}
    engine.dispose()


def test_in_memory_database_is_migrated_in_process() -> None:
    db = Database("sqlite://", isolated=True)
    assert current_revisions(db.engine) == {HEAD_REVISION}


def _upgrade_to(engine: Engine, revision: str) -> None:
    from alembic import command

    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def test_upgrade_runs_alembic_in_process(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'm.db'}")
    assert current_revisions(engine) == set()
    upgrade(engine)
    assert current_revisions(engine) == {HEAD_REVISION} and schema_is_current(engine)


def test_wal_mode(index: Index) -> None:
    with index.db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_segments_query_by_range(index: Index, tmp_path: Path) -> None:
    for i in range(5):
        index.segment_closed(_info(tmp_path, "cam1", i * 60_000_000))
    index.segment_closed(_info(tmp_path, "cam2", 0))
    assert len(index.segments("cam1")) == 5
    got = index.segments("cam1", 90_000_000, 150_000_000)
    assert [s.start_us for _, s in got] == [60_000_000, 120_000_000]
    assert index.usage() == {"cam1": (5, 5000), "cam2": (1, 1000)}


def test_segment_closed_is_idempotent(index: Index, tmp_path: Path) -> None:
    info = _info(tmp_path, "cam1", 0)
    index.segment_closed(info)
    index.segment_closed(info)
    assert len(index.segments("cam1")) == 1


def test_paths_outside_root_refused(index: Index, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        index.abspath("../etc/passwd")
    with pytest.raises(ValueError):
        index.relpath(Path("/etc/passwd"))


def test_gaps_recorded(index: Index) -> None:
    index.gap(GapInfo("cam1", 10, 20, "offline", "connection refused"))
    index.gap(GapInfo("cam1", 30, 30, "offline"))  # empty: ignored
    gaps = index.gaps("cam1")
    assert [(g.start_us, g.end_us, g.reason) for _, g in gaps] == [(10, 20, "offline")]


def test_holds_protect_from_deletion(index: Index, tmp_path: Path) -> None:
    for i in range(4):
        index.segment_closed(_info(tmp_path, "cam1", i * 60_000_000))
    index.add_hold("cam1", 70_000_000, 80_000_000, "export", "case-1")
    cands = index.deletion_candidates("cam1")
    assert [s.start_us for s in cands] == [0, 120_000_000, 180_000_000]


def test_delete_ordering_leaves_garbage_and_gap(index: Index, tmp_path: Path) -> None:
    index.segment_closed(_info(tmp_path, "cam1", 0))
    seg = index.segments("cam1")[0][1]
    pending = index.begin_delete([seg.id], "max_age")
    assert index.segments("cam1") == []
    assert index.garbage() == pending
    assert [g.reason for _, g in index.gaps("cam1")] == ["retention"]
    index.finish_delete([gid for gid, _ in pending])
    assert index.garbage() == []


def test_status_roundtrip(index: Index) -> None:
    index.write_status("cam1", state="online", recording="recording", fps=15.0, bitrate=4e6)
    index.write_status("cam1", state="offline", recording="idle", detail="connection refused")
    (row,) = index.statuses()
    assert (row.camera, row.state, row.detail) == ("cam1", "offline", "connection refused")


def test_retry_locked_retries_only_lock_errors() -> None:
    from sqlalchemy.exc import OperationalError

    from vigil.index.repository import retry_locked

    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        return "ok"

    assert retry_locked(flaky, first_delay=0.001) == "ok" and len(calls) == 3

    def broken() -> None:
        raise OperationalError("INSERT", {}, Exception("no such table: x"))

    with pytest.raises(OperationalError):
        retry_locked(broken, first_delay=0.001)


def test_concurrent_segment_inserts_all_land(index: Index, tmp_path: Path) -> None:
    """Many cameras closing segments in the same instant: every row is indexed."""
    import threading

    infos = [_info(tmp_path, f"cam{i}", 0) for i in range(40)]
    threads = [threading.Thread(target=index.segment_closed, args=(i,)) for i in infos]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(index.segments()) == 40


def test_optimize_gathers_planner_statistics(index: Index, tmp_path: Path) -> None:
    for i in range(20):
        index.segment_closed(_info(tmp_path, "cam1", i * 60_000_000))
    index.db.optimize()
    with index.db.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT tbl FROM sqlite_stat1").all()
    assert ("segments",) in rows
