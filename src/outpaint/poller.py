"""The poller: one lease holder's round loop, admission and query schedule.

Each round: query the in-flight tasks that are due, admit queued jobs (FIFO) into the slots that freed
up, then write the succeeded results back. Every step returns an outcome, and ``_apply`` hands it to
the journal (the one place that changes a job) and counts it.

Safety rules, each the answer to a way of paying twice or losing a job:
- the lease outlives the process (hard end + slack), so no second holder can start while this one may
  still be acting; and every action first checks the deadline, so a stalled call never lets a late
  answer be written;
- a submit starts only if its answer can still be recorded before the process's hard end;
- a task seen SUCCEEDED is never bought again automatically: a result lost after that is EXPIRED;
- write-back failures back off and are counted in the record, across runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from outpaint import log
from outpaint.errors import DashScopeError, Kind, OutpaintError
from outpaint.health import HourCounts, RunFacts, after_run, run_metrics
from outpaint.job import IN_FLIGHT_STATES, JobRecord, State
from outpaint.lease import LEASE_SLACK_SECONDS
from outpaint.naming import parse_marker
from outpaint.outcomes import Outcome, RetryPolicy, Stay, Throttled
from outpaint.tracking import Succeeded, task_outcome

if TYPE_CHECKING:
    from outpaint.dashscope import DashScopeClient
    from outpaint.journal import Journal
    from outpaint.lease import Lease, LeaseStore
    from outpaint.limits import PollerLimits
    from outpaint.publish import Publisher
    from outpaint.store import JobStore
    from outpaint.submit import Submitter

QUERY_PAUSE_SECONDS = 1.0  # after a throttled or refused query
MAX_SLEEP_SECONDS = 1.0
SWEEP_EVERY_SECONDS = 600.0  # how often a holder looks for records that lost their marker


@dataclass
class PollReport:
    """What one poller run did."""

    lease: str = "acquired"  # acquired, held
    rounds: int = 0
    submitted: int = 0
    throttled: int = 0
    queries: int = 0
    done: int = 0
    failed: int = 0
    requeued: int = 0
    in_flight: int = 0
    queued: int = 0
    repaired: int = 0
    out_of_time: bool = False  # queued jobs were left because a submit could not finish in time

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Collaborators:
    """What a poller run works with."""

    journal: Journal
    store: JobStore
    leases: LeaseStore
    client: DashScopeClient
    submitter: Submitter
    publisher: Publisher
    limits: PollerLimits
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep


def poll(
    parts: Collaborators,
    deadline: float,
    hard_end: float,
    *,
    wait_for_lease: bool = False,
    on_round: Callable[[PollReport], None] | None = None,
) -> PollReport:
    """Hold the lease and work until ``deadline`` (no new work after it) or until nothing is queued or
    in flight. ``hard_end`` is when the platform may stop the process: the lease is taken until after it."""
    with parts.leases.hold(
        lambda now: max(hard_end - now, 1.0) + LEASE_SLACK_SECONDS,
        wait_until=deadline - 1.0 if wait_for_lease else None,
        clock=parts.clock,
        sleep=parts.sleep,
    ) as lease:
        if lease is None:
            log.event("poller.lease_held")
            return PollReport(lease="held")
        started = parts.clock()
        run = Poller(parts, lease, deadline, hard_end, on_round)
        run.loop()
        facts = run.facts(started)
        lease.health = after_run(lease.health, facts)  # handed on with the lease
    # The metrics line: one per run, the fields SLS charts and alerts on (docs/operations.md, Metrics).
    log.event("poller.finished", **run.report.as_dict(), **run_metrics(facts))
    return run.report


class Poller:
    """One lease holder's work until ``deadline`` within ``hard_end``."""

    def __init__(
        self,
        parts: Collaborators,
        lease: Lease,
        deadline: float,
        hard_end: float,
        on_round: Callable[[PollReport], None] | None = None,
    ) -> None:
        self.parts, self.journal, self.limits = parts, parts.journal, parts.limits
        self.clock, self.sleep = parts.clock, parts.sleep
        self.retry = RetryPolicy(parts.limits.max_attempts, parts.limits.retry_backoff_seconds)
        self.lease = lease
        self.deadline = deadline
        self.hard_end = hard_end
        self.on_round = on_round
        self.report = PollReport()
        self.pause_queries_until = 0.0
        self.last_query_at = 0.0
        self.succeeded: dict[str, Succeeded] = {}  # this round's finished tasks awaiting write-back
        self.last_queue: list[tuple[str, str]] = []  # the latest round's queue (marker key, job id)
        self.account_problem: tuple[str, str] | None = None  # the last one DashScope answered

    # --- loop ----------------------------------------------------------------------------------
    def loop(self) -> None:
        """Work round after round until the deadline, or until nothing is queued or in flight; then save
        again what a failed write left dirty, while the lease is still ours."""
        self._sweep_unmarked()
        while self._alive():
            if not self.parts.leases.holds(self.lease, now=self.clock()):
                log.event("poller.lease_lost", logging.WARNING, term=self.lease.term)
                return
            self.report.rounds += 1
            self.journal.flush(self._guard)
            in_flight = self._in_flight()
            self.succeeded.clear()
            for job in in_flight:
                self._guard(job, self._advance)
            running = sum(
                1 for j in in_flight if j.state in IN_FLIGHT_STATES and j.job_id not in self.succeeded
            )
            admission = self._admit(self._queue(in_flight), running)
            for job_id, task in list(self.succeeded.items()):
                self._guard(self.journal.cache[job_id], lambda job, task=task: self._publish(job, task))
            in_flight = self.journal.in_states(IN_FLIGHT_STATES)
            self.report.in_flight = len(in_flight)
            if self.on_round:
                self.on_round(self.report)
            wake = min(
                [j.next_query_at for j in in_flight] + ([admission] if admission else []), default=None
            )
            if wake is None or wake >= self.deadline:
                break
            now = self.clock()
            self.sleep(max(0.05, min(wake - now, MAX_SLEEP_SECONDS, self.deadline - now)))
        if self.journal.dirty and self.parts.leases.holds(self.lease, now=self.clock()):
            self.journal.flush(self._guard)

    def _alive(self) -> bool:
        """True until the deadline: after it, nothing new starts and no late answer is acted on."""
        return self.clock() < self.deadline

    def _apply(self, job: JobRecord, outcome: Outcome) -> None:
        self.journal.apply(job, outcome)
        if isinstance(outcome, Throttled) and outcome.account:
            self.account_problem = (outcome.code, outcome.message)
        counter = outcome.counter_name()
        if counter:
            setattr(self.report, counter, getattr(self.report, counter) + 1)

    def _guard(self, job: JobRecord, step: Callable[[JobRecord], None]) -> None:
        """Run one job's step; one job's failure never aborts the round."""
        if not self._alive():
            return
        try:
            step(job)
        except OutpaintError as exc:
            log.event("job.step_failed", logging.WARNING, job_id=job.job_id, key=job.source_key,
                      state=job.state.value, code=exc.code, reason=exc.message)  # fmt: skip
        except Exception as exc:  # a bug or an unexpected library error: keep the other jobs going
            # The message is not logged: library errors may quote signed URLs.
            log.event("job.step_crashed", logging.ERROR, job_id=job.job_id, key=job.source_key,
                      state=job.state.value, error_type=type(exc).__name__)  # fmt: skip

    # --- what there is to do -------------------------------------------------------------------
    def _in_flight(self) -> list[JobRecord]:
        jobs: dict[str, JobRecord] = {}
        for state in IN_FLIGHT_STATES:
            for marker, job_id in self.parts.store.markers(state):
                job = self.journal.load(marker, state, job_id)
                if job is not None and job.state in IN_FLIGHT_STATES:
                    jobs[job_id] = job
        jobs.update({j.job_id: j for j in self.journal.in_states(IN_FLIGHT_STATES)})
        return list(jobs.values())

    def _queue(self, in_flight: list[JobRecord]) -> list[tuple[str, str]]:
        """(marker key, job id) of the queue in FIFO order, records not loaded (a backlog can be long)."""
        store = self.parts.store
        queue = {job_id: marker for marker, job_id in store.markers(State.QUEUED)}
        for job in in_flight:  # sent back by a retry in this round
            if job.state is State.QUEUED:
                queue[job.job_id] = store.marker_key(job)
        self.report.queued = len(queue)
        self.last_queue = sorted(
            ((marker, job_id) for job_id, marker in queue.items()), key=lambda item: item[0]
        )
        return self.last_queue

    def facts(self, started: float) -> RunFacts:
        """What the run saw, for the health record: the queue as the run leaves it (no extra LIST)."""
        left = [
            marker
            for marker, job_id in self.last_queue
            if (cached := self.journal.cache.get(job_id)) is None or cached.state is State.QUEUED
        ]
        oldest_ms = parse_marker(left[0])[0] if left else None
        r = self.report
        return RunFacts(
            started=started,
            ended=self.clock(),
            counts=HourCounts(submitted=r.submitted, done=r.done, failed=r.failed, throttled=r.throttled),
            in_flight=r.in_flight,
            queued=len(left),
            oldest_queued_at=oldest_ms / 1000 if oldest_ms is not None else None,
            account_problem=self.account_problem,
        )

    def _sweep_unmarked(self) -> None:
        """Give a marker back to any record that lost it (an intake that crashed on FC's last try)."""
        now = self.clock()
        if now - self.lease.last_sweep_at < SWEEP_EVERY_SECONDS:
            return
        self.lease.last_sweep_at = now
        store = self.parts.store
        for job_id in store.unmarked_job_ids():
            record = store.load(job_id)
            if record is not None:
                store.restore_marker(record)
                self.report.repaired += 1
                log.event("job.marker_restored", logging.WARNING, job_id=job_id, state=record.state.value)

    # --- admission -----------------------------------------------------------------------------
    def _admit(self, queue: list[tuple[str, str]], running: int) -> float | None:
        """Submit queued jobs into free slots; return when admission could next make progress."""
        waiting_until: float | None = None
        qps = self.limits.submit_qps
        for marker, job_id in queue:
            now = self.clock()
            if running >= self.limits.max_concurrent_tasks or not self._alive():
                return None  # a finishing task (queried anyway) frees the next slot
            if now + self.limits.submit_seconds >= self.hard_end:
                self._warn_no_time_to_submit()
                return None
            if now < self.lease.submits_open_at(qps):
                return self.lease.submits_open_at(qps)
            job = self.journal.load(marker, State.QUEUED, job_id)
            if job is None or job.state is not State.QUEUED:
                continue
            if job.not_before <= now:
                self._guard(job, lambda job: self._apply(job, self.parts.submitter.submit(job, self.lease)))
                running += job.state in IN_FLIGHT_STATES
            if job.state is State.QUEUED:  # backing off, or sent back by a 429 / an unknown outcome
                due = max(job.not_before, self.lease.submits_open_at(qps))
                waiting_until = due if waiting_until is None else min(waiting_until, due)
        return waiting_until

    def _warn_no_time_to_submit(self) -> None:
        if not self.report.out_of_time:
            self.report.out_of_time = True
            log.event(
                "poller.no_time_to_submit",
                logging.WARNING,
                reason="a submit's answer could not be recorded before the function's timeout; "
                "queued jobs wait for the next tick (raise the timeout or lower the read timeout)",
            )

    # --- in flight -----------------------------------------------------------------------------
    def _advance(self, job: JobRecord) -> None:
        now = self.clock()
        if job.state is State.SUBMITTING:
            # Only a crash leaves this state behind (our own submit moves on at once).
            found = "found SUBMITTING: the previous holder stopped between submit and its answer"
            self._apply(job, self.parts.submitter.uncertain(job, found))
            return
        if job.next_query_at > now or now < self.pause_queries_until:
            return
        spacing = 1.0 / self.limits.query_qps
        if now < self.last_query_at + spacing:
            self.sleep(self.last_query_at + spacing - now)
        self.last_query_at = self.clock()
        self.report.queries += 1
        job.queries += 1
        try:
            answer = self.parts.client.query(job.task.task_id or "")
        except DashScopeError as exc:
            if exc.kind in (Kind.THROTTLED, Kind.ACCOUNT):
                self.pause_queries_until = self.clock() + QUERY_PAUSE_SECONDS
            job.next_query_at = self.clock() + self._query_interval()
            log.event("task.query_failed", logging.WARNING, job_id=job.job_id, task_id=job.task.task_id,
                      code=exc.code)  # fmt: skip
            return
        if not self._alive():  # an answer that arrives after the deadline is left for the next holder
            return
        now = self.clock()
        outcome = task_outcome(job, answer, self.retry, now)
        if isinstance(outcome, Succeeded):
            self.lease.learn_task_seconds(outcome.run_seconds)
            self.succeeded[job.job_id] = outcome
        elif isinstance(outcome, Stay):
            job.next_query_at = now + self._query_interval()
        else:
            self._apply(job, outcome)

    def _query_interval(self) -> float:
        in_flight = len(self.journal.in_states(IN_FLIGHT_STATES))
        return max(self.limits.poll_interval_seconds, in_flight / self.limits.query_qps)

    def _publish(self, job: JobRecord, task: Succeeded) -> None:
        self._apply(job, self.parts.publisher.write_back(job, task.output_url))
