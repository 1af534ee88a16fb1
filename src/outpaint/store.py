"""Job records, state markers and the poller lease, kept in the bucket under the state prefix.

Layout (the only place that knows it):

    <state>/jobs/<job_id>.json                 the record (created with x-oss-forbid-overwrite: the claim)
    <state>/state/<state>/<created-ms>-<job_id> one empty marker per record, so "what is queued" is one LIST
                                               and FIFO order is key order
    <state>/sources/<sha(key)>/<job_id>        jobs of a source object (for `outpaint jobs show KEY`)
    <state>/lease/<term>                       the poller lease; a new term is claimed create-if-absent
    <state>/backfill/<sha(name)>.json          progress checkpoint of one `outpaint backfill` run

Transitions write the record first, then the new marker, then delete the old marker. A crash between
any two steps leaves a record that the poller's reconciliation (``reconcile_marker``) repairs.
After creation only the lease holder changes a record, so no compare-and-swap is needed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from enum import Enum
from typing import Any

from pydantic import BaseModel, Field

from outpaint.plan import user_metadata
from outpaint.storage import AlreadyExists, NotFound, Storage


class State(str, Enum):
    """Job states. QUEUED → SUBMITTING → SUBMITTED → DONE, or one of the other ends."""

    QUEUED = "QUEUED"
    SUBMITTING = "SUBMITTING"  # intent written, submit answer not yet recorded
    SUBMITTED = "SUBMITTED"
    DONE = "DONE"
    FAILED = "FAILED"
    REJECTED = "REJECTED"  # never submitted: bad input or metadata
    EXPIRED = "EXPIRED"  # the task or its result was lost and no attempt is left
    SKIPPED = "SKIPPED"  # nothing to do (outpaint-skip, no expansion asked, source changed)


ACTIVE_STATES = (State.QUEUED, State.SUBMITTING, State.SUBMITTED)
TERMINAL_STATES = (State.DONE, State.FAILED, State.REJECTED, State.EXPIRED, State.SKIPPED)
IN_FLIGHT_STATES = (State.SUBMITTING, State.SUBMITTED)


class TaskAttempt(BaseModel):
    """One submission to DashScope."""

    task_id: str | None = None
    request_id: str | None = None
    submitted_at: float
    status: str = "SUBMITTING"
    code: str | None = None
    message: str | None = None
    uncertain: bool = False  # sent, but the answer was lost: a task may exist that we cannot see
    finished_at: float | None = None


class HistoryEntry(BaseModel):
    state: State
    at: float
    note: str | None = None


class JobRecord(BaseModel):
    """Everything about one (object version, variant): request, tasks, outcome and provenance."""

    job_id: str
    bucket: str
    source_key: str
    source_etag: str
    source_size: int = 0
    source_meta_digest: str | None = None  # the upload's outpaint-* metadata (same bytes may be re-sent)
    variant_name: str = "default"
    parameters: dict[str, Any] = Field(default_factory=dict)
    output_width: int | None = None
    output_height: int | None = None
    finish: dict[str, int] | None = None
    warnings: list[str] = Field(default_factory=list)
    output_key: str | None = None
    state: State
    created_at: float
    updated_at: float
    attempts: int = 0
    uncertain_submits: int = 0
    tasks: list[TaskAttempt] = Field(default_factory=list)
    not_before: float = 0.0
    next_query_at: float = 0.0
    error_code: str | None = None
    error_message: str | None = None
    input_url: str | None = None  # the signed URL without its signature
    output_etag: str | None = None
    output_size: int | None = None
    output_format: str | None = None
    event: dict[str, Any] = Field(default_factory=dict)
    history: list[HistoryEntry] = Field(default_factory=list)

    @property
    def marker_name(self) -> str:
        return f"{int(self.created_at * 1000):013d}-{self.job_id}"

    def move(self, state: State, note: str | None = None, now: float | None = None) -> None:
        """Change state and record it in the history."""
        at = time.time() if now is None else now
        self.state = state
        self.updated_at = at
        self.history.append(HistoryEntry(state=state, at=at, note=note))


def metadata_digest(user_meta: Mapping[str, str]) -> str:
    """Stable digest of the ``outpaint-*`` keys among an object's user metadata."""
    return hashlib.sha256(json.dumps(sorted(user_metadata(user_meta).items())).encode()).hexdigest()[:32]


def job_id_for(bucket: str, key: str, etag: str, variant_digest: str) -> str:
    """Same upload and variant → same id; a changed object or changed request → a new one."""
    material = "\0".join((bucket, key, etag.upper(), variant_digest)).encode()
    return hashlib.sha256(material).hexdigest()[:32]


class Lease(BaseModel):
    """The poller lease of one term, plus the pacing state handed from holder to holder."""

    term: int
    owner: str
    expires_at: float
    released: bool = False
    last_submit_at: float = 0.0
    task_seconds: float | None = None  # moving average of the service's task running times
    last_sweep_at: float = 0.0  # last search for records that lost their marker
    submits_paused_until: float = 0.0  # the service pushed back (429, account problem): wait until then


