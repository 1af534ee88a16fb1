"""The one place that applies outcomes, on the in-memory object store: moves the table refuses, what a
save writes, the log line, failed saves kept dirty, and records written before fields were typed."""

from __future__ import annotations

import json
import logging

import pytest

from outpaint import log
from outpaint.errors import IllegalMove, StorageError
from outpaint.job import MOVES, JobRecord, State, TaskAttempt, TaskStatus
from outpaint.journal import Journal
from outpaint.outcomes import Done, End, Reopen, Retry, Stay, Submitted, Submitting, WritebackFailed
from outpaint.store import JobStore
from tests.support.memory import MemoryStorage


@pytest.fixture
def journal() -> Journal:
    return Journal(JobStore(MemoryStorage(), ".outpaint/"), clock=lambda: 500.0)


@pytest.fixture
def lines(caplog):
    """The outpaint log lines written during the test: (event, fields)."""
    caplog.set_level(logging.DEBUG, logger="outpaint")  # restored after the test
    propagate, log.logger.propagate = log.logger.propagate, True  # let caplog see them
    yield lambda: [(r.getMessage(), r.fields) for r in caplog.records if r.name == "outpaint"]
    log.logger.propagate = propagate


def queued(journal: Journal, job_id: str = "a" * 32) -> JobRecord:
    job = JobRecord(job_id=job_id, bucket="b", source_key="inbox/a.jpg", source_etag="E",
                    created_at=100.0, updated_at=100.0)  # fmt: skip
    assert journal.create(job, State.QUEUED, "1 variant(s)")
    return job


def stored(journal: Journal) -> dict[str, bytes]:
    return journal.store.storage.objects  # type: ignore[attr-defined]


def test_a_move_the_table_does_not_allow_is_refused_and_writes_nothing(journal):
    job = queued(journal)
    before = dict(stored(journal))
    with pytest.raises(IllegalMove, match="QUEUED → DONE"):
        journal.apply(job, Done("outpainted/a.jpg", "ETAG", 10, "JPEG", 16, 9))
    assert stored(journal) == before
    assert (job.state, job.output_key) == (State.QUEUED, None)  # refused before the outcome touched it


def test_terminal_states_have_no_moves_but_an_operators_retry():
    assert set(MOVES) == {State.QUEUED, State.SUBMITTING, State.SUBMITTED, State.FAILED, State.EXPIRED}
    assert MOVES[State.FAILED] == MOVES[State.EXPIRED] == {State.QUEUED}


def test_apply_saves_the_record_moves_the_marker_and_logs_one_line(journal, lines):
    job = queued(journal)
    journal.apply(job, Submitting("https://oss.example.com/inbox/a.jpg"))
    journal.apply(job, Submitted("task-1", "req-1", first_query_at=501.0))

    keys = set(stored(journal))
    assert f".outpaint/state/submitted/0000000100000-{job.job_id}" in keys
    assert not any("/state/queued/" in k or "/state/submitting/" in k for k in keys)
    record = json.loads(stored(journal)[f".outpaint/jobs/{job.job_id}.json"])
    assert (record["state"], record["attempts"], record["tasks"][0]["task_id"]) == ("SUBMITTED", 1, "task-1")
    assert [entry["note"] for entry in record["history"]] == ["1 variant(s)", "attempt 1", "task-1"]

    [created, submitting, submitted] = lines()
    assert created[0] == "job.created"
    assert submitting[0] == "job.submitting"
    assert submitted[0] == "job.submitted"
    common = {"job_id", "key", "variant", "state", "previous", "attempt"}
    assert common <= set(submitted[1])
    assert (submitted[1]["state"], submitted[1]["previous"], submitted[1]["task_id"]) == (
        "SUBMITTED",
        "SUBMITTING",
        "task-1",
    )


def test_stay_changes_nothing(journal, lines):
    job = queued(journal)
    before = dict(stored(journal))
    journal.apply(job, Stay())
    assert stored(journal) == before
    assert [name for name, _ in lines()] == ["job.created"]


