"""The state queries the ops CLI uses (job ids, records, checkpoints, the current lease), in memory."""

from __future__ import annotations

import pytest

from outpaint.checkpoints import Checkpoints
from outpaint.job import JobRecord, State
from outpaint.lease import LeaseStore
from outpaint.store import JobStore
from tests.support.memory import MemoryStorage


@pytest.fixture
def store() -> JobStore:
    return JobStore(MemoryStorage(), ".outpaint/")


@pytest.fixture
def checkpoints(store) -> Checkpoints:
    return Checkpoints(store.storage, ".outpaint/")


@pytest.fixture
def leases(store) -> LeaseStore:
    return LeaseStore(store.storage, ".outpaint/")


def job(job_id: str, created_at: float, state: State = State.QUEUED) -> JobRecord:
    record = JobRecord(job_id=job_id, bucket="b", source_key=f"inbox/{job_id}.jpg", source_etag="E",
                       created_at=created_at, updated_at=created_at)  # fmt: skip
    record.begin(State.QUEUED, now=created_at)
    return record.model_copy(update={"state": state})


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
    moved.move(State.QUEUED, now=2.0)
    store.storage.put(
        store.layout.record_key(moved.job_id), moved.model_dump_json().encode()
    )  # crash before marker
    store.storage.delete(store.layout.record_key(gone.job_id))
    store.storage.put(store.marker_key(gone, State.FAILED), b"")

    assert [r.job_id for r in store.records(State.FAILED)] == [kept.job_id]
    assert [r.job_id for r in store.records(State.FAILED, [moved.job_id, kept.job_id])] == [kept.job_id]
    assert stale_marker in store.storage.objects  # read-only: repairs are the lease holder's


def test_checkpoints_round_trip_under_the_state_prefix(store, checkpoints):
    assert checkpoints.load("inbox/2024/") is None
    checkpoints.save("inbox/2024/", {"last_key": "inbox/2024/b.jpg", "processed": 2})
    checkpoints.save("inbox/", {"last_key": "inbox/a.jpg"})

    assert checkpoints.load("inbox/2024/") == {"last_key": "inbox/2024/b.jpg", "processed": 2}
    assert all(key.startswith(".outpaint/backfill/") for key in store.storage.objects)
    checkpoints.delete("inbox/2024/")
    assert checkpoints.load("inbox/2024/") is None
    assert checkpoints.load("inbox/") == {"last_key": "inbox/a.jpg"}


def test_current_lease_is_the_latest_term(leases):
    assert leases.current() is None
    first = leases.acquire(60, now=1000.0)
    assert leases.current() == first
    leases.release(first)
    second = leases.acquire(60, now=1001.0)
    assert leases.current().term == second.term == 2
    assert not leases.current().released
