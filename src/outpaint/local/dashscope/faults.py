"""Injected faults for hostile-service tests: random 429/500/503 answers, content-safety refusals,
late validation failures, malformed query answers and added latency."""

from __future__ import annotations

import asyncio
import random

from .settings import Range, Settings
from .wire import (
    DATA_INSPECTION_FAILED,
    IMAGE_CONTENT,
    INTERNAL_ERROR,
    LATE_VALIDATION,
    MODEL_UNAVAILABLE,
    THROTTLING,
    ApiError,
    TaskFailure,
)


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

    def refuse_input(self, settings: Settings) -> None:
        """Maybe refuse the input image as the content-safety check does (at submit)."""
        if settings.moderation_input_rate and self._rng.random() < settings.moderation_input_rate:
            raise ApiError(IMAGE_CONTENT)

    def task_failure(self, settings: Settings) -> TaskFailure | None:
        """The failure an accepted task is fated to (drawn at submit), if any: a refused output, or a
        validation the service only makes after accepting."""
        if settings.moderation_output_rate and self._rng.random() < settings.moderation_output_rate:
            return TaskFailure(DATA_INSPECTION_FAILED)
        if settings.late_failure_rate and self._rng.random() < settings.late_failure_rate:
            return TaskFailure(LATE_VALIDATION, "parameters.output_ratio")
        return None

    def drop_status(self, settings: Settings) -> bool:
        """Should this query answer leave out ``output.task_status``?"""
        return bool(settings.missing_status_rate) and self._rng.random() < settings.missing_status_rate

    def draw(self, bounds: Range) -> float:
        low, high = bounds
        return low if low == high else self._rng.uniform(low, high)
