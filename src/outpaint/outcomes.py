"""Outcomes: what a pipeline step decided for one job, as a value that ``journal.Journal.apply`` applies.

Each outcome says where the job goes (``target``), writes its own fields onto the record
(``apply_to``, which returns the history note), and names its log line and PollReport counter. Steps
never change a job's state themselves. (Compare arq's ``Retry(defer=…)``.)

Pure: no I/O.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar

from outpaint.errors import Kind
from outpaint.job import JobRecord, State, TaskAttempt, TaskStatus


@dataclass(frozen=True)
class Outcome:
    """What a step decided for one job. ``state`` None: the job stays where it is.

    ``apply_to`` writes the outcome's fields onto the record and returns the history note (None: no
    history entry, nothing to save). The class attributes say where the job goes, the log line's event
    and level, and the PollReport counter it adds one to; outcomes whose values decide them override
    the methods that read them.
    """

    state: ClassVar[State | None] = None
    event: ClassVar[str | None] = None
    level: ClassVar[int] = logging.INFO
    counter: ClassVar[str | None] = None

    def apply_to(self, job: JobRecord, now: float) -> str | None:
        return None

    def target(self) -> State | None:
        return self.state

    def event_name(self) -> str | None:
        return self.event

    def log_level(self) -> int:
        return self.level

    def counter_name(self) -> str | None:
        return self.counter

    def log_fields(self, job: JobRecord) -> dict[str, Any]:
        return {}


@dataclass(frozen=True)
class Stay(Outcome):
    """Nothing to record (the task still runs, or the job waits); nothing is saved."""


@dataclass(frozen=True)
class Submitting(Outcome):
    """The intent to submit, written before the call: a crash after it is seen as an unknown outcome."""

    state: ClassVar[State] = State.SUBMITTING
    event: ClassVar[str] = "job.submitting"
    level: ClassVar[int] = logging.DEBUG
    input_url: str  # without its signature

    def apply_to(self, job: JobRecord, now: float) -> str:
        job.input_url = self.input_url
        job.attempts += 1
        job.writeback_failures = 0
        job.tasks.append(TaskAttempt(submitted_at=now))
        return f"attempt {job.attempts}"


@dataclass(frozen=True)
class Submitted(Outcome):
    """The service accepted the task."""

    state: ClassVar[State] = State.SUBMITTED
    event: ClassVar[str] = "job.submitted"
    counter: ClassVar[str] = "submitted"
    task_id: str
    request_id: str | None
    first_query_at: float

    def apply_to(self, job: JobRecord, now: float) -> str:
        job.task.task_id, job.task.request_id = self.task_id, self.request_id
        job.task.status = TaskStatus.SUBMITTED
        job.next_query_at = self.first_query_at
        return self.task_id

    def log_fields(self, job: JobRecord) -> dict[str, Any]:
        return {"task_id": self.task_id, "dashscope_request_id": self.request_id}


@dataclass(frozen=True)
class Throttled(Outcome):
    """The service said no before creating anything (quota, or an account problem): the job stays at
    the head of the queue and the attempt is not counted."""

    state: ClassVar[State] = State.QUEUED
    counter: ClassVar[str] = "throttled"
    code: str
    message: str
    request_id: str | None
    account: bool  # a key, billing or access problem: an operator must act

    def event_name(self) -> str:
        return "dashscope.account_problem" if self.account else "job.submit_throttled"

    def log_level(self) -> int:
        return logging.ERROR if self.account else logging.INFO

    def apply_to(self, job: JobRecord, now: float) -> str:
        job.tasks.pop()
        job.attempts -= 1
        return f"{self.code}: stays queued"

    def log_fields(self, job: JobRecord) -> dict[str, Any]:
        return {"code": self.code, "dashscope_request_id": self.request_id}


@dataclass(frozen=True)
class Retry(Outcome):
    """Back to the queue after a transient failure, to be submitted again from ``not_before``."""

    state: ClassVar[State] = State.QUEUED
    event: ClassVar[str] = "job.retry"
    level: ClassVar[int] = logging.WARNING
    counter: ClassVar[str] = "requeued"
    code: str
    message: str
    not_before: float
    max_attempts: int

    def apply_to(self, job: JobRecord, now: float) -> str:
        job.not_before = self.not_before
        job.error_code, job.error_message = self.code, self.message
        return f"{self.code}: retry {job.attempts + 1}/{self.max_attempts}"

    def log_fields(self, job: JobRecord) -> dict[str, Any]:
        return {"code": self.code}


@dataclass(frozen=True)
class Uncertain(Outcome):
    """A submit whose answer was lost: a task may exist that we cannot see. Resubmitted once from
    ``resubmit_at`` (policy), else the job fails with ``dashscope.submit_outcome_unknown``."""

    code: ClassVar[str] = "dashscope.submit_outcome_unknown"
    level: ClassVar[int] = logging.WARNING
    message: str
    resubmit_at: float | None

    def target(self) -> State:
        return State.QUEUED if self.resubmit_at is not None else State.FAILED

    def event_name(self) -> str:
        return "job.submit_uncertain" if self.resubmit_at is not None else "job.failed"

    def counter_name(self) -> str:
        return "requeued" if self.resubmit_at is not None else "failed"

    def apply_to(self, job: JobRecord, now: float) -> str:
        job.task.uncertain, job.task.status, job.task.finished_at = True, TaskStatus.UNCERTAIN, now
        job.uncertain_submits += 1
        if self.resubmit_at is None:
            job.error_code, job.error_message = self.code, self.message
            return f"{self.code}: {self.message}"
        job.not_before = self.resubmit_at
        return "submit outcome unknown: resubmitting once (a second task may exist)"

    def log_fields(self, job: JobRecord) -> dict[str, Any]:
        return {"code": self.code, "reason": self.message, "uncertain_submits": job.uncertain_submits}


@dataclass(frozen=True)
class WritebackFailed(Outcome):
    """A succeeded task's result could not be stored: tried again at ``retry_at`` (the failures are
    counted in the record, across runs), or, with ``retry_at`` None, the job fails
    (``result.write_failed``)."""

    level: ClassVar[int] = logging.WARNING
    code: str
    message: str
    retry_at: float | None

    def target(self) -> State | None:
        return None if self.retry_at is not None else State.FAILED

    def event_name(self) -> str:
        return "job.writeback_failed" if self.retry_at is not None else "job.failed"

    def counter_name(self) -> str | None:
        return None if self.retry_at is not None else "failed"

    def apply_to(self, job: JobRecord, now: float) -> str:
        job.writeback_failures += 1
        if self.retry_at is None:
            job.error_code = "result.write_failed"
            job.error_message = f"{job.writeback_failures} write-back failures, last: {self.message}"
            return f"{job.error_code}: {job.error_message}"
        job.next_query_at = self.retry_at
        return f"{self.code}: write-back failed ({job.writeback_failures}), retrying"

    def log_fields(self, job: JobRecord) -> dict[str, Any]:
        if self.retry_at is None:
            return {"code": job.error_code, "reason": job.error_message}
        return {"code": self.code, "reason": self.message, "writeback_failures": job.writeback_failures}


@dataclass(frozen=True)
class Done(Outcome):
    """The output is in the bucket."""

    state: ClassVar[State] = State.DONE
    event: ClassVar[str] = "job.done"
    counter: ClassVar[str] = "done"
    output_key: str
    etag: str
    size: int
    format: str
    width: int
    height: int

    def apply_to(self, job: JobRecord, now: float) -> str:
        job.output_key, job.output_etag, job.output_size = self.output_key, self.etag, self.size
        job.output_format = self.format
        job.result_width, job.result_height = self.width, self.height
        return self.output_key

    def log_fields(self, job: JobRecord) -> dict[str, Any]:
        return {
            "task_id": job.task.task_id,
            "output_key": self.output_key,
            "width": self.width,
            "height": self.height,
            "seconds": round(job.updated_at - job.created_at, 3),
        }


@dataclass(frozen=True)
class End(Outcome):
    """The job ends in ``end`` (FAILED, EXPIRED or SKIPPED) with a code and a reason."""

    level: ClassVar[int] = logging.WARNING
    end: State
    code: str
    message: str

    def target(self) -> State:
        return self.end

    def event_name(self) -> str:
        return f"job.{self.end.value.lower()}"

    def counter_name(self) -> str | None:
        return "failed" if self.end in (State.FAILED, State.EXPIRED) else None

    def apply_to(self, job: JobRecord, now: float) -> str:
        job.error_code, job.error_message = self.code, self.message
        return f"{self.code}: {self.message}"

    def log_fields(self, job: JobRecord) -> dict[str, Any]:
        return {"code": self.code, "reason": self.message}


@dataclass(frozen=True)
class Reopen(Outcome):
    """An operator's ``outpaint retry``: back to QUEUED with a fresh attempt budget; tasks, the last
    error and the history stay on record."""

    state: ClassVar[State] = State.QUEUED
    event: ClassVar[str] = "job.requeued"
    note: ClassVar[str] = "retried by operator"

    def apply_to(self, job: JobRecord, now: float) -> str:
        job.attempts = 0
        job.uncertain_submits = 0
        job.not_before = 0.0
        job.next_query_at = 0.0
        return self.note


@dataclass(frozen=True)
class RetryPolicy:
    """How transient failures are retried (from settings)."""

    max_attempts: int
    backoff_seconds: float


def retry_or_end(
    job: JobRecord, kind: Kind, code: str, message: str, *, end: State, policy: RetryPolicy, now: float
) -> Outcome:
    """A transient failure with attempts left is retried after the back-off; anything else ends."""
    if kind is Kind.TRANSIENT and job.attempts < policy.max_attempts:
        return Retry(code, message, now + policy.backoff_seconds, policy.max_attempts)
    return End(end, code, message)
