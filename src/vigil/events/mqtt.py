"""Publishing events, live counts and motion to an MQTT broker, with Home Assistant discovery.

Topics (``<p>`` is ``topic_prefix``, default ``vigil``):

* ``<p>/events`` -- one JSON message per event change: ``{"type": "new"|"update"|"end",
  "before": <event or null>, "after": <event>}`` (not retained).
* ``<p>/<camera>/<label>`` -- retained number of ongoing events of that label.
* ``<p>/<camera>/motion`` -- retained ``ON``/``OFF``.
* ``<p>/<camera>/state`` -- retained ``online``/``offline`` from camera health.
* ``<p>/available`` -- retained ``online`` once connected; the broker publishes the
  registered last will ``offline`` if the connection dies without a clean disconnect, and a
  clean stop publishes ``offline`` itself.
* ``<discovery_prefix>/binary_sensor/vigil_<camera>_motion/config`` and
  ``<discovery_prefix>/sensor/vigil_<camera>_<label>_count/config`` -- retained Home
  Assistant discovery documents.

Design. The recorder and analytics are threaded, aiomqtt is asyncio: the publisher owns an
event loop in its own thread and exposes thread-safe, never-blocking methods. Two kinds of
outgoing data are kept differently, because they fail differently:

* **Event messages** go through a bounded FIFO (:class:`~vigil.events.queue.BoundedQueue`).
  Each is removed only after the broker acknowledged it (QoS 1), so a broker outage keeps
  them (up to ``queue_max``, oldest dropped and counted) and a reconnect delivers them in
  order. Delivery is at-least-once: a message whose acknowledgement was lost with the
  connection is sent again.
* **Retained state** (counts, motion, camera state, discovery) is a map of topic -> latest
  payload. Only the latest value matters, so it is never queued: changed topics are sent
  as soon as possible and every topic is re-sent after each (re)connect, which also restores
  retained messages on a broker that restarted without persistence.

Reconnects use exponential back-off with jitter. The password is read from the environment
at connect time and registered for log redaction; it is never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aiomqtt

from vigil import __version__
from vigil.config.events_model import MqttConfig, MqttTlsConfig
from vigil.events.queue import BoundedQueue
from vigil.events.types import EventChange
from vigil.ingest.backoff import Backoff
from vigil.util.redact import register_secret

log = logging.getLogger(__name__)

_LEVEL_RE = re.compile(r"[^A-Za-z0-9_-]")
# Per-camera topic levels used by Vigil itself; a label with such a name gets a suffix.
_RESERVED_LEVELS = frozenset({"motion", "state"})
# A session shorter than this does not reset the back-off (a broker that accepts and then
# drops us at once must not be hammered at the shortest delay).
_HEALTHY_SESSION_S = 5.0


def topic_level(name: str) -> str:
    """A label or camera as one safe topic level / HA object id: no '/', '+', '#', spaces."""
    level = _LEVEL_RE.sub("_", name) or "_"
    return f"{level}_label" if level in _RESERVED_LEVELS else level


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=False).encode()


def tls_context(tls: MqttTlsConfig) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
    if tls.cert_file is not None:
        ctx.load_cert_chain(str(tls.cert_file), str(tls.key_file) if tls.key_file else None)
    if tls.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


@dataclass(frozen=True, slots=True)
class _Msg:
    topic: str
    payload: bytes
    retain: bool = False


@dataclass(frozen=True, slots=True)
class MqttStats:
    connected: bool
    queued: int  # event messages waiting for the broker
    dropped: int  # event messages dropped because the queue was full
    delivered: int  # event messages acknowledged by the broker
    connects: int  # successful connections so far
    failures: int  # failed connection attempts and lost connections


class MqttPublisher:
    """Thread-safe MQTT publisher running its own asyncio loop in a daemon thread.

    Call :meth:`start` once, then :meth:`publish_event`, :meth:`set_motion`,
    :meth:`set_camera_state` from any thread, and :meth:`stop` at shutdown.
    """

    def __init__(self, cfg: MqttConfig, *, cameras: Iterable[str] = ()) -> None:
        self.cfg = cfg
        self.prefix = cfg.topic_prefix
        self.availability_topic = f"{self.prefix}/available"
        self.events_topic = f"{self.prefix}/events"
        self.client_id = cfg.client_id or f"vigil-{socket.gethostname()}"[:64]
        self._queue: BoundedQueue[_Msg] = BoundedQueue(cfg.queue_max, on_put=self._wake_soon)
        self._lock = threading.Lock()
        self._state: dict[str, bytes] = {}
        self._dirty: dict[str, None] = {}  # ordered set of state topics to send
        self._active: dict[tuple[str, str], set[str]] = {}
        self._labels: dict[str, set[str]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._drain_s = 2.0
        self._connected = False
        self.delivered = 0
        self.connects = 0
        self.failures = 0
        for cam in cameras:
            self.add_camera(cam)

    # -- topics ------------------------------------------------------------------------------
    def count_topic(self, camera: str, label: str) -> str:
        return f"{self.prefix}/{camera}/{topic_level(label)}"

    def motion_topic(self, camera: str) -> str:
        return f"{self.prefix}/{camera}/motion"

    def state_topic(self, camera: str) -> str:
        return f"{self.prefix}/{camera}/state"

    def _device(self, camera: str) -> dict[str, Any]:
        return {
            "identifiers": [f"vigil_{topic_level(camera)}"],
            "name": f"Vigil {camera}",
            "manufacturer": "Vigil",
            "model": "NVR camera",
            "sw_version": __version__,
        }

    def motion_discovery(self, camera: str) -> tuple[str, dict[str, Any]]:
        oid = f"vigil_{topic_level(camera)}_motion"
        return f"{self.cfg.discovery_prefix}/binary_sensor/{oid}/config", {
            "name": "Motion",
            "unique_id": oid,
            "device_class": "motion",
            "state_topic": self.motion_topic(camera),
            "payload_on": "ON",
            "payload_off": "OFF",
            "availability_topic": self.availability_topic,
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": self._device(camera),
        }

    def count_discovery(self, camera: str, label: str) -> tuple[str, dict[str, Any]]:
        oid = f"vigil_{topic_level(camera)}_{topic_level(label)}_count"
        return f"{self.cfg.discovery_prefix}/sensor/{oid}/config", {
            "name": f"{label.capitalize()} count",
            "unique_id": oid,
            "state_topic": self.count_topic(camera, label),
            "state_class": "measurement",
            "icon": "mdi:counter",
            "availability_topic": self.availability_topic,
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": self._device(camera),
        }

    # -- thread-safe API ---------------------------------------------------------------------
    def add_camera(self, camera: str, labels: Iterable[str] = ()) -> None:
        """Announce a camera: motion OFF and zero counts for the discovery labels (and
        ``labels``), plus their discovery documents."""
        with self._lock:
            self._ensure_camera(camera)
            for label in labels:
                self._ensure_label(camera, label)
        self._wake_soon()

    def publish_event(self, change: EventChange) -> None:
        """Queue the change on ``<p>/events`` and update the label count. Never blocks."""
        payload = _dumps(change.to_json())
        key = (change.camera, change.label)
        with self._lock:
            self._ensure_camera(change.camera)
            self._ensure_label(change.camera, change.label)
            active = self._active.setdefault(key, set())
            if change.type == "end":
                active.discard(change.event_id)
            else:
                active.add(change.event_id)
            self._set(self.count_topic(*key), str(len(active)).encode())
        dropped = self._queue.put(_Msg(self.events_topic, payload))
        if dropped is not None:
            log.warning(
                "MQTT queue full (%d): dropped the oldest event message", self.cfg.queue_max
            )

    def seed_active(self, changes: Iterable[EventChange]) -> None:
        """Set live counts from events known to be ongoing (e.g. at start-up)."""
        with self._lock:
            for ch in changes:
                self._ensure_camera(ch.camera)
                self._ensure_label(ch.camera, ch.label)
                active = self._active.setdefault((ch.camera, ch.label), set())
                active.add(ch.event_id)
                self._set(self.count_topic(ch.camera, ch.label), str(len(active)).encode())
        self._wake_soon()

    def set_motion(self, camera: str, active: bool) -> None:
        with self._lock:
            self._ensure_camera(camera)
            self._set(self.motion_topic(camera), b"ON" if active else b"OFF")
        self._wake_soon()

    def set_camera_state(self, camera: str, online: bool) -> None:
        with self._lock:
            self._ensure_camera(camera)
            self._set(self.state_topic(camera), b"online" if online else b"offline")
        self._wake_soon()

    def counts(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return {k: len(v) for k, v in self._active.items()}

    @property
    def stats(self) -> MqttStats:
        return MqttStats(
            connected=self._connected,
            queued=len(self._queue),
            dropped=self._queue.dropped,
            delivered=self.delivered,
            connects=self.connects,
            failures=self.failures,
        )

    # -- state (call with self._lock held) ---------------------------------------------------
    def _set(self, topic: str, payload: bytes) -> None:
        if self._state.get(topic) != payload:
            self._state[topic] = payload
            self._dirty[topic] = None

    def _ensure_camera(self, camera: str) -> None:
        if camera in self._labels:
            return
        self._labels[camera] = set()
        if self.motion_topic(camera) not in self._state:
            self._set(self.motion_topic(camera), b"OFF")
        if self.cfg.discovery:
            topic, doc = self.motion_discovery(camera)
            self._set(topic, _dumps(doc))
        for label in self.cfg.discovery_labels:
            self._ensure_label(camera, label)

    def _ensure_label(self, camera: str, label: str) -> None:
        labels = self._labels[camera]
        if label in labels:
            return
        labels.add(label)
        topic = self.count_topic(camera, label)
        if topic not in self._state:
            self._set(topic, b"0")
        if self.cfg.discovery:
            dtopic, doc = self.count_discovery(camera, label)
            self._set(dtopic, _dumps(doc))

    def _next_state(self) -> _Msg | None:
        with self._lock:
            if not self._dirty:
                return None
            topic = next(iter(self._dirty))
            del self._dirty[topic]
            return _Msg(topic, self._state[topic], retain=True)

    def _resend_all_state(self) -> None:
        with self._lock:
            self._dirty = dict.fromkeys(self._state)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("publisher already started")
        self._thread = threading.Thread(target=self._run, name="vigil-mqtt", daemon=True)
        self._thread.start()
        self._ready.wait(5.0)

    def stop(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (for up to about half of ``timeout`` if connected), publish
        ``offline``, disconnect cleanly and end the thread."""
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None:
            return
        self._drain_s = max(0.0, timeout / 2)
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        thread.join(timeout)
        if thread.is_alive():
            log.warning("MQTT publisher did not stop within %.1f s", timeout)

    def _wake_soon(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed at shutdown
                loop.call_soon_threadsafe(wake.set)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception:
            log.exception("MQTT publisher crashed")

    def _make_client(self) -> aiomqtt.Client:
        cfg = self.cfg
        password = cfg.resolve_password()
        if password:
            register_secret(password)
        return aiomqtt.Client(
            cfg.host,
            cfg.port,
            username=cfg.username,
            password=password,
            identifier=self.client_id,
            will=aiomqtt.Will(self.availability_topic, b"offline", qos=1, retain=True),
            keepalive=cfg.keepalive,
            timeout=cfg.publish_timeout,
            tls_context=tls_context(cfg.tls) if cfg.tls is not None else None,
            tls_insecure=cfg.tls.insecure if cfg.tls is not None else None,
            logger=logging.getLogger("vigil.events.mqtt.paho"),
        )

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._ready.set()
        backoff = Backoff(self.cfg.reconnect_initial, self.cfg.reconnect_max, floor_fraction=0.5)
        where = f"{self.cfg.host}:{self.cfg.port}"
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                client = self._make_client()
                async with client:
                    self._connected = True
                    self.connects += 1
                    log.info("connected to MQTT broker %s as %s", where, self.client_id)
                    await self._session(client)
            except (aiomqtt.MqttError, OSError, LookupError, ssl.SSLError) as exc:
                self.failures += 1
                log.warning("MQTT broker %s: %s", where, exc)
            except Exception:
                self.failures += 1
                log.exception("MQTT publisher error")
            finally:
                self._connected = False
            if self._stop.is_set():
                break
            if time.monotonic() - began >= _HEALTHY_SESSION_S:
                backoff.reset()
            delay = backoff.next_delay()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)

    async def _session(self, client: aiomqtt.Client) -> None:
        assert self._wake is not None and self._stop is not None
        watcher = asyncio.ensure_future(self._watch(client))
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            await self._send(client, _Msg(self.availability_topic, b"online", True), watcher)
            self._resend_all_state()
            deadline: float | None = None
            while True:
                if self._stop.is_set():
                    if deadline is None:
                        deadline = time.monotonic() + self._drain_s
                    if time.monotonic() >= deadline:
                        break
                self._wake.clear()
                msg = self._next_state()
                queued = False
                if msg is None:
                    msg = self._queue.peek()
                    queued = msg is not None
                if msg is None:
                    if self._stop.is_set():
                        break
                    waker = asyncio.ensure_future(self._wake.wait())
                    try:
                        await asyncio.wait(
                            {waker, watcher, stopping}, return_when=asyncio.FIRST_COMPLETED
                        )
                    finally:
                        waker.cancel()
                    if watcher.done():
                        watcher.result()  # raises the disconnect
                    continue
                await self._send(client, msg, watcher)
                if queued and self._queue.remove_head(msg):
                    self.delivered += 1
            # A clean disconnect does not trigger the will: say goodbye ourselves.
            with contextlib.suppress(aiomqtt.MqttError, asyncio.TimeoutError):
                await self._send(client, _Msg(self.availability_topic, b"offline", True), watcher)
        finally:
            watcher.cancel()
            stopping.cancel()
            with contextlib.suppress(BaseException):
                await watcher

    @staticmethod
    async def _watch(client: aiomqtt.Client) -> None:
        """Completes with MqttError when the connection is lost (nothing is subscribed, so
        the iterator only ever ends by disconnection)."""
        async for _ in client.messages:
            pass
        raise aiomqtt.MqttError("message iterator ended")

    async def _send(self, client: aiomqtt.Client, msg: _Msg, watcher: asyncio.Future[None]) -> None:
        pub = asyncio.ensure_future(
            client.publish(
                msg.topic,
                msg.payload,
                qos=self.cfg.qos,
                retain=msg.retain,
                timeout=self.cfg.publish_timeout,
            )
        )
        done, _ = await asyncio.wait({pub, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if pub in done:
            pub.result()
            return
        pub.cancel()
        with contextlib.suppress(BaseException):
            await pub
        watcher.result()
        raise aiomqtt.MqttError("connection lost while publishing")
