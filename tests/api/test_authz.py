"""Authorization: a viewer of camera A cannot reach anything of camera B, by listing or by
guessing URLs and ids (Frigate CVE-2026-33470); role ceilings; refusals are audited."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api, error_of
from vigil.api.authz import Principal, authorize, can, visible_cameras
from vigil.api.errors import ApiError


def _b_urls(api: Api) -> list[str]:
    f = api.footage["cam2"]
    s, e = f.start_us, f.end_us
    ev = api.events["cam2"]
    return [
        "/api/cameras/cam2",
        f"/api/cameras/cam2/timeline?start={s}&end={e}",
        f"/api/cameras/cam2/recordings?start={s}&end={e}",
        f"/api/cameras/cam2/playback.mp4?start={s}&end={e}",
        f"/api/cameras/cam2/stream.mp4?start={s}&end={e}",
        f"/api/cameras/cam2/hls/{s}/{e}/index.m3u8",
        f"/api/cameras/cam2/hls/{s}/{e}/init/0.mp4",
        f"/api/cameras/cam2/hls/{s}/{e}/part/0.m4s",
        f"/api/cameras/cam2/snapshot?at={s + 500_000}",
        "/api/cameras/cam2/snapshot",
        "/api/cameras/cam2/settings",
        f"/api/events/{ev}",
        f"/api/events/{ev}/snapshot.jpg",
        f"/api/events/{ev}/clip.mp4",
        "/api/events?camera=cam2",
    ]


def test_viewer_of_a_cannot_reach_b(api: Api) -> None:
    admin = api.admin()
    for url in _b_urls(api):  # every URL works for someone allowed
        r = admin.get(url)
        assert r.status_code in (200, 206), (url, r.status_code, r.text[:200])
    viewer = api.viewer()
    for url in _b_urls(api):
        r = viewer.get(url)
        assert r.status_code in (403, 404), (url, r.status_code)
        error_of(r)
        assert "cam2" not in r.headers.get("content-type", "")
    # ... while camera A works
    f = api.footage["cam1"]
    assert viewer.get(f"/api/cameras/cam1/timeline?start={f.start_us}&end={f.end_us}").is_success
    assert viewer.get(f"/api/events/{api.events['cam1']}/snapshot.jpg").status_code == 200


def test_invisible_camera_is_indistinguishable_from_missing(api: Api) -> None:
    viewer = api.viewer()
    f = api.footage["cam2"]
    a = viewer.get(f"/api/cameras/cam2/timeline?start={f.start_us}&end={f.end_us}")
    b = viewer.get(f"/api/cameras/zzz/timeline?start={f.start_us}&end={f.end_us}")
    assert a.status_code == b.status_code == 404
    assert error_of(a)["code"] == error_of(b)["code"] == "not_found"
    a = viewer.get(f"/api/events/{api.events['cam2']}")
    b = viewer.get("/api/events/does-not-exist")
    assert a.json() == b.json()


def test_lists_are_filtered(api: Api) -> None:
    viewer = api.viewer()
    assert [c["name"] for c in viewer.get("/api/cameras").json()["cameras"]] == ["cam1"]
    assert [c["name"] for c in viewer.get("/api/system").json()["cameras"]] == ["cam1"]
    events = viewer.get("/api/events?limit=100").json()["events"]
    assert events and {e["camera"] for e in events} == {"cam1"}
    me = viewer.get("/api/auth/me").json()
    assert me["cameras"] == {"cam1": ["view_live", "view_recordings"]}
    assert "path" not in viewer.get("/api/system").json()["storage"]
    assert "path" in api.admin().get("/api/system").json()["storage"]


def test_role_ceiling_viewer_cannot_export_or_configure(api: Api) -> None:
    """The viewer's grant on cam1 has export and configure flags set; the role caps them."""
    viewer = api.viewer()
    f = api.footage["cam1"]
    r = viewer.post(
        "/api/exports",
        json={"camera": "cam1", "start": str(f.start_us), "end": str(f.end_us), "reason": "x"},
    )
    assert r.status_code == 403 and error_of(r)["code"] == "forbidden"
    r = viewer.put("/api/cameras/cam1/settings", json={})
    assert r.status_code == 403
    assert viewer.get("/api/users").status_code == 403
    assert viewer.get("/api/audit").status_code == 403


