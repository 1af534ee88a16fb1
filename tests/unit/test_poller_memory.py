"""The poller on the in-memory object store: the repairs it makes before any DashScope call."""

from __future__ import annotations

from outpaint.app import Pipeline
from outpaint.config import load_settings
from outpaint.job import JobRecord, State
from outpaint.store import JobStore
from tests.support.memory import MemoryStorage

NOW = 1_800_000_000.0


def record(job_id: str, state: State) -> JobRecord:
    job = JobRecord(job_id=job_id, bucket="b", source_key=f"inbox/{job_id[:4]}.jpg", source_etag="E",
                    created_at=NOW - 100, updated_at=NOW - 100)  # fmt: skip
    job.begin(State.QUEUED, now=NOW - 100)
    return job.model_copy(update={"state": state})


def pipeline(storage: MemoryStorage) -> Pipeline:
    settings = load_settings(bucket="b", dashscope_api_key="sk-unused")
    # No DashScope client or fetcher: nothing here may reach them.
    return Pipeline(settings, storage, client=None, fetcher=None, clock=lambda: NOW, sleep=lambda s: None)  # type: ignore[arg-type]


def test_a_run_restores_lost_markers_and_replaces_stray_ones():
    storage = MemoryStorage()
    store = JobStore(storage, ".outpaint/")
    lost, stray = record("a" * 32, State.DONE), record("b" * 32, State.FAILED)
    store.create(lost)
    store.create(stray)
    storage.delete(store.marker_key(lost))  # an intake that crashed between the record and its marker
    storage.put(store.marker_key(stray, State.SUBMITTED), b"")  # a crash before the old marker's removal
    storage.delete(store.marker_key(stray))

    report = pipeline(storage).poll(NOW + 30)

    assert report.repaired == 1
    assert store.job_ids(State.DONE) == [lost.job_id]
    assert store.job_ids(State.FAILED) == [stray.job_id]
    assert store.job_ids(State.SUBMITTED) == []
    assert report.submitted == report.queries == 0


def test_a_held_lease_keeps_a_second_run_out():
    storage = MemoryStorage()
    first = pipeline(storage)
    assert first.leases.acquire(600.0, now=NOW) is not None
    assert first.poll(NOW + 30).lease == "held"


def test_a_folder_object_under_the_marker_prefix_is_removed_not_fatal():
    storage = MemoryStorage()
    storage.put(".outpaint/state/submitted/", b"")  # a "folder" made in the console
    storage.put(".outpaint/state/queued/", b"")
    report = pipeline(storage).poll(NOW + 30)
    assert report.lease == "acquired"
    assert not [key for key in storage.objects if key.startswith(".outpaint/state/")]


# The fields of the metrics line, as docs/operations.md lists them for SLS: renaming one breaks dashboards.
METRIC_FIELDS = {
    "lease", "rounds", "submitted", "throttled", "queries", "done", "failed", "requeued", "in_flight",
    "queued", "repaired", "out_of_time", "run_seconds", "oldest_queued_age_seconds",
}  # fmt: skip


def test_every_run_writes_one_metrics_line_with_the_documented_fields(caplog):
    from pathlib import Path

    caplog.set_level("INFO", logger="outpaint")
    storage = MemoryStorage()
    JobStore(storage, ".outpaint/").create(record("c" * 32, State.DONE))
    pipeline(storage).poll(NOW + 30)
    [finished] = [r.fields for r in caplog.records if r.getMessage() == "poller.finished"]
    # A field without a value (no queued job: no oldest age) is left out of the line, never renamed.
    assert set(finished) == METRIC_FIELDS - {"oldest_queued_age_seconds"}
    assert (finished["run_seconds"], finished["queued"], finished["lease"]) == (0.0, 0, "acquired")
    documented = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
    for name in METRIC_FIELDS:
        assert f"`{name}`" in documented.read_text(encoding="utf-8"), name
