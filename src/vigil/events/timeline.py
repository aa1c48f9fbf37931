"""The timeline with its events: recorded spans and gaps from the index, detections from the
event store, clipped to the same window. The API and the CLI both use this."""

from __future__ import annotations

import dataclasses
import time

from vigil.events.store import EventStore
from vigil.evidence.timeline import Timeline, TimelineEvent, timeline


def timeline_with_events(
    store: EventStore, camera: str, start_us: int, end_us: int, *, limit: int = 1000
) -> Timeline:
    tl = timeline(store.index, camera, start_us, end_us)
    now = time.time_ns() // 1000
    page = store.search(camera=camera, start_us=start_us, end_us=end_us, limit=limit)
    events = tuple(
        TimelineEvent(
            start_us=max(rec.start_us, start_us),
            end_us=min(rec.end_us if rec.end_us is not None else now, end_us),
            kind="object",
            label=rec.label,
            reference=rec.id,
        )
        for rec in sorted(page.items, key=lambda r: r.start_us)
    )
    return dataclasses.replace(tl, events=events)