class JobStore:
    """Records and markers of one bucket's state prefix."""

    def __init__(self, storage: Storage, state_prefix: str) -> None:
        self.storage = storage
        self.prefix = state_prefix

    # --- keys ----------------------------------------------------------------------------------
    def record_key(self, job_id: str) -> str:
        return f"{self.prefix}jobs/{job_id}.json"

    def marker_prefix(self, state: State) -> str:
        return f"{self.prefix}state/{state.value.lower()}/"

    def marker_key(self, record: JobRecord, state: State | None = None) -> str:
        return self.marker_prefix(state or record.state) + record.marker_name

    def source_prefix(self, key: str) -> str:
        return f"{self.prefix}sources/{hashlib.sha256(key.encode()).hexdigest()[:24]}/"

    # --- records -------------------------------------------------------------------------------
    def create(self, record: JobRecord) -> bool:
        """Claim ``record.job_id``: True when this call created it, False when it already existed.

        On a duplicate the existing record's index entry and marker are (re)written, so a create that
        crashed between the record and them is completed by the event's redelivery.
        """
        try:
            self.storage.put(
                self.record_key(record.job_id),
                _dump(record),
                forbid_overwrite=True,
                content_type="application/json",
            )
        except AlreadyExists:
            existing = self.load(record.job_id)
            if existing is not None:
                self._index_and_mark(existing)
            return False
        self._index_and_mark(record)
        return True

    def _index_and_mark(self, record: JobRecord) -> None:
        self.storage.put(self.source_prefix(record.source_key) + record.job_id, b"")
        self._put_marker(record)

    def load(self, job_id: str) -> JobRecord | None:
        try:
            return JobRecord.model_validate_json(self.storage.get_bytes(self.record_key(job_id)))
        except NotFound:
            return None

    def save(self, record: JobRecord, previous: State) -> None:
        """Persist a transition from ``previous``: record, new marker, then the old marker's removal."""
        self.storage.put(self.record_key(record.job_id), _dump(record), content_type="application/json")
        if record.state != previous:
            self._put_marker(record)
            self.storage.delete(self.marker_key(record, previous))

    def _put_marker(self, record: JobRecord) -> None:
        self.storage.put(self.marker_key(record), b"")

    def markers(self, state: State) -> list[tuple[str, str]]:
        """(marker key, job id) of every marker of ``state``, oldest job first."""
        prefix = self.marker_prefix(state)
        return [(key, key.rsplit("-", 1)[-1]) for key in self.storage.list_keys(prefix)]

    def reconcile_marker(self, marker_key: str, state: State, job_id: str) -> JobRecord | None:
        """The record behind a marker, repairing what a crash left: a marker whose record says
        otherwise is replaced by the right one; a marker without a record is removed."""
        record = self.load(job_id)
        if record is None:
            self.storage.delete(marker_key)
            return None
        if record.state != state:
            self._put_marker(record)
            self.storage.delete(marker_key)
        return record

    def job_ids(self, state: State, *, created_before: float | None = None) -> list[str]:
        """Ids behind the markers of ``state``, oldest job first (one LIST); with ``created_before``
        only jobs created before that time (read from the marker name, no GET)."""
        prefix = self.marker_prefix(state)
        ids = []
        for key in self.storage.list_keys(prefix):
            created_ms, _, job_id = key[len(prefix) :].partition("-")
            if created_before is None or int(created_ms) < created_before * 1000:
                ids.append(job_id)
        return ids

    def records(self, state: State, job_ids: Iterable[str] | None = None) -> Iterator[JobRecord]:
        """Records of ``state``, lazily (one GET per record consumed): by default every job behind the
        state's markers, oldest first (one LIST); else those of ``job_ids``, in that order.

        Read-only: a job whose record is gone or says another state is skipped, not repaired (repairs
        are the lease holder's job).
        """
        for job_id in self.job_ids(state) if job_ids is None else job_ids:
            record = self.load(job_id)
            if record is not None and record.state == state:
                yield record

    def unmarked_job_ids(self) -> list[str]:
        """Job ids whose record has no state marker at all (two LIST passes, no GET)."""
        marked = {key.rsplit("-", 1)[-1] for key in self.storage.list_keys(f"{self.prefix}state/")}
        return [job_id for job_id in self.all_job_ids() if job_id not in marked]

    def drop_marker(self, marker_key: str) -> None:
        """Remove a stray marker (one of ``markers()``'s keys) whose record is in another state."""
        self.storage.delete(marker_key)

    def restore_marker(self, record: JobRecord) -> None:
        """Write the marker of ``record``'s current state (idempotent)."""
        self._put_marker(record)

    def job_ids_for_source(self, key: str) -> list[str]:
        prefix = self.source_prefix(key)
        return [k[len(prefix) :] for k in self.storage.list_keys(prefix)]

    def all_job_ids(self) -> list[str]:
        prefix = f"{self.prefix}jobs/"
        return [k[len(prefix) : -len(".json")] for k in self.storage.list_keys(prefix) if k.endswith(".json")]

    def delete_job(self, record: JobRecord) -> None:
        """Remove a record, then its marker and source index entry (housekeeping).

        The record goes first: a crash afterwards leaves a marker without a record, which the poller's
        reconciliation removes, never a record that no marker leads to.
        """
        self.storage.delete(self.record_key(record.job_id))
        self.storage.delete(self.marker_key(record))
        self.storage.delete(self.source_prefix(record.source_key) + record.job_id)

    # --- backfill checkpoints ------------------------------------------------------------------
    def load_checkpoint(self, name: str) -> dict[str, Any] | None:
        """The checkpoint saved under ``name`` (any string, e.g. a backfill prefix), or None."""
        try:
            return json.loads(self.storage.get_bytes(self._checkpoint_key(name)))
        except NotFound:
            return None

    def save_checkpoint(self, name: str, data: dict[str, Any]) -> None:
        """Overwrite the checkpoint ``name`` with the JSON object ``data``."""
        body = json.dumps(data, ensure_ascii=False).encode()
        self.storage.put(self._checkpoint_key(name), body, content_type="application/json")

    def delete_checkpoint(self, name: str) -> None:
        self.storage.delete(self._checkpoint_key(name))

    def _checkpoint_key(self, name: str) -> str:
        return f"{self.prefix}backfill/{hashlib.sha256(name.encode()).hexdigest()[:24]}.json"

    # --- lease ---------------------------------------------------------------------------------
    def current_lease(self) -> Lease | None:
        """The latest lease term (live, expired or released), or None when no poller ever ran."""
        return self._latest_lease()

    def acquire_lease(self, seconds: float, now: float | None = None) -> Lease | None:
        """Take the poller lease for ``seconds`` unless a live holder has it.

        Each holder writes a new term object create-if-absent, so of two contenders exactly one wins.
        """
        now = time.time() if now is None else now
        try:
            previous = self._latest_lease()
        except _Contended:
            return None
        if previous is not None and not previous.released and previous.expires_at > now:
            return None
        lease = Lease(
            term=(previous.term + 1) if previous else 1,
            owner=uuid.uuid4().hex,
            expires_at=now + seconds,
            last_submit_at=previous.last_submit_at if previous else 0.0,
            task_seconds=previous.task_seconds if previous else None,
            last_sweep_at=previous.last_sweep_at if previous else 0.0,
            submits_paused_until=previous.submits_paused_until if previous else 0.0,
        )
        try:
            self.storage.put(self._lease_key(lease.term), _dump(lease), forbid_overwrite=True)
        except AlreadyExists:
            return None
        if previous is not None:
            for key in self.storage.list_keys(f"{self.prefix}lease/"):
                if key != self._lease_key(lease.term):
                    self.storage.delete(key)
        return lease

    def holds_lease(self, lease: Lease, now: float | None = None) -> bool:
        """True while ``lease`` is unexpired and no later term exists (fencing before each round)."""
        now = time.time() if now is None else now
        try:
            latest = self._latest_lease()
        except _Contended:
            return False
        return latest is not None and latest.term == lease.term and lease.expires_at > now

    def break_lease(self) -> None:
        """Void the current lease, keeping its pacing state. Only for when its holder is known to be
        gone (the local stack restarting: its pollers died with it); never from a function."""
        try:
            previous = self._latest_lease()
        except _Contended:
            return  # someone is taking it right now: nothing stale to break
        if previous is None or previous.released:
            return
        voided = previous.model_copy(update={"term": previous.term + 1, "owner": "broken", "released": True})
        with contextlib.suppress(AlreadyExists):
            self.storage.put(self._lease_key(voided.term), _dump(voided), forbid_overwrite=True)

    def release_lease(self, lease: Lease) -> None:
        """Hand the lease back, with the pacing state for the next holder."""
        lease.released = True
        self.storage.put(self._lease_key(lease.term), _dump(lease))

    def _lease_key(self, term: int) -> str:
        return f"{self.prefix}lease/{term:012d}"

    def _latest_lease(self) -> Lease | None:
        """The newest term, or None when there never was one; raise _Contended when the newest listed
        term vanished meanwhile (a new holder won and cleaned up)."""
        keys = list(self.storage.list_keys(f"{self.prefix}lease/"))
        if not keys:
            return None
        try:
            return Lease.model_validate_json(self.storage.get_bytes(keys[-1]))
        except NotFound:
            raise _Contended from None


class _Contended(Exception):
    """Someone else is taking the lease right now."""


def _dump(model: BaseModel) -> bytes:
    return json.dumps(model.model_dump(mode="json"), ensure_ascii=False, indent=1).encode()
