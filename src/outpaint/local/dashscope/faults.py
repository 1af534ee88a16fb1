"""Injected faults for hostile-service tests: random 429/500/503 answers and added latency."""

from __future__ import annotations

import asyncio
import random

from .settings import Range, Settings
from .wire import INTERNAL_ERROR, MODEL_UNAVAILABLE, THROTTLING, ApiError


class Faults:
    """Draws from its own seeded stream so fault knobs never shift the task timing draws."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"{seed}/faults")  # noqa: S311 - simulation, not security

    async def delay(self, settings: Settings) -> None:
        """Sleep for the configured added latency (a fixed value or a uniform draw from a range)."""
        seconds = self.draw(settings.latency)
        if seconds > 0:
            await asyncio.sleep(seconds)

    def inject(self, settings: Settings) -> None:
        """Maybe refuse an otherwise valid request: 429 ``Throttling``, then 500 or 503 (even odds)."""
        if settings.throttle_rate and self._rng.random() < settings.throttle_rate:
            raise ApiError(THROTTLING)
        if settings.error_rate and self._rng.random() < settings.error_rate:
            raise ApiError(self._rng.choice((INTERNAL_ERROR, MODEL_UNAVAILABLE)))

    def draw(self, bounds: Range) -> float:
        low, high = bounds
        return low if low == high else self._rng.uniform(low, high)
