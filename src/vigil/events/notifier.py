"""Fan-out of analytics results: event store first, then MQTT and webhooks.

The analytics pipeline calls :meth:`Notifier.on_event` / :meth:`Notifier.on_activity`
from its own thread, once per change. Those calls only append to a bounded queue and
return: writing the database, fsyncing a snapshot or talking to a broker must never slow
down frame analysis. One worker thread then stores each change (which is what makes it
durable and gives it a before/after) and hands the result to the MQTT publisher and the
webhook dispatcher, both of which queue again without blocking.

When the queue is full (the database is stalled), pending ``update`` changes and motion
samples are dropped first: each event change carries the event's full state, so the next
update or the end supersedes them. Starts and ends are dropped only if nothing else is
left to drop, and every drop is counted.

Motion state for MQTT is derived from the per-second activity: ``ON`` as soon as a second
has motion, ``OFF`` after ``motion_off_delay`` seconds without, or when the camera goes
offline.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from vigil.config.events_model import EventsConfig
from vigil.events.queue import BoundedQueue
from vigil.events.store import EventStore
from vigil.events.types import ActivityLike, EventChange, EventLike
from vigil.index.repository import Index

if TYPE_CHECKING:
    # Imported by build_notifier only when configured: aiomqtt/paho and httpx (which pulls
    # click and rich) cost ~30 MB in a recorder that publishes nothing.
    from vigil.events.mqtt import MqttPublisher
    from vigil.events.webhooks import WebhookDispatcher

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Item:
    kind: Literal["event", "activity", "state"]
    event: EventLike | None = None
    activity: ActivityLike | None = None
    camera: str = ""
    online: bool = True


def _expendable(item: _Item) -> bool:
    return item.kind == "activity" or (item.event is not None and item.event.kind == "update")


@dataclass(frozen=True, slots=True)
class NotifierStats:
    queued: int
    dropped: int
    stored: int
    errors: int


class Notifier:
    """Stores analytics results and fans them out, off the caller's thread."""

    def __init__(
        self,
        store: EventStore,
        *,
        mqtt: MqttPublisher | None = None,
        webhooks: WebhookDispatcher | None = None,
        queue_max: int = 10_000,
        motion_off_delay: float = 30.0,
    ) -> None:
        self.store = store
        self.mqtt = mqtt
        self.webhooks = webhooks
        self.motion_off_delay = motion_off_delay
        self._queue: BoundedQueue[_Item] = BoundedQueue(queue_max, expendable=_expendable)
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._motion_on: dict[str, bool] = {}
        self._last_motion: dict[str, int] = {}
        self._done = 0  # items taken off the queue and handled (or failed)
        self.stored = 0
        self.errors = 0

    # -- producer side (any thread, never blocks) ----------------------------------------------
    def on_event(self, ev: EventLike) -> None:
        """Pipeline ``on_event`` callback."""
        self._put(_Item("event", event=ev))

    def on_activity(self, act: ActivityLike) -> None:
        """Pipeline ``on_activity`` callback."""
        self._put(_Item("activity", activity=act))

    def on_camera_state(self, camera: str, online: bool) -> None:
        """Camera health changed (retained ``<p>/<camera>/state``)."""
        self._put(_Item("state", camera=camera, online=online))

    def _put(self, item: _Item) -> None:
        if self._queue.put(item) is not None and self._queue.dropped % 100 == 1:
            log.warning("event queue full: %d item(s) dropped so far", self._queue.dropped)

    @property
    def stats(self) -> NotifierStats:
        return NotifierStats(len(self._queue), self._queue.dropped, self.stored, self.errors)

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, *, close_dangling: bool = True) -> None:
        """Close events left open by a crash (announcing their end), start the publishers
        and the worker."""
        if self._thread is not None:
            raise RuntimeError("notifier already started")
        if self.mqtt is not None:
            self.mqtt.start()
        if self.webhooks is not None:
            self.webhooks.start()
        if close_dangling:
            for rec in self.store.close_dangling():
                self._fan_out(EventChange(type="end", before=None, after=rec))
        elif self.mqtt is not None:
            self.mqtt.seed_active(
                EventChange(type="new", before=None, after=rec) for rec in self.store.ongoing()
            )
        self._thread = threading.Thread(target=self._run, name="vigil-notifier", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Store what is queued, then stop the publishers (which flush what they can)."""
        if self._thread is not None:
            self._stopping.set()
            self._queue.wake()
            self._thread.join(timeout / 2)
        if self.webhooks is not None:
            self.webhooks.stop(timeout / 4)
        if self.mqtt is not None:
            self.mqtt.stop(timeout / 4)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until the queue is empty (tests, orderly shutdown); True if it emptied."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._done + self._queue.dropped >= self._queue.put_count:
                return True
            time.sleep(0.01)
        return False

    def _run(self) -> None:
        while True:
            item = self._queue.get(timeout=0.5)
            if item is None:
                if self._stopping.is_set():
                    return
                continue
            try:
                self._handle(item)
            except Exception:
                self.errors += 1
                log.exception("cannot store or publish %s", item.kind)
            finally:
                self._done += 1

    def _handle(self, item: _Item) -> None:
        if item.kind == "event" and item.event is not None:
            change = self.store.apply(item.event)
            self.stored += 1
            if change is not None:
                self._fan_out(change)
        elif item.kind == "activity" and item.activity is not None:
            self.store.add_activity(item.activity)
            self._motion(item.activity)
        elif item.kind == "state" and self.mqtt is not None:
            self.mqtt.set_camera_state(item.camera, item.online)
            if not item.online:
                self._set_motion(item.camera, False)

    def _fan_out(self, change: EventChange) -> None:
        if self.mqtt is not None:
            self.mqtt.publish_event(change)
        if self.webhooks is not None:
            self.webhooks.submit(change)

    def _motion(self, act: ActivityLike) -> None:
        cam = act.camera
        if act.motion_frames > 0:
            self._last_motion[cam] = act.second
            self._set_motion(cam, True)
        elif self._motion_on.get(cam) and (
            act.second - self._last_motion.get(cam, act.second) >= self.motion_off_delay
        ):
            self._set_motion(cam, False)

    def _set_motion(self, camera: str, on: bool) -> None:
        if self._motion_on.get(camera) == on:
            return
        self._motion_on[camera] = on
        if self.mqtt is not None:
            self.mqtt.set_motion(camera, on)


def build_notifier(cfg: EventsConfig, index: Index, cameras: list[str]) -> Notifier:
    """Wire the store and the configured notifiers (none are created when not configured,
    so there is no outbound connection unless asked for, and neither the MQTT client nor
    the HTTP client library is imported). Call ``start()`` on the result."""
    store = EventStore.from_config(index, cfg)
    mqtt: MqttPublisher | None = None
    hooks: WebhookDispatcher | None = None
    if cfg.mqtt is not None:
        from vigil.events.mqtt import MqttPublisher

        mqtt = MqttPublisher(cfg.mqtt, cameras=cameras)
    if cfg.webhooks.endpoints:
        from vigil.events.webhooks import DeadLetterLog, WebhookDispatcher

        hooks = WebhookDispatcher(cfg.webhooks, DeadLetterLog(index.db))
    return Notifier(
        store,
        mqtt=mqtt,
        webhooks=hooks,
        queue_max=cfg.queue_max,
        motion_off_delay=cfg.mqtt.motion_off_delay if cfg.mqtt is not None else 30.0,
    )
