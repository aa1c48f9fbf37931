"""Analytics inside the running recorder: people on real footage raise events that are
stored, held and published to a real MQTT broker; a tree in the wind raises none; a broken
model file disables analytics for its camera only."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from tests.events.conftest import Broker
from tests.runtime.conftest import check_storage_consistent, make_config, sim_camera
from vigil.events.store import EventStore
from vigil.index.db import Database
from vigil.index.repository import Index
from vigil.runtime.nvr import NVR
from vigil.sim.controller import Simulator


@pytest.fixture
def mqtt_broker(tmp_path: Path) -> Iterator[Broker]:
    d = tmp_path / "broker"
    d.mkdir()
    b = Broker(d)
    b.start()
    try:
        yield b
    finally:
        b.stop()


class Subscriber:
    """Collects messages on a topic filter in a background asyncio loop."""

    def __init__(self, port: int, topic: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._run(port, topic),))
        self._thread.start()
        assert self.ready.wait(10), "subscriber did not connect"

    async def _run(self, port: int, topic: str) -> None:
        async with aiomqtt.Client("127.0.0.1", port) as client:
            await client.subscribe(topic)
            self.ready.set()
            while not self._stop.is_set():
                try:
                    async with asyncio.timeout(0.2):
                        msg = await anext(client.messages)
                except TimeoutError:
                    continue
                self.messages.append((str(msg.topic), bytes(msg.payload)))  # type: ignore[arg-type]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


def test_people_raise_events_published_to_mqtt(tmp_path: Path, mqtt_broker: Broker) -> None:
    bad_model = tmp_path / "model.onnx"
    bad_model.write_bytes(b"this is not an onnx model")
    with Simulator() as sim:
        sim.start(
            [
                sim_camera(
                    "hall",
                    source="vtest",
                    width=768,
                    height=576,
                    fps=10,
                    bitrate_kbps=800,
                    duration=30,
                ),
                sim_camera(
                    "garden",
                    source="tree",
                    width=320,
                    height=240,
                    fps=10,
                    bitrate_kbps=300,
                    duration=10,
                ),
                sim_camera("lobby"),
            ]
        )
        on: dict[str, Any] = {"enabled": True, "fps": 5}
        cfg = make_config(
            tmp_path,
            [
                {"name": "hall", "main": {"url": sim.url("hall")}, "analytics": on},
                {"name": "garden", "main": {"url": sim.url("garden")}, "analytics": on},
                {
                    "name": "lobby",
                    "main": {"url": sim.url("lobby")},
                    "analytics": {**on, "detector": {"type": "onnx", "model": str(bad_model)}},
                },
            ],
            events={"mqtt": {"host": "127.0.0.1", "port": mqtt_broker.port}},
        )
        sub = Subscriber(mqtt_broker.port, "vigil/#")
        nvr = NVR(cfg)
        nvr.open()
        nvr.start()
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if any(t == "vigil/events" and b'"hall"' in p for t, p in sub.messages):
                    break
                time.sleep(0.5)
            time.sleep(3)
            nvr.write_status()
            lobby = nvr.units["lobby"]
            garden_stats = nvr.units["garden"].analytics.stats  # type: ignore[union-attr]
        finally:
            nvr.stop()
            sub.close()

    # The broken model disabled analytics for its camera only; it still recorded.
    assert lobby.analytics is None and "analytics disabled" in (lobby.analytics_error or "")
    index = check_storage_consistent(cfg)
    assert {n for n, _ in index.segments()} == {"hall", "garden", "lobby"}
    status = {r.camera: r for r in index.statuses()}
    assert "analytics disabled" in status["lobby"].detail

    store = EventStore(Index(Database(cfg.database_url()), cfg.storage.path))
    hall = store.search(camera="hall").items
    assert hall and all(e.label == "person" for e in hall)
    garden = store.search(camera="garden").items
    assert garden == [], "a tree in the wind is not a person"
    assert garden_stats.frames_analysed > 0
    assert store.activity("garden", 0, 2**40), "tree motion is on the timeline"

    first = hall[-1]
    assert store.snapshot_path(first) is not None and store.snapshot_path(first).exists()
    # The event's recording span is on hold, so retention cannot delete it.
    cid = index.camera_id("hall")
    assert index.held(cid, first.start_us, first.start_us + 1, time.time_ns() // 1000)

    published = [json.loads(p) for t, p in sub.messages if t == "vigil/events"]
    assert any(
        m["after"]["camera"] == "hall" and m["after"]["label"] == "person" for m in published
    )
    assert any(t == "vigil/available" for t, _ in sub.messages)
