"""Intake: an uploaded object → job records. ``offer`` is the one way in, for upload events and backfill
alike: guards, one HEAD, the probe, the plan, then one record per variant (create-if-absent is the
idempotency claim: the same upload offered twice ends as ``duplicate``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from outpaint import log
from outpaint.errors import ImageProbeError, NotFound, PlanError
from outpaint.job import JobRecord, State, Trigger, job_id_for, metadata_digest
from outpaint.naming import META_GENERATED_BY, outpaint_meta
from outpaint.plan import PlanDefaults, plan_upload
from outpaint.probe import probe_image

if TYPE_CHECKING:
    from outpaint.events import ObjectRecord
    from outpaint.journal import Journal
    from outpaint.oss import ObjectHead, Storage


@dataclass
class IntakeOutcome:
    """What intake did with one object."""

    key: str
    action: str  # created, duplicate, rejected, skipped, ignored
    reason: str | None = None
    job_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class BucketLayout:
    """The part of the settings intake needs: which bucket, and which keys are inputs."""

    bucket: str
    input_prefix: str
    reserved_prefixes: tuple[str, ...]  # outputs and state: never inputs


class Intake:
    """Turns objects of one bucket into job records."""

    def __init__(
        self,
        storage: Storage,
        journal: Journal,
        layout: BucketLayout,
        defaults: PlanDefaults,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.storage = storage
        self.journal = journal
        self.layout = layout
        self.defaults = defaults
        self.clock = clock

    def intake(self, records: Iterable[ObjectRecord]) -> list[IntakeOutcome]:
        """Offer each event record's object; never raises for one bad record alone."""
        return [self._from_event(record) for record in records]

    def _from_event(self, record: ObjectRecord) -> IntakeOutcome:
        if record.bucket != self.layout.bucket:
            reason: str | None = "foreign_bucket"
        elif not record.is_created:
            reason = "not_a_creation_event"
        else:
            reason = self._key_ignored(record.key)
        if reason:
            log.event(
                "intake.ignored",
                key=record.key,
                bucket=record.bucket,
                reason=reason,
                event_name=record.event_name,
            )
            return IntakeOutcome(record.key, "ignored", reason)
        return self.offer(record.key, Trigger(name=record.event_name, request_id=record.request_id))

    def offer(self, key: str, trigger: Trigger) -> IntakeOutcome:
        """Plan the object at ``key`` as it is now and create its job records."""
        reason = self._key_ignored(key)
        if reason:
            log.event("intake.ignored", key=key, reason=reason)
            return IntakeOutcome(key, "ignored", reason)
        try:
            head = self.storage.head(key)
        except NotFound:
            log.event("intake.ignored", key=key, reason="object.gone")
            return IntakeOutcome(key, "ignored", "object.gone")
        if head.user_meta.get(META_GENERATED_BY):
            log.event("intake.ignored", key=key, reason="own_output")
            return IntakeOutcome(key, "ignored", "own_output")
        base = self._new_record(head, trigger)
        try:
            facts = probe_image(self.storage, key, head.size)
            plan = plan_upload(outpaint_meta(head.user_meta), facts, self.defaults)
        except (ImageProbeError, PlanError) as exc:
            return self._create_final(base, State.REJECTED, "rejected", exc.code, exc.message)
        if plan.skipped:
            return self._create_final(base, State.SKIPPED, "skipped", plan.skip_code, plan.skipped)
        outcome = IntakeOutcome(key, "duplicate")
        for variant in plan.variants:
            job = base.model_copy(deep=True)
            job.job_id = job_id_for(self.layout.bucket, key, head.etag, variant.digest())
            job.variant_name = variant.name
            job.variants = len(plan.variants)
            job.parameters = dict(variant.parameters)
            job.output_width, job.output_height = variant.output_width, variant.output_height
            job.finish = variant.finish.model_dump() if variant.finish else None
            job.warnings = list(variant.warnings)
            outcome.job_ids.append(job.job_id)
            if self.journal.create(job, State.QUEUED, f"{len(plan.variants)} variant(s)"):
                outcome.action = "created"
        return outcome

    def _key_ignored(self, key: str) -> str | None:
        """Why a key is never an input, or None."""
        if key.startswith(self.layout.reserved_prefixes):
            return "own_output"
        if not key.startswith(self.layout.input_prefix):
            return "outside_input_prefix"
        if key.endswith("/"):
            return "folder_marker"
        return None

    def _new_record(self, head: ObjectHead, trigger: Trigger) -> JobRecord:
        now = self.clock()
        return JobRecord(
            job_id="",
            bucket=self.layout.bucket,
            source_key=head.key,
            source_etag=head.etag,
            source_size=head.size,
            source_meta_digest=metadata_digest(head.user_meta),
            created_at=now,
            updated_at=now,
            event=trigger,
        )

    def _create_final(
        self, job: JobRecord, state: State, action: str, code: str, message: str
    ) -> IntakeOutcome:
        # The metadata is part of the id: the same bytes re-sent with other metadata get their own verdict.
        outcome_digest = f"{action}:{job.source_meta_digest}"
        job.job_id = job_id_for(self.layout.bucket, job.source_key, job.source_etag, outcome_digest)
        created = self.journal.create(job, state, message, code=code, reason=message)
        return IntakeOutcome(
            job.source_key, action if created else "duplicate", f"{code}: {message}", [job.job_id]
        )
