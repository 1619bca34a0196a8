"""Token buckets for requests-per-minute and tokens-per-minute, shared by every stage that
uses a backend. Callers wait (asynchronously) instead of being refused."""

from __future__ import annotations

import asyncio
import time


class TokenBucket:
    """`rate_per_minute` units per minute, bursting up to one second's worth (at least 1),
    so a fresh run does not fire a whole minute's budget at once."""

    def __init__(self, rate_per_minute: float, burst_seconds: float = 1.0):
        self.rate = rate_per_minute / 60.0
        self.capacity = max(1.0, self.rate * burst_seconds)
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    async def acquire(self, amount: float = 1.0) -> float:
        """Take `amount` units, waiting as long as needed; returns seconds waited.

        An amount larger than the bucket (one huge prompt) is allowed to drive the balance
        negative, so it waits proportionally instead of forever.
        """
        if not self._lock.locked():  # nobody waits: take the units without queueing
            self._refill()
            if self.tokens >= min(amount, self.capacity):
                self.tokens -= amount
                return 0.0
        waited = 0.0
        async with self._lock:
            self._refill()
            need = min(amount, self.capacity)
            while self.tokens < need:
                delay = (need - self.tokens) / self.rate
                await asyncio.sleep(delay)
                waited += delay
                self._refill()
            self.tokens -= amount
        return waited

    def refund(self, amount: float) -> None:
        """Give back units that were reserved but not used (estimates corrected after a call)."""
        self._refill()
        self.tokens = min(self.capacity, self.tokens + amount)
