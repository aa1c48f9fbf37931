"""Signed webhook notifications with retries and a dead-letter table.

Request. ``POST <url>`` with ``Content-Type: application/json`` and the body the same JSON
as the MQTT ``<p>/events`` message (``{"type", "before", "after"}``). Headers:

* ``X-Vigil-Event``: ``new``, ``update`` or ``end``.
* ``X-Vigil-Delivery``: a UUID of this delivery, identical on every retry (and on a replay
  from the dead-letter table), so a receiver can drop duplicates.
* ``X-Vigil-Timestamp``: Unix time in whole seconds when this attempt was signed.
* ``X-Vigil-Signature``: ``sha256=<hex>``, the lowercase hex HMAC-SHA256, keyed with the
  webhook secret (the UTF-8 bytes of the environment variable's value), over the bytes::

      <X-Vigil-Timestamp as ASCII decimal> "." <exact request body bytes>

  The receiver recomputes it over the raw body (before any JSON parsing), compares in
  constant time and rejects timestamps more than a few minutes from its clock; because the
  timestamp is signed, a captured request cannot be replayed later. See
  :func:`verify_signature` for a reference implementation. Without ``secret_env`` the
  signature header is omitted.

Delivery. Each webhook attempt has a connect timeout and a total timeout. Network errors,
timeouts, 5xx and 429 are retried with exponential back-off and full jitter (a 429/503
``Retry-After`` of up to ``backoff_max`` seconds is honoured) until ``max_attempts``; any
other answer outside 2xx (4xx, and 3xx since redirects are not followed) is final. A
delivery that fails for good is written to the ``webhook_dead_letters`` table with its exact
body, the attempts made and the last error; :func:`list_dead_letters` and
:func:`replay_dead_letters` are the CLI-facing functions. Deliveries still queued when the
dispatcher stops, or dropped because the queue was full, are dead-lettered too, so nothing
is lost silently. A database table was chosen over a JSON-lines file because it works the
same on a remote PostgreSQL index and lets a replay mark rows as delivered.

The dispatcher owns an asyncio loop in a thread with ``concurrency`` workers (bounding
both connections and deliveries in progress); deliveries may complete out of order.
Environment proxy variables are ignored: webhooks go where the configuration says.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select, update

from vigil.config.events_model import WebhookConfig, WebhooksConfig
from vigil.events.queue import BoundedQueue
from vigil.events.types import EventChange
from vigil.index.db import Database
from vigil.index.events_models import WebhookDeadLetter
from vigil.index.repository import now_us
from vigil.util.redact import redact_text, redact_url, register_secret

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Vigil-Signature"
TIMESTAMP_HEADER = "X-Vigil-Timestamp"
DELIVERY_HEADER = "X-Vigil-Delivery"
EVENT_HEADER = "X-Vigil-Event"
USER_AGENT = "Vigil-Webhook/1"


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``X-Vigil-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret, str(int(timestamp)).encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: bytes,
    body: bytes,
    timestamp: str,
    signature: str,
    *,
    tolerance: float = 300.0,
    now: float | None = None,
) -> bool:
    """Receiver-side check: the signature matches and the timestamp is within
    ``tolerance`` seconds of ``now``."""
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)


def matches(hook: WebhookConfig, change: EventChange) -> bool:
    """Whether ``change`` passes the webhook's filters."""
    if change.type not in hook.event_types:
        return False
    if hook.cameras is not None and change.camera not in hook.cameras:
        return False
    if hook.labels is not None and change.label not in hook.labels:
        return False
    return hook.zones is None or any(z in hook.zones for z in change.after.zones)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One body to POST to one webhook; ``delivery_id`` is stable across retries."""

    webhook: str
    delivery_id: str
    event_id: str
    event_type: str
    body: bytes


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    ok: bool
    attempts: int
    status: int | None
    error: str  # empty when ok


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    webhook: str
    url: str
    delivery_id: str
    event_id: str
    event_type: str
    body: str
    attempts: int
    last_status: int | None
    last_error: str
    created_us: int
    replayed_us: int | None


@dataclass(frozen=True, slots=True)
class WebhookStats:
    queued: int
    dropped: int
    delivered: int
    dead_lettered: int
    attempts: int


def _retryable_status(status: int) -> bool:
    return status >= 500 or status == 429


def _retry_after(resp: httpx.Response, cap: float) -> float | None:
    value = resp.headers.get("Retry-After")
    if value is None:
        return None
    try:
        secs = float(value)
    except ValueError:
        return None
    return min(max(secs, 0.0), cap)


class DeadLetterLog:
    """The ``webhook_dead_letters`` table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, hook: WebhookConfig, delivery: Delivery, result: DeliveryResult) -> int:
        with self.db.session() as s:
            row = WebhookDeadLetter(
                webhook=delivery.webhook,
                url=redact_url(hook.url),
                delivery_id=delivery.delivery_id,
                event_id=delivery.event_id,
                event_type=delivery.event_type,
                body=delivery.body.decode(),
                attempts=result.attempts,
                last_status=result.status,
                last_error=redact_text(result.error)[:2000],
                created_us=now_us(),
                replayed_us=None,
            )
            s.add(row)
            s.commit()
            return row.id

    def list(
        self, *, include_replayed: bool = False, webhook: str | None = None, limit: int = 100
    ) -> list[DeadLetter]:
        q = select(WebhookDeadLetter).order_by(WebhookDeadLetter.id)
        if not include_replayed:
            q = q.where(WebhookDeadLetter.replayed_us.is_(None))
        if webhook is not None:
            q = q.where(WebhookDeadLetter.webhook == webhook)
        with self.db.session() as s:
            return [
                DeadLetter(
                    id=r.id,
                    webhook=r.webhook,
                    url=r.url,
                    delivery_id=r.delivery_id,
                    event_id=r.event_id,
                    event_type=r.event_type,
                    body=r.body,
                    attempts=r.attempts,
                    last_status=r.last_status,
                    last_error=r.last_error,
                    created_us=r.created_us,
                    replayed_us=r.replayed_us,
                )
                for r in s.scalars(q.limit(max(1, limit)))
            ]

    def record_replay(self, letter_id: int, result: DeliveryResult) -> None:
        values: dict[str, Any]
        if result.ok:
            values = {"replayed_us": now_us()}
        else:
            values = {
                "attempts": WebhookDeadLetter.attempts + result.attempts,
                "last_status": result.status,
                "last_error": redact_text(result.error)[:2000],
            }
        with self.db.session() as s:
            s.execute(
                update(WebhookDeadLetter).where(WebhookDeadLetter.id == letter_id).values(**values)
            )
            s.commit()


