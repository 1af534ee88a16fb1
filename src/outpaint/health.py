"""Health: what every poller run leaves behind for operators, and the alerts read from it (pure).

Each run folds what it did into the health it took over with the lease, and hands it on in the lease it
releases (no extra OSS call): when the poller last ran, the queue it left, per-hour counters for the last
day, and the last account problem DashScope answered. ``alerts`` turns it, with the current time, into
plain-word alerts with a fix; ``outpaint status`` shows them, ``outpaint status --check`` exits by the
worst one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from pydantic import BaseModel, Field

from outpaint.limits import AlertPolicy

HOUR = 3600
KEPT_HOURS = 25  # one day of hourly counters, plus the hour in progress


class HourCounts(BaseModel):
    """What the poller did within one clock hour."""

    submitted: int = 0
    done: int = 0
    failed: int = 0
    throttled: int = 0

    def add(self, other: HourCounts) -> HourCounts:
        return HourCounts(
            **{name: getattr(self, name) + getattr(other, name) for name in HourCounts.model_fields}
        )


class AccountProblem(BaseModel):
    """DashScope refused submits for a reason only an operator can fix."""

    code: str
    message: str
    since: float
    last_seen: float
    resolved_at: float | None = None  # a submit was accepted after it


class Health(BaseModel):
    """The poller's last word, kept under the state prefix."""

    last_run_started: float | None = None
    last_run_ended: float | None = None
    last_run_seconds: float | None = None
    queued: int = 0
    oldest_queued_at: float | None = None
    in_flight: int = 0
    hours: dict[int, HourCounts] = Field(default_factory=dict)  # hour start (epoch s) → counts
    account_problem: AccountProblem | None = None

    def window(self, now: float, seconds: float) -> HourCounts:
        """Counts of the clock hours that overlap the ``seconds`` before ``now`` (a little more)."""
        total = HourCounts()
        for start, counts in self.hours.items():
            if start > now - seconds - HOUR:
                total = total.add(counts)
        return total


@dataclass(frozen=True)
class RunFacts:
    """What one poller run did and saw."""

    started: float
    ended: float
    counts: HourCounts
    in_flight: int
    queued: int  # left in the queue at the end of the run
    oldest_queued_at: float | None
    account_problem: tuple[str, str] | None  # (code, message) of the last one met in this run


def run_metrics(facts: RunFacts) -> dict[str, float | None]:
    """The run's gauges for the ``poller.finished`` log line (stable names: docs/operations.md, Metrics)."""
    oldest = facts.oldest_queued_at
    return {
        "run_seconds": round(facts.ended - facts.started, 3),
        "oldest_queued_age_seconds": None if oldest is None else round(facts.ended - oldest, 1),
    }


