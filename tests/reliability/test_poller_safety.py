"""The poller under the ways it could pay twice, lose a job or spin: a stalled holder, racing lease
contenders, failed record writes, gateway answers, failing write-backs, colliding output keys, re-sent
bytes with new metadata, records that lost their marker, long backlogs. (Found by review; each test
failed before the fix it guards.)"""

from __future__ import annotations

import io
import tempfile
import time

import httpx
import pytest
from PIL import Image

import outpaint.publish as publish_module
from outpaint.config import load_settings
from outpaint.dashscope import DashScopeClient
from outpaint.errors import ResultRefused, ResultUnavailable, StorageError, SubmitOutcomeUnknown
from outpaint.events import parse_oss_event
from outpaint.job import JobRecord, State
from outpaint.publish import MAX_WRITEBACK_FAILURES
from outpaint.results import ResultFetcher
from tests.support.faults import Crash, FaultPoint, with_fault
from tests.support.images import photo
from tests.support.stack import running_stack


@pytest.fixture
def stack(tmp_path):
    with running_stack(tmp_path, task_seconds=(0.2, 0.2)) as stack:
        yield stack


def queue(stack, key, **meta):
    stack.pipeline().intake(parse_oss_event(stack.upload(key, photo(640, 640), **meta)))


def jobs(stack):
    store = stack.pipeline().store
    return {j.source_key: j for j in (store.load(i) for i in store.all_job_ids())}


class Wrap:
    """A stand-in that forwards everything to ``real`` except the methods a test overrides."""

    def __init__(self, real, **overrides):
        self._real = real
        self.__dict__.update(overrides)

    def __getattr__(self, name):
        return getattr(self._real, name)


def use_storage(pipeline, storage):
    pipeline.storage = storage


# --- the lease ---------------------------------------------------------------------------------------
def test_two_contenders_for_an_expired_lease_never_both_win(stack):
    a, b = stack.pipeline().leases, stack.pipeline().leases
    t0 = time.time()
    assert a.acquire(1.0, now=t0).term == 1
    assert a.acquire(1.0, now=t0 + 10).term == 2  # removes term 1
    now, won = t0 + 100, {}
    real_get = b.storage.get_bytes

    def get_bytes(key, *args, **kwargs):  # just before B reads the newest term, A takes the lease
        if "/lease/" in key and "a" not in won:
            won["a"] = a.acquire(60.0, now=now)
        return real_get(key, *args, **kwargs)

    b.storage = Wrap(b.storage, get_bytes=get_bytes)
    assert b.acquire(60.0, now=now) is None
    assert won["a"].term == 3


def test_a_stalled_holder_writes_nothing_after_its_deadline(stack):
    """A's query stalls past its deadline; B takes over; A's late answer must not be acted on."""
    queue(stack, "inbox/a.jpg", ratio="16:9")
    queue(stack, "inbox/b.jpg", ratio="16:9")
    skew = [0.0]
    a = stack.pipeline(max_concurrent_tasks=1)
    a.clock = lambda: time.time() + skew[0]
    real_query = a.client.query

    def stalled_query(task_id):
        if skew[0] == 0.0:
            skew[0] = 100.0  # the call "took" 100 s; meanwhile the lease expired and B ran
            b = stack.pipeline(max_concurrent_tasks=1)
            b.clock = lambda: time.time() + 100.0
            assert b.poll(time.time() + 100.0 + 15).done == 2
        return real_query(task_id)

    a.client = Wrap(a.client, query=stalled_query)
    a.poll(time.time() + 10)
    assert stack.dashscope.stats()["submits_accepted"] == 2
    assert {job.state for job in jobs(stack).values()} == {State.DONE}


def test_the_lease_outlives_the_process(stack):
    p = stack.pipeline()
    started = time.time()
    p.poll(started + 5, hard_end=started + 60)
    lease = p.leases.current()
    assert lease.expires_at >= started + 60


def test_a_broken_lease_is_free_at_once_and_keeps_its_pacing(stack):
    leases = stack.pipeline().leases
    held = leases.acquire(600.0)
    held.last_submit_at = 123.0
    leases.release(held)
    again = leases.acquire(600.0)
    assert leases.acquire(600.0) is None
    leases.break_()
    taken = leases.acquire(600.0)
    assert taken is not None
    assert taken.term == again.term + 2
    assert taken.last_submit_at == 123.0


# --- submits -------------------------------------------------------------------------------------------
def test_a_failed_record_write_after_submit_does_not_buy_a_second_task(stack):
    queue(stack, "inbox/f.jpg", ratio="16:9")
    p = stack.pipeline()
    real_put, puts = p.storage.put, []

    def put(key, *args, **kwargs):
        if "/jobs/" in key:
            puts.append(key)
            if len(puts) == 2:  # 1: SUBMITTING, 2: SUBMITTED with the task id
                raise StorageError("OSS put failed: HTTP 503", code="storage.http_503")
        return real_put(key, *args, **kwargs)

    use_storage(p, Wrap(p.storage, put=put))
    p.poll(time.time() + 10)
    job = jobs(stack)["inbox/f.jpg"]
    assert job.state is State.DONE
    assert stack.dashscope.stats()["submits_accepted"] == 1
    assert job.uncertain_submits == 0


