"""A hostile service: throttling, 5xx, slow answers, failing tasks, results that expire. Everything
ends in a defined state; nothing is lost or left in limbo; retries stay bounded."""

from __future__ import annotations

import pytest

from outpaint.job import ACTIVE_STATES, State
from tests.support.images import photo
from tests.support.stack import running_stack

FINAL = {State.DONE, State.FAILED, State.EXPIRED}


def drive(stack, rounds=30, **overrides):
    for _ in range(rounds):
        report = stack.on_tick(timeout=20, **overrides)
        if report["in_flight"] == 0 and report["queued"] == 0:
            break


def all_jobs(stack):
    store = stack.pipeline().store
    return [store.load(job_id) for job_id in store.all_job_ids()]


def test_throttling_errors_latency_and_failing_tasks(tmp_path):
    hostile = {"throttle_rate": 0.3, "error_rate": 0.1, "latency": (0.0, 0.05), "fail_rate": 0.2, "seed": 3}
    with running_stack(tmp_path, task_seconds=(0.1, 0.3), **hostile) as stack:
        for i in range(12):
            stack.on_upload(
                stack.upload(f"inbox/h{i}.jpg", photo(600, 600), ratio="16:9"), upload_polls=False
            )
        drive(stack, max_attempts=3)
        jobs = all_jobs(stack)
        stats = stack.dashscope.stats()
    assert len(jobs) == 12
    assert {job.state for job in jobs} <= FINAL
    assert not [job for job in jobs if job.state in ACTIVE_STATES]
    assert all(job.attempts <= 3 for job in jobs)
    assert stats["submits_accepted"] <= 12 * 3
    done = [job for job in jobs if job.state is State.DONE]
    assert len(done) >= 9  # 20 % task failures, three attempts each
    for job in jobs:
        if job.state is State.FAILED:
            assert job.error_code
            assert job.error_message


def test_tasks_forgotten_by_the_service_expire_after_bounded_attempts(tmp_path):
    with running_stack(tmp_path, task_seconds=(0.05, 0.05), retention_seconds=0.1) as stack:
        stack.on_upload(
            stack.upload("inbox/forgotten.jpg", photo(), ratio="16:9"),
            max_attempts=2,
            poll_interval_seconds=0.5,
        )
        [job] = all_jobs(stack)
    assert job.state is State.EXPIRED
    assert job.error_code == "task.unknown"
    assert job.attempts == 2


def test_submits_that_time_out_are_resubmitted_once_then_failed(tmp_path):
    """A read timeout after sending: a task may exist. At most two tasks, and the record says so."""
    with running_stack(tmp_path, latency=(0.6, 0.6)) as stack:
        stack.on_upload(stack.upload("inbox/slow.jpg", photo(), ratio="16:9"), read_timeout_seconds=0.3)
        drive(stack, rounds=3, read_timeout_seconds=0.3)
        [job] = all_jobs(stack)
        accepted = stack.dashscope.stats()["submits_accepted"]
    assert job.state is State.FAILED
    assert job.error_code == "dashscope.submit_outcome_unknown"
    assert job.uncertain_submits == 2
    assert accepted <= 2


@pytest.mark.parametrize("over_concurrency", ["queue", "reject"])
def test_over_concurrency_either_way_loses_nothing(tmp_path, over_concurrency):
    with running_stack(
        tmp_path, concurrency=1, task_seconds=(0.2, 0.2), over_concurrency=over_concurrency
    ) as stack:
        for i in range(4):
            stack.on_upload(
                stack.upload(f"inbox/c{i}.jpg", photo(600, 600), ratio="16:9"), upload_polls=False
            )
        # Our own limit set too high on purpose: the service's answer must not lose jobs.
        drive(stack, max_concurrent_tasks=3)
        jobs = all_jobs(stack)
    assert {job.state for job in jobs} == {State.DONE}
