"""A thread-safe, bounded, drop-oldest queue.

Every hand-off between the analytics threads and the notifiers goes through one of these:
a producer must never block (a camera's analysis must not stall because a broker or a
webhook is slow), and memory must stay bounded however long a consumer is down. When
full, the oldest item goes (optionally the oldest *expendable* one first) and is counted,
so loss is visible in statistics instead of silent.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class BoundedQueue(Generic[T]):
    def __init__(
        self,
        maxlen: int,
        *,
        expendable: Callable[[T], bool] | None = None,
        on_put: Callable[[], None] | None = None,
    ) -> None:
        """``expendable(item)`` marks items to drop before any other when full (e.g. event
        updates, superseded by the next update or end). ``on_put`` is called after every
        put, outside the lock (used to wake an asyncio loop)."""
        if maxlen < 1:
            raise ValueError("maxlen must be at least 1")
        self.maxlen = maxlen
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._expendable = expendable
        self.on_put = on_put
        self.dropped = 0
        self.put_count = 0

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def put(self, item: T) -> T | None:
        """Append ``item``; returns the item dropped to make room, if any."""
        dropped: T | None = None
        with self._cond:
            if len(self._items) >= self.maxlen:
                dropped = self._drop_one()
            self._items.append(item)
            self.put_count += 1
            self._cond.notify()
        if self.on_put is not None:
            self.on_put()
        return dropped

    def _drop_one(self) -> T:
        if self._expendable is not None:
            for i, candidate in enumerate(self._items):
                if self._expendable(candidate):
                    del self._items[i]
                    self.dropped += 1
                    return candidate
        self.dropped += 1
        return self._items.popleft()

    def peek(self) -> T | None:
        with self._cond:
            return self._items[0] if self._items else None

    def remove_head(self, item: T) -> bool:
        """Remove ``item`` if it is still at the head (it may have been dropped meanwhile,
        in which case the new head must stay). Identity, not equality, is compared."""
        with self._cond:
            if self._items and self._items[0] is item:
                self._items.popleft()
                return True
            return False

    def get_nowait(self) -> T | None:
        with self._cond:
            return self._items.popleft() if self._items else None

    def get(self, timeout: float | None = None) -> T | None:
        """Block until an item is available (or ``timeout``); None on timeout."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            return self._items.popleft() if self._items else None

    def drain(self) -> list[T]:
        with self._cond:
            items = list(self._items)
            self._items.clear()
            return items

    def wake(self) -> None:
        """Wake a thread blocked in :meth:`get` (used to stop consumers)."""
        with self._cond:
            self._cond.notify_all()