@pytest.mark.parametrize("status", [502, 503, 504])
def test_a_gateway_answer_to_a_submit_is_an_unknown_outcome(status):
    transport = httpx.MockTransport(
        lambda request: httpx.Response(status, text="<html>Gateway Time-out</html>")
    )
    client = DashScopeClient("https://dashscope.example.com/api/v1", "sk-x", transport=transport)
    with pytest.raises(SubmitOutcomeUnknown):
        client.submit("https://oss.example.com/a.jpg?sig", {"output_ratio": "16:9"})


# --- write-back ------------------------------------------------------------------------------------------
def test_a_failing_output_write_never_buys_the_result_again(tmp_path):
    with running_stack(tmp_path, task_seconds=(0.05, 0.05), retention_seconds=1.0) as stack:
        queue(stack, "inbox/w.jpg", ratio="16:9")
        p = stack.pipeline(max_attempts=3)
        real_put = p.storage.put

        def put(key, *args, **kwargs):
            if key.startswith("outpainted/"):
                raise StorageError("OSS put failed: HTTP 403 AccessDenied", code="storage.accessdenied")
            return real_put(key, *args, **kwargs)

        use_storage(p, Wrap(p.storage, put=put))
        p.poll(time.time() + 6, hard_end=time.time() + 60)
        job = jobs(stack)["inbox/w.jpg"]
        stats = stack.dashscope.stats()
    assert stats["submits_accepted"] == 1
    assert stats["result_downloads"] <= MAX_WRITEBACK_FAILURES
    assert job.state in (State.FAILED, State.EXPIRED)
    assert job.error_code in ("result.write_failed", "result.lost")


def test_write_back_failures_are_counted_across_ticks(stack):
    queue(stack, "inbox/r.jpg", ratio="16:9")
    fetches = 0
    for tick in range(10):
        skew = [tick * 60.0 + 200.0]
        p = stack.pipeline()
        p.clock = lambda skew=skew: time.time() + skew[0]

        def slow_failure(url, skew=skew):
            nonlocal fetches
            fetches += 1
            skew[0] += 20.0  # a read timeout
            raise ResultUnavailable("result download failed: ReadTimeout")

        p.fetcher = Wrap(p.fetcher, fetch=slow_failure)
        p.poll(p.clock() + 58.0)
    job = jobs(stack)["inbox/r.jpg"]
    assert fetches == MAX_WRITEBACK_FAILURES
    assert (job.state, job.error_code) == (State.FAILED, "result.write_failed")


def test_an_unexpected_fetch_error_backs_off(stack):
    queue(stack, "inbox/g.jpg", ratio="16:9")
    p = stack.pipeline(poll_interval_seconds=0.1)
    calls = []

    def broken(url):
        calls.append(url)
        raise ValueError("a bug in a library")

    p.fetcher = Wrap(p.fetcher, fetch=broken)
    p.poll(time.time() + 4, hard_end=time.time() + 60)
    assert 1 <= len(calls) <= 3  # backs off 2 s, 4 s, … instead of retrying every round


@pytest.mark.parametrize("headers", [{"content-encoding": "gzip"}, {"content-length": "12, 12"}])
def test_odd_result_responses_are_result_errors_and_close_the_spool(headers, monkeypatch):
    spools = []
    real = tempfile.SpooledTemporaryFile
    monkeypatch.setattr(
        tempfile, "SpooledTemporaryFile", lambda *a, **k: spools.append(real(*a, **k)) or spools[-1]
    )
    settings = load_settings(bucket="b", allowed_result_hosts=["https://r.example.com"])
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, headers=headers, content=b"not an image")
    )
    with pytest.raises(ResultRefused):
        ResultFetcher(settings.fetch_policy(), transport=transport).fetch("https://r.example.com/x.png")
    assert spools
    assert all(s.closed for s in spools)


def test_the_finished_result_file_is_closed(stack, monkeypatch):
    finished = []
    real = publish_module.finish_exact

    def spy(result, width, height):
        out = real(result, width, height)
        finished.append(out.file)
        return out

    monkeypatch.setattr(publish_module, "finish_exact", spy)
    stack.on_upload(stack.upload("inbox/exact.jpg", photo(800, 800), size="1200x628"))
    assert jobs(stack)["inbox/exact.jpg"].state is State.DONE
    assert finished
    assert all(f.closed for f in finished)


