"""GET /api/events across several cameras: the store filters by camera id and names cameras
itself (no JOIN with ``cameras``), so these check that a user limited to some cameras never
gets an event of another one, on any page, and that every event carries its own camera."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import ADMIN, VIEWER, Api, Ev, _build, error_of
from tests.evidence.conftest import IndexedStorage, evidence_index  # noqa: F401
from vigil.api.accounts import Grant

CAROL = ("carol", "carol's long passphrase")  # a viewer with a '*' grant
T0 = 1_790_000_000.0
CONFIGURED = ("cam1", "cam2", "cam3")


@pytest.fixture
def api3(tmp_path: Path, evidence_index: IndexedStorage) -> Iterator[Api]:  # noqa: F811
    """Three configured cameras plus ``gone`` (in the index only, since removed from the
    configuration); alice may view recordings of cam1 and cam3 only."""
    # camera ids in an order unrelated to the names: gone=1, cam3=2, cam1=3, cam2=4
    for name in ("gone", "cam3", "cam1", "cam2"):
        evidence_index.index.camera_id(name)
    api = _build(tmp_path, evidence_index, {c: c.upper() for c in CONFIGURED})
    accounts = api.app.state.vigil.accounts
    accounts.create_user(*ADMIN, "admin")
    accounts.create_user(*VIEWER, "viewer")
    accounts.create_user(*CAROL, "viewer")
    rec = frozenset({"view_live", "view_recordings"})
    accounts.set_grants(VIEWER[0], [Grant("cam1", rec), Grant("cam3", rec)])
    accounts.set_grants(CAROL[0], [Grant("*", rec)])
    rng = random.Random(5)
    store = api.ctx.events
    assert store is not None
    for i in range(90):
        cam = rng.choice([*CONFIGURED, "gone"])
        start = T0 + rng.randrange(30) * 2  # ties on start, broken by id
        label = rng.choice(["person", "car"])
        zones = ("porch",) if rng.random() < 0.5 else ()
        store.apply(Ev("start", cam, f"{cam}-{i:03d}", label, start, zones=zones))
        if rng.random() < 0.7:
            store.apply(Ev("end", cam, f"{cam}-{i:03d}", label, start, end_time=start + 1))
    yield api
    api.close()


def _pages(client: object, query: str, limit: int) -> list[dict[str, object]]:
    events: list[dict[str, object]] = []
    cursor = None
    while True:
        url = f"/api/events?limit={limit}{query}" + (f"&cursor={cursor}" if cursor else "")
        r = client.get(url)  # type: ignore[attr-defined]
        assert r.status_code == 200, r.text
        doc = r.json()
        assert len(doc["events"]) <= limit
        events += doc["events"]
        cursor = doc["next_cursor"]
        if cursor is None:
            return events


def _check(events: list[dict[str, object]]) -> list[str]:
    """Event ids, after checking each event names its own camera and the order."""
    for e in events:
        assert str(e["id"]).split("-")[0] == e["camera"], e
    keys = [(e["start_us"], e["id"]) for e in events]
    assert keys == sorted(keys, reverse=True) and len(set(keys)) == len(keys)
    return [str(e["id"]) for e in events]


def test_user_limited_to_some_cameras_sees_only_theirs_on_every_page(api3: Api) -> None:
    admin, alice = api3.admin(), api3.viewer()
    everything = _check(api3.admin().get("/api/events?limit=1000").json()["events"])
    assert {i.split("-")[0] for i in everything} == {*CONFIGURED, "gone"}
    mine = [i for i in everything if i.split("-")[0] in ("cam1", "cam3")]
    assert len(mine) < len(everything)
    for limit in (1, 4, 50):
        assert _check(_pages(alice, "", limit)) == mine
        assert _check(_pages(admin, "", limit)) == everything
    assert _check(_pages(alice, "&camera=cam3", 4)) == [
        i for i in everything if i.startswith("cam3-")
    ]
    # label, zone and time filters keep the camera restriction
    by_id = {str(e["id"]): e for e in admin.get("/api/events?limit=1000").json()["events"]}
    got = _check(_pages(alice, "&label=car&zone=porch", 3))
    assert got == [
        i
        for i in mine
        if by_id[i]["label"] == "car" and "porch" in by_id[i]["zones"]  # type: ignore[operator]
    ]
    start_us = int((T0 + 20) * 1e6)
    end_us = int((T0 + 40) * 1e6)
    got = _check(_pages(alice, f"&start={start_us}&end={end_us}", 5))
    assert got and got == [
        i
        for i in mine
        if by_id[i]["start_us"] < end_us  # type: ignore[operator]
        and (by_id[i]["end_us"] is None or by_id[i]["end_us"] >= start_us)  # type: ignore[operator]
    ]


@pytest.mark.parametrize(
    "query", ["camera=cam2", "camera=cam1&camera=cam2", "camera=gone", "camera=cam3&camera=gone"]
)
def test_asking_for_a_camera_not_granted_is_refused(api3: Api, query: str) -> None:
    r = api3.viewer().get(f"/api/events?{query}")
    assert r.status_code in (403, 404)
    error_of(r)
    assert "events" not in r.json()


def test_all_cameras_grant_and_cameras_only_in_the_index(api3: Api) -> None:
    """A '*' grant needs no camera filter and sees what an admin sees, including a camera
    that is only in the index; an admin's explicit camera list is that camera list."""
    admin = api3.admin()
    carol = api3.login(CAROL)
    everything = _check(_pages(admin, "", 1000))
    assert _check(_pages(carol, "", 7)) == everything
    for cams in (["gone"], ["gone", "cam2"], ["cam1", "cam2", "cam3"]):
        query = "".join(f"&camera={c}" for c in cams)
        assert _check(_pages(admin, query, 6)) == [i for i in everything if i.split("-")[0] in cams]


def test_zone_hits_of_other_cameras_stay_hidden(api3: Api) -> None:
    """Zone searches walk ``event_zones`` by their own camera copy: a user limited to cam1
    and cam3 gets nothing for a zone only cam2 and ``gone`` entered, on any page, and
    with several zones only the zone hits of cam1 and cam3, each once."""
    store = api3.ctx.events
    assert store is not None
    for i, cam in enumerate(["cam2", "gone", "cam2", "gone", "cam1", "cam3"] * 4):
        zones = ("gate",) if cam in ("cam2", "gone") else ("yard", "porch")
        start = T0 + 100 + i
        store.apply(Ev("start", cam, f"{cam}-z{i:02d}", "person", start, zones=zones))
    admin, alice = api3.admin(), api3.viewer()
    everything = {str(e["id"]): e for e in admin.get("/api/events?limit=1000").json()["events"]}
    gate = _check(_pages(admin, "&zone=gate", 5))
    assert len(gate) == 16 and {i.split("-")[0] for i in gate} == {"cam2", "gone"}
    for limit in (1, 3, 50):
        assert _pages(alice, "&zone=gate", limit) == []
        assert _pages(alice, "&zone=gate&label=person", limit) == []
        got = _check(_pages(alice, "&zone=gate&zone=porch&zone=yard", limit))
        assert got == [
            i
            for i in _check(_pages(admin, "", 1000))
            if i.split("-")[0] in ("cam1", "cam3")
            and {"gate", "porch", "yard"} & set(everything[i]["zones"])  # type: ignore[arg-type]
        ]
        assert len(got) > 8
    r = alice.get("/api/events?zone=gate&camera=cam2")
    assert r.status_code in (403, 404)
