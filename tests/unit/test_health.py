"""Health records and the alerts read from them (pure: times are given, not read)."""

from __future__ import annotations

from outpaint.health import HOUR, Health, HourCounts, Level, RunFacts, after_run, alerts, worst
from outpaint.limits import AlertPolicy

T0 = 1_800_000_000.0
POLICY = AlertPolicy(timer_period_seconds=60.0, queue_age_seconds=900.0, failure_rate=0.2)


def run(health, at, *, done=0, failed=0, submitted=0, queued=0, oldest=None, problem=None):
    counts = HourCounts(submitted=submitted, done=done, failed=failed)
    facts = RunFacts(started=at - 5, ended=at, counts=counts, in_flight=0, queued=queued,
                     oldest_queued_at=oldest, account_problem=problem)  # fmt: skip
    return after_run(health, facts)


def codes(found):
    return [(a.level, a.code) for a in found]


def test_nothing_recorded_alerts_only_when_jobs_wait():
    assert alerts(None, T0, POLICY, queued=0) == []
    assert codes(alerts(None, T0, POLICY, queued=3)) == [(Level.CRITICAL, "poller.never_ran")]


def test_an_account_problem_lasts_until_a_submit_is_accepted():
    health = run(Health(), T0, problem=("Arrearage", "Access denied"))
    health = run(health, T0 + 60, problem=("Arrearage", "Access denied"))
    assert health.account_problem.since == T0
    assert health.account_problem.last_seen == T0 + 60
    [alert] = alerts(health, T0 + 61, POLICY, queued=1)
    assert (alert.level, alert.code) == (Level.CRITICAL, "dashscope.account_problem")
    assert "billing" in alert.fix
    health = run(health, T0 + 120)  # nothing submitted: still a problem
    assert health.account_problem.resolved_at is None
    health = run(health, T0 + 180, submitted=1)
    assert health.account_problem.resolved_at == T0 + 180
    assert alerts(health, T0 + 181, POLICY, queued=0) == []


def test_stale_poller_old_queue_and_failures():
    health = run(Health(), T0, done=3, failed=3, queued=2, oldest=T0 - 1000)
    found = alerts(health, T0 + 10, POLICY, queued=2)
    assert codes(found) == [(Level.WARNING, "queue.old"), (Level.WARNING, "jobs.failing")]
    assert worst(found) is Level.WARNING
    assert "3 of 6 jobs" in found[1].message
    assert (Level.CRITICAL, "poller.stale") in codes(alerts(health, T0 + 181, POLICY, queued=2))
    assert worst(alerts(run(Health(), T0, done=10), T0 + 1, POLICY, queued=0)) is Level.OK


def test_hourly_counters_cover_a_day_and_are_trimmed():
    health = Health()
    for hour in range(30):
        health = run(health, T0 + hour * HOUR, done=1)
    assert len(health.hours) <= 25
    now = T0 + 29 * HOUR
    assert health.window(now, HOUR).done == 2  # this hour and the one before
    assert health.window(now, 24 * HOUR).done == 25
