"""MQTT publisher against a real Mosquitto: event messages, retained counts and state, Home
Assistant discovery, availability with last will, and a broker outage with a bounded
queue delivered in order after the broker comes back."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from vigil.config.events_model import MqttConfig
from vigil.events.mqtt import MqttPublisher, topic_level
from vigil.events.types import EventChange, EventRecord

from .conftest import Broker, collect, retained

REPO = Path(__file__).resolve().parents[2]


def record(
    event_id: str, camera: str = "cam1", label: str = "person", end_us: int | None = None
) -> EventRecord:
    return EventRecord(
        id=event_id,
        camera=camera,
        label=label,
        track_id=1,
        start_us=1_760_000_000_000_000,
        end_us=end_us,
        max_score=0.9,
        zones=("yard",),
        lines=(),
        snapshot=None,
        snapshot_us=None,
        snapshot_box=None,
        stationary=False,
        end_reason="lost" if end_us else None,
        created_us=0,
        updated_us=0,
    )


def change(kind: str, event_id: str, **kw: object) -> EventChange:
    after = record(event_id, end_us=1_760_000_005_000_000 if kind == "end" else None, **kw)  # type: ignore[arg-type]
    before = None if kind == "new" else record(event_id, **kw)  # type: ignore[arg-type]
    return EventChange(kind, before, after, box=(0.1, 0.1, 0.2, 0.2))  # type: ignore[arg-type]


def config(port: int, **kw: object) -> MqttConfig:
    base: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "client_id": "vigil-test",
        "reconnect_initial": 0.1,
        "reconnect_max": 0.3,
        "publish_timeout": 2,
        "discovery_labels": ["person"],
    }
    base.update(kw)
    return MqttConfig.model_validate(base)


@pytest.fixture
def publisher_factory() -> Iterator[list[MqttPublisher]]:
    made: list[MqttPublisher] = []
    yield made
    for p in made:
        p.stop(2)


def wait_for(pred: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


async def test_events_counts_discovery_availability(
    broker: Broker, publisher_factory: list[MqttPublisher]
) -> None:
    async with aiomqtt.Client("127.0.0.1", broker.port) as sub:
        await sub.subscribe("vigil/events", qos=1)
        pub = MqttPublisher(config(broker.port), cameras=["cam1"])
        publisher_factory.append(pub)
        pub.start()
        pub.publish_event(change("new", "e1"))
        pub.publish_event(change("new", "e2"))
        pub.publish_event(change("update", "e1"))
        pub.publish_event(change("new", "c1", label="car"))
        pub.publish_event(change("end", "e2"))
        msgs = await collect(sub, 5)
    docs = [json.loads(bytes(m.payload)) for m in msgs]  # type: ignore[arg-type]
    assert [(d["type"], d["after"]["id"]) for d in docs] == [
        ("new", "e1"),
        ("new", "e2"),
        ("update", "e1"),
        ("new", "c1"),
        ("end", "e2"),
    ]
    assert docs[0]["before"] is None and docs[0]["after"]["camera"] == "cam1"
    assert docs[2]["before"]["id"] == "e1" and docs[4]["after"]["end_time"] == 1_760_000_005.0
    assert not msgs[0].retain

    assert wait_for(lambda: pub.stats.delivered == 5)
    state = await retained(broker.port, "vigil/#")
    assert state["vigil/available"] == b"online"
    assert state["vigil/cam1/person"] == b"1"  # e1 ongoing, e2 ended
    assert state["vigil/cam1/car"] == b"1"
    assert state["vigil/cam1/motion"] == b"OFF"
    assert "vigil/events" not in state
    assert pub.counts() == {("cam1", "person"): 1, ("cam1", "car"): 1}

    pub.set_motion("cam1", True)
    pub.set_camera_state("cam1", False)
    pub.publish_event(change("end", "e1"))
    assert wait_for(lambda: pub.stats.delivered == 6)
    await asyncio.sleep(0.1)
    state = await retained(broker.port, "vigil/cam1/#")
    assert state["vigil/cam1/motion"] == b"ON"
    assert state["vigil/cam1/state"] == b"offline"
    assert state["vigil/cam1/person"] == b"0"

    disc = await retained(broker.port, "homeassistant/#")
    motion = json.loads(disc["homeassistant/binary_sensor/vigil_cam1_motion/config"])
    assert motion["state_topic"] == "vigil/cam1/motion"
    assert motion["device_class"] == "motion"
    assert (motion["payload_on"], motion["payload_off"]) == ("ON", "OFF")
    assert motion["availability_topic"] == "vigil/available"
    assert motion["unique_id"] == "vigil_cam1_motion"
    assert motion["device"]["identifiers"] == ["vigil_cam1"]
    person = json.loads(disc["homeassistant/sensor/vigil_cam1_person_count/config"])
    assert person["state_topic"] == "vigil/cam1/person"
    assert person["unique_id"] == "vigil_cam1_person_count"
    assert person["availability_topic"] == "vigil/available"
    assert person["device"] == motion["device"]
    # a label first seen in an event is announced too
    car = json.loads(disc["homeassistant/sensor/vigil_cam1_car_count/config"])
    assert car["state_topic"] == "vigil/cam1/car"

    # a clean stop says offline itself (the will only fires on unclean loss)
    pub.stop(3)
    state = await retained(broker.port, "vigil/available")
    assert state["vigil/available"] == b"offline"


def test_topic_levels_are_safe() -> None:
    assert topic_level("traffic light") == "traffic_light"
    assert topic_level("a/b+#") == "a_b__"
    assert topic_level("motion") == "motion_label"  # would clash with <camera>/motion


async def test_last_will_when_publisher_is_killed(broker: Broker) -> None:
    async with aiomqtt.Client("127.0.0.1", broker.port) as sub:
        await sub.subscribe("vigil/available", qos=1)
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.events.mqtt_child", str(broker.port)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
        )
        try:
            assert child.stdout is not None
            line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), 15)
            assert line.strip() == b"ready"
            msgs = await collect(sub, 1)
            assert [bytes(m.payload) for m in msgs] == [b"online"]  # type: ignore[arg-type]
            child.send_signal(signal.SIGKILL)  # no DISCONNECT: the broker sends the will
            child.wait(5)
            msgs = await collect(sub, 1)
            assert [bytes(m.payload) for m in msgs] == [b"offline"]  # type: ignore[arg-type]
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(5)
    state = await retained(broker.port, "vigil/available")
    assert state["vigil/available"] == b"offline"  # the will is retained


async def test_broker_down_bounded_queue_then_in_order(
    persistent_broker: Broker, publisher_factory: list[MqttPublisher]
) -> None:
    broker = persistent_broker
    # A persistent subscriber session (QoS 1): the broker keeps it across its restart and
    # queues messages for it, so whoever reconnects first, nothing is missed.
    sub_kw: dict[str, object] = {"identifier": "test-sub", "clean_session": False}
    async with aiomqtt.Client("127.0.0.1", broker.port, **sub_kw) as sub:  # type: ignore[arg-type]
        await sub.subscribe("vigil/events", qos=1)
        pub = MqttPublisher(config(broker.port, queue_max=20))
        publisher_factory.append(pub)
        pub.start()
        pub.publish_event(change("new", "warmup"))
        first = await collect(sub, 1)
        assert json.loads(bytes(first[0].payload))["after"]["id"] == "warmup"  # type: ignore[arg-type]
        broker.stop()
    assert wait_for(lambda: not pub.stats.connected)

    for i in range(50):
        pub.publish_event(change("new", f"e{i:03d}"))
    st = pub.stats
    assert (st.queued, st.dropped) == (20, 30)  # bounded: the 30 oldest were dropped
    await asyncio.sleep(0.5)  # a few reconnect attempts fail meanwhile
    assert pub.stats.queued == 20 and pub.stats.failures >= 1

    broker.start()
    assert await asyncio.to_thread(wait_for, lambda: pub.stats.queued == 0, 10)
    async with aiomqtt.Client("127.0.0.1", broker.port, **sub_kw) as sub:  # type: ignore[arg-type]
        msgs = await collect(sub, 20)
    ids = [json.loads(bytes(m.payload))["after"]["id"] for m in msgs]  # type: ignore[arg-type]
    assert ids == [f"e{i:03d}" for i in range(30, 50)]
    assert pub.stats.delivered == 21 and pub.stats.connects == 2
    # retained state is restored on the restarted broker by the publisher itself
    state = await retained(broker.port, "vigil/cam1/person")
    assert state["vigil/cam1/person"] == b"51"


async def test_login_with_password_from_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    pwfile = tmp_path / "passwd"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(pwfile), "vigil", "right-pw-123"], check=True
    )
    pwfile.chmod(0o600)
    d = tmp_path / "authbroker"
    d.mkdir()
    broker = Broker(d, extra=("allow_anonymous false", f"password_file {pwfile}"))
    broker.start()
    made: list[MqttPublisher] = []
    try:
        monkeypatch.setenv("VIGIL_MQTT_PW", "wrong-pw-456")
        caplog.set_level("DEBUG")
        bad = MqttPublisher(config(broker.port, username="vigil", password_env="VIGIL_MQTT_PW"))
        made.append(bad)
        bad.start()
        assert wait_for(lambda: bad.stats.failures >= 2)
        assert not bad.stats.connected
        bad.stop(2)
        assert "wrong-pw-456" not in caplog.text

        monkeypatch.setenv("VIGIL_MQTT_PW", "right-pw-123")
        good = MqttPublisher(
            config(broker.port, username="vigil", password_env="VIGIL_MQTT_PW", client_id="g")
        )
        made.append(good)
        good.start()
        assert wait_for(lambda: good.stats.connected)
        assert "right-pw-123" not in caplog.text
        assert "right-pw-123" not in repr(good.cfg)
    finally:
        for p in made:
            p.stop(2)
        broker.stop()


def test_mqtt_config_checks() -> None:
    with pytest.raises(ValueError):
        MqttConfig(host="h", password_env="X")  # password without user
    with pytest.raises(ValueError):
        MqttConfig(host="h", topic_prefix="vigil/#")
    with pytest.raises(ValueError):
        MqttConfig(host="h", tls={"key_file": "/k.pem"})  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        MqttConfig(host="h", surprise=True)  # type: ignore[call-arg]
    cfg = MqttConfig.model_validate({"host": "h", "reconnect_max": "2m"})
    assert cfg.reconnect_max == 120 and cfg.resolve_password() is None


def _self_signed(d: Path) -> tuple[Path, Path]:
    """A self-signed CA-capable certificate for 127.0.0.1 and its key (PEM files)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vigil-test-broker")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = d / "server.pem", d / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


async def test_tls_verified_connection(tmp_path: Path) -> None:
    d = tmp_path / "tlsbroker"
    d.mkdir()
    cert, key = _self_signed(d)
    other_ca, _ = _self_signed(tmp_path)  # a CA that did not sign the broker certificate
    broker = Broker(d, extra=("allow_anonymous true", f"certfile {cert}", f"keyfile {key}"))
    broker.start()
    made: list[MqttPublisher] = []
    try:
        good = MqttPublisher(config(broker.port, tls={"ca_file": str(cert)}, client_id="t1"))
        wrong = MqttPublisher(config(broker.port, tls={"ca_file": str(other_ca)}, client_id="t2"))
        made += [good, wrong]
        good.start()
        wrong.start()
        good.publish_event(change("new", "tls-1"))
        assert wait_for(lambda: good.stats.delivered == 1)
        assert wait_for(lambda: wrong.stats.failures >= 2)
        assert not wrong.stats.connected and wrong.stats.connects == 0
    finally:
        for p in made:
            p.stop(2)
        broker.stop()
