"""Orchestration: intake (upload side) and the entry to the poller (tick side, in ``poller.py``).

intake: event records → guards → HEAD + probe → plan → job records (create-if-absent is the
idempotency claim). The poller, run by on_tick and opportunistically by on_upload, holds the lease
and until its deadline: queries in-flight tasks, writes results back, and admits queued jobs while
the account's concurrency and submit rate allow.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from outpaint import log
from outpaint.errors import ImageProbeError, PlanError
from outpaint.plan import PlanDefaults, plan_upload, user_metadata
from outpaint.poller import META_GENERATED_BY, PollerRun, PollReport, submit_seconds
from outpaint.storage import NotFound
from outpaint.store import JobRecord, Lease, State, job_id_for, metadata_digest

if TYPE_CHECKING:
    from outpaint.config import Settings
    from outpaint.dashscope import DashScopeClient
    from outpaint.events import ObjectRecord
    from outpaint.results import ResultFetcher
    from outpaint.storage import ObjectHead, Storage
    from outpaint.store import JobStore

# A lease outlives its holder's process by this much, so no second holder starts while it may act.
LEASE_SLACK_SECONDS = 10.0


@dataclass
class IntakeOutcome:
    """What intake did with one event record."""

    key: str
    action: str  # created, duplicate, rejected, skipped, ignored
    reason: str | None = None
    job_ids: list[str] = field(default_factory=list)


class Pipeline:
    """Intake and poller over one bucket. ``clock`` and ``sleep`` are injectable for tests."""

    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        store: JobStore,
        client: DashScopeClient,
        fetcher: ResultFetcher,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.store = store
        self.client = client
        self.fetcher = fetcher
        self.clock = clock
        self.sleep = sleep
        self.defaults = PlanDefaults(
            ratio=settings.default_ratio,
            gravity=settings.default_gravity,
            best_quality=settings.best_quality,
            add_watermark=settings.add_watermark,
            limit_image_size=settings.limit_image_size,
        )

    # ============================================================================= intake
    def intake(self, records: list[ObjectRecord]) -> list[IntakeOutcome]:
        """Turn each event record into job records; never raises for one bad record alone."""
        return [self._intake_one(record) for record in records]

    def _intake_one(self, record: ObjectRecord) -> IntakeOutcome:
        key = record.key
        reason = self._ignore_reason(record)
        if reason:
            log.event(
                "intake.ignored", key=key, bucket=record.bucket, reason=reason, event_name=record.event_name
            )
            return IntakeOutcome(key, "ignored", reason)
        try:
            head = self.storage.head(key)
        except NotFound:
            log.event("intake.ignored", key=key, reason="object.gone")
            return IntakeOutcome(key, "ignored", "object.gone")
        if head.user_meta.get(META_GENERATED_BY):
            log.event("intake.ignored", key=key, reason="own_output")
            return IntakeOutcome(key, "ignored", "own_output")
        base = self._new_record(head, record)
        try:
            facts = self.storage.probe_image(key, head.size)
            plan = plan_upload(user_metadata(head.user_meta), facts, self.defaults)
        except (ImageProbeError, PlanError) as exc:
            return self._create_final(base, State.REJECTED, "rejected", exc.code, exc.message)
        if plan.skipped:
            return self._create_final(base, State.SKIPPED, "skipped", "plan.skipped", plan.skipped)
        outcome = IntakeOutcome(key, "duplicate")
        for variant in plan.variants:
            job = base.model_copy(deep=True)
            job.job_id = job_id_for(self.settings.bucket, key, head.etag, variant.digest())
            job.variant_name = variant.name
            job.parameters = dict(variant.parameters)
            job.output_width, job.output_height = variant.output_width, variant.output_height
            job.finish = variant.finish.model_dump() if variant.finish else None
            job.warnings = list(variant.warnings)
            job.move(State.QUEUED, f"{len(plan.variants)} variant(s)", now=job.created_at)
            job.event["variants"] = len(plan.variants)
            created = self.store.create(job)
            outcome.job_ids.append(job.job_id)
            if created:
                outcome.action = "created"
            log.event(
                "job.created" if created else "job.duplicate",
                job_id=job.job_id,
                key=key,
                variant=variant.name,
                state=State.QUEUED.value,
                warnings=job.warnings or None,
            )
        return outcome

    def _ignore_reason(self, record: ObjectRecord) -> str | None:
        s = self.settings
        key = record.key
        if record.bucket != s.bucket:
            return "foreign_bucket"
        if not record.is_created:
            return "not_a_creation_event"
        if key.startswith((s.output_prefix, s.state_prefix)):
            return "own_output"
        if not key.startswith(s.input_prefix):
            return "outside_input_prefix"
        if key.endswith("/"):
            return "folder_marker"
        return None

    def _new_record(self, head: ObjectHead, record: ObjectRecord) -> JobRecord:
        now = self.clock()
        return JobRecord(
            job_id="",
            bucket=self.settings.bucket,
            source_key=head.key,
            source_etag=head.etag,
            source_size=head.size,
            source_meta_digest=metadata_digest(head.user_meta),
            state=State.QUEUED,
            created_at=now,
            updated_at=now,
            event={"name": record.event_name, "request_id": record.request_id},
        )

    def _create_final(
        self, job: JobRecord, state: State, action: str, code: str, message: str
    ) -> IntakeOutcome:
        # The metadata is part of the id: the same bytes re-sent with other metadata get their own verdict.
        outcome_digest = f"{action}:{job.source_meta_digest}"
        job.job_id = job_id_for(self.settings.bucket, job.source_key, job.source_etag, outcome_digest)
        job.error_code, job.error_message = code, message
        job.move(state, message, now=job.created_at)
        if not self.store.create(job):
            action = "duplicate"
        log.event(
            f"job.{action}",
            logging.WARNING if action == "rejected" else logging.INFO,
            job_id=job.job_id,
            key=job.source_key,
            state=state.value,
            code=code,
            reason=message,
        )
        return IntakeOutcome(job.source_key, action, f"{code}: {message}", [job.job_id])

    # ============================================================================= poller
    def poll(
        self, deadline: float, *, hard_end: float | None = None, wait_for_lease: bool = False
    ) -> PollReport:
        """Hold the lease and work until ``deadline`` or until nothing is queued or in flight.

        ``hard_end`` is when the platform may stop this process (default, for callers without a platform
        timeout: late enough to finish a submit begun at the deadline); the lease is taken until after it,
        so no other holder can start while this one may act.
        """
        if hard_end is None:
            # No platform timeout (CLI, tests): room to finish a submit begun at the deadline.
            hard_end = deadline + max(self.settings.tick_safety_margin_seconds, submit_seconds(self.settings))
        lease = self._acquire(deadline, hard_end, wait_for_lease)
        if lease is None:
            log.event("poller.lease_held")
            return PollReport(lease="held")
        run = PollerRun(self, lease, deadline, hard_end)
        try:
            run.loop()
        finally:
            if self.store.holds_lease(lease, now=self.clock()):
                self.store.release_lease(lease)
        log.event("poller.finished", **run.report.as_dict())
        return run.report

    def _acquire(self, deadline: float, hard_end: float, wait: bool) -> Lease | None:
        while True:
            now = self.clock()
            lease = self.store.acquire_lease(max(hard_end - now, 1.0) + LEASE_SLACK_SECONDS, now=now)
            if lease is not None or not wait or now + 1.0 >= deadline:
                return lease
            self.sleep(1.0)
