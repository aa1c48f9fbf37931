"""Fixtures for event tests: a private Mosquitto broker per test (so tests can stop and
restart it), small threaded HTTP servers with scripted answers, an index on a temp file,
and a factory of analytics-shaped events.

Every process and server started here is stopped in the fixture's teardown, also when the
test fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from vigil.index.db import Database
from vigil.index.repository import Index

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
T0 = 1_760_000_000.0  # 2025-10-09T08:53:20Z, epoch seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    """A Mosquitto process on 127.0.0.1:<port>, restartable on the same port."""

    def __init__(
        self, workdir: Path, *, persistence: bool = False, extra: tuple[str, ...] = ()
    ) -> None:
        self.dir = workdir
        self.port = free_port()
        self.persistence = persistence
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf = workdir / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            *(extra or ("allow_anonymous true",)),
            f"persistence {'true' if persistence else 'false'}",
            f"log_dest file {workdir / 'mosquitto.log'}",
        ]
        if persistence:
            lines.append(f"persistence_location {workdir}/")
        if os.geteuid() == 0:
            lines.append("user root")  # otherwise it drops to 'mosquitto' and cannot write
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        assert self.proc is None
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return
            time.sleep(0.02)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def log(self) -> str:
        p = self.dir / "mosquitto.log"
        return p.read_text() if p.exists() else ""


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    d = tmp_path / "broker"
    d.mkdir()
    b = Broker(d)
    b.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def persistent_broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker that keeps sessions across its own restart (for offline subscribers)."""
    d = tmp_path / "pbroker"
    d.mkdir()
    b = Broker(d, persistence=True)
    b.start()
    try:
        yield b
    finally:
        b.stop()


async def collect(
    client: aiomqtt.Client,
    n: int,
    timeout: float = 5.0,
) -> list[aiomqtt.Message]:
    """The next ``n`` messages of an already subscribed client (fewer on timeout)."""
    out: list[aiomqtt.Message] = []

    async def run() -> None:
        async for msg in client.messages:
            out.append(msg)
            if len(out) >= n:
                return

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(run(), timeout)
    return out


async def retained(port: int, topic: str, timeout: float = 0.4) -> dict[str, bytes]:
    """Retained messages under ``topic`` (a filter), read by a fresh subscriber."""
    found: dict[str, bytes] = {}
    async with aiomqtt.Client("127.0.0.1", port) as c:
        await c.subscribe(topic, qos=1)

        async def run() -> None:
            async for msg in c.messages:
                if msg.retain:
                    found[str(msg.topic)] = bytes(msg.payload)  # type: ignore[arg-type]

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run(), timeout)
    return found


# -- HTTP ---------------------------------------------------------------------------------
@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class HttpServer:
    """Scripted answers per path: each request pops the next action of the path's list
    (the last one repeats). An action is a status code or ``"hang"`` (no answer until the
    test ends)."""

    port: int
    scripts: dict[str, list[int | str]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, *actions: int | str) -> str:
        self.scripts[path] = list(actions)
        return self.url(path)

    def next_action(self, path: str) -> int | str:
        with self.lock:
            actions = self.scripts.get(path, [200])
            return actions.pop(0) if len(actions) > 1 else actions[0]

    def received(self, path: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path == path]


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    state = HttpServer(port=0)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            with state.lock:
                state.requests.append(
                    Request(self.path, dict(self.headers.items()), body, time.monotonic())
                )
            action = state.next_action(self.path)
            if action == "hang":
                state.release.wait(10)
                return
            assert isinstance(action, int)
            payload = json.dumps({"status": action}).encode()
            self.send_response(action)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


# -- index and events ---------------------------------------------------------------------
@pytest.fixture
def index(tmp_path: Path) -> Iterator[Index]:
    root = tmp_path / "storage"
    root.mkdir()
    db = Database(f"sqlite:///{root / 'vigil.db'}")
    try:
        yield Index(db, root)
    finally:
        db.close()


@dataclass(frozen=True)
class FakeEvent:
    """Shaped like ``vigil.analytics.pipeline.AnalyticsEvent`` (times: epoch seconds)."""

    kind: str
    camera: str
    event_id: str
    track_id: int = 1
    label: str = "person"
    start_time: float = T0
    end_time: float | None = None
    max_score: float = 0.8
    box: tuple[float, float, float, float] = (0.1, 0.2, 0.3, 0.4)
    zones: tuple[str, ...] = ()
    current_zones: tuple[str, ...] = ()
    lines_crossed: tuple[tuple[str, str], ...] = ()
    stationary: bool = False
    snapshot_jpeg: bytes | None = None
    snapshot_time: float | None = None
    snapshot_box: tuple[float, float, float, float] | None = None
    end_reason: str | None = None


# -- PostgreSQL ---------------------------------------------------------------------------
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@contextlib.contextmanager
def pg_url() -> Iterator[str]:
    """A fresh, empty database on the local PostgreSQL (127.0.0.1:5432, trust auth),
    dropped afterwards. PostgreSQL is a supported index database, so a machine without it
    fails these tests rather than skipping them."""
    import uuid

    from sqlalchemy import create_engine, text

    name = f"vigil_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        finally:
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    finally:
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Index]:
    """An index on SQLite, then on PostgreSQL (the store's SQL must give the same answers
    and plans that use the same indexes on both)."""
    root = tmp_path / "storage"
    root.mkdir()
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{root / 'vigil.db'}"
        else:
            url = stack.enter_context(pg_url())
        db = Database(url)
        try:
            yield Index(db, root)
        finally:
            db.close()
