"""Reconnect delays: exponential back-off with full jitter.

A power cut brings every camera back at once, and an NVR that retries them all in lockstep
hammers a recovering switch or a camera's tiny RTSP server. Full jitter (the delay is drawn
uniformly from ``[floor, cap]`` with ``cap`` doubling per failure up to ``maximum``)
spreads retries out; the small floor keeps a run of unlucky draws from turning into a busy
loop. After a connection has been healthy for a while the back-off starts over, so a
camera that drops once a day reconnects within about ``initial`` seconds.
"""

from __future__ import annotations

import random


class Backoff:
    def __init__(
        self,
        initial: float = 1.0,
        maximum: float = 60.0,
        *,
        floor_fraction: float = 0.1,
        rng: random.Random | None = None,
    ) -> None:
        if initial <= 0 or maximum <= 0:
            raise ValueError("back-off delays must be positive")
        self.initial = initial
        self.maximum = max(maximum, initial)
        self.floor = initial * floor_fraction
        self.attempt = 0
        self._rng = rng or random.Random()

    def cap(self, attempt: int | None = None) -> float:
        """Upper bound of the delay for the given (default: next) attempt."""
        n = self.attempt if attempt is None else attempt
        return min(self.maximum, self.initial * (2.0 ** min(n, 62)))

    def next_delay(self) -> float:
        """Delay before the next attempt; each call counts as one more failure."""
        cap = self.cap()
        self.attempt += 1
        return self._rng.uniform(min(self.floor, cap), cap)

    def reset(self) -> None:
        self.attempt = 0
