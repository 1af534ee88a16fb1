"""A job's record, its states and the moves allowed between them.

A job is one (object version, variant). Its record is the whole story: request, tasks, outcome and
provenance. Steps of the pipeline never change a job's state themselves: they return an **outcome**
(``outcomes.py``) and ``journal.Journal.apply`` applies it: the outcome writes its fields onto the
record, the record moves (refusing a move ``MOVES`` does not list), the record is saved with its
marker moved, and one log line with the same fields is written.

Pure: no I/O, nothing of OSS or DashScope.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from enum import Enum
from typing import Any, Protocol

from pydantic import BaseModel, Field, field_validator, model_validator

from outpaint.errors import IllegalMove
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

    @field_validator("status", mode="before")
    @classmethod
    def _unknown_status_is_running(cls, value: Any) -> Any:
        """A status the service invented since (stored as it came by earlier versions) reads as RUNNING."""
        return value if value in TaskStatus.__members__ or isinstance(value, TaskStatus) else "RUNNING"

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

    def check_move(self, state: State) -> None:
        """Raise IllegalMove when ``MOVES`` does not allow a move to ``state``."""
        if state not in MOVES.get(self.state, frozenset()):
            raise IllegalMove(f"job {self.job_id}: {self.state.value} → {state.value} is not an allowed move")

    def move(self, state: State, note: str | None = None, *, now: float) -> None:
        """Move to ``state``; raise IllegalMove when ``MOVES`` does not allow it."""
        self.check_move(state)
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