def test_a_failed_save_stays_dirty_and_is_saved_again(journal):
    job = queued(journal)
    storage = journal.store.storage
    real_put = storage.put

    def failing_put(key, *args, **kwargs):
        raise StorageError("OSS put failed: HTTP 503", code="storage.http_503")

    storage.put = failing_put  # type: ignore[method-assign]
    with pytest.raises(StorageError):
        journal.apply(job, Submitting("https://oss.example.com/inbox/a.jpg"))
    assert job.job_id in journal.dirty
    assert journal.cache[job.job_id].state is State.SUBMITTING

    storage.put = real_put  # type: ignore[method-assign]
    journal.flush(lambda job, step: step(job))
    assert journal.dirty == set()
    record = journal.store.load(job.job_id)
    assert record.state is State.SUBMITTING
    assert record.history[-1].note == "saved again after a failed write"
    assert journal.store.job_ids(State.SUBMITTING) == [job.job_id]
    assert journal.store.job_ids(State.QUEUED) == []


def test_retry_end_and_reopen(journal, lines):
    job = queued(journal)
    journal.apply(job, Submitting("u"))
    journal.apply(job, Retry("InternalError", "boom", not_before=530.0, max_attempts=3))
    assert (job.state, job.not_before) == (State.QUEUED, 530.0)
    assert job.history[-1].note == "InternalError: retry 2/3"
    journal.apply(job, Submitting("u"))
    journal.apply(job, End(State.FAILED, "InternalError", "boom again"))
    assert (job.state, job.attempts, job.error_code) == (State.FAILED, 2, "InternalError")
    journal.apply(job, Reopen())
    assert (job.state, job.attempts, job.history[-1].note) == (State.QUEUED, 0, "retried by operator")
    assert [name for name, _ in lines()][-3:] == ["job.submitting", "job.failed", "job.requeued"]


def test_write_back_failures_count_then_fail(journal):
    job = queued(journal)
    journal.apply(job, Submitting("u"))
    journal.apply(job, Submitted("t", None, first_query_at=0.0))
    journal.apply(job, WritebackFailed("result.unavailable", "HTTP 503", retry_at=502.0))
    assert (job.state, job.writeback_failures, job.next_query_at) == (State.SUBMITTED, 1, 502.0)
    journal.apply(job, WritebackFailed("result.unavailable", "HTTP 503", retry_at=None))
    assert (job.state, job.error_code) == (State.FAILED, "result.write_failed")
    assert job.error_message == "2 write-back failures, last: HTTP 503"


def test_a_record_cannot_be_created_twice_or_in_a_running_state(journal):
    job = queued(journal)
    again = job.model_copy(deep=True, update={"history": []})
    assert journal.create(again, State.QUEUED, "1 variant(s)") is False
    with pytest.raises(IllegalMove):
        JobRecord(job_id="c" * 32, bucket="b", source_key="k", source_etag="E", created_at=1.0,
                  updated_at=1.0).begin(State.SUBMITTED, now=1.0)  # fmt: skip


def test_records_written_before_the_fields_were_typed_still_load():
    legacy = {
        "job_id": "d" * 32, "bucket": "b", "source_key": "inbox/x.jpg", "source_etag": "E",
        "state": "SUBMITTED", "created_at": 1.0, "updated_at": 2.0,
        "event": {"name": "ObjectCreated:PutObject", "request_id": "r", "variants": 3,
                  "writeback_failures": 2, "queries": 7, "result_width": 1600, "result_height": 900},
    }  # fmt: skip
    record = JobRecord.model_validate_json(json.dumps(legacy))
    assert (record.variants, record.writeback_failures, record.queries) == (3, 2, 7)
    assert (record.result_width, record.result_height) == (1600, 900)
    assert (record.event.name, record.event.request_id) == ("ObjectCreated:PutObject", "r")


def test_a_task_status_the_service_invented_reads_as_running():
    invented = TaskAttempt.model_validate({"submitted_at": 1.0, "status": "QUEUEING"})
    assert invented.status is TaskStatus.RUNNING
    ours = TaskAttempt.model_validate({"submitted_at": 1.0, "status": "UNCERTAIN"})
    assert ours.status is TaskStatus.UNCERTAIN
