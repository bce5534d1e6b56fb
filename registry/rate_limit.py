"""A token bucket per key (an API key, a client address): `rate_per_min` sustained and a burst,
kept in memory. It suits one process; limits that must hold across processes and restarts live
in a database (the wallet's `Throttle`)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from registry.error_codes import ErrorCode
from registry.problems import RateLimited

MAX_KEYS = (
    100_000  # past this many keys, the idle ones (full buckets) are forgotten (a sweep then, not every call)
)


class KeyedTokenBucket:
    def __init__(
        self, rate_per_min: float, *, burst: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = rate_per_min / 60.0
        self._burst = burst if burst is not None else max(rate_per_min / 6.0, 10.0)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, *, what: str = "requests") -> None:
        """Spend one token of `key`, or raise RATE_LIMITED with the seconds to wait (`retryAfter`)."""
        self._use(key, what, spend=True)

    def check(self, key: str, *, what: str = "requests") -> None:
        """Raise RATE_LIMITED if `key` has no token left, without spending one: with `spend`, for
        limits that count only what failed (a wrong claim code, not a redeemed one)."""
        self._use(key, what, spend=False)

    def spend(self, key: str) -> None:
        """Spend one token of `key` even if none is left (it then waits the longer)."""
        with self._lock:
            tokens, now = self._refilled(key)
            self._buckets[key] = (tokens - 1, now)

    def _refilled(self, key: str) -> tuple[float, float]:
        now = self._clock()
        tokens, last = self._buckets.get(key, (self._burst, now))
        return min(self._burst, tokens + (now - last) * self._rate), now

    def _use(self, key: str, what: str, *, spend: bool) -> None:
        with self._lock:
            tokens, now = self._refilled(key)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                wait_s = max(1, math.ceil((1 - tokens) / self._rate)) if self._rate > 0 else 60
                raise RateLimited(
                    f"Too many {what}: slow down and retry in {wait_s} s",
                    code=ErrorCode.RATE_LIMITED,
                    retryAfter=wait_s,
                )
            self._buckets[key] = (tokens - 1 if spend else tokens, now)
            if len(self._buckets) > MAX_KEYS:
                self._forget_idle(now)

    def _forget_idle(self, now: float) -> None:
        idle = [
            k
            for k, (tokens, last) in self._buckets.items()
            if tokens + (now - last) * self._rate >= self._burst
        ]
        for key in idle:
            del self._buckets[key]