# --- outputs ---------------------------------------------------------------------------------------------
def test_an_output_of_another_upload_is_never_overwritten(stack):
    stack.on_upload(stack.upload("inbox/p.jpg", photo(640, 640), ratio="16:9"))
    before = stack.bucket().get_object("outpainted/p.jpg").read()
    stack.on_upload(stack.upload("inbox/p.png", photo(600, 800, fmt="PNG"), ratio="1:1"))
    by_key = jobs(stack)
    assert by_key["inbox/p.jpg"].state is State.DONE
    assert (by_key["inbox/p.png"].state, by_key["inbox/p.png"].error_code) == (
        State.FAILED,
        "output.key_conflict",
    )
    assert "inbox/p.jpg" in by_key["inbox/p.png"].error_message
    assert stack.bucket().get_object("outpainted/p.jpg").read() == before


def test_same_bytes_with_new_metadata_supersede_the_old_request(stack):
    image = photo(800, 800)
    p = stack.pipeline()
    [old] = p.intake(parse_oss_event(stack.upload("inbox/m.jpg", image, ratio="16:9")))
    [new] = p.intake(parse_oss_event(stack.upload("inbox/m.jpg", image, ratio="1:2")))  # same ETag
    p.poll(time.time() + 10)
    store = stack.pipeline().store
    old_job, new_job = store.load(old.job_ids[0]), store.load(new.job_ids[0])
    assert (old_job.state, old_job.error_code) == (State.SKIPPED, "source.changed")
    assert new_job.state is State.DONE
    with Image.open(io.BytesIO(stack.bucket().get_object("outpainted/m.jpg").read())) as out:
        assert out.height > out.width
    assert stack.dashscope.stats()["submits_accepted"] == 1


# --- lost markers and long queues ------------------------------------------------------------------------
def test_a_record_that_lost_its_marker_is_finished_by_the_ticks(stack):
    records = parse_oss_event(stack.upload("inbox/o.jpg", photo(640, 640), ratio="16:9"))
    with pytest.raises(Crash):  # FC's last delivery attempt: no redelivery follows
        with_fault(stack.pipeline(), FaultPoint("storage", "put", "*/jobs/*", when="after")).intake(records)
    for _ in range(3):
        stack.on_tick(timeout=10)
    assert jobs(stack)["inbox/o.jpg"].state is State.DONE


def test_record_reads_grow_with_the_work_done_not_with_the_backlog(stack):
    stack.bucket().put_object("inbox/shared.jpg", photo(640, 640))
    head = stack.bucket().head_object("inbox/shared.jpg")
    store = stack.pipeline().store
    now = time.time()
    for i in range(300):
        store.create(
            JobRecord(
                job_id=f"{i:032x}",
                bucket="outpaint-test",
                source_key="inbox/shared.jpg",
                source_etag=head.etag.upper(),
                parameters={"output_ratio": "16:9"},
                state=State.QUEUED,
                created_at=now + i / 1000,
                updated_at=now,
            )
        )
    p = stack.pipeline()
    real_get, reads = p.storage.get_bytes, []
    use_storage(
        p, Wrap(p.storage, get_bytes=lambda key, *a, **k: reads.append(key) or real_get(key, *a, **k))
    )
    report = p.poll(time.time() + 3, hard_end=time.time() + 60)
    record_reads = [key for key in reads if "/jobs/" in key]
    assert report.submitted >= 4
    assert len(record_reads) <= report.submitted + 10, (
        f"{len(record_reads)} record reads for {report.submitted} submits"
    )


# --- the service pushing back ------------------------------------------------------------------------------
def test_a_throttled_last_job_is_retried_within_the_run(stack):
    queue(stack, "inbox/t.jpg", ratio="16:9")
    stack.dashscope.configure(throttle_rate=1.0)
    p = stack.pipeline()
    real_sleep = p.sleep

    def sleep(seconds):
        if p.clock() - started > 1.5:
            stack.dashscope.configure(throttle_rate=0.0)  # the service recovers
        real_sleep(seconds)

    p.sleep = sleep
    started = p.clock()
    report = p.poll(time.time() + 10)
    assert report.throttled >= 1
    assert report.done == 1


def test_an_account_pause_is_handed_to_the_next_holder(stack):
    queue(stack, "inbox/k.jpg", ratio="16:9")
    bad_key = stack.pipeline(dashscope_api_key="sk-wrong")
    first = bad_key.poll(time.time() + 2)
    assert first.throttled == 1
    lease = bad_key.leases.current()
    assert lease.submits_paused_until > time.time() + 20
    second = stack.pipeline().poll(time.time() + 2)
    assert second.submitted == 0  # the 30 s pause outlives the run that met the account problem
    assert stack.dashscope.stats()["submits_accepted"] == 0


def test_too_little_time_to_record_a_submit_is_said_not_silent(stack):
    queue(stack, "inbox/late.jpg", ratio="16:9")
    report = stack.pipeline().poll(time.time() + 5, hard_end=time.time() + 6)
    assert report.out_of_time
    assert report.submitted == 0
