"""The one place where jobs change state: outcomes are applied here, and nowhere else.

``apply`` writes the outcome onto the record, moves it (``job.MOVES`` refuses anything else), saves it
(record, new marker, old marker's removal) and logs one line with the same fields every time:
``job_id``, ``key``, ``variant``, ``state`` (the new one), ``previous``, ``attempt``, plus the outcome's own
(``code``, ``reason``, ``task_id``, …). ``create`` is the same for a new record.

While the poller lease is held nobody else changes a record, so the records this journal loaded or
wrote are cached and authoritative: a record whose save failed stays "dirty" and is saved again
(``flush``), never reloaded from the stale copy in the bucket.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from outpaint import log
from outpaint.job import JobRecord, State
from outpaint.outcomes import Outcome
from outpaint.store import JobStore


class Journal:
    """Applies outcomes to the records of one store, caching what it has seen."""

    def __init__(self, store: JobStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self.cache: dict[str, JobRecord] = {}
        self._persisted: dict[str, State] = {}  # the state each cached record has in the bucket
        self.dirty: set[str] = set()

    # --- changes -------------------------------------------------------------------------------
    def create(
        self,
        job: JobRecord,
        state: State,
        note: str | None,
        *,
        code: str | None = None,
        reason: str | None = None,
    ) -> bool:
        """Create a new record in ``state`` (the idempotency claim); False when it already existed."""
        job.begin(state, note, now=job.created_at)
        if code is not None:
            job.error_code, job.error_message = code, reason
        created = self.store.create(job)
        verdict = {State.QUEUED: "created", State.REJECTED: "rejected", State.SKIPPED: "skipped"}[state]
        self._log(
            f"job.{verdict}" if created else "job.duplicate",
            logging.WARNING if created and state is State.REJECTED else logging.INFO,
            job,
            None,
            {"code": code, "reason": reason, "warnings": job.warnings or None},
        )
        return created

    def apply(self, job: JobRecord, outcome: Outcome) -> None:
        """Apply ``outcome`` to ``job``: fields, state move, save, one log line. A failed save leaves the
        job dirty (cached with its new state) to be saved again by ``flush``."""
        now = self.clock()
        previous, target = job.state, outcome.target()
        if target is not None:
            job.check_move(target)  # before the outcome touches the record
        note = outcome.apply_to(job, now)
        if note is None:
            return
        if target is None:
            job.note(note, now=now)
        else:
            job.move(target, note, now=now)
        self._save(job, previous)
        name = outcome.event_name()
        if name:
            self._log(name, outcome.log_level(), job, previous, outcome.log_fields(job))

    def flush(self, guard: Callable[[JobRecord, Callable[[JobRecord], None]], None]) -> None:
        """Save again every record whose last save failed (each through ``guard``)."""
        for job_id in sorted(self.dirty):
            guard(self.cache[job_id], self._resave)

    def _resave(self, job: JobRecord) -> None:
        job.note("saved again after a failed write", now=self.clock())
        self._save(job, job.state)

    def _save(self, job: JobRecord, previous: State) -> None:
        self.cache[job.job_id] = job
        self.dirty.add(job.job_id)
        # The state the bucket has: known for cached records; for others, the one before this change.
        persisted = self._persisted.setdefault(job.job_id, previous)
        self.store.save(job, persisted)
        self._persisted[job.job_id] = job.state
        self.dirty.discard(job.job_id)

    # --- reads ---------------------------------------------------------------------------------
    def load(self, marker: str, state: State, job_id: str) -> JobRecord | None:
        """The record behind a marker: the cached one while this journal has it, else from the bucket
        (repairing a stray marker on the way)."""
        cached = self.cache.get(job_id)
        if cached is not None:
            if state != self._persisted.get(job_id) and job_id not in self.dirty:
                self.store.drop_marker(marker)  # left by a crash between a marker and its removal
            return cached
        record = self.store.reconcile_marker(marker, state, job_id)
        if record is not None:
            self.cache[job_id] = record
            self._persisted[job_id] = record.state
        return record

    def in_states(self, states: tuple[State, ...]) -> list[JobRecord]:
        """Cached records in ``states``."""
        return [job for job in self.cache.values() if job.state in states]

    # --- log -----------------------------------------------------------------------------------
    @staticmethod
    def _log(name: str, level: int, job: JobRecord, previous: State | None, fields: dict[str, Any]) -> None:
        log.event(
            name,
            level,
            job_id=job.job_id,
            key=job.source_key,
            variant=job.variant_name,
            state=job.state.value,
            previous=previous.value if previous else None,
            attempt=job.attempts,
            **fields,
        )