def after_run(health: Health, facts: RunFacts) -> Health:
    """The health once the run described by ``facts`` is taken into account."""
    hour = int(facts.ended // HOUR * HOUR)
    hours = {start: counts for start, counts in health.hours.items() if start > hour - KEPT_HOURS * HOUR}
    hours[hour] = hours.get(hour, HourCounts()).add(facts.counts)
    problem = health.account_problem
    if facts.account_problem is not None:
        code, message = facts.account_problem
        if problem is None or problem.resolved_at is not None or problem.code != code:
            problem = AccountProblem(code=code, message=message, since=facts.ended, last_seen=facts.ended)
        else:
            problem = problem.model_copy(update={"message": message, "last_seen": facts.ended})
    elif problem is not None and problem.resolved_at is None and facts.counts.submitted:
        problem = problem.model_copy(update={"resolved_at": facts.ended})
    return Health(
        last_run_started=facts.started,
        last_run_ended=facts.ended,
        last_run_seconds=round(facts.ended - facts.started, 3),
        queued=facts.queued,
        oldest_queued_at=facts.oldest_queued_at,
        in_flight=facts.in_flight,
        hours=hours,
        account_problem=problem,
    )


# ================================================================================= alerts
class Level(IntEnum):
    """How bad an alert is; ``outpaint status --check`` exits with the worst one."""

    OK = 0
    WARNING = 1
    CRITICAL = 2


@dataclass(frozen=True)
class Alert:
    level: Level
    code: str
    message: str
    fix: str


# Fixes by DashScope code; anything else: look at the account in Model Studio.
ACCOUNT_FIXES = {
    "InvalidApiKey": "set a valid DASHSCOPE_API_KEY (Model Studio → API keys) and redeploy",
    "Arrearage": "settle the account's overdue payment in the Alibaba Cloud billing console",
    "PrepaidBillOverdue": "settle the overdue prepaid bill in the billing console",
    "PostpaidBillOverdue": "settle the overdue postpaid bill in the billing console",
    "AllocationQuota.FreeTierOnly": "the free tier is used up: turn off 'free tier only' in Model Studio",
    "Throttling.AllocationQuota": "the credits or free allocation are used up: top up, or raise it",
    "InvalidParameter": "the model is withdrawn, misspelt or not open to this account: check Model Studio",
    "AccessDenied.Unpurchased": "activate image-out-painting for the account in Model Studio",
    "Model.AccessDenied": "grant the workspace access to image-out-painting in Model Studio",
}
ACCOUNT_FIX = "check the DashScope account, key and model access in Model Studio"
TIMER_FIX = "check that the on-tick timer trigger is enabled, and its errors in the FC console"
QUEUE_FIX = (
    "more uploads than the quota serves, or submits refused (see the other alerts and the logs); "
    "a raised quota needs OUTPAINT_SUBMIT_QPS / OUTPAINT_MAX_CONCURRENT_TASKS"
)
DEAD_LETTER_FIX = (
    "`outpaint backfill --dead-letters` offers their objects to intake again (after fixing what the "
    "reason says) and clears each one it finished"
)
FAILING_FIX = "`outpaint status` lists the recent failures with their codes; docs/deploy.md explains them"


def alerts(
    health: Health | None, now: float, policy: AlertPolicy, *, queued: int, dead_letters: int = 0
) -> list[Alert]:
    """Alerts for ``health`` at ``now``; ``queued`` and ``dead_letters`` are counted now (no health:
    the poller never ran)."""
    found = []
    if dead_letters:
        message = f"{dead_letters} upload event(s) failed every FC retry and wait as dead letters"
        found.append(Alert(Level.WARNING, "uploads.dead_letters", message, DEAD_LETTER_FIX))
    if health is None or health.last_run_ended is None:
        if queued:
            message = f"{queued} job(s) queued and no poller run has finished yet"
            found.insert(0, Alert(Level.CRITICAL, "poller.never_ran", message, TIMER_FIX))
        return found
    problem = health.account_problem
    if problem is not None and problem.resolved_at is None:
        message = (
            f"DashScope refuses submits since {_ago(now - problem.since)}: {problem.code}: {problem.message}"
        )
        fix = ACCOUNT_FIXES.get(problem.code, ACCOUNT_FIX)
        found.append(Alert(Level.CRITICAL, "dashscope.account_problem", message, fix))
    silent = now - health.last_run_ended
    if silent > 3 * policy.timer_period_seconds:
        message = f"the poller last ran {_ago(silent)}; jobs are not moving"
        found.append(Alert(Level.CRITICAL, "poller.stale", message, TIMER_FIX))
    if health.oldest_queued_at is not None and now - health.oldest_queued_at > policy.queue_age_seconds:
        age = _ago(now - health.oldest_queued_at)
        message = f"the oldest queued job was created {age} ({health.queued} queued)"
        found.append(Alert(Level.WARNING, "queue.old", message, QUEUE_FIX))
    hour = health.window(now, HOUR)
    finished = hour.done + hour.failed
    if finished >= policy.min_finished and hour.failed / finished > policy.failure_rate:
        message = f"{hour.failed} of {finished} jobs finished in the last hour failed"
        found.append(Alert(Level.WARNING, "jobs.failing", message, FAILING_FIX))
    return found


def worst(found: list[Alert]) -> Level:
    return max((alert.level for alert in found), default=Level.OK)


def _ago(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 2 * HOUR:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / HOUR:.1f} h ago"
