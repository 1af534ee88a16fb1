"""Crash at every I/O step of intake and tick, then let the normal machinery continue (FC's event
retry, the next tick): every job still ends DONE with exactly one output and one DashScope task,
except the documented "submit outcome unknown" window, where the bound is two and the record says so."""

from __future__ import annotations

import time

import oss2
import pytest

from outpaint.events import parse_oss_event
from outpaint.job import State
from tests.support.faults import Crash, FaultPoint, with_fault
from tests.support.images import photo
from tests.support.stack import running_stack

JOBS = "*/jobs/*"
INTAKE_POINTS = {
    "HEAD of the upload": FaultPoint("storage", "head", "inbox/*"),
    "probe of the image": FaultPoint("storage", "get_bytes", "inbox/*"),
    "record create": FaultPoint("storage", "put", JOBS),
    "record created, marker not": FaultPoint("storage", "put", JOBS, when="after"),
    "index written, marker not": FaultPoint("storage", "put", "*/sources/*", when="after"),
}
TICK_POINTS = {
    "lease claim": FaultPoint("storage", "put", "*/lease/*"),
    "lease claimed": FaultPoint("storage", "put", "*/lease/*", when="after"),
    "source HEAD before submit": FaultPoint("storage", "head_or_none", "inbox/*"),
    "SUBMITTING write": FaultPoint("storage", "put", JOBS),
    "old marker delete after submit": FaultPoint("storage", "delete", "*/state/submitting/*"),
    "query": FaultPoint("client", "query"),
    "result download": FaultPoint("fetcher", "fetch"),
    "output put": FaultPoint("storage", "put", "outpainted/*"),
    "output written, state not": FaultPoint("storage", "put", "outpainted/*", when="after"),
    "DONE record write": FaultPoint("storage", "put", JOBS, skip=2),
    "old marker delete after DONE": FaultPoint("storage", "delete", "*/state/submitted/*"),
    "lease release": FaultPoint("storage", "put", "*/lease/*", skip=1),
}
# Between the SUBMITTING record and the recorded answer the recovering poller cannot know whether a
# task exists (DashScope has no idempotency key): it resubmits once. (point, tasks the service saw)
UNCERTAIN_POINTS = {
    "submit not sent": (FaultPoint("client", "submit"), 1),
    "submit sent, answer lost": (FaultPoint("client", "submit", when="after"), 2),
    "task-id write": (FaultPoint("storage", "put", JOBS, skip=1), 2),
}


@pytest.fixture
def stack(tmp_path):
    with running_stack(tmp_path, task_seconds=(0.2, 0.2)) as stack:
        yield stack


def run_to_completion(stack, job_key, point: FaultPoint, phase: str):
    event = stack.upload(job_key, photo(640, 640), ratio="16:9")
    records = parse_oss_event(event)
    submits_before = stack.dashscope.stats()["submits_accepted"]

    faulty = with_fault(stack.pipeline(), point)
    if phase == "intake":
        with pytest.raises(Crash):
            faulty.intake(records)
        stack.pipeline().intake(records)  # FC redelivers the event
    else:
        stack.pipeline().intake(records)
        with pytest.raises(Crash):
            faulty.poll(time.time() + 20)
    assert point.fired

    # The next ticks; a crashed holder's lease is left to expire (skipped ahead with the clock).
    for _ in range(5):
        recovery = stack.pipeline()
        recovery.clock = lambda: time.time() + 120
        recovery.poll(time.time() + 120 + 15)
        jobs = [recovery.store.load(j) for j in recovery.store.job_ids_for_source(job_key)]
        if jobs and all(j.state is State.DONE for j in jobs):
            break
    outputs = [o.key for o in oss2.ObjectIteratorV2(stack.bucket(), prefix="outpainted/" + job_key[6:-4])]
    tasks = stack.dashscope.stats()["submits_accepted"] - submits_before
    return jobs, outputs, tasks


@pytest.mark.parametrize("name", list(INTAKE_POINTS))
def test_crash_during_intake(stack, name):
    point = INTAKE_POINTS[name]
    jobs, outputs, tasks = run_to_completion(
        stack, f"inbox/intake-{len(name)}-{abs(hash(name))}.jpg", point, "intake"
    )
    assert [j.state for j in jobs] == [State.DONE]
    assert len(outputs) == 1
    assert tasks == 1


@pytest.mark.parametrize("name", list(TICK_POINTS))
def test_crash_during_tick(stack, name):
    point = TICK_POINTS[name]
    jobs, outputs, tasks = run_to_completion(stack, f"inbox/tick-{abs(hash(name))}.jpg", point, "tick")
    assert [j.state for j in jobs] == [State.DONE]
    assert len(outputs) == 1
    assert tasks == 1
    assert jobs[0].uncertain_submits == 0


@pytest.mark.parametrize("name", list(UNCERTAIN_POINTS))
def test_crash_between_submit_and_its_answer_is_bounded_and_recorded(stack, name):
    point, expected_tasks = UNCERTAIN_POINTS[name]
    jobs, outputs, tasks = run_to_completion(stack, f"inbox/uncertain-{abs(hash(name))}.jpg", point, "tick")
    [job] = jobs
    assert job.state is State.DONE
    assert len(outputs) == 1
    assert tasks == expected_tasks
    assert job.uncertain_submits == 1
    assert [t.uncertain for t in job.tasks] == [True, False]
