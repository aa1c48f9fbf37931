"""Every route in the OpenAPI document refuses callers without credentials, except an
explicit public allowlist. Iterating the document means a route added later is covered
without anyone remembering to add a test."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.api.conftest import Api, error_of
from vigil.api import create_app
from vigil.api.app import OPENAPI_PATH, PUBLIC_ROUTES
from vigil.api.middleware import CONTENT_SECURITY_POLICY

SAMPLE = {
    "camera": "cam1",
    "event_id": "cam1-ev1",
    "export_id": str(uuid.UUID(int=1)),
    "username": "admin",
    "token_id": "0" * 12,
    "start_us": "1700000000000000",
    "end_us": "1700000010000000",
    "k": "0",
    "n": "0",
    "name": "manifest.json",
}


def _operations(api: Api) -> list[tuple[str, str, str]]:
    """(method, concrete URL, path template) of every operation in the document."""
    ops = []
    for path, item in api.app.openapi()["paths"].items():
        for method in item:
            if method in ("get", "post", "put", "patch", "delete"):
                url = re.sub(r"\{(\w+)\}", lambda m: SAMPLE[m.group(1)], path)
                ops.append((method.upper(), url, path))
    return ops


def _call(client: Any, method: str, url: str) -> Any:
    kw: dict[str, Any] = {}
    if method in ("POST", "PUT", "PATCH"):
        kw["json"] = {}
    return client.request(method, url, **kw)


def _extra_routers() -> list[Any]:
    from vigil.api.live import router

    return [router]


@pytest.mark.parametrize("with_live", [False, True])
def test_every_non_public_route_needs_credentials(api: Api, with_live: bool) -> None:
    if with_live:
        api.app = create_app(api.ctx, routers=_extra_routers())
    client = api.client()
    ops = _operations(api)
    assert len(ops) > 30  # the sweep is really looking at the API
    templates = {(m, p) for m, _u, p in ops}
    assert templates >= PUBLIC_ROUTES  # the allowlist names real routes
    checked = 0
    for method, url, template in ops:
        if (method, template) in PUBLIC_ROUTES:
            continue
        r = _call(client, method, url)
        assert r.status_code == 401, (method, url, r.status_code, r.text)
        assert error_of(r)["code"] == "unauthorized"
        assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert r.headers["cache-control"] == "no-store"
        checked += 1
    assert checked == len(ops) - len(PUBLIC_ROUTES)


def test_public_routes_answer_without_credentials(api: Api) -> None:
    c = api.client()
    assert c.get("/api/health/live").json() == {"status": "ok"}
    assert c.get("/api/setup").json() == {"required": False, "allowed_here": False}
    r = c.post("/api/setup", json={"username": "x", "password": "y" * 12})
    assert r.status_code == 409  # reachable, but setup is done
    r = c.post("/api/auth/login", json={"username": "nobody", "password": "wrong"})
    assert r.status_code == 401 and error_of(r)["code"] == "invalid_credentials"


def test_openapi_document_needs_credentials(api: Api) -> None:
    r = api.client().get(OPENAPI_PATH)
    assert r.status_code == 401
    doc = api.admin().get(OPENAPI_PATH).json()
    assert "/api/cameras" in doc["paths"]
    assert set(doc["components"]["securitySchemes"]) == {"session", "bearer"}
    assert doc["paths"]["/api/health/live"]["get"]["security"] == []


@pytest.mark.parametrize("ui", ["/docs", "/redoc", "/openapi.json"])
def test_docs_ui_is_off(api: Api, ui: str) -> None:
    assert api.admin().get(ui).status_code == 404


def test_a_read_token_cannot_reach_admin_routes(api: Api) -> None:
    """Tokens are narrowed by scope: an administrator's read token is refused on every
    administrative GET route."""
    c = api.bearer(api.token(("admin", "correct horse battery staple"), ["read"]))
    for url in ("/api/users", "/api/audit", "/api/audit/verify", "/api/tokens?all=true"):
        r = c.get(url)
        assert r.status_code == 403, (url, r.text)
        assert error_of(r)["code"] == "forbidden"