class WebhookSender:
    """Delivers one :class:`Delivery` with retries (no queue, no thread): the part shared by
    the dispatcher and :func:`replay_dead_letters`."""

    def __init__(
        self,
        hooks: Sequence[WebhookConfig],
        client: httpx.AsyncClient,
        *,
        sleep: Callable[[float], Any] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.hooks = {h.name: h for h in hooks}
        self.client = client
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.attempts = 0
        self._secrets: dict[str, bytes | None] = {}
        for h in hooks:
            secret = h.resolve_secret()  # LookupError now rather than at the first event
            if secret:
                register_secret(secret.decode())
            self._secrets[h.name] = secret

    def headers(self, hook: WebhookConfig, delivery: Delivery) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            EVENT_HEADER: delivery.event_type,
            DELIVERY_HEADER: delivery.delivery_id,
        }
        secret = self._secrets.get(hook.name)
        ts = int(time.time())
        headers[TIMESTAMP_HEADER] = str(ts)
        if secret:
            headers[SIGNATURE_HEADER] = sign(secret, ts, delivery.body)
        return headers

    async def attempt(
        self, hook: WebhookConfig, delivery: Delivery
    ) -> tuple[int | None, str, float | None]:
        """One POST; returns (status, error, Retry-After seconds). Status None means a
        network error or timeout; an empty error means success."""
        self.attempts += 1
        timeout = httpx.Timeout(hook.timeout, connect=hook.connect_timeout)
        try:
            # wait_for caps the whole exchange: httpx timeouts are per phase, and a server
            # dripping one byte a second would never trip the read timeout.
            resp = await asyncio.wait_for(
                self.client.post(
                    hook.url,
                    content=delivery.body,
                    headers=self.headers(hook, delivery),
                    timeout=timeout,
                ),
                hook.timeout,
            )
        except (TimeoutError, httpx.TimeoutException):
            return None, f"timed out after {hook.timeout:g} s", None
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}", None
        if 200 <= resp.status_code < 300:
            return resp.status_code, "", None
        return (
            resp.status_code,
            f"HTTP {resp.status_code}",
            _retry_after(resp, hook.backoff_max),
        )

    async def deliver(self, delivery: Delivery) -> DeliveryResult:
        hook = self.hooks.get(delivery.webhook)
        if hook is None:
            return DeliveryResult(False, 0, None, f"webhook {delivery.webhook!r} not configured")
        cap = hook.backoff_initial
        status: int | None = None
        error = ""
        for n in range(1, hook.max_attempts + 1):
            status, error, after = await self.attempt(hook, delivery)
            if not error:
                return DeliveryResult(True, n, status, "")
            if status is not None and not _retryable_status(status):
                return DeliveryResult(False, n, status, error)
            if n == hook.max_attempts:
                break
            delay = self._rng.uniform(cap * 0.1, cap)  # full jitter with a small floor
            if after is not None:
                delay = max(delay, after)
            cap = min(cap * 2, hook.backoff_max)
            log.info(
                "webhook %s attempt %d/%d failed (%s); retrying in %.2f s",
                hook.name,
                n,
                hook.max_attempts,
                error,
                delay,
            )
            await self._sleep(delay)
        return DeliveryResult(False, hook.max_attempts, status, error)


