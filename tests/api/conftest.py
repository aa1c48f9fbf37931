"""Fixtures for API tests: the real app (``create_app``) on a temporary SQLite index and a
storage directory with real recorded segments (from ``tests.evidence.conftest``), events
with snapshots, and users of each role.

* ``api`` -> :class:`Api`: the app, its context, a controllable clock, footage of ``cam1``
  and ``cam2`` and events on both; ``api.client()`` makes a TestClient (from 127.0.0.1
  over https by default), ``api.admin()``/``api.viewer()``/``api.operator()`` return
  clients already logged in with the CSRF header set.
* ``bare_api`` -> an app over an empty index without users (first-run tests).

Passwords are hashed with cheap argon2id parameters here (``fast_hasher``); the default
parameters are covered by a test of their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.evidence.conftest import (  # noqa: F401  (fixtures used by name)
    BASE_US,
    FRAME_US,
    Footage,
    IndexedStorage,
    _encoded,
    evidence_index,
    make_footage,
    read_frame_number,
)
from vigil.api import AppContext, create_app
from vigil.api.passwords import fast_hasher
from vigil.config.api_model import ApiConfig
from vigil.config.model import VigilConfig
from vigil.events.store import EventStore
from vigil.evidence.keys import KeyStore

ADMIN = ("admin", "correct horse battery staple")
VIEWER = ("alice", "alice's long passphrase")
OPERATOR = ("bob", "bob's long passphrase!")
XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>"


class Clock:
    """Epoch microseconds, real time plus an offset tests can move."""

    def __init__(self) -> None:
        self.offset_us = 0

    def __call__(self) -> int:
        return time.time_ns() // 1000 + self.offset_us

    def advance(self, seconds: float) -> None:
        self.offset_us += int(seconds * 1_000_000)


@dataclass
class Ev:
    """Shaped like ``AnalyticsEvent`` for ``EventStore.apply``."""

    kind: str
    camera: str
    event_id: str
    label: str
    start_time: float
    end_time: float | None = None
    track_id: int = 1
    max_score: float = 0.9
    box: tuple[float, ...] = (0.1, 0.1, 0.3, 0.6)
    zones: tuple[str, ...] = ()
    current_zones: tuple[str, ...] = ()
    lines_crossed: tuple[tuple[str, str], ...] = ()
    stationary: bool = False
    snapshot_jpeg: bytes | None = None
    snapshot_time: float | None = None
    snapshot_box: tuple[float, ...] | None = None
    end_reason: str | None = "lost"


def tiny_jpeg(value: int = 128) -> bytes:
    import cv2
    import numpy as np

    ok, buf = cv2.imencode(".jpg", np.full((16, 16, 3), value, np.uint8))
    assert ok
    return bytes(buf.tobytes())


@dataclass
class Api:
    app: FastAPI
    ctx: AppContext
    clock: Clock
    tmp: Path
    footage: dict[str, Footage] = field(default_factory=dict)
    events: dict[str, str] = field(default_factory=dict)  # camera -> an event id
    _clients: list[TestClient] = field(default_factory=list)

    @property
    def index(self) -> Any:
        return self.ctx.index

    def client(self, host: str = "127.0.0.1", *, https: bool = True, **kw: Any) -> TestClient:
        c = TestClient(
            self.app,
            base_url="https://testserver" if https else "http://testserver",
            client=(host, 50000),
            **kw,
        )
        self._clients.append(c)
        return c

    def login(self, user: tuple[str, str], **kw: Any) -> TestClient:
        c = self.client(**kw)
        r = c.post("/api/auth/login", json={"username": user[0], "password": user[1]})
        assert r.status_code == 200, r.text
        c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        return c

    def admin(self, **kw: Any) -> TestClient:
        return self.login(ADMIN, **kw)

    def viewer(self, **kw: Any) -> TestClient:
        return self.login(VIEWER, **kw)

    def operator(self, **kw: Any) -> TestClient:
        return self.login(OPERATOR, **kw)

    def token(self, user: tuple[str, str], scopes: list[str], days: float = 30) -> str:
        c = self.login(user)
        r = c.post("/api/tokens", json={"name": "test", "scopes": scopes, "expires_in_days": days})
        assert r.status_code == 201, r.text
        return str(r.json()["token"])

    def bearer(self, token: str) -> TestClient:
        c = self.client()
        c.headers["Authorization"] = f"Bearer {token}"
        return c

    def close(self) -> None:
        for c in self._clients:
            c.close()
        self.app.state.vigil.jobs.wait_idle(30)
        self.app.state.vigil.close()


def _config(root: Path, titles: dict[str, str]) -> VigilConfig:
    return VigilConfig.model_validate(
        {
            "storage": {"path": str(root)},
            "cameras": [
                {"name": name, "title": title, "main": {"file": "/dev/null"}}
                for name, title in titles.items()
            ],
        }
    )


def _build(tmp: Path, storage: IndexedStorage, titles: dict[str, str], **api_kw: Any) -> Api:
    clock = Clock()
    keys = KeyStore(tmp / "keys")
    ctx = AppContext(
        config=_config(storage.root, titles),
        index=storage.index,
        keys=keys,
        events=EventStore(storage.index),
        api=ApiConfig.model_validate(
            {
                "tls": {"enabled": False},
                "export_dir": tmp / "exports",
                "cache_dir": tmp / "cache",
                **api_kw,
            }
        ),
        hasher=fast_hasher(),
        clock=clock,
    )
    return Api(create_app(ctx), ctx, clock, tmp)


@pytest.fixture
def bare_api(tmp_path: Path, evidence_index: IndexedStorage) -> Iterator[Api]:  # noqa: F811
    api = _build(tmp_path, evidence_index, {"cam1": "Front door", "cam2": "Yard"})
    yield api
    api.close()


def add_users(api: Api) -> None:
    accounts = api.app.state.vigil.accounts
    from vigil.api.accounts import Grant

    accounts.create_user(*ADMIN, "admin")
    accounts.create_user(*VIEWER, "viewer")
    accounts.create_user(*OPERATOR, "operator")
    # The viewer's export/configure flags must have no effect (role ceiling).
    accounts.set_grants(
        VIEWER[0],
        [Grant("cam1", frozenset({"view_live", "view_recordings", "export", "configure"}))],
    )
    accounts.set_grants(
        OPERATOR[0],
        [Grant("cam2", frozenset({"view_live", "view_recordings", "export", "configure"}))],
    )


def add_events(api: Api, store: EventStore) -> None:
    for cam, footage in api.footage.items():
        t0 = footage.start_us / 1e6
        eid = f"{cam}-ev1"
        label = XSS if cam == "cam1" else "car"
        store.apply(
            Ev(
                "start",
                cam,
                eid,
                label,
                t0 + 1.0,
                zones=("porch",),
                snapshot_jpeg=tiny_jpeg(),
                snapshot_time=t0 + 1.5,
            )
        )
        store.apply(Ev("end", cam, eid, label, t0 + 1.0, end_time=t0 + 3.0, zones=("porch",)))
        api.events[cam] = eid
        for k in range(2, 5):
            store.apply(
                Ev(
                    "start",
                    cam,
                    f"{cam}-ev{k}",
                    "person",
                    t0 + k,
                    end_time=None,
                    zones=("drive",) if k % 2 else (),
                )
            )


@pytest.fixture
def api(
    tmp_path: Path,
    evidence_index: IndexedStorage,  # noqa: F811
    make_footage: Callable[..., Footage],  # noqa: F811
) -> Iterator[Api]:
    a = _build(tmp_path, evidence_index, {"cam1": XSS, "cam2": "Yard"})
    a.footage["cam1"] = make_footage(
        [(0, 40), (40, 40), (150, 40)], gaps=[(80, 150, "offline")], camera="cam1"
    )
    a.footage["cam2"] = make_footage([(0, 40), (40, 40)], camera="cam2")
    add_users(a)
    add_events(a, a.ctx.events)  # type: ignore[arg-type]
    yield a
    a.close()


def error_of(resp: Any) -> dict[str, Any]:
    """The stable error object of a response (asserting the shape on the way)."""
    body = resp.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert set(err) == {"code", "message", "details"}, err
    assert isinstance(err["code"], str) and isinstance(err["message"], str)
    return dict(err)


BASE = BASE_US
FRAME = FRAME_US
