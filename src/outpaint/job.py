"""A job's record, its states, the moves allowed between them, and the outcomes that make them.

A job is one (object version, variant). Its record is the whole story: request, tasks, outcome and
provenance. Steps of the pipeline never change a job's state themselves: they return an **outcome**
value (``Submitted``, ``Retry``, ``End``, ``Done``, …) and ``journal.Journal.apply`` applies it: the
outcome writes its fields onto the record, the record moves (refusing a move ``MOVES`` does not
list), the record is saved with its marker moved, and one log line with the same fields is written.

Pure: no I/O, nothing of OSS or DashScope.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, Field, model_validator

from outpaint.errors import IllegalMove, Kind
from outpaint.naming import marker_name, outpaint_meta


class State(str, Enum):
    """Job states. QUEUED → SUBMITTING → SUBMITTED → DONE, or one of the other ends."""

    QUEUED = "QUEUED"  # waiting for a slot (new, retrying after a back-off, or held back by the quota)
    SUBMITTING = "SUBMITTING"  # intent written, submit answer not yet recorded
    SUBMITTED = "SUBMITTED"  # a task runs at DashScope (or has succeeded and is being written back)
    DONE = "DONE"  # the output is in the bucket
    FAILED = "FAILED"  # the task failed for good, or its result could not be stored
    REJECTED = "REJECTED"  # never submitted: bad input or metadata
    EXPIRED = "EXPIRED"  # the task or its result was lost and no attempt is left
    SKIPPED = "SKIPPED"  # nothing to do (outpaint-skip, no expansion asked, source changed)


ACTIVE_STATES = (State.QUEUED, State.SUBMITTING, State.SUBMITTED)
TERMINAL_STATES = (State.DONE, State.FAILED, State.REJECTED, State.EXPIRED, State.SKIPPED)
IN_FLIGHT_STATES = (State.SUBMITTING, State.SUBMITTED)
# The states a record is created in (by intake).
INITIAL_STATES = (State.QUEUED, State.REJECTED, State.SKIPPED)

# Every allowed move. A state not listed as a key is final.
MOVES: dict[State, frozenset[State]] = {
    State.QUEUED: frozenset({State.SUBMITTING, State.SKIPPED}),
    State.SUBMITTING: frozenset({State.SUBMITTED, State.QUEUED, State.FAILED}),
    State.SUBMITTED: frozenset({State.DONE, State.QUEUED, State.FAILED, State.EXPIRED, State.SKIPPED}),
    State.FAILED: frozenset({State.QUEUED}),  # `outpaint retry`
    State.EXPIRED: frozenset({State.QUEUED}),  # `outpaint retry`
}


class TaskStatus(str, Enum):
    """Where one submission stands, as far as we know."""

    SUBMITTING = "SUBMITTING"  # being sent
    SUBMITTED = "SUBMITTED"  # accepted, not queried yet
    PENDING = "PENDING"  # the service's own states, as last queried
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    UNKNOWN = "UNKNOWN"  # the service no longer knows the task
    REFUSED = "REFUSED"  # the submit was answered with an error: no task exists
    UNCERTAIN = "UNCERTAIN"  # sent, the answer was lost: a task may exist that we cannot see


class TaskAttempt(BaseModel):
    """One submission to DashScope."""

    task_id: str | None = None
    request_id: str | None = None
    submitted_at: float
    status: TaskStatus = TaskStatus.SUBMITTING
    code: str | None = None
    message: str | None = None
    uncertain: bool = False  # sent, but the answer was lost: a task may exist that we cannot see
    finished_at: float | None = None


class HistoryEntry(BaseModel):
    state: State
    at: float
    note: str | None = None


class Trigger(BaseModel):
    """What brought the upload in: the OSS event (name, request id) or a backfill."""

    name: str | None = None
    request_id: str | None = None


class SourceFacts(Protocol):
    """What a job compares with its source object (``oss.ObjectHead`` has it)."""

    @property
    def etag(self) -> str: ...

    @property
    def user_meta(self) -> Mapping[str, str]: ...


_LEGACY_EVENT_FIELDS = ("variants", "writeback_failures", "queries", "result_width", "result_height")


class JobRecord(BaseModel):
    """Everything about one (object version, variant): request, tasks, outcome and provenance."""

    job_id: str
    bucket: str
    source_key: str
    source_etag: str
    source_size: int = 0
    source_meta_digest: str | None = None  # the upload's outpaint-* metadata (same bytes may be re-sent)
    variant_name: str = "default"
    variants: int = 1  # variants the upload asked for: more than one puts the name in the output key
    parameters: dict[str, Any] = Field(default_factory=dict)
    output_width: int | None = None
    output_height: int | None = None
    finish: dict[str, int] | None = None
    warnings: list[str] = Field(default_factory=list)
    output_key: str | None = None
    state: State = State.QUEUED
    created_at: float
    updated_at: float
    attempts: int = 0
    uncertain_submits: int = 0
    tasks: list[TaskAttempt] = Field(default_factory=list)
    not_before: float = 0.0
    next_query_at: float = 0.0
    queries: int = 0
    writeback_failures: int = 0  # since the last submit; the poller gives up after a few
    error_code: str | None = None
    error_message: str | None = None
    input_url: str | None = None  # the signed URL without its signature
    output_etag: str | None = None
    output_size: int | None = None
    output_format: str | None = None
    result_width: int | None = None
    result_height: int | None = None
    event: Trigger = Field(default_factory=Trigger)
    history: list[HistoryEntry] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _lift_legacy_event_fields(cls, data: Any) -> Any:
        """Records written before these fields were typed kept them in ``event``."""
        if isinstance(data, dict) and isinstance(data.get("event"), dict):
            event = dict(data["event"])
            lifted = {name: event.pop(name) for name in _LEGACY_EVENT_FIELDS if name in event}
            if lifted:
                data = {**lifted, **data, "event": event}
        return data

    @property
    def marker_name(self) -> str:
        return marker_name(self.created_at, self.job_id)

    @property
    def task(self) -> TaskAttempt:
        """The latest submission."""
        return self.tasks[-1]

    def describes(self, source: SourceFacts | None) -> bool:
        """Is ``source`` (None: gone) still the upload this job was planned for (bytes and metadata)?"""
        if source is None or source.etag != self.source_etag:
            return False
        return self.source_meta_digest is None or metadata_digest(source.user_meta) == self.source_meta_digest

    # --- transitions (called by journal.Journal only) -------------------------------------------
    def begin(self, state: State, note: str | None = None, *, now: float) -> None:
        """Enter the first state of a new record."""
        if self.history or state not in INITIAL_STATES:
            raise IllegalMove(f"a record cannot be created in {state.value} (history: {len(self.history)})")
        self._enter(state, note, now)

    def move(self, state: State, note: str | None = None, *, now: float) -> None:
        """Move to ``state``; raise IllegalMove when ``MOVES`` does not allow it."""
        if state not in MOVES.get(self.state, frozenset()):
            raise IllegalMove(f"job {self.job_id}: {self.state.value} → {state.value} is not an allowed move")
        self._enter(state, note, now)

    def note(self, note: str, *, now: float) -> None:
        """Record an event in the history without changing state."""
        self._enter(self.state, note, now)

    def _enter(self, state: State, note: str | None, now: float) -> None:
        self.state = state
        self.updated_at = now
        self.history.append(HistoryEntry(state=state, at=now, note=note))


def metadata_digest(user_meta: Mapping[str, str]) -> str:
    """Stable digest of the ``outpaint-*`` keys among an object's user metadata."""
    return hashlib.sha256(json.dumps(sorted(outpaint_meta(user_meta).items())).encode()).hexdigest()[:32]


def job_id_for(bucket: str, key: str, etag: str, variant_digest: str) -> str:
    """Same upload and variant → same id; a changed object or changed request → a new one."""
    material = "\0".join((bucket, key, etag.upper(), variant_digest)).encode()
    return hashlib.sha256(material).hexdigest()[:32]


# ================================================================================= outcomes
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
