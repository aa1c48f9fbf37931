"""Zone search walks ``event_zones`` (whose rows carry their event's camera, label and
start): answers equal a brute-force filter on every page, on SQLite and PostgreSQL; the
zone rows' copies follow the event; migration 0005 fills them from ``events``; and the
SQLite plans walk a zone index, never ``events`` in time order, with planner statistics
and without."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, select, text

from vigil.events.store import MAX_BRANCHES, EventStore, decode_cursor, search_query
from vigil.events.types import EventRecord
from vigil.index.db import Database, alembic_config, create_db_engine, migrate
from vigil.index.events_models import EventRow, EventZone
from vigil.index.models import Base
from vigil.index.repository import Index

from .conftest import T0, FakeEvent, pg_url

US = 1_000_000
CAMERAS = [f"c{k:02d}" for k in range(40)]
GATE_CAMERAS = CAMERAS[:4]  # the only cameras that ever see the gate


def _populate(store: EventStore, n: int, seed: int) -> list[str]:
    """``n`` events over 40 cameras: zones door and yard anywhere, gate only on four
    cameras, a start, maybe updates that add zones, move the start earlier and change the
    label (as a tracker's class can), maybe an end. Returns the event ids."""
    rng = random.Random(seed)
    ids = []
    for i in range(n):
        cam = rng.choice(CAMERAS)
        eid = f"{cam}-{i:04d}"
        start = T0 + rng.randrange(0, n // 3) * 10  # many ties on start, broken by id
        zones = ["door", "yard"] + (["gate"] if cam in GATE_CAMERAS else [])
        label = rng.choice(["person", "car", "dog"])
        first = tuple(z for z in zones if rng.random() < 0.3)
        store.apply(FakeEvent("start", cam, eid, i, label, start, zones=first))
        if rng.random() < 0.4:  # seen earlier than first reported, and in more zones
            start -= rng.randrange(1, 400) / 10  # off the whole second: marks a move
            more = tuple(z for z in zones if rng.random() < 0.3)
            if rng.random() < 0.5:
                label = rng.choice(["person", "car", "dog"])
            store.apply(FakeEvent("update", cam, eid, i, label, start, zones=more))
        if rng.random() < 0.8:
            store.apply(FakeEvent("end", cam, eid, i, label, start, start + rng.randrange(1, 30)))
        ids.append(eid)
    return ids


def _key(r: EventRecord) -> tuple[int, str]:
    return (r.start_us, r.id)


def test_zone_search_equals_brute_force_on_every_page(any_index: Index) -> None:
    store = EventStore(any_index, retention=30 * 86400)
    ids = _populate(store, 500, seed=11)
    records = [store.get(i) for i in ids]
    everything = [r for r in records if r is not None]
    assert len(everything) == len(ids)
    with any_index.db.session() as s:  # zone rows carry their event's camera, label, start
        rows = s.execute(
            select(
                EventZone.event_id,
                EventZone.zone,
                EventZone.camera_id,
                EventZone.label,
                EventZone.start_us,
            )
        ).all()
        events = {r.id: r for r in s.scalars(select(EventRow))}
    assert sorted((r[0], r[1]) for r in rows) == sorted(
        (e.id, z) for e in everything for z in e.zones
    )
    for eid, _zone, cam, label, start in rows:
        assert (cam, label, start) == (
            events[eid].camera_id,
            events[eid].label,
            events[eid].start_us,
        )
    moved = [e for e in everything if e.start_us % US]  # starts moved by an update
    assert moved and any(e.zones for e in moved)

    def expect(
        zones: list[str],
        cams: list[str] | None = None,
        labels: list[str] | None = None,
        start_us: int | None = None,
        end_us: int | None = None,
        ongoing: bool | None = None,
    ) -> list[str]:
        sel = [
            r
            for r in everything
            if set(zones) & set(r.zones)
            and (cams is None or r.camera in cams)
            and (labels is None or r.label in labels)
            and (start_us is None or r.end_us is None or r.end_us >= start_us)
            and (end_us is None or r.start_us < end_us)
            and (ongoing is None or (r.end_us is None) == ongoing)
        ]
        return [r.id for r in sorted(sel, key=_key, reverse=True)]

    def all_pages(limit: int, **kw: Any) -> list[str]:
        got: list[str] = []
        cursor = None
        while True:
            page = store.search(limit=limit, cursor=cursor, **kw)
            assert len(page.items) <= limit
            for r in page.items:
                assert r.id.split("-")[0] == r.camera
            got += [r.id for r in page.items]
            if page.next_cursor is None:
                return got
            assert decode_cursor(page.next_cursor) == _key(page.items[-1])
            cursor = page.next_cursor

    lo, hi = int((T0 + 300) * US), int((T0 + 1200) * US)
    not_gate = [c for c in CAMERAS if c not in GATE_CAMERAS]
    many_zones = ["door", *(f"z{k}" for k in range(MAX_BRANCHES))]  # > MAX_BRANCHES zones
    cases: list[tuple[dict[str, Any], bool]] = [  # (filters, expected to find something)
        ({"zones": ["door"]}, True),
        ({"zones": ["gate"]}, True),
        ({"zones": ["never-entered"]}, False),
        ({"zones": ["gate"], "cams": not_gate[:1]}, False),  # a camera that never saw it
        ({"zones": ["gate"], "cams": not_gate[:3]}, False),
        ({"zones": ["gate"], "cams": not_gate}, False),  # > MAX_BRANCHES cameras
        ({"zones": ["gate"], "cams": [GATE_CAMERAS[1]]}, True),
        ({"zones": ["gate"], "cams": [not_gate[0], GATE_CAMERAS[2]]}, True),
        ({"zones": ["door"], "cams": CAMERAS[:35]}, True),
        ({"zones": ["door", "yard"]}, True),  # an event in both zones comes once
        ({"zones": ["door", "gate"], "cams": CAMERAS[2:5]}, True),  # 6 branches
        ({"zones": ["door", "yard"], "cams": CAMERAS[:20]}, True),  # 40: cameras IN
        ({"zones": many_zones, "cams": CAMERAS[:2]}, True),  # zones IN, DISTINCT
        ({"zones": ["yard"], "labels": ["dog"]}, True),
        ({"zones": ["door", "gate"], "labels": ["dog", "car"]}, True),  # 4 branches
        ({"zones": many_zones, "labels": ["dog", "car"]}, True),
        ({"zones": ["door"], "labels": ["dog", "car"], "cams": CAMERAS[:3]}, True),
        ({"zones": ["gate"], "labels": ["person"], "cams": GATE_CAMERAS[:3]}, True),
        ({"zones": ["yard"], "start_us": lo, "end_us": hi}, True),
        ({"zones": ["door", "yard"], "end_us": hi, "cams": CAMERAS[:3]}, True),
        ({"zones": ["gate"], "start_us": hi}, True),
        ({"zones": ["door"], "ongoing": True}, True),
        ({"zones": ["door"], "ongoing": False, "labels": ["car"]}, True),
        ({"zones": []}, False),  # no zone asked for: nothing entered it
    ]
    for limit in (1, 7, 50):
        for kw, found in cases:
            want = expect(**kw)
            assert bool(want) == found, kw  # the case is what it says
            assert len(want) < len(everything)
            got = all_pages(
                limit,
                zone=kw["zones"],
                camera=kw.get("cams"),
                label=kw.get("labels"),
                start_us=kw.get("start_us"),
                end_us=kw.get("end_us"),
                ongoing=kw.get("ongoing"),
            )
            assert got == want, (limit, kw)


def test_zone_rows_follow_an_earlier_start_and_a_new_label(index: Index) -> None:
    """An update that moves the start earlier or changes the label changes the zone rows'
    copies with it, so the event is found at its new place and by its new label."""
    store = EventStore(index)
    store.apply(FakeEvent("start", "cam", "a", zones=("door",), start_time=T0 + 10))
    store.apply(FakeEvent("start", "cam", "b", zones=("door",), start_time=T0 + 5))
    assert [r.id for r in store.search(zone="door").items] == ["a", "b"]
    store.apply(FakeEvent("update", "cam", "a", zones=("yard",), start_time=T0 + 1))
    assert [r.id for r in store.search(zone="door").items] == ["b", "a"]
    assert [r.id for r in store.search(zone=["yard", "door"]).items] == ["b", "a"]
    with index.db.session() as s:
        starts = set(s.scalars(select(EventZone.start_us).where(EventZone.event_id == "a")))
    assert starts == {int((T0 + 1) * US)}
    store.apply(FakeEvent("update", "cam", "a", label="dog", start_time=T0 + 1))
    assert [r.id for r in store.search(zone="yard", label="dog").items] == ["a"]
    assert [r.id for r in store.search(zone=["yard", "door"], label="person").items] == ["b"]
    assert store.search(zone="door", label="person", camera="cam").items[0].id == "b"


# -- migration 0005 ---------------------------------------------------------------------------
@contextlib.contextmanager
def _url(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
    else:
        with pg_url() as url:
            yield url


def _upgrade_to(engine: Engine, revision: str) -> None:
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def _downgrade_to(engine: Engine, revision: str) -> None:
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migration_0005_fills_zone_rows_from_events(backend: str, tmp_path: Path) -> None:
    with _url(backend, tmp_path) as url:
        engine = create_db_engine(url)
        try:
            _upgrade_to(engine, "0004")
            cols = {c["name"] for c in inspect(engine).get_columns("event_zones")}
            assert cols == {"event_id", "zone"}  # the old schema
            rng = random.Random(2)
            want: dict[tuple[str, str], tuple[int, str, int]] = {}
            with engine.begin() as conn:
                for k in range(3):
                    conn.execute(
                        text("INSERT INTO cameras (id, name, created_us) VALUES (:i, :n, 0)"),
                        {"i": k + 1, "n": f"cam{k}"},
                    )
                for i in range(200):
                    cam, start = rng.randrange(1, 4), rng.randrange(10**15, 2 * 10**15)
                    label = rng.choice(["person", "car"])
                    conn.execute(
                        text(
                            "INSERT INTO events (id, camera_id, label, track_id, start_us,"
                            " end_us, max_score, zones, lines, stationary, created_us,"
                            " updated_us) VALUES (:id, :cam, :l, 1, :s, NULL, 0.5,"
                            " '[]', '[]', :f, 0, 0)"
                        ),
                        {"id": f"e{i}", "cam": cam, "l": label, "s": start, "f": False},
                    )
                    for z in rng.sample(["door", "yard", "gate"], rng.randrange(0, 3)):
                        conn.execute(
                            text("INSERT INTO event_zones (event_id, zone) VALUES (:e, :z)"),
                            {"e": f"e{i}", "z": z},
                        )
                        want[(f"e{i}", z)] = (cam, label, start)
            assert len(want) > 100
            migrate(engine)
            with engine.connect() as conn:
                got = conn.execute(
                    text("SELECT event_id, zone, camera_id, label, start_us FROM event_zones")
                ).all()
                diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
            assert {(e, z): (c, lab, s) for e, z, c, lab, s in got} == want
            assert len(got) == len(want)
            assert diff == [], f"models and migrations differ on {backend}: {diff}"
            cols_info = {c["name"]: c for c in inspect(engine).get_columns("event_zones")}
            assert not cols_info["camera_id"]["nullable"]
            assert not cols_info["start_us"]["nullable"]
            assert not cols_info["label"]["nullable"]
            indexes = {ix["name"] for ix in inspect(engine).get_indexes("event_zones")}
            assert {
                "ix_event_zones_zone_camera_start",
                "ix_event_zones_zone_start",
                "ix_event_zones_zone_label_start",
            } <= indexes
            assert "ix_event_zones_zone" not in indexes
            # and back: the old schema again, the zone rows kept
            _downgrade_to(engine, "0004")
            cols = {c["name"] for c in inspect(engine).get_columns("event_zones")}
            assert cols == {"event_id", "zone"}
            with engine.connect() as conn:
                n = conn.execute(text("SELECT count(*) FROM event_zones")).scalar()
            assert n == len(want)
        finally:
            engine.dispose()


# -- plans ------------------------------------------------------------------------------------
def _fill(db: Database, n: int) -> None:
    """``n`` events over 8 cameras in bulk (zones: door everywhere, gate on two cameras)."""
    rng = random.Random(4)
    with db.engine.begin() as conn:
        for k in range(8):
            conn.execute(
                text("INSERT INTO cameras (id, name, created_us) VALUES (:i, :n, 0)"),
                {"i": k + 1, "n": f"cam{k}"},
            )
        ev, zs = [], []
        for i in range(n):
            cam, start = rng.randrange(1, 9), rng.randrange(10**15, 2 * 10**15)
            label = rng.choice(["person", "person", "car", "dog"])
            ev.append(
                {
                    "id": f"e{i}",
                    "camera_id": cam,
                    "label": label,
                    "track_id": i,
                    "start_us": start,
                    "end_us": start + 10,
                    "max_score": 0.5,
                    "zones": [],
                    "lines": [],
                    "stationary": False,
                    "created_us": 0,
                    "updated_us": 0,
                }
            )
            for z in ["door"] + (["gate"] if cam <= 2 else []):
                if rng.random() < 0.5:
                    zs.append(
                        {
                            "event_id": f"e{i}",
                            "zone": z,
                            "camera_id": cam,
                            "label": label,
                            "start_us": start,
                        }
                    )
        conn.execute(EventRow.__table__.insert(), ev)
        conn.execute(EventZone.__table__.insert(), zs)


def _sqlite_plan(engine: Engine, **kw: Any) -> list[str]:
    args = {
        "camera_ids": None,
        "labels": None,
        "start_us": None,
        "end_us": None,
        "after": None,
        "ongoing": None,
        "limit": 49,
        **kw,
    }
    stmt, params = search_query(**args)
    state = stmt.compile(engine).construct_expanded_state(params)
    order = tuple(state.parameters[k] for k in state.positiontup or ())
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + state.statement, order).all()
    return [str(r[3]) for r in rows]


def test_sqlite_zone_plans_walk_zone_rows(tmp_path: Path) -> None:
    """Each zone query shape reads a zone index of ``event_zones`` and reaches ``events``
    by primary key only: no scan of ``events``, no walk of its time or label index, with
    no planner statistics (a new index) and after ``ANALYZE`` (the recorder's hourly)."""
    db = Database(f"sqlite:///{tmp_path / 'p.db'}")
    try:
        _fill(db, 4000)
        shapes: dict[str, dict[str, Any]] = {
            "rare zone": {"zones": ["never"]},
            "common zone": {"zones": ["door"]},
            "zone+camera": {"zones": ["gate"], "camera_ids": [5]},
            "zone+3 cameras": {"zones": ["gate"], "camera_ids": [3, 4, 5]},
            "zone+40 cameras": {"zones": ["gate"], "camera_ids": list(range(1, 41))},
            "zone+label": {"zones": ["gate"], "labels": ["person"]},
            "zone+labels": {"zones": ["door"], "labels": ["person", "dog"]},
            "zone+camera+label": {"zones": ["door"], "labels": ["dog"], "camera_ids": [3]},
            "next page": {"zones": ["door"], "after": (1_500_000_000_000_000, "e9")},
            "zone+time": {"zones": ["door"], "start_us": 10**15, "end_us": 2 * 10**15},
            "2 zones": {"zones": ["door", "gate"], "camera_ids": [1, 2]},
        }
        for stats in (False, True):
            if stats:
                db.optimize()
            for name, kw in shapes.items():
                plan = _sqlite_plan(db.engine, **kw)
                text_ = " | ".join(plan)
                assert "ix_event_zones_zone" in text_, (stats, name, plan)
                if name == "zone+label":  # one walk of the label's rows, not a filter
                    assert "ix_event_zones_zone_label_start (zone=? AND label=?)" in text_
                for line in plan:
                    if "events" in line and "event_zones" not in line:
                        assert "(id=?)" in line, (stats, name, plan)  # by primary key only
                assert not any(line.startswith("SCAN events") for line in plan), (name, plan)
    finally:
        db.close()
