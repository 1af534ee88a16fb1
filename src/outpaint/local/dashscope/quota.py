"""Request-rate limiting: one token bucket per limit (submit QPS, query QPS)."""

from __future__ import annotations

import math
import time


class TokenBucket:
    """Holds up to ``ceil(rate)`` tokens (at least 1), refilled at ``rate`` per second.

    A full bucket admits a burst of ``ceil(rate)`` requests at once; after that, one request per
    ``1/rate`` seconds. A refused request takes no token.
    """

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, float(math.ceil(rate)))
        self._tokens = self.capacity
        self._stamp = time.monotonic()

    def take(self) -> bool:
        """Take one token if there is one."""
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def set_rate(self, rate: float) -> None:
        """Change the rate live, keeping (at most a full bucket of) the tokens already earned."""
        self._refill()
        self.rate = rate
        self.capacity = max(1.0, float(math.ceil(rate)))
        self._tokens = min(self._tokens, self.capacity)

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
