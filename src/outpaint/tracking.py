"""What a task query's answer, or a refused submit, means for its job (pure: the poller schedules the
queries).

Failures: a content-safety refusal (``MODERATION``) ends the job at once as ``moderation.*``; a code in
a FAILED task that the classification table does not know is retried at most once; anything else is
retried or ended by its kind (``dashscope.classify``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from outpaint.dashscope import CODE_KINDS, MODERATION, classify
from outpaint.errors import Kind
from outpaint.job import JobRecord, State, TaskStatus
from outpaint.outcomes import End, Outcome, RetryPolicy, Stay, retry_or_end

if TYPE_CHECKING:
    from outpaint.dashscope import TaskState


UNKNOWN_CODE_ATTEMPTS = 2  # a FAILED task with a code the table does not know: one retry at most


@dataclass(frozen=True)
class Succeeded(Stay):
    """The task succeeded: its result awaits write-back (in this round, after admission)."""

    output_url: str | None
    run_seconds: float | None


def task_outcome(job: JobRecord, answer: TaskState, policy: RetryPolicy, now: float) -> Outcome:
    """Update the job's latest task from a query's ``answer`` and decide what follows."""
    task = job.task
    if not answer.finished:
        task.status = (
            TaskStatus(answer.status) if answer.status in TaskStatus.__members__ else TaskStatus.RUNNING
        )
        return Stay()
    seen_succeeded = task.status is TaskStatus.SUCCEEDED
    task.status, task.code, task.message, task.finished_at = (
        TaskStatus(answer.status),
        answer.code,
        answer.message,
        now,
    )
    if answer.status == "SUCCEEDED":
        return Succeeded(answer.output_url, answer.run_seconds)
    if answer.status == "FAILED":
        kind = classify(None, answer.code, answer.message)
        return failure_outcome(job, answer.code, answer.message, kind, in_task=True, policy=policy, now=now)
    if answer.status == "CANCELED":
        return End(State.FAILED, "task.canceled", "the task was canceled outside outpaint")
    if seen_succeeded:  # UNKNOWN after a success: the result expired before it was written
        return End(
            State.EXPIRED,
            "result.lost",
            "the service forgot a task that had succeeded; `outpaint retry` buys it again",
        )
    # UNKNOWN: the service no longer knows the task (after 24 h, or never created)
    return retry_or_end(
        job, Kind.TRANSIENT, "task.unknown", "the service no longer knows the task",
        end=State.EXPIRED, policy=policy, now=now,
    )  # fmt: skip


def failure_outcome(
    job: JobRecord, code: str | None, message: str | None, kind: Kind, *, in_task: bool, policy: RetryPolicy,
    now: float,
) -> Outcome:  # fmt: skip
    """A refused submit or (``in_task``) a FAILED task, of ``kind``: end, or retry within ``policy``."""
    if code in MODERATION:
        ours, told = MODERATION[code]
        return End(State.FAILED, ours, f"{told} (DashScope {code}: {message or 'no message'})")
    if in_task and code not in CODE_KINDS:
        policy = RetryPolicy(min(policy.max_attempts, UNKNOWN_CODE_ATTEMPTS), policy.backoff_seconds)
    return retry_or_end(
        job, kind, code or "task.failed", message or "task failed", end=State.FAILED, policy=policy, now=now
    )
