"""The notifier end to end: pipeline callbacks -> store -> MQTT and webhooks, without
blocking the caller; motion ON/OFF; dangling events closed and announced at start-up."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import aiomqtt
import pytest

from vigil.config.events_model import EventsConfig
from vigil.events.notifier import Notifier, build_notifier
from vigil.events.store import EventStore
from vigil.index.repository import Index

from .conftest import T0, Broker, FakeEvent, HttpServer, collect, retained


@dataclass(frozen=True)
class Act:
    camera: str
    second: int
    peak: float
    mean: float
    motion_frames: int


def wait_for(pred: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


def events_config(broker_port: int, hook_url: str) -> EventsConfig:
    return EventsConfig.model_validate(
        {
            "pre_roll": "3s",
            "post_roll": "4s",
            "retention": "30d",
            "mqtt": {
                "host": "127.0.0.1",
                "port": broker_port,
                "client_id": "vigil-notifier-test",
                "discovery_labels": [],
                "motion_off_delay": 2,
                "reconnect_initial": 0.1,
                "reconnect_max": 0.3,
            },
            "webhooks": {
                "endpoints": [
                    {
                        "name": "ha",
                        "url": hook_url,
                        "secret_env": "VIGIL_TEST_HOOK_SECRET",
                        "event_types": ["new", "end"],
                        "timeout": 1,
                    }
                ]
            },
        }
    )


async def test_fan_out_end_to_end(
    index: Index, broker: Broker, http_server: HttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIGIL_TEST_HOOK_SECRET", "k")
    cfg = events_config(broker.port, http_server.script("/hook", 200))
    notifier = build_notifier(cfg, index, ["cam1"])
    assert notifier.store.pre_roll_us == 3_000_000
    async with aiomqtt.Client("127.0.0.1", broker.port) as sub:
        await sub.subscribe("vigil/events", qos=1)
        notifier.start()
        try:
            t0 = time.perf_counter()
            notifier.on_event(FakeEvent("start", "cam1", "e1", zones=("yard",)))
            notifier.on_event(FakeEvent("update", "cam1", "e1", max_score=0.99))
            notifier.on_event(FakeEvent("end", "cam1", "e1", end_time=T0 + 8))
            for s in range(3):
                notifier.on_activity(Act("cam1", int(T0) + s, 0.2, 0.1, 3))
            assert time.perf_counter() - t0 < 0.05  # the caller only enqueues
            msgs = await collect(sub, 3)
            assert notifier.flush()
            assert [json.loads(bytes(m.payload))["type"] for m in msgs] == [  # type: ignore[arg-type]
                "new",
                "update",
                "end",
            ]
            assert await_wait(lambda: len(http_server.received("/hook")) == 2)
            types = [json.loads(r.body)["type"] for r in http_server.received("/hook")]
            assert sorted(types) == ["end", "new"]  # updates are filtered by default

            rec = notifier.store.get("e1")
            assert rec is not None and rec.end_us == int((T0 + 8) * 1e6)
            assert rec.max_score == pytest.approx(0.99)
            assert len(notifier.store.activity("cam1", int(T0), int(T0) + 10)) == 3
            assert notifier.stats.stored == 3 and notifier.stats.dropped == 0

            state = await retained(broker.port, "vigil/cam1/#")
            assert state["vigil/cam1/motion"] == b"ON"
            assert state["vigil/cam1/person"] == b"0"
            # no motion for motion_off_delay seconds -> OFF; camera offline is announced
            notifier.on_activity(Act("cam1", int(T0) + 3, 0.0, 0.0, 0))
            notifier.on_activity(Act("cam1", int(T0) + 4, 0.0, 0.0, 0))
            notifier.on_camera_state("cam1", False)
            assert notifier.flush()
            assert await_wait(lambda: notifier.mqtt is not None and notifier.mqtt.stats.queued == 0)
            time.sleep(0.1)
            state = await retained(broker.port, "vigil/cam1/#")
            assert state["vigil/cam1/motion"] == b"OFF"
            assert state["vigil/cam1/state"] == b"offline"
        finally:
            notifier.stop(4)


def await_wait(pred: Any) -> bool:
    return wait_for(pred, 5.0)


def test_no_outbound_without_config(index: Index) -> None:
    n = build_notifier(EventsConfig(), index, ["cam1"])
    assert n.mqtt is None and n.webhooks is None
    n.start()
    try:
        n.on_event(FakeEvent("start", "cam1", "e1"))
        assert n.flush()
        assert n.store.get("e1") is not None
    finally:
        n.stop(2)


def test_dangling_closed_at_start_and_queue_bounded(index: Index) -> None:
    store = EventStore(index)
    store.apply(FakeEvent("start", "cam1", "left-open"))
    n = Notifier(store, queue_max=10)
    # not started: the queue fills; updates and activity are dropped before starts/ends
    for i in range(5):
        n.on_event(FakeEvent("start", "cam1", f"s{i}"))
    for i in range(10):
        n.on_event(FakeEvent("update", "cam1", "s0", max_score=0.5 + i / 100))
    for i in range(5):
        n.on_event(FakeEvent("end", "cam1", f"s{i}", end_time=T0 + 1))
    assert n.stats.queued == 10 and n.stats.dropped == 10
    n.start()
    try:
        assert n.flush()
        rec = store.get("left-open")
        assert rec is not None and rec.end_reason == "interrupted"
        assert store.search(ongoing=True).items == []
        assert all(store.get(f"s{i}") is not None for i in range(5))
    finally:
        n.stop(2)
