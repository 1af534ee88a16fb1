"""The store queries the ops CLI uses (job_ids, records, checkpoints, current_lease), on in-memory storage."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from outpaint.storage import AlreadyExists, NotFound
from outpaint.store import JobRecord, JobStore, State


class MemoryStorage:
    """The slice of ``Storage`` that ``JobStore`` uses, kept in a dict."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(self, key: str, data: bytes, *, forbid_overwrite: bool = False, **_: object) -> str:
        if forbid_overwrite and key in self.objects:
            raise AlreadyExists(key)
        self.objects[key] = data
        return "ETAG"

    def get_bytes(self, key: str) -> bytes:
        if key not in self.objects:
            raise NotFound(key)
        return self.objects[key]

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    def list_keys(self, prefix: str, start_after: str = "") -> Iterator[str]:
        return iter(sorted(k for k in self.objects if k.startswith(prefix) and k > start_after))


@pytest.fixture
def store() -> JobStore:
    return JobStore(MemoryStorage(), ".outpaint/")  # type: ignore[arg-type]


def job(job_id: str, created_at: float, state: State = State.QUEUED) -> JobRecord:
    record = JobRecord(job_id=job_id, bucket="b", source_key=f"inbox/{job_id}.jpg", source_etag="E",
                       state=State.QUEUED, created_at=created_at, updated_at=created_at)  # fmt: skip
    record.move(state, now=created_at)
    return record


def test_job_ids_are_in_creation_order_and_filter_by_creation_time(store):
    for job_id, created in (("c" * 32, 300.0), ("a" * 32, 100.0), ("b" * 32, 200.0)):
        store.create(job(job_id, created, State.DONE))
    store.create(job("d" * 32, 50.0, State.QUEUED))

    assert store.job_ids(State.DONE) == ["a" * 32, "b" * 32, "c" * 32]
    assert store.job_ids(State.DONE, created_before=200.0) == ["a" * 32]
    assert store.job_ids(State.DONE, created_before=200.001) == ["a" * 32, "b" * 32]
    assert store.job_ids(State.FAILED) == []


def test_records_skip_missing_and_moved_jobs_without_repairing(store):
    kept, moved, gone = job("a" * 32, 1.0, State.FAILED), job("b" * 32, 2.0, State.FAILED), job("c" * 32, 3.0)
    for record in (kept, moved, gone):
        store.create(record)
    stale_marker = store.marker_key(moved)
    moved.move(State.QUEUED)
    store.storage.put(store.record_key(moved.job_id), moved.model_dump_json().encode())  # crash before marker
    store.storage.delete(store.record_key(gone.job_id))
    store.storage.put(store.marker_key(gone, State.FAILED), b"")

    assert [r.job_id for r in store.records(State.FAILED)] == [kept.job_id]
    assert [r.job_id for r in store.records(State.FAILED, [moved.job_id, kept.job_id])] == [kept.job_id]
    assert stale_marker in store.storage.objects  # read-only: repairs are the lease holder's


def test_checkpoints_round_trip_under_the_state_prefix(store):
    assert store.load_checkpoint("inbox/2024/") is None
    store.save_checkpoint("inbox/2024/", {"last_key": "inbox/2024/b.jpg", "processed": 2})
    store.save_checkpoint("inbox/", {"last_key": "inbox/a.jpg"})

    assert store.load_checkpoint("inbox/2024/") == {"last_key": "inbox/2024/b.jpg", "processed": 2}
    assert all(key.startswith(".outpaint/backfill/") for key in store.storage.objects)
    store.delete_checkpoint("inbox/2024/")
    assert store.load_checkpoint("inbox/2024/") is None
    assert store.load_checkpoint("inbox/") == {"last_key": "inbox/a.jpg"}


def test_current_lease_is_the_latest_term(store):
    assert store.current_lease() is None
    first = store.acquire_lease(60, now=1000.0)
    assert store.current_lease() == first
    store.release_lease(first)
    second = store.acquire_lease(60, now=1001.0)
    assert store.current_lease().term == second.term == 2
    assert not store.current_lease().released
