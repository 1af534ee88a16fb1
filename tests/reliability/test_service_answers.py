"""Answers of the real service that its docs leave out, through the whole pipeline on the emulators:
each one could buy a task twice, stall jobs forever, or fail jobs an operator could have saved."""

from __future__ import annotations

import time

import pytest

import outpaint.dashscope as dashscope_module
from outpaint.dashscope import Kind, classify
from outpaint.events import parse_oss_event
from outpaint.job import JobRecord, State, TaskAttempt
from outpaint.outcomes import End, Retry, RetryPolicy
from outpaint.tracking import failure_outcome
from tests.support.images import photo
from tests.support.stack import running_stack


@pytest.fixture
def stack(tmp_path):
    with running_stack(tmp_path, task_seconds=(0.2, 0.2)) as stack:
        yield stack


def job_of(stack, key):
    store = stack.pipeline().store
    [job_id] = store.job_ids_for_source(key)
    return store.load(job_id)


def queue(stack, key):
    stack.pipeline().intake(parse_oss_event(stack.upload(key, photo(640, 640), ratio="16:9")))


def test_a_query_answer_without_a_status_is_asked_again_never_bought_again(stack):
    queue(stack, "inbox/s.jpg")
    stack.dashscope.configure(missing_status_rate=1.0)
    report = stack.pipeline().poll(time.time() + 3)
    assert report.queries >= 2
    assert job_of(stack, "inbox/s.jpg").state is State.SUBMITTED
    stack.dashscope.configure(missing_status_rate=0.0)
    stack.pipeline().poll(time.time() + 5)
    assert job_of(stack, "inbox/s.jpg").state is State.DONE
    assert stack.dashscope.stats()["submits_accepted"] == 1


def test_a_model_that_does_not_exist_keeps_jobs_queued_for_an_operator(stack, monkeypatch):
    queue(stack, "inbox/m.jpg")
    monkeypatch.setattr(dashscope_module, "MODEL", "image-out-painting-v0")  # withdrawn or misspelt
    report = stack.pipeline().poll(time.time() + 2)
    assert report.throttled == 1  # an account problem: no attempt used, submits paused
    job = job_of(stack, "inbox/m.jpg")
    assert (job.state, job.attempts) == (State.QUEUED, 0)


def test_a_refused_input_image_fails_with_a_moderation_code_at_no_cost(stack):
    stack.dashscope.configure(moderation_input_rate=1.0)
    queue(stack, "inbox/i.jpg")
    stack.pipeline(max_attempts=3).poll(time.time() + 3)
    job = job_of(stack, "inbox/i.jpg")
    assert (job.state, job.error_code, job.attempts) == (State.FAILED, "moderation.image_content", 1)
    assert "content-safety" in job.error_message
    assert stack.dashscope.stats()["submits_accepted"] == 0


@pytest.mark.parametrize(
    ("knob", "code"),
    [
        ("moderation_output_rate", "moderation.inappropriate_content"),  # the generated image was refused
        ("late_failure_rate", "InvalidParameter"),  # accepted, then failed in validation
    ],
)
def test_a_task_failed_for_good_is_not_bought_again(stack, knob, code):
    stack.dashscope.configure(**{knob: 1.0})
    queue(stack, "inbox/o.jpg")
    stack.pipeline(max_attempts=3).poll(time.time() + 5)
    job = job_of(stack, "inbox/o.jpg")
    assert (job.state, job.error_code) == (State.FAILED, code)
    assert stack.dashscope.stats()["submits_accepted"] == 1


@pytest.mark.parametrize(
    ("code", "message", "kind"),
    [
        ("InvalidParameter", "Model not exist.", Kind.ACCOUNT),
        ("InvalidParameter", "the parameters must conform to the specification: x", Kind.PERMANENT),
        ("Throttling.AllocationQuota", "Free allocated quota exceeded.", Kind.ACCOUNT),
        ("Throttling.AllocationQuota", "You are exceeding your allocated credits limit.", Kind.ACCOUNT),
        ("Throttling.AllocationQuota", "Allocated quota exceeded, please increase your quota limit.",
         Kind.THROTTLED),
        ("insufficient_quota", "Free allocated quota exceeded.", Kind.ACCOUNT),
    ],
)  # fmt: skip
def test_one_code_two_meanings_are_split_by_the_message(code, message, kind):
    assert classify(400 if code == "InvalidParameter" else 429, code, message) is kind


def failed_once() -> JobRecord:
    return JobRecord(job_id="e" * 32, bucket="b", source_key="inbox/e.jpg", source_etag="E", created_at=1.0,
                     updated_at=1.0, attempts=1, tasks=[TaskAttempt(submitted_at=1.0)])  # fmt: skip


def test_a_failed_task_code_the_table_does_not_know_is_retried_once_then_fails():
    policy = RetryPolicy(max_attempts=5, backoff_seconds=30.0)
    job = failed_once()
    first = failure_outcome(job, "Brand.NewCode", "?", Kind.TRANSIENT, in_task=True, policy=policy, now=10.0)
    assert isinstance(first, Retry)
    job.attempts = 2
    second = failure_outcome(job, "Brand.NewCode", "?", Kind.TRANSIENT, in_task=True, policy=policy, now=10.0)
    assert second == End(State.FAILED, "Brand.NewCode", "?")
    known = failure_outcome(
        job, "InternalError.Algo", "x", Kind.TRANSIENT, in_task=True, policy=policy, now=1
    )
    assert isinstance(known, Retry)  # a known transient code keeps its max_attempts


@pytest.mark.parametrize(
    ("code", "ours"),
    [
        ("IPInfringementSuspect", "moderation.ip_infringement"),
        ("DataInspectionFailed", "moderation.inappropriate_content"),
        ("InvalidParameter.ImageContent", "moderation.image_content"),
    ],
)
def test_moderation_codes_end_at_once_in_words_a_user_understands(code, ours):
    policy = RetryPolicy(max_attempts=5, backoff_seconds=30.0)
    outcome = failure_outcome(
        failed_once(), code, "msg", Kind.TRANSIENT, in_task=True, policy=policy, now=1.0
    )
    assert isinstance(outcome, End)
    assert (outcome.end, outcome.code) == (State.FAILED, ours)
    assert "DashScope" in outcome.message
    assert code in outcome.message


def test_result_urls_are_oss_signed_urls_from_a_host_the_allow_list_must_admit(stack):
    port = stack.dashscope.origin.rsplit(":", 1)[1]
    result_origin = f"http://localhost:{port}"  # the emulator, under another name
    stack.dashscope.configure(result_origin=result_origin)
    queue(stack, "inbox/r1.jpg")
    stack.pipeline().poll(time.time() + 5)  # allow-list: only http://127.0.0.1:<port>
    refused = job_of(stack, "inbox/r1.jpg")
    assert (refused.state, refused.error_code) == (State.FAILED, "result.refused")

    queue(stack, "inbox/r2.jpg")
    stack.pipeline(allowed_result_hosts=[result_origin]).poll(time.time() + 5)
    assert job_of(stack, "inbox/r2.jpg").state is State.DONE
    assert stack.dashscope.stats()["result_downloads"] == 1  # the refused URL was never fetched
