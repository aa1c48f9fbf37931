"""Events (search, pagination, snapshot, clip), evidence exports (job, progress, download,
verify) and per-camera zones/lines/masks."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from sqlalchemy import select

from tests.api.conftest import Api, error_of
from vigil.index.auth_models import CameraSettings

# -- events -----------------------------------------------------------------------------------


def test_event_search_filters_and_cursor(api: Api) -> None:
    c = api.admin()
    everything = c.get("/api/events?limit=1000").json()["events"]
    assert len(everything) == 8
    starts = [e["start_us"] for e in everything]
    assert starts == sorted(starts, reverse=True)
    seen: list[str] = []
    cursor = None
    while True:
        url = "/api/events?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = c.get(url).json()
        seen += [e["id"] for e in page["events"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [e["id"] for e in everything]
    r = c.get("/api/events?camera=cam2&label=car")
    assert [e["id"] for e in r.json()["events"]] == ["cam2-ev1"]
    r = c.get("/api/events?zone=drive&camera=cam1")
    assert {e["id"] for e in r.json()["events"]} == {"cam1-ev3"}
    f = api.footage["cam1"]
    r = c.get(f"/api/events?camera=cam1&start={f.start_us}&end={f.start_us + 2_500_000}")
    assert {e["id"] for e in r.json()["events"]} == {"cam1-ev1", "cam1-ev2"}
    r = c.get("/api/events?ongoing=true&camera=cam1")
    assert len(r.json()["events"]) == 3


@pytest.mark.parametrize("cursor", ["garbage", "W10", "eyJ4Ijox", "!!!"])
def test_bad_cursor_400(api: Api, cursor: str) -> None:
    r = api.admin().get(f"/api/events?cursor={cursor}")
    assert r.status_code == 400 and error_of(r)["code"] == "invalid_cursor"


def test_event_get_snapshot_and_clip(api: Api) -> None:
    c = api.admin()
    eid = api.events["cam1"]
    ev = c.get(f"/api/events/{eid}").json()
    assert ev["camera"] == "cam1" and ev["has_snapshot"] is True
    assert ev["snapshot_url"] == f"/api/events/{eid}/snapshot.jpg"
    snap = c.get(ev["snapshot_url"])
    assert snap.status_code == 200 and snap.content[:2] == b"\xff\xd8"
    clip = c.get(ev["clip_url"])
    assert clip.status_code == 200 and clip.headers["content-type"] == "video/mp4"
    f = api.footage["cam1"]
    # event 1.0 s .. 3.0 s after the start, 5 s pre/post roll (clipped by the footage)
    assert int(clip.headers["x-vigil-start-us"]) == f.start_us
    part = c.get(ev["clip_url"], headers={"Range": "bytes=0-15"})
    assert part.status_code == 206
    no_snap = c.get("/api/events/cam1-ev2/snapshot.jpg")
    assert no_snap.status_code == 404


# -- exports ---------------------------------------------------------------------------------


def test_export_job_download_and_verify(api: Api) -> None:
    c = api.operator()
    f = api.footage["cam2"]
    r = c.post(
        "/api/exports",
        json={
            "camera": "cam2",
            "start": str(f.wall(5)),
            "end": str(f.wall(60)),
            "reason": "break-in <b>report</b>",
            "case_id": "CASE-7",
        },
    )
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["state"] in ("queued", "running", "done") and job["camera"] == "cam2"
    assert api.app.state.vigil.jobs.wait_idle(60)
    done = c.get(f"/api/exports/{job['id']}").json()
    assert done["state"] == "done" and done["progress"] == 1.0, done
    names = {x["name"] for x in done["files"]}
    assert {"manifest.json", "manifest.sig", "clip.mp4"} <= names
    eid = done["export_id"]
    assert c.get(f"/api/exports/{eid}").json()["id"] == job["id"]  # by export id too
    listed = c.get("/api/exports").json()
    assert [j["id"] for j in listed["jobs"]] == [job["id"]] and listed["exports"] == []

    z = c.get(f"/api/exports/{eid}/download")
    assert z.status_code == 200 and z.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(z.content)) as zf:
        members = {n.split("/", 1)[1]: zf.read(n) for n in zf.namelist()}
    assert set(members) == names
    manifest = json.loads(members["manifest.json"])
    assert manifest["case_id"] == "CASE-7" and manifest["reason"] == "break-in <b>report</b>"
    one = c.get(f"/api/exports/{eid}/files/manifest.json")
    assert one.status_code == 200 and one.content == members["manifest.json"]
    assert c.get(f"/api/exports/{eid}/files/nope.txt").status_code == 404
    assert c.get(f"/api/exports/{eid}/files/..%2Fkeys").status_code in (404, 422)

    v = c.post(f"/api/exports/{eid}/verify").json()
    assert v["ok"] is True and v["fingerprint"]
    # tamper with the clip on disk: verification names it
    path = api.tmp / "exports"
    clip = next(path.glob("*/clip.mp4"))
    data = bytearray(clip.read_bytes())
    data[-10] ^= 0xFF
    clip.write_bytes(bytes(data))
    v = c.post(f"/api/exports/{eid}/verify").json()
    assert v["ok"] is False and any(p["path"] == "clip.mp4" for p in v["problems"])
    actions = {r.action for r in api.app.state.vigil.audit.search(action="export.*")[0]}
    assert actions == {"export.request", "export.finish", "export.download", "export.verify"}


def test_export_failure_is_reported(api: Api) -> None:
    c = api.admin()
    f = api.footage["cam1"]
    r = c.post(
        "/api/exports",
        json={"camera": "cam1", "start": str(f.wall(90)), "end": str(f.wall(140)), "reason": "x"},
    )
    assert r.status_code == 202
    assert api.app.state.vigil.jobs.wait_idle(60)
    got = c.get(f"/api/exports/{r.json()['id']}").json()
    assert got["state"] == "failed" and "footage" in got["error"]
    assert c.get(f"/api/exports/{r.json()['id']}/download").status_code == 409


def test_export_validation(api: Api) -> None:
    c = api.admin()
    f = api.footage["cam1"]
    base = {"camera": "cam1", "start": str(f.start_us), "end": str(f.end_us), "reason": "x"}
    assert c.post("/api/exports", json={**base, "reason": ""}).status_code == 422
    assert c.post("/api/exports", json={**base, "reason": "   "}).status_code == 400
    assert c.post("/api/exports", json={**base, "end": "1"}).status_code == 400
    assert c.post("/api/exports", json={**base, "camera": "../x"}).status_code == 422
    assert c.post("/api/exports", json={**base, "camera": "nocam"}).status_code == 404


# -- settings --------------------------------------------------------------------------------


SQUARE = [[0.1, 0.1], [0.6, 0.1], [0.6, 0.6], [0.1, 0.6]]


def test_settings_round_trip_and_version(api: Api) -> None:
    c = api.operator()  # configure on cam2
    empty = c.get("/api/cameras/cam2/settings").json()
    assert empty["version"] == 0 and empty["zones"] == []
    body = {
        "zones": [{"name": "drive way", "polygon": SQUARE, "labels": ["car"], "min_dwell": 1.5}],
        "lines": [{"name": "gate", "points": [[0.0, 0.5], [1.0, 0.5]]}],
        "motion_masks": [[[0, 0], [0.2, 0], [0.2, 0.2]]],
        "privacy_masks": [SQUARE],
        "version": 0,
    }
    r = c.put("/api/cameras/cam2/settings", json=body)
    assert r.status_code == 200 and r.json()["version"] == 1
    assert r.json()["updated_by"] == "bob"
    got = c.get("/api/cameras/cam2/settings").json()
    assert got["zones"][0]["polygon"] == SQUARE and got["lines"][0]["name"] == "gate"
    stale = c.put("/api/cameras/cam2/settings", json=body)  # still says version 0
    assert stale.status_code == 409 and error_of(stale)["details"] == {"version": 1}
    with api.index.db.session() as s:
        row = s.scalar(select(CameraSettings).where(CameraSettings.camera == "cam2"))
        assert row is not None and row.settings["zones"][0]["name"] == "drive way"
    rec = api.app.state.vigil.audit.search(action="settings.update")[0][0]
    assert rec.camera == "cam2" and rec.detail["zones"] == ["drive way"]


@pytest.mark.parametrize(
    "body",
    [
        {"zones": [{"name": "bow", "polygon": [[0, 0], [1, 1], [1, 0], [0, 1]]}]},  # crossing
        {"zones": [{"name": "out", "polygon": [[0, 0], [1.5, 0], [1, 1]]}]},
        {"zones": [{"name": "two", "polygon": [[0, 0], [1, 1]]}]},
        {"zones": [{"name": "", "polygon": SQUARE}]},
        {"zones": [{"name": "a", "polygon": SQUARE}, {"name": "a", "polygon": SQUARE}]},
        {"lines": [{"name": "dot", "points": [[0.5, 0.5], [0.5, 0.5]]}]},
        {"motion_masks": [[[0, 0], [0, 0], [0, 0]]]},
        {"privacy_masks": [[[0, 0], [1, 0], [1, 1]] * 100]},
        {"zones": [{"name": "z", "polygon": SQUARE, "bogus": 1}]},
    ],
)
def test_settings_validation(api: Api, body: dict[str, object]) -> None:
    r = api.admin().put("/api/cameras/cam1/settings", json=body)
    assert r.status_code == 422, r.text
    assert error_of(r)["code"] == "validation_error"


def test_settings_nan_refused(api: Api) -> None:
    c = api.admin()
    raw = b'{"zones":[{"name":"n","polygon":[[NaN,0],[1,0],[1,1]]}]}'
    r = c.put(
        "/api/cameras/cam1/settings", content=raw, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 422