def new_client(concurrency: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
    )


class WebhookDispatcher:
    """Thread-safe front of the webhook workers. :meth:`submit` never blocks."""

    def __init__(self, cfg: WebhooksConfig, dead_letters: DeadLetterLog) -> None:
        self.cfg = cfg
        self.hooks = list(cfg.endpoints)
        self.dead_letters = dead_letters
        self._queue: BoundedQueue[Delivery] = BoundedQueue(cfg.queue_max, on_put=self._wake_soon)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = threading.Event()
        self._stop_ev: asyncio.Event | None = None
        self._stop_deadline = 0.0
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._sender: WebhookSender | None = None
        self.delivered = 0
        self.dead_lettered = 0
        # fail at construction on a missing secret, not at the first event
        for h in self.hooks:
            h.resolve_secret()

    def submit(self, change: EventChange) -> int:
        """Queue ``change`` for every webhook whose filters it passes; returns how many."""
        n = 0
        body: bytes | None = None
        for hook in self.hooks:
            if not matches(hook, change):
                continue
            if body is None:
                body = json.dumps(change.to_json(), separators=(",", ":")).encode()
            delivery = Delivery(hook.name, str(uuid.uuid4()), change.event_id, change.type, body)
            dropped = self._queue.put(delivery)
            if dropped is not None:
                self._dead_letter(dropped, DeliveryResult(False, 0, None, "queue full"))
            n += 1
        return n

    @property
    def stats(self) -> WebhookStats:
        return WebhookStats(
            queued=len(self._queue),
            dropped=self._queue.dropped,
            delivered=self.delivered,
            dead_lettered=self.dead_lettered,
            attempts=self._sender.attempts if self._sender else 0,
        )

    def _dead_letter(self, delivery: Delivery, result: DeliveryResult) -> None:
        hook = next((h for h in self.hooks if h.name == delivery.webhook), None)
        if hook is None:
            return
        log.warning(
            "webhook %s: delivery %s of event %s failed after %d attempt(s): %s",
            hook.name,
            delivery.delivery_id,
            delivery.event_id,
            result.attempts,
            result.error,
        )
        try:
            self.dead_letters.add(hook, delivery, result)
            self.dead_lettered += 1
        except Exception:
            log.exception("cannot write webhook dead letter")

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("dispatcher already started")
        self._thread = threading.Thread(target=self._run, name="vigil-webhooks", daemon=True)
        self._thread.start()
        self._ready.wait(5.0)

    def stop(self, timeout: float = 5.0) -> None:
        """Give deliveries in progress up to ``timeout`` to finish, then cancel them; every
        delivery not done (queued or cancelled) is dead-lettered for replay."""
        thread = self._thread
        if thread is None:
            return
        self._stop_deadline = time.monotonic() + timeout * 0.8
        self._stopping.set()
        loop, stop_ev = self._loop, self._stop_ev
        if loop is not None and stop_ev is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop_ev.set)
        self._wake_soon()
        thread.join(timeout + 2.0)
        for d in self._queue.drain():
            self._dead_letter(d, DeliveryResult(False, 0, None, "not sent before shutdown"))

    def _wake_soon(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(wake.set)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception:
            log.exception("webhook dispatcher crashed")

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stop_ev = asyncio.Event()
        if self._stopping.is_set():
            self._stop_ev.set()
        async with new_client(self.cfg.concurrency) as client:
            self._sender = WebhookSender(self.hooks, client)
            self._ready.set()
            workers = [
                asyncio.ensure_future(self._worker(self._sender))
                for _ in range(self.cfg.concurrency)
            ]
            await self._stop_ev.wait()
            # stop: let current deliveries finish until the deadline, then cancel them
            remaining = max(0.0, self._stop_deadline - time.monotonic())
            _, pending = await asyncio.wait(workers, timeout=remaining)
            for w in pending:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _wake_wait(self, timeout: float | None) -> None:
        assert self._wake is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)
        self._wake.clear()

    async def _worker(self, sender: WebhookSender) -> None:
        while not self._stopping.is_set():
            delivery = self._queue.get_nowait()
            if delivery is None:
                await self._wake_wait(0.5)
                continue
            try:
                result = await sender.deliver(delivery)
            except asyncio.CancelledError:
                self._dead_letter(delivery, DeliveryResult(False, 0, None, "cancelled at shutdown"))
                raise
            except Exception as exc:  # a bug must not kill the worker
                log.exception("webhook delivery failed unexpectedly")
                result = DeliveryResult(False, 0, None, f"internal error: {exc}")
            if result.ok:
                self.delivered += 1
            else:
                await asyncio.to_thread(self._dead_letter, delivery, result)


