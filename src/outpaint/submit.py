"""One submit: check the source, write the intent, call DashScope, and say what became of the job."""

from __future__ import annotations

import mimetypes
import time
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from outpaint import log
from outpaint.errors import DashScopeError, Kind, SubmitOutcomeUnknown
from outpaint.job import JobRecord, State, TaskStatus
from outpaint.outcomes import (
    End,
    Outcome,
    RetryPolicy,
    Submitted,
    Submitting,
    Throttled,
    Uncertain,
)
from outpaint.tracking import failure_outcome

if TYPE_CHECKING:
    from outpaint.dashscope import DashScopeClient
    from outpaint.handover import TemporaryStorage
    from outpaint.journal import Journal
    from outpaint.lease import Lease
    from outpaint.limits import PollerLimits
    from outpaint.oss import Storage

THROTTLE_PAUSE_SECONDS = 1.0
ACCOUNT_PAUSE_SECONDS = 30.0
TEMPORARY_STORAGE = "oss:// (DashScope temporary storage)"  # the input URL recorded for that hand-over


class Submitter:
    """Submits queued jobs; the intent (SUBMITTING) is recorded before the call, the answer after."""

    def __init__(
        self,
        storage: Storage,
        client: DashScopeClient,
        journal: Journal,
        limits: PollerLimits,
        clock: Callable[[], float] = time.time,
        *,
        handover: TemporaryStorage | None = None,
    ) -> None:
        self.storage = storage
        self.handover = handover
        self.client = client
        self.journal = journal
        self.limits = limits
        self.retry = RetryPolicy(limits.max_attempts, limits.retry_backoff_seconds)
        self.clock = clock

    def submit(self, job: JobRecord, lease: Lease) -> Outcome:
        """Submit ``job`` (QUEUED) once; the pacing state in ``lease`` learns of it."""
        if not job.describes(self.storage.head_or_none(job.source_key)):
            return End(
                State.SKIPPED, "source.changed", "the source object changed or was deleted before submit"
            )
        url = (
            None
            if self.handover
            else self.storage.sign_get_url(job.source_key, self.limits.signed_url_seconds)
        )
        now = self.clock()
        self.journal.apply(job, Submitting(log.redact_url(url) if url else TEMPORARY_STORAGE))
        lease.last_submit_at = now
        try:
            submitted = self.client.submit(url or self._upload(job), job.parameters)
        except SubmitOutcomeUnknown as exc:
            return self.uncertain(job, exc.message)
        except DashScopeError as exc:
            return self._refused(job, exc, lease)
        first_query_at = now + lease.first_query_delay(self.limits.poll_interval_seconds)
        return Submitted(submitted.task_id, submitted.request_id, first_query_at)

    def _upload(self, job: JobRecord) -> str:
        """The source handed over through DashScope's temporary storage: its ``oss://`` URL."""
        assert self.handover is not None
        extension = PurePosixPath(job.source_key).suffix.lower()
        content_type = mimetypes.types_map.get(extension, "application/octet-stream")
        return self.handover.upload(
            f"{job.job_id}{extension}", self.storage.get_bytes(job.source_key), content_type
        )

    def uncertain(self, job: JobRecord, message: str) -> Outcome:
        """The submit may have created a task we cannot see. Resubmit at most once (policy)."""
        resubmit = self.limits.uncertain_submit_policy == "resubmit" and job.uncertain_submits == 0
        return Uncertain(message, self.clock() + self.limits.poll_interval_seconds if resubmit else None)

    def _refused(self, job: JobRecord, exc: DashScopeError, lease: Lease) -> Outcome:
        if exc.kind in (Kind.THROTTLED, Kind.ACCOUNT):
            account = exc.kind is Kind.ACCOUNT
            lease.submits_paused_until = self.clock() + (
                ACCOUNT_PAUSE_SECONDS if account else THROTTLE_PAUSE_SECONDS
            )
            return Throttled(exc.code, exc.message, exc.request_id, account)
        task = job.task
        task.status, task.code, task.message, task.finished_at = (
            TaskStatus.REFUSED,
            exc.code,
            exc.message,
            self.clock(),
        )
        return failure_outcome(
            job, exc.code, exc.message, exc.kind, in_task=False, policy=self.retry, now=self.clock()
        )
