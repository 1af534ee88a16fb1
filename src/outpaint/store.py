"""Persistence of job records, their state markers and the per-source index (layout: ``naming.py``),
on any object store with five calls (``ObjectStore``: the OSS adapter, or an in-memory fake in tests).

A save writes the record first, then the new marker, then deletes the old marker. A crash between any
two steps leaves a record that ``reconcile_marker`` (a marker whose record says otherwise) or
``unmarked_job_ids`` (a record without any marker) lets the lease holder repair. After creation only the
lease holder changes a record, so no compare-and-swap is needed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Protocol

from pydantic import BaseModel

from outpaint.errors import AlreadyExists, NotFound
from outpaint.job import JobRecord, State
from outpaint.naming import StateLayout, parse_marker


class ObjectStore(Protocol):
    """The object calls outpaint's state needs (``oss.Storage`` implements them)."""

    def put(
        self,
        key: str,
        data: bytes | IO[bytes],
        *,
        content_type: str | None = None,
        user_meta: Mapping[str, str] | None = None,
        forbid_overwrite: bool = False,
    ) -> str:
        """Write ``key``; return its ETag; with ``forbid_overwrite`` raise AlreadyExists if it exists."""
        ...

    def get_bytes(self, key: str, byte_range: tuple[int, int] | None = None) -> bytes:
        """Read ``key``; raise NotFound if it does not exist."""
        ...

    def delete(self, key: str) -> None:
        """Delete ``key`` (no error when it is already gone)."""
        ...

    def list_keys(self, prefix: str, start_after: str = "") -> Iterator[str]:
        """Keys under ``prefix`` after ``start_after``, in lexicographic order."""
        ...


def dump_json(model: BaseModel) -> bytes:
    """How records and lease terms are written: indented JSON, UTF-8."""
    return json.dumps(model.model_dump(mode="json"), ensure_ascii=False, indent=1).encode()


class JobStore:
    """Records and markers of one bucket's state prefix."""

    def __init__(self, storage: ObjectStore, state_prefix: str) -> None:
        self.storage = storage
        self.layout = StateLayout(state_prefix)

    def marker_key(self, record: JobRecord, state: State | None = None) -> str:
        return self.layout.marker_key(state or record.state, record.created_at, record.job_id)

    # --- records -------------------------------------------------------------------------------
    def create(self, record: JobRecord) -> bool:
        """Claim ``record.job_id``: True when this call created it, False when it already existed.

        On a duplicate the existing record's index entry and marker are (re)written, so a create that
        crashed between the record and them is completed by the event's redelivery.
        """
        try:
            self.storage.put(
                self.layout.record_key(record.job_id),
                dump_json(record),
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
        self.storage.put(self.layout.source_prefix(record.source_key) + record.job_id, b"")
        self.restore_marker(record)

    def load(self, job_id: str) -> JobRecord | None:
        try:
            return JobRecord.model_validate_json(self.storage.get_bytes(self.layout.record_key(job_id)))
        except NotFound:
            return None

    def save(self, record: JobRecord, previous: State) -> None:
        """Persist a transition from ``previous``: record, new marker, then the old marker's removal."""
        self.storage.put(
            self.layout.record_key(record.job_id), dump_json(record), content_type="application/json"
        )
        if record.state != previous:
            self.restore_marker(record)
            self.storage.delete(self.marker_key(record, previous))

    def delete_job(self, record: JobRecord) -> None:
        """Remove a record, then its marker and source index entry (housekeeping).

        The record goes first: a crash afterwards leaves a marker without a record, which the poller's
        reconciliation removes, never a record that no marker leads to.
        """
        self.storage.delete(self.layout.record_key(record.job_id))
        self.storage.delete(self.marker_key(record))
        self.storage.delete(self.layout.source_prefix(record.source_key) + record.job_id)

    # --- queries -------------------------------------------------------------------------------
    def markers(self, state: State) -> list[tuple[str, str]]:
        """(marker key, job id) of every marker of ``state``, oldest job first."""
        return [
            (key, parse_marker(key)[1]) for key in self.storage.list_keys(self.layout.marker_prefix(state))
        ]

    def job_ids(self, state: State, *, created_before: float | None = None) -> list[str]:
        """Ids behind the markers of ``state``, oldest job first (one LIST); with ``created_before``
        only jobs created before that time (read from the marker name, no GET)."""
        ids = []
        for key in self.storage.list_keys(self.layout.marker_prefix(state)):
            created_ms, job_id = parse_marker(key)
            if created_before is None or (created_ms is not None and created_ms < created_before * 1000):
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

    def job_ids_for_source(self, key: str) -> list[str]:
        prefix = self.layout.source_prefix(key)
        return [k[len(prefix) :] for k in self.storage.list_keys(prefix)]

    def all_job_ids(self) -> list[str]:
        ids = map(self.layout.job_id_of_record, self.storage.list_keys(self.layout.records_prefix))
        return [job_id for job_id in ids if job_id is not None]

    # --- repair (the lease holder's) -------------------------------------------------------------
    def reconcile_marker(self, marker_key: str, state: State, job_id: str) -> JobRecord | None:
        """The record behind a marker, repairing what a crash left: a marker whose record says
        otherwise is replaced by the right one; a marker without a record is removed."""
        record = self.load(job_id)
        if record is None:
            self.storage.delete(marker_key)
            return None
        if record.state != state:
            self.restore_marker(record)
            self.storage.delete(marker_key)
        return record

    def unmarked_job_ids(self) -> list[str]:
        """Job ids whose record has no state marker at all (two LIST passes, no GET)."""
        marked = {parse_marker(key)[1] for key in self.storage.list_keys(self.layout.markers_prefix)}
        return [job_id for job_id in self.all_job_ids() if job_id not in marked]

    def drop_marker(self, marker_key: str) -> None:
        """Remove a stray marker (one of ``markers()``'s keys) whose record is in another state."""
        self.storage.delete(marker_key)

    def restore_marker(self, record: JobRecord) -> None:
        """Write the marker of ``record``'s current state (idempotent)."""
        self.storage.put(self.marker_key(record), b"")
