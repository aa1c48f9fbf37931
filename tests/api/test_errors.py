"""Bad input gets clear answers in one stable shape: unknown routes and ids, wrong
methods, validation failures, oversized bodies, malformed times and ranges, internal
errors; HTML in names comes back as JSON text under a strict CSP."""

from __future__ import annotations

import uuid

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from tests.api.conftest import XSS, Api, _build, error_of
from vigil.api import create_app
from vigil.api.middleware import CONTENT_SECURITY_POLICY


def test_unknown_route_and_method(api: Api) -> None:
    c = api.admin()
    r = c.get("/api/no/such/thing")
    assert r.status_code == 404 and error_of(r)["code"] == "not_found"
    r = c.delete("/api/cameras")
    assert r.status_code == 405 and error_of(r)["code"] == "method_not_allowed"
    r = api.client().get("/not-api")  # outside /api too
    assert r.status_code == 404 and error_of(r)["code"] == "not_found"
    assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def test_validation_error_shape_hides_input(api: Api) -> None:
    c = api.admin()
    r = c.post("/api/users", json={"username": "x", "password": "secret-value-1", "role": "god"})
    assert r.status_code == 422
    err = error_of(r)
    assert err["code"] == "validation_error" and "role" in err["message"]
    assert isinstance(err["details"], list) and err["details"][0]["loc"] == ["body", "role"]
    assert "secret-value-1" not in r.text
    r = c.post("/api/users", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and error_of(r)["code"] == "validation_error"
    r = c.post("/api/users", json={"username": "x", "password": "p" * 20, "extra": 1})
    assert r.status_code == 422  # unknown fields are errors, not ignored


def test_form_posts_are_not_json(api: Api) -> None:
    """A cross-site HTML form can only send form encodings; the API reads JSON only."""
    c = api.admin()
    r = c.post("/api/users", data={"username": "x", "password": "p" * 20})
    assert r.status_code == 422


def test_internal_error_is_opaque_and_shaped(api: Api) -> None:
    boom = APIRouter()

    @boom.get("/api/boom")
    def _boom() -> None:
        raise RuntimeError("secret internals /etc/shadow")

    app = create_app(api.ctx, routers=[boom])
    with TestClient(app, raise_server_exceptions=False, base_url="https://testserver") as c:
        r = c.get("/api/boom")
    assert r.status_code == 500
    err = error_of(r)
    assert err["code"] == "internal_error" and "secret" not in r.text
    assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert r.headers["x-content-type-options"] == "nosniff"


def test_oversized_body_413(api: Api) -> None:
    c = api.admin()
    big = {"zones": [], "lines": [], "motion_masks": [], "privacy_masks": [], "pad": "x" * 70000}
    r = c.put("/api/cameras/cam1/settings", json=big)
    assert r.status_code == 413 and error_of(r)["code"] == "payload_too_large"

    def chunks():  # no Content-Length: the limit applies while reading
        for _ in range(100):
            yield b" " * 1024

    r = c.put(
        "/api/cameras/cam1/settings",
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413 and error_of(r)["code"] == "payload_too_large"
    # the limit also applies before authentication
    r = api.client().post("/api/auth/login", content=b"x" * 100_000)
    assert r.status_code == 413


@pytest.mark.parametrize(
    ("start", "end", "code"),
    [
        ("yesterday", "now", "invalid_time"),
        ("2023-11-14T22:13:20", "2023-11-14T22:14:20Z", "invalid_time"),  # no zone
        ("2023-13-40T00:00:00Z", "2023-11-14T22:14:20Z", "invalid_time"),
        ("1700000010000000", "1700000000000000", "invalid_range"),
        ("1700000000000000", "1700000000000000", "invalid_range"),
        ("-5", "10", "invalid_time"),
        ("99999999999999999999", "1", "invalid_time"),
        ("1700000000000000", "1703456000000000", "range_too_long"),
    ],
)
def test_malformed_ranges(api: Api, start: str, end: str, code: str) -> None:
    c = api.admin()
    for url in (
        f"/api/cameras/cam1/timeline?start={start}&end={end}",
        f"/api/cameras/cam1/playback.mp4?start={start}&end={end}",
        f"/api/cameras/cam1/recordings?start={start}&end={end}",
    ):
        r = c.get(url)
        assert r.status_code == 400, (url, r.text)
        assert error_of(r)["code"] == code


def test_iso_times_accepted(api: Api) -> None:
    c = api.admin()
    r = c.get(
        "/api/cameras/cam1/timeline?start=2023-11-14T22:13:20Z&end=2023-11-14T23:14:20.5%2B01:00"
    )
    assert r.status_code == 200
    assert r.json()["start_us"] == 1_700_000_000_000_000
    assert r.json()["end_us"] == 1_700_000_060_500_000


def test_missing_parameters_422(api: Api) -> None:
    r = api.admin().get("/api/cameras/cam1/timeline?start=1")
    assert r.status_code == 422 and error_of(r)["details"][0]["loc"] == ["query", "end"]


def test_unknown_ids_404(api: Api) -> None:
    c = api.admin()
    for url in (
        "/api/cameras/nocam",
        "/api/cameras/nocam/timeline?start=1&end=2",
        "/api/cameras/nocam/playback.mp4?start=1&end=2",
        "/api/cameras/nocam/hls/1/2/index.m3u8",
        "/api/cameras/nocam/snapshot?at=1",
        "/api/cameras/nocam/settings",
        "/api/events/no-such-event",
        "/api/events/no-such-event/snapshot.jpg",
        "/api/events/no-such-event/clip.mp4",
        f"/api/exports/{uuid.uuid4()}",
        f"/api/exports/{uuid.uuid4()}/download",
        "/api/users/nobody",
        "/api/users/nobody/permissions",
    ):
        r = c.get(url)
        assert r.status_code == 404, (url, r.text)
        assert error_of(r)["code"] == "not_found"
    assert c.delete("/api/tokens/0123456789ab").status_code == 404
    assert c.post(f"/api/exports/{uuid.uuid4()}/verify").status_code == 404


def test_bad_id_syntax_is_422_not_500(api: Api) -> None:
    c = api.admin()
    for url in (
        "/api/cameras/UPPER/timeline?start=1&end=2",
        "/api/events/..%2F..%2Fetc/snapshot.jpg",
        "/api/exports/not-a-uuid",
        "/api/cameras/cam1/hls/1/2/part/-1.m4s",
    ):
        r = c.get(url)
        assert r.status_code in (404, 422), (url, r.status_code)
        error_of(r)


def test_no_footage_is_404_with_gaps(api: Api) -> None:
    f = api.footage["cam1"]
    a, b = f.wall(90), f.wall(140)  # inside the offline gap
    r = api.admin().get(f"/api/cameras/cam1/playback.mp4?start={a}&end={b}")
    assert r.status_code == 404
    err = error_of(r)
    assert err["code"] == "no_footage"
    assert [g["reason"] for g in err["details"]["gaps"]] == ["offline"]


def test_html_in_names_is_returned_as_json_text(api: Api) -> None:
    c = api.admin()
    r = c.get("/api/cameras")
    assert r.headers["content-type"] == "application/json"
    assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.json()["cameras"][0]["title"] == XSS  # verbatim text, for textContent
    r = c.get(f"/api/events/{api.events['cam1']}")
    assert r.json()["label"] == XSS and r.headers["content-type"] == "application/json"
    settings = {
        "zones": [{"name": XSS, "polygon": [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5]]}],
        "lines": [{"name": "<b>line</b>", "points": [[0, 0.5], [1, 0.5]]}],
    }
    assert c.put("/api/cameras/cam1/settings", json=settings).status_code == 200
    got = c.get("/api/cameras/cam1/settings")
    assert got.json()["zones"][0]["name"] == XSS and got.json()["lines"][0]["name"] == "<b>line</b>"
    assert got.headers["content-type"] == "application/json"


def test_security_headers_everywhere(api: Api) -> None:
    c = api.admin()
    f = api.footage["cam1"]
    for r in (
        c.get("/api/health/live"),
        c.get("/api/cameras"),
        c.get(f"/api/cameras/cam1/playback.mp4?start={f.start_us}&end={f.wall(20)}"),
        c.get(f"/api/cameras/cam1/snapshot?at={f.wall(3)}"),
        api.client().get("/api/cameras"),
    ):
        h = r.headers
        csp = h["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert h["x-content-type-options"] == "nosniff"
        assert h["referrer-policy"] == "no-referrer"
        assert h["cache-control"] == "no-store"
        assert h["x-frame-options"] == "DENY"
        assert "server" not in h


def test_hsts_only_over_https(tmp_path, evidence_index) -> None:  # type: ignore[no-untyped-def]
    api = _build(tmp_path, evidence_index, {"cam1": "x"}, tls={"enabled": True})
    try:
        assert "strict-transport-security" in api.client().get("/api/health/live").headers
        plain = api.client(https=False).get("/api/health/live")
        assert "strict-transport-security" not in plain.headers
    finally:
        api.close()
