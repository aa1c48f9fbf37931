"""Authentication: first-run setup, login with lockout, sessions (cookie flags, expiry,
CSRF, origin), API tokens (hashing, scopes, expiry, revocation), password rules."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.api.conftest import ADMIN, OPERATOR, VIEWER, Api, IndexedStorage, _build, error_of
from vigil.api.passwords import default_hasher
from vigil.index.auth_models import ApiToken, AuthSession, User

GOOD = "a long and unusual passphrase"


# -- first-run setup ---------------------------------------------------------------------------


def test_setup_only_from_localhost_and_only_once(bare_api: Api) -> None:
    remote = bare_api.client("192.0.2.7")
    assert remote.get("/api/setup").json() == {"required": True, "allowed_here": False}
    r = remote.post("/api/setup", json={"username": "root", "password": GOOD})
    assert r.status_code == 403 and error_of(r)["code"] == "setup_not_local"

    local = bare_api.client("127.0.0.1")
    assert local.get("/api/setup").json() == {"required": True, "allowed_here": True}
    r = local.post("/api/setup", json={"username": "Root", "password": GOOD})
    assert r.status_code == 201, r.text
    assert r.json()["username"] == "root" and r.json()["role"] == "admin"
    local.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    assert local.get("/api/auth/me").json()["role"] == "admin"  # logged in by setup

    again = bare_api.client("::1").post("/api/setup", json={"username": "x2", "password": GOOD})
    assert again.status_code == 409 and error_of(again)["code"] == "setup_done"
    assert bare_api.client().get("/api/setup").json()["required"] is False
    actions = [r["action"] for r in local.get("/api/audit").json()["records"]]
    assert "auth.setup" in actions


@pytest.mark.parametrize(
    "header",
    [
        {"X-Forwarded-For": "127.0.0.1"},
        {"X-Forwarded-For": "203.0.113.5"},
        {"Forwarded": "for=127.0.0.1"},
        {"X-Real-IP": "127.0.0.1"},
    ],
)
def test_setup_refuses_forwarded_requests_without_trusted_proxy(
    bare_api: Api, header: dict[str, str]
) -> None:
    """A reverse proxy on this machine makes every client look local: a forwarding header
    from an untrusted peer means setup is refused."""
    r = bare_api.client("127.0.0.1").post(
        "/api/setup", json={"username": "root", "password": GOOD}, headers=header
    )
    assert r.status_code == 403 and error_of(r)["code"] == "setup_not_local"


def test_setup_behind_trusted_proxy_uses_the_forwarded_client(
    tmp_path: Path, evidence_index: IndexedStorage
) -> None:
    api = _build(tmp_path, evidence_index, {"cam1": "x"}, trusted_proxies=["127.0.0.1/32"])
    try:
        c = api.client("127.0.0.1")
        spoofed = {"X-Forwarded-For": "127.0.0.1, 198.51.100.4"}  # proxy appended the truth
        r = c.post("/api/setup", json={"username": "root", "password": GOOD}, headers=spoofed)
        assert r.status_code == 403
        r = c.post(
            "/api/setup",
            json={"username": "root", "password": GOOD},
            headers={"X-Forwarded-For": "127.0.0.1"},
        )
        assert r.status_code == 201
        rec = api.app.state.vigil.audit.search(action="auth.setup")[0]
        assert [x.ip for x in rec] == ["127.0.0.1", "198.51.100.4"]
    finally:
        api.close()


@pytest.mark.parametrize(
    ("username", "password", "why"),
    [
        ("root", "short", "at least 12"),
        ("root", "Password1234", "common"),
        ("administrator", "administrator", "common"),
        ("longusername1", "LongUserName1", "user name"),
        ("root", "aaaaaaaaaaaaaaaa", "repeated"),
    ],
)
def test_setup_password_strength(bare_api: Api, username: str, password: str, why: str) -> None:
    r = bare_api.client().post("/api/setup", json={"username": username, "password": password})
    assert r.status_code == 400
    err = error_of(r)
    assert err["code"] == "weak_password" and why in err["message"]


def test_default_hasher_is_argon2id(bare_api: Api) -> None:
    assert default_hasher().hash("x" * 12).startswith("$argon2id$")


# -- login and lockout -----------------------------------------------------------------------


def test_wrong_password_and_unknown_user_look_the_same(api: Api) -> None:
    c = api.client()
    a = c.post("/api/auth/login", json={"username": "admin", "password": "wrong password!"})
    b = c.post("/api/auth/login", json={"username": "nobody", "password": "wrong password!"})
    assert a.status_code == b.status_code == 401
    assert (
        a.json()
        == b.json()
        == {
            "error": {
                "code": "invalid_credentials",
                "message": "invalid credentials",
                "details": None,
            }
        }
    )
    assert "set-cookie" not in a.headers
    failed = api.app.state.vigil.audit.search(action="auth.login", outcome="failed")[0]
    assert {r.actor for r in failed} == {"admin", "nobody"}
    assert {r.ip for r in failed} == {"127.0.0.1"}


def test_lockout_after_failures_then_expiry_and_doubling(api: Api) -> None:
    c = api.client("198.51.100.10")
    bad = {"username": "alice", "password": "not her password"}
    for _ in range(5):
        assert c.post("/api/auth/login", json=bad).status_code == 401
    good = {"username": VIEWER[0], "password": VIEWER[1]}
    r = c.post("/api/auth/login", json=good)  # right password, but locked
    assert r.status_code == 429 and error_of(r)["code"] == "locked_out"
    assert 800 <= int(r.headers["Retry-After"]) <= 900
    other = api.client("198.51.100.11").post("/api/auth/login", json=good)
    assert other.status_code == 429  # the account is locked, not just the address
    api.clock.advance(901)
    assert c.post("/api/auth/login", json=good).status_code == 200
    for _ in range(5):
        c.post("/api/auth/login", json=bad)
    api.clock.advance(901)
    assert c.post("/api/auth/login", json=good).status_code == 429  # second lockout: 30 min
    api.clock.advance(900)
    assert c.post("/api/auth/login", json=good).status_code == 200


def test_unknown_accounts_lock_like_real_ones(api: Api) -> None:
    c = api.client("198.51.100.20")
    for _ in range(5):
        c.post("/api/auth/login", json={"username": "ghost", "password": "whatever12345"})
    r = c.post("/api/auth/login", json={"username": "ghost", "password": "whatever12345"})
    assert r.status_code == 429


def test_address_lockout_across_usernames(api: Api) -> None:
    c = api.client("198.51.100.30")
    for i in range(20):
        c.post("/api/auth/login", json={"username": f"user{i}", "password": "guess guess guess"})
    r = c.post("/api/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]})
    assert r.status_code == 429
    assert (
        api.client("198.51.100.31")
        .post("/api/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]})
        .status_code
        == 200
    )


def test_disabled_account_cannot_log_in(api: Api) -> None:
    viewer = api.viewer()
    admin = api.admin()
    assert admin.patch("/api/users/alice", json={"disabled": True}).status_code == 200
    assert viewer.get("/api/cameras").status_code == 401  # its session ended
    r = api.client().post("/api/auth/login", json={"username": VIEWER[0], "password": VIEWER[1]})
    assert r.status_code == 401 and error_of(r)["code"] == "invalid_credentials"


def test_last_admin_cannot_be_removed(api: Api) -> None:
    admin = api.admin()
    for call in (
        lambda: admin.patch("/api/users/admin", json={"role": "viewer"}),
        lambda: admin.patch("/api/users/admin", json={"disabled": True}),
        lambda: admin.delete("/api/users/admin"),
    ):
        r = call()
        assert r.status_code == 409 and error_of(r)["code"] == "last_admin"


# -- sessions --------------------------------------------------------------------------------


def test_session_cookie_flags_over_https_and_http(api: Api) -> None:
    r = api.client().post("/api/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]})
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("__Host-vigil_session=")
    low = cookie.lower()
    assert "httponly" in low and "secure" in low and "samesite=strict" in low and "path=/" in low
    assert "domain" not in low
    r = api.client(https=False).post(
        "/api/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]}
    )
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("vigil_session=") and "httponly" in cookie.lower()
    assert "secure" not in cookie.lower()


def test_session_ids_are_hashed_at_rest(api: Api) -> None:
    c = api.client()
    c.post("/api/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]})
    raw = c.cookies.get("__Host-vigil_session")
    assert raw and len(raw) >= 43
    with api.index.db.session() as s:
        hashes = list(s.scalars(select(AuthSession.id_hash)))
        users = list(s.scalars(select(User.password_hash)))
    assert raw not in hashes and hashlib.sha256(raw.encode()).hexdigest() in hashes
    assert all(h.startswith("$argon2id$") for h in users)


def test_idle_and_absolute_session_expiry(api: Api) -> None:
    c = api.admin()
    api.clock.advance(3599)
    assert c.get("/api/auth/me").status_code == 200  # activity resets the idle timer
    api.clock.advance(3601)
    r = c.get("/api/auth/me")
    assert r.status_code == 401 and error_of(r)["code"] == "session_expired"

    c = api.admin()
    for _ in range(23):  # active every 30 minutes: still ends after 12 hours
        api.clock.advance(1800)
        assert c.get("/api/auth/me").status_code == 200
    api.clock.advance(1800)
    assert c.get("/api/auth/me").status_code == 401


def test_csrf_token_required_on_state_changes(api: Api) -> None:
    c = api.admin()
    token = c.headers.pop("X-CSRF-Token")
    body = {"zones": [], "lines": [], "motion_masks": [], "privacy_masks": []}
    r = c.put("/api/cameras/cam1/settings", json=body)
    assert r.status_code == 403 and error_of(r)["code"] == "csrf_failed"
    r = c.put("/api/cameras/cam1/settings", json=body, headers={"X-CSRF-Token": token[:-2] + "xx"})
    assert r.status_code == 403 and error_of(r)["code"] == "csrf_failed"
    other = api.admin()  # another session's token is not this one's
    r = c.put(
        "/api/cameras/cam1/settings",
        json=body,
        headers={"X-CSRF-Token": other.headers["X-CSRF-Token"]},
    )
    assert r.status_code == 403
    assert c.get("/api/cameras").status_code == 200  # reads need no token
    r = c.put("/api/cameras/cam1/settings", json=body, headers={"X-CSRF-Token": token})
    assert r.status_code == 200
    assert c.get("/api/auth/me").json()["csrf_token"] == token  # survives a page reload


def test_cross_origin_state_change_refused(api: Api) -> None:
    c = api.admin()
    r = c.post("/api/auth/logout", headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and error_of(r)["code"] == "cross_origin"
    r = api.client().post(
        "/api/auth/login",
        json={"username": ADMIN[0], "password": ADMIN[1]},
        headers={"Origin": "https://evil.example"},
    )
    assert r.status_code == 403
    assert c.post("/api/auth/logout", headers={"Origin": "https://testserver"}).status_code == 200


def test_logout_kills_the_session_server_side(api: Api) -> None:
    c = api.admin()
    raw = c.cookies.get("__Host-vigil_session")
    assert c.post("/api/auth/logout").status_code == 200
    replay = api.client()
    replay.cookies.set("__Host-vigil_session", raw)
    assert replay.get("/api/auth/me").status_code == 401


def test_forged_session_cookies_refused(api: Api) -> None:
    for value in ("x" * 43, "", "../../etc/passwd", "a" * 5000):
        c = api.client()
        c.cookies.set("vigil_session", value)
        assert c.get("/api/cameras").status_code == 401


def test_password_change(api: Api) -> None:
    c = api.viewer()
    r = c.post(
        "/api/auth/password",
        json={"current_password": "wrong one", "new_password": "another fine passphrase"},
    )
    assert r.status_code == 403
    r = c.post("/api/auth/password", json={"current_password": VIEWER[1], "new_password": "short"})
    assert r.status_code == 400 and error_of(r)["code"] == "weak_password"
    r = c.post(
        "/api/auth/password",
        json={"current_password": VIEWER[1], "new_password": "another fine passphrase"},
    )
    assert r.status_code == 200
    assert c.get("/api/auth/me").status_code == 401  # sessions ended
    api.login((VIEWER[0], "another fine passphrase"))


# -- credentials in the wrong place ----------------------------------------------------------


@pytest.mark.parametrize(
    "query", ["auth=YWRtaW46MTIzNDU=", "token=abc", "access_token=x", "api_key=k", "password=p"]
)
def test_credentials_in_query_string_refused(api: Api, query: str) -> None:
    admin = api.admin()  # even with a valid session
    r = admin.get(f"/api/cameras?{query}")
    assert r.status_code == 400 and error_of(r)["code"] == "credentials_in_query"


def test_basic_auth_is_not_a_thing(api: Api) -> None:
    r = api.client().get("/api/cameras", auth=(ADMIN[0], ADMIN[1]))
    assert r.status_code == 401 and error_of(r)["code"] == "unsupported_authorization"


# -- API tokens ------------------------------------------------------------------------------


def test_token_shown_once_stored_hashed_and_usable(api: Api) -> None:
    admin = api.admin()
    r = admin.post("/api/tokens", json={"name": "ha", "scopes": ["read"], "expires_in_days": 7})
    assert r.status_code == 201
    secret, tid = r.json()["token"], r.json()["id"]
    assert secret.startswith(f"vgl_{tid}_")
    listed = admin.get("/api/tokens").json()["tokens"]
    assert [t["id"] for t in listed] == [tid] and all("token" not in t for t in listed)
    with api.index.db.session() as s:
        stored = s.scalar(select(ApiToken.token_hash))
    assert stored == hashlib.sha256(secret.encode()).hexdigest()
    c = api.bearer(secret)
    assert c.get("/api/cameras").status_code == 200
    assert c.get("/api/auth/me").json()["via"] == "token"


def test_token_scopes_are_enforced(api: Api) -> None:
    read = api.bearer(api.token(ADMIN, ["read"]))
    f = api.footage["cam1"]
    assert read.get(f"/api/cameras/cam1/timeline?start={f.start_us}&end={f.end_us}").is_success
    r = read.post(
        "/api/exports",
        json={"camera": "cam1", "start": str(f.start_us), "end": str(f.end_us), "reason": "x"},
    )
    assert r.status_code == 403 and "scopes" in error_of(r)["message"]
    assert read.put("/api/cameras/cam1/settings", json={}).status_code == 403
    assert read.post("/api/tokens", json={"name": "x", "scopes": ["read"]}).status_code == 403
    export_only = api.bearer(api.token(ADMIN, ["export"]))
    assert export_only.get(f"/api/cameras/cam1/snapshot?at={f.start_us}").status_code == 403
    # no CSRF header is needed with a bearer token
    admin_tok = api.bearer(api.token(ADMIN, ["admin"]))
    assert admin_tok.put("/api/cameras/cam1/settings", json={}).status_code == 200


def test_token_scopes_limited_by_role(api: Api) -> None:
    viewer = api.viewer()
    r = viewer.post("/api/tokens", json={"name": "x", "scopes": ["export"]})
    assert r.status_code == 403 and error_of(r)["code"] == "invalid_scope"
    r = viewer.post("/api/tokens", json={"name": "x", "scopes": ["read"], "username": "admin"})
    assert r.status_code == 403
    r = viewer.post("/api/tokens", json={"name": "x", "scopes": ["read"], "expires_in_days": 9999})
    assert r.status_code == 400 and error_of(r)["code"] == "invalid_expiry"


def test_token_expiry_and_revocation(api: Api) -> None:
    secret = api.token(OPERATOR, ["read"], days=1)
    c = api.bearer(secret)
    assert c.get("/api/cameras").status_code == 200
    api.clock.advance(86401)
    r = c.get("/api/cameras")
    assert r.status_code == 401 and error_of(r)["code"] == "token_expired"

    secret = api.token(OPERATOR, ["read"])
    op = api.operator()
    tid = secret.split("_")[1]
    assert op.delete(f"/api/tokens/{tid}").json()["revoked_us"] is not None
    r = api.bearer(secret).get("/api/cameras")
    assert r.status_code == 401 and error_of(r)["code"] == "token_revoked"
    # someone else's token is invisible to a non-admin
    other = api.token(ADMIN, ["read"]).split("_")[1]
    assert op.delete(f"/api/tokens/{other}").status_code == 404
    assert api.admin().delete(f"/api/tokens/{other}").status_code == 200


@pytest.mark.parametrize(
    "value", ["Bearer", "Bearer ", "Bearer vgl_x", "Bearer " + "a" * 2000, "Token abc"]
)
def test_malformed_bearer_refused(api: Api, value: str) -> None:
    c = api.client()
    c.headers["Authorization"] = value
    assert c.get("/api/cameras").status_code == 401


def test_login_replaces_any_previous_session(api: Api) -> None:
    """Session fixation: a cookie planted before login never becomes the logged-in one."""
    c = api.viewer()
    planted = c.cookies.get("__Host-vigil_session")
    r = c.post("/api/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]})
    assert r.status_code == 200
    fresh = c.cookies.get("__Host-vigil_session")
    assert fresh and fresh != planted
    old = api.client()
    old.cookies.set("__Host-vigil_session", planted)
    assert old.get("/api/auth/me").status_code == 401