def test_exports_of_b_unreachable(api: Api) -> None:
    op = api.operator()  # cam2 with every permission
    f = api.footage["cam2"]
    r = op.post(
        "/api/exports",
        json={"camera": "cam2", "start": str(f.start_us), "end": str(f.end_us), "reason": "x"},
    )
    assert r.status_code == 202, r.text
    job = r.json()["id"]
    assert api.app.state.vigil.jobs.wait_idle(60)
    done = op.get(f"/api/exports/{job}").json()
    assert done["state"] == "done", done
    export_id = done["export_id"]
    viewer = api.viewer()
    for url in (
        f"/api/exports/{job}",
        f"/api/exports/{export_id}",
        f"/api/exports/{export_id}/download",
        f"/api/exports/{export_id}/files/manifest.json",
    ):
        assert viewer.get(url).status_code == 404, url
    assert viewer.post(f"/api/exports/{export_id}/verify").status_code == 404
    assert viewer.get("/api/exports").json() == {"jobs": [], "exports": []}
    # operator without a grant on cam1 cannot export it either
    g = api.footage["cam1"]
    r = op.post(
        "/api/exports",
        json={"camera": "cam1", "start": str(g.start_us), "end": str(g.end_us), "reason": "x"},
    )
    assert r.status_code == 404


def test_refusals_are_audited(api: Api) -> None:
    viewer = api.viewer()
    f = api.footage["cam2"]
    viewer.get(f"/api/cameras/cam2/hls/{f.start_us}/{f.end_us}/part/0.m4s")
    viewer.get(f"/api/events/{api.events['cam2']}/snapshot.jpg")
    viewer.get("/api/users")
    recs = api.app.state.vigil.audit.search(actor="alice", outcome="denied")[0]
    got = {(r.action, r.camera) for r in recs}
    assert ("deny.view_recordings", "cam2") in got
    assert ("deny.admin", None) in got


def test_new_operator_sees_nothing_until_granted(api: Api) -> None:
    admin = api.admin()
    r = admin.post("/api/users", json={"username": "carol", "password": "carol's long passphrase"})
    assert r.status_code == 201 and r.json()["role"] == "viewer" and r.json()["grants"] == []
    carol = api.login(("carol", "carol's long passphrase"))
    assert carol.get("/api/cameras").json() == {"cameras": []}
    r = admin.put(
        "/api/users/carol/permissions",
        json={"grants": [{"camera": "*", "view_live": True}]},
    )
    assert r.status_code == 200
    names = [c["name"] for c in carol.get("/api/cameras").json()["cameras"]]
    assert names == ["cam1", "cam2"]
    f = api.footage["cam1"]  # view_live only: no recordings
    r = carol.get(f"/api/cameras/cam1/timeline?start={f.start_us}&end={f.end_us}")
    assert r.status_code == 403


@pytest.mark.parametrize("role", ["admin", "operator", "viewer"])
def test_authorize_function(role: str) -> None:
    p = Principal(1, "u", role, "session", grants={"a": frozenset({"view_live", "export"})})
    if role == "admin":
        authorize(p, "export", "b")
        assert can(p, "admin")
        return
    authorize(p, "view_live", "a")
    with pytest.raises(ApiError) as e:
        authorize(p, "view_live", "b")
    assert e.value.status == 404
    with pytest.raises(ApiError) as e:
        authorize(p, "view_recordings", "a")
    assert e.value.status == 403
    assert can(p, "export", "a") is (role == "operator")
    assert visible_cameras(p, ["a", "b"]) == ["a"]
    with pytest.raises(ApiError):
        authorize(p, "admin")
    scoped = Principal(1, "u", role, "token", grants=p.grants, scopes=frozenset({"read"}))
    assert not can(scoped, "export", "a")
    assert can(scoped, "view_live", "a")


def test_admin_can_manage_users_and_grants(api: Api) -> None:
    admin = api.admin()
    r = admin.post(
        "/api/users",
        json={
            "username": "dave",
            "password": "dave's long passphrase",
            "role": "operator",
            "grants": [{"camera": "cam1", "view_recordings": True, "export": True}],
        },
    )
    assert r.status_code == 201
    assert r.json()["grants"] == [
        {
            "camera": "cam1",
            "view_live": False,
            "view_recordings": True,
            "export": True,
            "configure": False,
        }
    ]
    dup = admin.post("/api/users", json={"username": "DAVE", "password": "another passphrase"})
    assert dup.status_code == 409 and error_of(dup)["code"] == "exists"
    assert admin.get("/api/users/dave").json()["role"] == "operator"
    users = [u["username"] for u in admin.get("/api/users").json()["users"]]
    assert users == ["admin", "alice", "bob", "dave"]
    new_pw = {"password": "a new dave passphrase"}
    assert admin.put("/api/users/dave/password", json=new_pw).is_success
    api.login(("dave", "a new dave passphrase"))
    assert admin.delete("/api/users/dave").json() == {"deleted": "dave"}
    actions = [r["action"] for r in admin.get("/api/audit?action=user.*").json()["records"]]
    assert actions == ["user.delete", "user.password", "user.create"]
    assert admin.get("/api/roles").json()["roles"][2]["camera_permissions"] == [
        "view_live",
        "view_recordings",
    ]