def list_dead_letters(
    db: Database, *, include_replayed: bool = False, webhook: str | None = None, limit: int = 100
) -> list[DeadLetter]:
    """Dead-lettered deliveries, oldest first (for ``vigil events dead-letters``)."""
    return DeadLetterLog(db).list(include_replayed=include_replayed, webhook=webhook, limit=limit)


def replay_dead_letters(
    db: Database,
    cfg: WebhooksConfig,
    ids: Iterable[int] | None = None,
    *,
    webhook: str | None = None,
) -> dict[int, DeliveryResult]:
    """Send dead-lettered deliveries again (all not yet replayed, or the given ids), with
    the webhook's current URL, secret and retry policy, one after the other in id order.

    A success marks the row replayed; a failure adds to its attempt count and keeps it.
    Blocking; meant for the CLI, not for the event path. Returns id -> result.
    """
    dl = DeadLetterLog(db)
    letters = dl.list(include_replayed=ids is not None, webhook=webhook, limit=1_000_000)
    if ids is not None:
        wanted = set(ids)
        letters = [x for x in letters if x.id in wanted]

    async def run() -> dict[int, DeliveryResult]:
        out: dict[int, DeliveryResult] = {}
        async with new_client(cfg.concurrency) as client:
            sender = WebhookSender(cfg.endpoints, client)
            for letter in letters:
                delivery = Delivery(
                    letter.webhook,
                    letter.delivery_id,
                    letter.event_id,
                    letter.event_type,
                    letter.body.encode(),
                )
                result = await sender.deliver(delivery)
                await asyncio.to_thread(dl.record_replay, letter.id, result)
                out[letter.id] = result
        return out

    return asyncio.run(run())
