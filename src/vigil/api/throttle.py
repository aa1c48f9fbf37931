"""Login rate limiting with temporary, exponentially growing lockouts.

Keys are ``user:<name>`` and ``ip:<address>``. An account is locked after
``max_failures`` failed logins in a row, an address after four times as many (one address
may serve a whole office behind NAT). Each further lockout of the same key doubles the
duration up to a maximum; a success resets the failure count (not the lockout level,
which decays after a day without failures).

Unknown user names are counted exactly like real ones, so a lockout does not reveal
whether an account exists. State is kept in memory, bounded (least recently used keys
are dropped first): a restart forgets it, which an attacker cannot cause from outside.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from vigil.index.repository import now_us

_DAY_US = 86_400_000_000


@dataclass(slots=True)
class _Entry:
    failures: int = 0
    locked_until_us: int = 0
    lockouts: int = 0
    last_us: int = 0


class LoginThrottle:
    def __init__(
        self,
        max_failures: int,
        lockout_s: float,
        lockout_max_s: float,
        *,
        ip_factor: int = 4,
        capacity: int = 10_000,
        clock: Callable[[], int] = now_us,
    ) -> None:
        self.max_failures = max_failures
        self.lockout_us = int(lockout_s * 1_000_000)
        self.lockout_max_us = int(lockout_max_s * 1_000_000)
        self.ip_factor = ip_factor
        self.capacity = capacity
        self.clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def _limit(self, key: str) -> int:
        return self.max_failures * (self.ip_factor if key.startswith("ip:") else 1)

    def _get(self, key: str, now: int) -> _Entry:
        e = self._entries.get(key)
        if e is None:
            e = _Entry(last_us=now)
            self._entries[key] = e
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(key)
            if now - e.last_us > _DAY_US and e.locked_until_us <= now:
                e.failures, e.lockouts = 0, 0
        return e

    def locked_for(self, keys: Iterable[str]) -> float:
        """Seconds until every key is unlocked (0.0: none is locked)."""
        now = self.clock()
        with self._lock:
            worst = 0
            for k in keys:
                e = self._entries.get(k)
                if e is not None and e.locked_until_us > now:
                    worst = max(worst, e.locked_until_us - now)
            return worst / 1_000_000

    def failure(self, keys: Iterable[str]) -> None:
        now = self.clock()
        with self._lock:
            for k in keys:
                e = self._get(k, now)
                e.failures += 1
                e.last_us = now
                if e.failures >= self._limit(k):
                    duration = min(self.lockout_us * (2**e.lockouts), self.lockout_max_us)
                    e.locked_until_us = now + duration
                    e.lockouts += 1
                    e.failures = 0

    def success(self, keys: Iterable[str]) -> None:
        now = self.clock()
        with self._lock:
            for k in keys:
                e = self._entries.get(k)
                if e is not None:
                    e.failures = 0
                    e.last_us = now
