"""Event store: upserts, snapshots, holds, search with keyset pagination, persistence,
crash recovery of open events, motion activity and purge."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from sqlalchemy import select

from vigil.analytics.geometry import Box
from vigil.analytics.pipeline import AnalyticsEvent
from vigil.events.store import MAX_BRANCHES, EventStore, decode_cursor, encode_cursor
from vigil.index.db import Database
from vigil.index.models import Hold
from vigil.index.repository import Index, now_us

from .conftest import T0, FakeEvent

US = 1_000_000
JPEG = b"\xff\xd8\xff\xe0fake-jpeg\xff\xd9"


def make_store(index: Index) -> EventStore:
    return EventStore(index, pre_roll=5, post_roll=10, retention=30 * 86400, open_hold=600)


def holds(index: Index) -> list[Hold]:
    with index.db.session() as s:
        return list(s.scalars(select(Hold).order_by(Hold.id)))


def test_start_update_end_round_trip(index: Index) -> None:
    store = make_store(index)
    start = FakeEvent(
        "start",
        "cam1",
        "cam1-7-1000",
        track_id=7,
        zones=("yard",),
        current_zones=("yard",),
        snapshot_jpeg=JPEG,
        snapshot_time=T0 + 0.5,
        snapshot_box=(0.1, 0.1, 0.2, 0.2),
    )
    ch = store.apply(start)
    assert ch is not None and ch.type == "new" and ch.before is None
    rec = ch.after
    assert rec.start_us == int(T0 * US) and rec.end_us is None and rec.ongoing
    assert rec.zones == ("yard",) and rec.snapshot_box == (0.1, 0.1, 0.2, 0.2)
    snap = store.snapshot_path(rec)
    assert snap == index.root / "cam1" / "events" / "2025" / "10" / "09" / "cam1-7-1000.jpg"
    assert snap.read_bytes() == JPEG
    assert [p.name for p in snap.parent.iterdir()] == ["cam1-7-1000.jpg"]  # no temp left

    upd = replace(
        start,
        kind="update",
        max_score=0.95,
        zones=("yard", "door"),
        lines_crossed=(("gate", "a_to_b"),),
        snapshot_jpeg=JPEG + b"2",
        snapshot_time=T0 + 2,
    )
    ch = store.apply(upd)
    assert ch is not None and ch.type == "update"
    assert ch.before is not None and ch.before.max_score == pytest.approx(0.8)
    assert ch.after.max_score == pytest.approx(0.95)
    assert ch.after.zones == ("yard", "door")
    assert ch.after.lines == (("gate", "a_to_b"),)
    assert snap.read_bytes() == JPEG + b"2"

    end = replace(upd, kind="end", end_time=T0 + 12.25, end_reason="lost", max_score=0.5)
    ch = store.apply(end)
    assert ch is not None and ch.type == "end"
    assert ch.after.end_us == int((T0 + 12.25) * US) and ch.after.end_reason == "lost"
    assert ch.after.max_score == pytest.approx(0.95)  # the maximum is kept
    js = ch.to_json()
    assert js["type"] == "end" and js["after"]["end_time"] == pytest.approx(T0 + 12.25)
    assert js["after"]["box"] == [0.1, 0.2, 0.3, 0.4] and js["after"]["has_snapshot"]

    # duplicate / late messages about an ended event change nothing
    assert store.apply(end) is None
    assert store.apply(upd) is None
    got = store.get("cam1-7-1000")
    assert got == ch.after
    assert store.get("nope") is None


def test_real_analytics_event_is_accepted(index: Index) -> None:
    store = make_store(index)
    ev = AnalyticsEvent(
        kind="start",
        camera="cam1",
        event_id="cam1-3-5000",
        track_id=3,
        label="car",
        start_time=T0,
        end_time=None,
        max_score=0.7,
        box=Box(0.1, 0.1, 0.5, 0.5),
        zones=("drive",),
        current_zones=("drive",),
        lines_crossed=(("gate", "b_to_a"),),
        stationary=False,
    )
    ch = store.apply(ev)
    assert ch is not None and ch.after.label == "car" and ch.after.lines == (("gate", "b_to_a"),)


def test_missing_start_and_bad_ids(index: Index) -> None:
    store = make_store(index)
    # an update whose start was dropped creates the event (with its hold)
    ch = store.apply(FakeEvent("update", "cam1", "cam1-1-1"))
    assert ch is not None and ch.type == "new"
    # an end whose start and updates were dropped
    ch = store.apply(FakeEvent("end", "cam1", "cam1-2-1", end_time=T0 + 3))
    assert ch is not None and ch.type == "end" and ch.before is None
    assert len(holds(index)) == 2
    for bad in ("../x", "a/b", "", ".hidden", "x" * 200):
        with pytest.raises(ValueError):
            store.apply(FakeEvent("start", "cam1", bad))
    with pytest.raises(ValueError):
        store.apply(FakeEvent("start", "cam2", "cam1-1-1"))  # id of another camera


def test_hold_placed_and_extended(index: Index) -> None:
    store = make_store(index)
    start = float(int(time.time()) - 30)  # a live event: started half a minute ago
    t0 = round(start * US)
    store.apply(FakeEvent("start", "cam1", "e1", start_time=start))
    [h] = holds(index)
    assert h.kind == "event" and h.reference == "e1"
    # while ongoing: from the pre-roll to open_hold past the latest write
    assert h.start_us == t0 - 5 * US
    assert t0 + 30 * US + 600 * US <= h.end_us <= now_us() + 600 * US
    assert h.expires_us == h.end_us + 30 * 86400 * US
    cid = index.camera_id("cam1")
    assert index.held(cid, t0 + 100 * US, t0 + 160 * US, t0 + 200 * US)

    time.sleep(0.01)
    first_end = h.end_us
    store.apply(FakeEvent("update", "cam1", "e1", start_time=start, max_score=0.9))
    [h] = holds(index)  # updates do not add holds, they push the open hold forward
    assert h.end_us > first_end
    store.apply(FakeEvent("end", "cam1", "e1", start_time=start, end_time=start + 40))
    [h] = holds(index)
    assert (h.start_us, h.end_us) == (t0 - 5 * US, t0 + 50 * US)
    assert h.expires_us == t0 + 40 * US + 30 * 86400 * US
    assert index.held(cid, t0 - 4 * US, t0 - 3 * US, t0)  # pre-roll
    assert index.held(cid, t0 + 45 * US, t0 + 49 * US, t0)  # post-roll
    assert not index.held(cid, t0 + 51 * US, t0 + 60 * US, t0)
    after_expiry = t0 + 40 * US + 30 * 86400 * US + 1
    assert not index.held(cid, t0, t0 + 10 * US, after_expiry)


def _populate(store: EventStore, n: int, seed: int = 1) -> list[FakeEvent]:
    rng = random.Random(seed)
    out: list[FakeEvent] = []
    for i in range(n):
        cam = rng.choice(["cam1", "cam2", "cam3"])
        label = rng.choice(["person", "car", "dog"])
        zones = tuple(z for z in ("yard", "door", "street") if rng.random() < 0.3)
        # many events share a start time, so ties are broken by id
        start = T0 + rng.randrange(0, n // 2) * 10
        ev = FakeEvent(
            "end",
            cam,
            f"{cam}-{i:04d}",
            track_id=i,
            label=label,
            start_time=start,
            end_time=start + rng.randrange(1, 30),
            zones=zones,
        )
        store.apply(ev)
        out.append(ev)
    return out


def _key(ev: FakeEvent) -> tuple[int, str]:
    return (round(ev.start_time * US), ev.event_id)


def test_search_filters_and_pagination(index: Index) -> None:
    store = make_store(index)
    events = _populate(store, 300)

    def expect(pred: object) -> list[str]:
        sel = [e for e in events if pred(e)]  # type: ignore[operator]
        return [e.event_id for e in sorted(sel, key=_key, reverse=True)]

    def all_pages(limit: int, **kw: object) -> list[str]:
        ids: list[str] = []
        cursor = None
        while True:
            page = store.search(limit=limit, cursor=cursor, **kw)  # type: ignore[arg-type]
            assert len(page.items) <= limit
            ids += [r.id for r in page.items]
            if page.next_cursor is None:
                return ids
            cursor = page.next_cursor

    everything = all_pages(17)
    assert everything == expect(lambda e: True)
    assert len(everything) == len(set(everything)) == 300
    assert all_pages(300) == everything
    assert store.search(limit=300).next_cursor is None

    assert all_pages(25, camera="cam2") == expect(lambda e: e.camera == "cam2")
    assert all_pages(25, camera=["cam1", "cam3"]) == expect(lambda e: e.camera != "cam2")
    assert all_pages(25, label="dog") == expect(lambda e: e.label == "dog")
    assert all_pages(25, zone="door") == expect(lambda e: "door" in e.zones)
    assert all_pages(10, camera="cam1", label="car", zone=["yard", "street"]) == expect(
        lambda e: e.camera == "cam1" and e.label == "car" and ({"yard", "street"} & set(e.zones))
    )
    lo, hi = T0 + 300, T0 + 900
    assert all_pages(9, start_us=int(lo * US), end_us=int(hi * US)) == expect(
        lambda e: e.start_time < hi and e.end_time >= lo
    )
    assert store.search(camera="nope").items == []

    with pytest.raises(ValueError):
        store.search(cursor="garbage!")
    assert decode_cursor(encode_cursor(5, "a-b")) == (5, "a-b")


def test_pagination_is_stable_under_inserts(index: Index) -> None:
    store = make_store(index)
    events = _populate(store, 120, seed=7)
    expected = [e.event_id for e in sorted(events, key=_key, reverse=True)]
    ids: list[str] = []
    cursor = None
    n = 0
    while True:
        page = store.search(limit=11, cursor=cursor)
        ids += [r.id for r in page.items]
        # newer events arrive while the client pages: they must not shift later pages
        for _ in range(3):
            n += 1
            store.apply(FakeEvent("start", "cam1", f"late-{n:03d}", start_time=T0 + 10_000 + n))
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert ids == expected
    assert store.search(limit=1).items[0].id == f"late-{n:03d}"


def test_search_maps_camera_ids_to_names(index: Index) -> None:
    """Search reads events alone and names cameras from a lookup: every record must carry
    its own camera's name, also for cameras created after the lookup was first read."""
    # camera ids in an order unrelated to the names (and to any sort of them)
    for name in ("zulu", "alpha", "mike"):
        index.camera_id(name)
    store = make_store(index)
    for i, cam in enumerate(["mike", "zulu", "alpha", "zulu", "mike", "alpha"]):
        store.apply(FakeEvent("end", cam, f"{cam}-{i}", start_time=T0 + i, end_time=T0 + i))
    got = store.search().items
    assert [(r.id, r.camera) for r in got] == [(r.id, r.id.split("-")[0]) for r in got]
    assert len(got) == 6
    for cam in ("zulu", "alpha", "mike"):
        assert {r.id.split("-")[0] for r in store.search(camera=cam).items} == {cam}
        assert {r.camera for r in store.search(camera=cam).items} == {cam}

    # Another writer (a second process) adds a camera and events after this store cached
    # its lookup: the new id is named, and a filter by the new name finds it.
    other = make_store(Index(index.db, index.root))
    other.apply(FakeEvent("end", "bravo", "bravo-1", start_time=T0 + 50, end_time=T0 + 51))
    newest = store.search(limit=1).items[0]
    assert (newest.id, newest.camera) == ("bravo-1", "bravo")
    assert [r.id for r in store.search(camera="bravo").items] == ["bravo-1"]
    other.apply(FakeEvent("end", "yankee", "yankee-1", start_time=T0 + 60, end_time=T0 + 61))
    assert [r.id for r in store.search(camera=["yankee", "alpha"]).items] == [
        "yankee-1",
        "alpha-5",
        "alpha-2",
    ]
    assert store.search(camera=["nope", "nada"]).items == []


