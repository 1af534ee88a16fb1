"""Duplicates and overlap: the same event 10× (sequential and concurrent), two ticks at once, uploads
racing the tick. Exactly one DashScope task and one output per variant."""

from __future__ import annotations

import threading

import oss2
import pytest

from outpaint.job import State
from tests.support.images import photo
from tests.support.stack import running_stack


@pytest.fixture
def stack(tmp_path):
    with running_stack(tmp_path, task_seconds=(0.3, 0.3)) as stack:
        yield stack


def run_all(*calls):
    errors = []

    def guarded(call):
        try:
            call()
        except Exception as exc:  # surfaced below, with the thread's exception
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def finish(stack):
    for _ in range(5):
        report = stack.on_tick()
        if report["in_flight"] == 0 and report["queued"] == 0:
            return


def outputs(stack):
    return sorted(o.key for o in oss2.ObjectIteratorV2(stack.bucket(), prefix="outpainted/"))


def all_jobs(stack):
    store = stack.pipeline().store
    return [store.load(job_id) for job_id in store.all_job_ids()]


def test_same_event_ten_times_sequentially(stack):
    event = stack.upload("inbox/seq.jpg", photo(800, 600), ratio="16:9,1:1")
    for _ in range(10):
        stack.on_upload(event)
    finish(stack)
    assert stack.dashscope.stats()["submits_accepted"] == 2
    assert outputs(stack) == ["outpainted/seq.16x9.jpg", "outpainted/seq.1x1.jpg"]


def test_same_event_ten_times_concurrently(stack):
    event = stack.upload("inbox/conc.jpg", photo(800, 600), ratio="16:9,1:1")
    run_all(*[lambda: stack.on_upload(event) for _ in range(10)])
    finish(stack)
    assert stack.dashscope.stats()["submits_accepted"] == 2
    assert outputs(stack) == ["outpainted/conc.16x9.jpg", "outpainted/conc.1x1.jpg"]
    assert {job.state for job in all_jobs(stack)} == {State.DONE}


def test_two_ticks_at_once_share_nothing(stack):
    for i in range(6):
        stack.on_upload(stack.upload(f"inbox/t{i}.jpg", photo(640, 640), ratio="16:9"), upload_polls=False)
    reports = []
    run_all(*[lambda: reports.append(stack.on_tick()) for _ in range(2)])
    finish(stack)
    assert stack.dashscope.stats()["submits_accepted"] == 6
    assert len(outputs(stack)) == 6
    assert sum(report["submitted"] for report in reports) <= 6


def test_uploads_racing_the_tick(stack):
    events = [stack.upload(f"inbox/race{i}.jpg", photo(640, 640), ratio="4:3") for i in range(6)]
    calls = [lambda e=e: stack.on_upload(e) for e in events] + [stack.on_tick, stack.on_tick]
    calls += [lambda e=e: stack.on_upload(e) for e in events]  # every event delivered twice
    run_all(*calls)
    finish(stack)
    assert stack.dashscope.stats()["submits_accepted"] == 6
    assert len(outputs(stack)) == 6
    assert {job.state for job in all_jobs(stack)} == {State.DONE}
