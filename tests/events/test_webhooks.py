"""Webhooks against real HTTP servers: signatures, timeouts, retries with back-off, no retry
on 4xx, dead letters and their replay, filters, URL validation."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from vigil.config.events_model import WebhookConfig, WebhooksConfig
from vigil.events.types import EventChange, EventRecord
from vigil.events.webhooks import (
    DeadLetterLog,
    WebhookDispatcher,
    list_dead_letters,
    matches,
    replay_dead_letters,
    sign,
    verify_signature,
)
from vigil.index.repository import Index

from .conftest import HttpServer, free_port

SECRET = "s3cret-for-tests"


@pytest.fixture(autouse=True)
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_TEST_HOOK_SECRET", SECRET)


def record(event_id: str = "e1", camera: str = "cam1", label: str = "person") -> EventRecord:
    return EventRecord(
        id=event_id,
        camera=camera,
        label=label,
        track_id=1,
        start_us=1_760_000_000_000_000,
        end_us=None,
        max_score=0.9,
        zones=("yard",),
        lines=(),
        snapshot=None,
        snapshot_us=None,
        snapshot_box=None,
        stationary=False,
        end_reason=None,
        created_us=0,
        updated_us=0,
    )


def change(event_id: str = "e1", kind: str = "new", **kw: Any) -> EventChange:
    return EventChange(kind, None, record(event_id, **kw))  # type: ignore[arg-type]


def hook(name: str, url: str, **kw: Any) -> WebhookConfig:
    base: dict[str, Any] = {
        "name": name,
        "url": url,
        "secret_env": "VIGIL_TEST_HOOK_SECRET",
        "connect_timeout": 0.5,
        "timeout": 0.4,
        "max_attempts": 3,
        "backoff_initial": 0.05,
        "backoff_max": 0.1,
        "event_types": ["new", "update", "end"],
    }
    base.update(kw)
    return WebhookConfig.model_validate(base)


@pytest.fixture
def dispatch(index: Index) -> Iterator[list[WebhookDispatcher]]:
    made: list[WebhookDispatcher] = []
    yield made
    for d in made:
        d.stop(1)


def start(index: Index, made: list[WebhookDispatcher], *hooks: WebhookConfig) -> WebhookDispatcher:
    d = WebhookDispatcher(
        WebhooksConfig(endpoints=list(hooks), concurrency=2), DeadLetterLog(index.db)
    )
    made.append(d)
    d.start()
    return d


def wait_for(pred: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


def test_signature_verifies(
    index: Index, http_server: HttpServer, dispatch: list[WebhookDispatcher]
) -> None:
    d = start(index, dispatch, hook("ok", http_server.script("/ok", 200)))
    assert d.submit(change("e1")) == 1
    assert wait_for(lambda: d.stats.delivered == 1)
    [req] = http_server.received("/ok")
    h = {k.lower(): v for k, v in req.headers.items()}
    ts, sig = h["x-vigil-timestamp"], h["x-vigil-signature"]
    assert abs(int(ts) - time.time()) < 10
    assert sig.startswith("sha256=") and len(sig) == 7 + 64
    assert verify_signature(SECRET.encode(), req.body, ts, sig)
    # the documented scheme, spelled out: HMAC-SHA256(secret, "<ts>." + body)
    import hashlib
    import hmac

    mac = hmac.new(SECRET.encode(), ts.encode() + b"." + req.body, hashlib.sha256)
    assert sig == "sha256=" + mac.hexdigest() == sign(SECRET.encode(), int(ts), req.body)
    assert not verify_signature(SECRET.encode(), req.body + b" ", ts, sig)  # tampered body
    assert not verify_signature(b"other", req.body, ts, sig)
    assert not verify_signature(SECRET.encode(), req.body, str(int(ts) - 1), sig)  # moved ts
    assert not verify_signature(SECRET.encode(), req.body, ts, sig, now=int(ts) + 3600)  # old
    assert h["x-vigil-event"] == "new" and h["content-type"] == "application/json"
    doc = json.loads(req.body)
    assert doc["type"] == "new" and doc["after"]["id"] == "e1" and doc["before"] is None


def test_hanging_endpoint_times_out_retries_then_dead_letters(
    index: Index, http_server: HttpServer, dispatch: list[WebhookDispatcher]
) -> None:
    d = start(index, dispatch, hook("slow", http_server.script("/hang", "hang")))
    t0 = time.monotonic()
    d.submit(change("e1"))
    assert wait_for(lambda: d.stats.dead_lettered == 1, 10)
    elapsed = time.monotonic() - t0
    reqs = http_server.received("/hang")
    assert len(reqs) == 3  # max_attempts
    assert len({r.headers["X-Vigil-Delivery"] for r in reqs}) == 1  # same delivery id
    assert 3 * 0.4 <= elapsed < 5  # each attempt was cut at the total timeout
    [dl] = list_dead_letters(index.db)
    assert dl.webhook == "slow" and dl.attempts == 3 and dl.last_status is None
    assert "timed out" in dl.last_error and dl.event_id == "e1" and dl.event_type == "new"
    assert json.loads(dl.body)["after"]["id"] == "e1"
    assert d.stats.delivered == 0


def test_500_then_200_is_delivered_once(
    index: Index, http_server: HttpServer, dispatch: list[WebhookDispatcher]
) -> None:
    url = http_server.script("/flaky", 500, 429, 200)
    d = start(index, dispatch, hook("flaky", url))
    d.submit(change("e1"))
    assert wait_for(lambda: d.stats.delivered == 1)
    reqs = http_server.received("/flaky")
    assert len(reqs) == 3
    assert reqs[0].body == reqs[1].body == reqs[2].body
    assert reqs[1].at - reqs[0].at >= 0.005  # backed off between attempts
    time.sleep(0.2)
    assert len(http_server.received("/flaky")) == 3  # and no more after success
    assert list_dead_letters(index.db) == [] and d.stats.dead_lettered == 0


def test_4xx_is_not_retried_and_replay_works(
    index: Index, http_server: HttpServer, dispatch: list[WebhookDispatcher]
) -> None:
    url = http_server.script("/bad", 400)
    cfg_hook = hook("bad", url)
    d = start(index, dispatch, cfg_hook)
    d.submit(change("e9", kind="end"))
    assert wait_for(lambda: d.stats.dead_lettered == 1)
    time.sleep(0.2)
    assert len(http_server.received("/bad")) == 1
    [dl] = list_dead_letters(index.db)
    assert dl.last_status == 400 and dl.attempts == 1 and dl.last_error == "HTTP 400"
    original = http_server.received("/bad")[0]

    # the receiver is fixed; the operator replays from the CLI
    http_server.script("/bad", 200)
    results = replay_dead_letters(index.db, WebhooksConfig(endpoints=[cfg_hook]))
    assert results[dl.id].ok
    second = http_server.received("/bad")[1]
    assert second.body == original.body
    assert second.headers["X-Vigil-Delivery"] == original.headers["X-Vigil-Delivery"]
    assert verify_signature(
        SECRET.encode(),
        second.body,
        second.headers["X-Vigil-Timestamp"],
        second.headers["X-Vigil-Signature"],
    )
    assert list_dead_letters(index.db) == []
    [done] = list_dead_letters(index.db, include_replayed=True)
    assert done.replayed_us is not None


def test_failed_replay_keeps_the_letter(index: Index, http_server: HttpServer) -> None:
    url = http_server.script("/gone", 410)
    h = hook("gone", url)
    from vigil.events.webhooks import Delivery, DeliveryResult

    DeadLetterLog(index.db).add(
        h, Delivery("gone", "d-1", "e1", "new", b"{}"), DeliveryResult(False, 3, 503, "HTTP 503")
    )
    res = replay_dead_letters(index.db, WebhooksConfig(endpoints=[h]))
    [(lid, r)] = res.items()
    assert not r.ok and r.status == 410
    [dl] = list_dead_letters(index.db)
    assert dl.id == lid and dl.attempts == 4 and dl.last_status == 410


def test_connection_refused_is_retried(index: Index, dispatch: list[WebhookDispatcher]) -> None:
    d = start(index, dispatch, hook("down", f"http://127.0.0.1:{free_port()}/x"))
    d.submit(change())
    assert wait_for(lambda: d.stats.dead_lettered == 1)
    assert d.stats.attempts == 3
    [dl] = list_dead_letters(index.db)
    assert "ConnectError" in dl.last_error


def test_filters(index: Index, http_server: HttpServer, dispatch: list[WebhookDispatcher]) -> None:
    people = hook("people", http_server.script("/p", 200), labels=["person"], cameras=["cam1"])
    ends = hook("ends", http_server.script("/e", 200), event_types=["end"], zones=["yard"])
    d = start(index, dispatch, people, ends)
    assert d.submit(change("a", label="car")) == 0
    assert d.submit(change("b", camera="cam2")) == 0
    assert d.submit(change("c")) == 1
    assert d.submit(change("c", kind="end")) == 2
    assert wait_for(lambda: d.stats.delivered == 3)
    assert [json.loads(r.body)["type"] for r in http_server.received("/e")] == ["end"]
    assert len(http_server.received("/p")) == 2
    assert not matches(hook("z", "http://x/", zones=["door"]), change())


def test_stop_dead_letters_what_was_not_sent(
    index: Index, http_server: HttpServer, dispatch: list[WebhookDispatcher]
) -> None:
    d = start(index, dispatch, hook("slow", http_server.script("/hang", "hang"), timeout=5))
    for i in range(5):
        d.submit(change(f"e{i}"))
    assert wait_for(lambda: len(http_server.received("/hang")) == 2)  # concurrency 2
    d.stop(0.5)
    letters = list_dead_letters(index.db)
    assert sorted(x.event_id for x in letters) == [f"e{i}" for i in range(5)]


def test_queue_is_bounded(index: Index) -> None:
    cfg = WebhooksConfig(endpoints=[hook("h", "http://127.0.0.1:9/")], queue_max=3)
    d = WebhookDispatcher(cfg, DeadLetterLog(index.db))  # not started: nothing is sent
    for i in range(5):
        d.submit(change(f"e{i}"))
    assert d.stats.queued == 3 and d.stats.dropped == 2
    assert [x.event_id for x in list_dead_letters(index.db)] == ["e0", "e1"]


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "file:///etc/passwd",
        "http://user:pw@example.com/",
        "http:///nohost",
        "https://example.com/a b",
        "javascript:alert(1)",
    ],
)
def test_url_validation(url: str) -> None:
    with pytest.raises(ValidationError):
        hook("x", url)


def test_config_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    assert hook("x", "https://example.com/hook").event_types == ["new", "update", "end"]
    assert WebhookConfig(name="d", url="http://h/").event_types == ["new", "end"]
    with pytest.raises(ValidationError):
        WebhookConfig(name="d", url="http://h/", surprise=1)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        WebhookConfig(name="d", url="http://h/", secret_env="not a name")
    with pytest.raises(ValidationError):
        WebhooksConfig(endpoints=[hook("a", "http://h/"), hook("a", "http://i/")])
    monkeypatch.delenv("VIGIL_TEST_HOOK_SECRET")
    with pytest.raises(LookupError):
        WebhookDispatcher(WebhooksConfig(endpoints=[hook("a", "http://h/")]), None)  # type: ignore[arg-type]