def _populate_many(store: EventStore, n: int, cameras: list[str], seed: int) -> list[FakeEvent]:
    rng = random.Random(seed)
    out: list[FakeEvent] = []
    for i in range(n):
        cam = rng.choice(cameras)
        start = T0 + rng.randrange(0, n // 3) * 10  # many ties on start, broken by id
        ev = FakeEvent(
            "end" if rng.random() < 0.8 else "start",
            cam,
            f"{cam}-{i:04d}",
            track_id=i,
            label=rng.choice(["person", "car", "dog"]),
            start_time=start,
            end_time=start + rng.randrange(1, 30),
            zones=tuple(z for z in ("yard", "door") if rng.random() < 0.4),
        )
        store.apply(ev)
        out.append(ev)
    return out


@pytest.mark.parametrize("limit", [1, 7, 50])
def test_search_pages_over_camera_and_label_lists(index: Index, limit: int) -> None:
    """Lists of cameras and labels (one SELECT per camera and label under a UNION ALL, or
    an IN filter past MAX_BRANCHES) page exactly like a brute-force filter and sort: no
    event twice, none missing, none of another camera, across every page boundary."""
    cameras = [f"c{k:02d}" for k in range(40)]
    store = make_store(index)
    events = _populate_many(store, 400, cameras, seed=3)
    assert MAX_BRANCHES < 36

    def ongoing(e: FakeEvent) -> bool:
        return e.kind == "start"

    def all_pages(**kw: object) -> list[str]:
        ids: list[str] = []
        cursor = None
        while True:
            page = store.search(limit=limit, cursor=cursor, **kw)  # type: ignore[arg-type]
            assert len(page.items) <= limit
            for r in page.items:
                assert r.id.split("-")[0] == r.camera
            ids += [r.id for r in page.items]
            if page.next_cursor is None:
                return ids
            cursor = page.next_cursor

    def expect(cams: list[str] | None, labels: list[str] | None, **kw: object) -> list[str]:
        sel = [
            e
            for e in events
            if (cams is None or e.camera in cams)
            and (labels is None or e.label in labels)
            and ("zone" not in kw or kw["zone"] in e.zones)
            and ("ongoing" not in kw or ongoing(e) == kw["ongoing"])
            and ("start_us" not in kw or ongoing(e) or e.end_time * US >= kw["start_us"])  # type: ignore[operator]
            and ("end_us" not in kw or e.start_time * US < kw["end_us"])  # type: ignore[operator]
        ]
        return [e.event_id for e in sorted(sel, key=_key, reverse=True)]

    lo, hi = int((T0 + 300) * US), int((T0 + 900) * US)
    cases: list[tuple[list[str] | None, list[str] | None, dict[str, object]]] = [
        (cameras[:2], None, {}),
        (cameras[5:8], None, {"start_us": lo, "end_us": hi}),
        (None, ["dog", "car"], {}),
        (cameras[:3], ["person", "dog"], {"zone": "door"}),  # 6 branches
        (cameras[:12], ["person", "car", "dog"], {}),  # 36 > MAX_BRANCHES: labels IN
        (cameras[:35], None, {"ongoing": False}),  # more than MAX_BRANCHES cameras
        (cameras[:35], ["car", "dog"], {"ongoing": True}),
        ([*cameras[:33], "not-a-camera"], None, {"start_us": lo}),
    ]
    for cams, labels, kw in cases:
        want = expect(cams, labels, **kw)
        assert want, (cams, labels, kw)  # the case is not vacuous
        assert len(set(want)) < len(events)
        got = all_pages(camera=cams, label=labels, **kw)
        assert got == want, (cams, labels, kw)


def test_persistence_across_restart(tmp_path: Path) -> None:
    root = tmp_path / "storage"
    root.mkdir()
    url = f"sqlite:///{root / 'vigil.db'}"
    db = Database(url)
    store = make_store(Index(db, root))
    store.apply(FakeEvent("start", "cam1", "e1", zones=("yard",), snapshot_jpeg=JPEG))
    store.apply(FakeEvent("end", "cam1", "e2", end_time=T0 + 5))
    before = (store.get("e1"), store.get("e2"))
    db.close()

    db2 = Database(url)
    try:
        store2 = make_store(Index(db2, root))
        assert (store2.get("e1"), store2.get("e2")) == before
        assert [r.id for r in store2.search(zone="yard").items] == ["e1"]
        rec = store2.get("e1")
        assert rec is not None
        path = store2.snapshot_path(rec)
        assert path is not None and path.read_bytes() == JPEG
        ch = store2.apply(FakeEvent("end", "cam1", "e1", end_time=T0 + 9))
        assert ch is not None and ch.before == before[0]
    finally:
        db2.close()


def test_close_dangling(tmp_path: Path) -> None:
    root = tmp_path / "storage"
    root.mkdir()
    url = f"sqlite:///{root / 'vigil.db'}"
    db = Database(url)
    store = make_store(Index(db, root))
    store.apply(FakeEvent("start", "cam1", "open1"))
    store.apply(FakeEvent("start", "cam2", "open2", label="car"))
    store.apply(FakeEvent("end", "cam1", "done", end_time=T0 + 3))
    done_before = store.get("done")
    open1 = store.get("open1")
    assert open1 is not None
    db.close()  # "crash": the two open events never got their end

    db2 = Database(url)
    try:
        index2 = Index(db2, root)
        store2 = make_store(index2)
        now = open1.updated_us + 3600 * US
        closed = store2.close_dangling(now)
        assert sorted(r.id for r in closed) == ["open1", "open2"]
        rec = store2.get("open1")
        assert rec is not None and rec.end_reason == "interrupted"
        # closed at the last write, not stretched over the outage
        assert rec.end_us == max(rec.start_us, min(now, open1.updated_us))
        assert store2.get("done") == done_before
        assert store2.search(ongoing=True).items == []
        assert store2.close_dangling(now) == []  # idempotent
        h = next(h for h in holds(index2) if h.reference == "open1")
        assert h.end_us == rec.end_us + 10 * US
    finally:
        db2.close()


@dataclass(frozen=True)
class Act:
    camera: str
    second: int
    peak: float
    mean: float
    motion_frames: int = 1


def test_activity_and_purge(index: Index) -> None:
    store = make_store(index)
    sec = int(T0)
    for i in range(5):
        store.add_activity(Act("cam1", sec + i, 0.1 * i, 0.05 * i))
    store.add_activity(Act("cam1", sec + 2, 0.9, 0.8))  # repeated second overwrites
    rows = store.activity("cam1", sec + 1, sec + 4)
    assert [(r.second, r.peak) for r in rows] == [
        (sec + 1, pytest.approx(0.1)),
        (sec + 2, pytest.approx(0.9)),
        (sec + 3, pytest.approx(0.3)),
    ]
    assert store.activity("cam2", sec, sec + 10) == []

    store.apply(FakeEvent("end", "cam1", "old", end_time=T0 + 1, snapshot_jpeg=JPEG))
    store.apply(FakeEvent("start", "cam1", "open", zones=("yard",)))
    old = store.get("old")
    assert old is not None
    snap = store.snapshot_path(old)
    assert snap is not None and snap.exists()
    later = int((T0 + 31 * 86400) * US)
    assert store.purge(later) == 1
    assert store.get("old") is None and not snap.exists()
    assert store.get("open") is not None  # ongoing events are never purged
    assert [h.reference for h in holds(index)] == ["open"]
    assert store.activity("cam1", sec, sec + 10) == []
