"""The poller: one lease holder's work loop.

Each round: query the in-flight tasks that are due, admit queued jobs (FIFO) into the slots that freed
up, then write the succeeded results back. While the lease is held nobody else changes a record, so
the records this run loaded or wrote are cached and authoritative: a record whose save failed is kept
"dirty" and saved again, never reloaded from the stale copy in the bucket.

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
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from outpaint import GENERATED_BY, log
from outpaint.dashscope import Kind, classify
from outpaint.errors import DashScopeError, OutpaintError, SubmitOutcomeUnknown
from outpaint.results import ResultLost, ResultRefused, ResultUnavailable, finish_exact
from outpaint.storage import NotFound
from outpaint.store import IN_FLIGHT_STATES, JobRecord, Lease, State, TaskAttempt, metadata_digest

if TYPE_CHECKING:
    from outpaint.config import Settings
    from outpaint.dashscope import TaskState
    from outpaint.pipeline import Pipeline
    from outpaint.results import ResultImage
    from outpaint.storage import ObjectHead

META_JOB_ID = "outpaint-job-id"
META_SOURCE = "outpaint-source"
META_GENERATED_BY = "outpaint-generated-by"
THROTTLE_PAUSE_SECONDS = 1.0
ACCOUNT_PAUSE_SECONDS = 30.0
MAX_SLEEP_SECONDS = 1.0
MAX_WRITEBACK_FAILURES = 5
MAX_BACKOFF_SECONDS = 60.0
SWEEP_EVERY_SECONDS = 600.0  # how often a holder looks for records that lost their marker
SUBMIT_ANSWER_SLACK = 2.0  # beyond connect + read timeout, to record a submit's answer


def submit_seconds(settings: Settings) -> float:
    """The longest a submit can take before its answer is recorded."""
    return settings.connect_timeout_seconds + settings.read_timeout_seconds + SUBMIT_ANSWER_SLACK


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


class PollerRun:
    """One lease holder's work until ``deadline`` (soft: no new work after it) within ``hard_end``
    (when FC may stop the process)."""

    def __init__(self, pipeline: Pipeline, lease: Lease, deadline: float, hard_end: float) -> None:
        self.p = pipeline
        self.s = pipeline.settings
        self.store = pipeline.store
        self.lease = lease
        self.deadline = deadline
        self.hard_end = hard_end
        self.report = PollReport()
        self.cache: dict[str, JobRecord] = {}
        self.persisted: dict[str, State] = {}  # the state each cached record has in the bucket
        self.dirty: set[str] = set()
        self.pause_queries_until = 0.0
        self.last_query_at = 0.0
        self.succeeded: dict[str, TaskState] = {}  # this round's finished tasks awaiting write-back

    # --- loop ----------------------------------------------------------------------------------
    def loop(self) -> None:
        """Work round after round until the deadline, or until nothing is queued or in flight."""
        self._sweep_unmarked()
        while self._alive():
            if not self.store.holds_lease(self.lease, now=self.p.clock()):
                log.event("poller.lease_lost", logging.WARNING, term=self.lease.term)
                return
            self.report.rounds += 1
            self._flush_dirty()
            in_flight = self._in_flight()
            self.succeeded.clear()
            for job in in_flight:
                self._guard(job, self._advance_in_flight)
            running = sum(
                1 for j in in_flight if j.state in IN_FLIGHT_STATES and j.job_id not in self.succeeded
            )
            admission = self._admit(self._queue(in_flight), running)
            for job_id, state in list(self.succeeded.items()):
                self._guard(self.cache[job_id], lambda job, state=state: self._write_back(job, state))
            in_flight = [j for j in self.cache.values() if j.state in IN_FLIGHT_STATES]
            self.report.in_flight = len(in_flight)
            wake = min(
                [j.next_query_at for j in in_flight] + ([admission] if admission else []), default=None
            )
            if wake is None or wake >= self.deadline:
                return
            self.p.sleep(
                max(0.05, min(wake - self.p.clock(), MAX_SLEEP_SECONDS, self.deadline - self.p.clock()))
            )

    def _alive(self) -> bool:
        """True until the deadline: after it, nothing new starts and no late answer is acted on."""
        return self.p.clock() < self.deadline

    def _guard(self, job: JobRecord, step: Callable[[JobRecord], None]) -> None:
        """Run one job's step; one job's failure never aborts the round."""
        if not self._alive():
            return
        try:
            step(job)
        except OutpaintError as exc:
            log.event(
                "job.step_failed",
                logging.WARNING,
                job_id=job.job_id,
                key=job.source_key,
                state=job.state.value,
                code=exc.code,
                reason=exc.message,
            )
        except Exception as exc:  # a bug or an unexpected library error: keep the other jobs going
            # The message is not logged: library errors may quote signed URLs.
            log.event(
                "job.step_crashed",
                logging.ERROR,
                job_id=job.job_id,
                key=job.source_key,
                state=job.state.value,
                error_type=type(exc).__name__,
            )

    # --- records -------------------------------------------------------------------------------
    def _known(self, job: JobRecord) -> JobRecord:
        self.cache[job.job_id] = job
        self.persisted[job.job_id] = job.state
        return job

    def _load(self, marker: str, state: State, job_id: str) -> JobRecord | None:
        """The record behind a marker: the cached one while this run holds it, else from the bucket
        (repairing a stray marker on the way)."""
        cached = self.cache.get(job_id)
        if cached is not None:
            if state != self.persisted.get(job_id) and job_id not in self.dirty:
                self.store.drop_marker(marker)  # left by a crash between a marker and its removal
            return cached
        record = self.store.reconcile_marker(marker, state, job_id)
        return self._known(record) if record is not None else None

    def _save(self, job: JobRecord, state: State, note: str) -> None:
        """Record a transition; a failed save leaves the job dirty, to be saved again next round."""
        job.move(state, note, now=self.p.clock())
        self.cache[job.job_id] = job
        self.dirty.add(job.job_id)
        self.store.save(job, self.persisted.get(job.job_id, state))
        self.persisted[job.job_id] = job.state
        self.dirty.discard(job.job_id)

    def _flush_dirty(self) -> None:
        for job_id in sorted(self.dirty):
            job = self.cache[job_id]
            self._guard(job, lambda j: self._save(j, j.state, "saved again after a failed write"))

    def _in_flight(self) -> list[JobRecord]:
        jobs: dict[str, JobRecord] = {}
        for state in IN_FLIGHT_STATES:
            for marker, job_id in self.store.markers(state):
                job = self._load(marker, state, job_id)
                if job is not None and job.state in IN_FLIGHT_STATES:
                    jobs[job_id] = job
        jobs.update({j.job_id: j for j in self.cache.values() if j.state in IN_FLIGHT_STATES})
        return list(jobs.values())

    def _queue(self, in_flight: list[JobRecord]) -> list[tuple[str, str]]:
        """(marker key, job id) of the queue in FIFO order, records not loaded (a backlog can be long)."""
        prefix = self.store.marker_prefix(State.QUEUED)
        queue = dict((job_id, marker) for marker, job_id in self.store.markers(State.QUEUED))
        for job in in_flight:  # sent back by a retry in this round
            if job.state is State.QUEUED:
                queue[job.job_id] = prefix + job.marker_name
        self.report.queued = len(queue)
        return sorted(((marker, job_id) for job_id, marker in queue.items()), key=lambda item: item[0])

    def _sweep_unmarked(self) -> None:
        """Give a marker back to any record that lost it (an intake that crashed on FC's last try)."""
        now = self.p.clock()
        if now - self.lease.last_sweep_at < SWEEP_EVERY_SECONDS:
            return
        self.lease.last_sweep_at = now
        for job_id in self.store.unmarked_job_ids():
            record = self.store.load(job_id)
            if record is not None:
                self.store.restore_marker(record)
                self.report.repaired += 1
                log.event("job.marker_restored", logging.WARNING, job_id=job_id, state=record.state.value)

    # --- admission -----------------------------------------------------------------------------
    def _next_submit_slot(self) -> float:
        # 5 % slack over the nominal spacing keeps us under a limiter that counts per window.
        return self.lease.last_submit_at + 1.05 / self.s.submit_qps

    def _admit(self, queue: list[tuple[str, str]], running: int) -> float | None:
        """Submit queued jobs into free slots; return when admission could next make progress."""
        waiting_until: float | None = None
        for marker, job_id in queue:
            now = self.p.clock()
            if running >= self.s.max_concurrent_tasks or not self._alive():
                return None  # a finishing task (queried anyway) frees the next slot
            if now + submit_seconds(self.s) >= self.hard_end:
                self._warn_no_time_to_submit()
                return None
            if now < self._submits_open_at():
                return self._submits_open_at()
            job = self._load(marker, State.QUEUED, job_id)
            if job is None or job.state is not State.QUEUED:
                continue
            if job.not_before <= now:
                self._guard(job, self._submit)
                running += job.state in IN_FLIGHT_STATES
            if job.state is State.QUEUED:  # backing off, or sent back by a 429 / an unknown outcome
                due = max(job.not_before, self._submits_open_at())
                waiting_until = due if waiting_until is None else min(waiting_until, due)
        return waiting_until

    def _submits_open_at(self) -> float:
        """Earliest time of the next submit: the pacing slot, or later while the service pushes back
        (the pause is kept in the lease, so the next holder respects it too)."""
        return max(self.lease.submits_paused_until, self._next_submit_slot())

    def _warn_no_time_to_submit(self) -> None:
        if not self.report.out_of_time:
            self.report.out_of_time = True
            log.event(
                "poller.no_time_to_submit",
                logging.WARNING,
                reason="a submit's answer could not be recorded before the function's timeout; "
                "queued jobs wait for the next tick (raise the timeout or lower the read timeout)",
            )

    def _submit(self, job: JobRecord) -> None:
        p, s = self.p, self.s
        if not self._source_current(job):
            self._end(
                job, State.SKIPPED, "source.changed", "the source object changed or was deleted before submit"
            )
            return
        url = p.storage.sign_get_url(job.source_key, s.signed_url_seconds)
        now = p.clock()
        job.input_url = log.redact_url(url)
        job.attempts += 1
        job.event.pop("writeback_failures", None)
        job.tasks.append(TaskAttempt(submitted_at=now))
        self._save(job, State.SUBMITTING, f"attempt {job.attempts}")
        self.lease.last_submit_at = now
        try:
            submitted = p.client.submit(url, job.parameters)
        except SubmitOutcomeUnknown as exc:
            self._uncertain(job, exc.message)
            return
        except DashScopeError as exc:
            self._submit_refused(job, exc)
            return
        task = job.tasks[-1]
        task.task_id, task.request_id, task.status = submitted.task_id, submitted.request_id, "SUBMITTED"
        job.next_query_at = now + self._first_query_delay()
        self._save(job, State.SUBMITTED, submitted.task_id)
        self.report.submitted += 1
        log.event(
            "job.submitted",
            job_id=job.job_id,
            key=job.source_key,
            task_id=submitted.task_id,
            dashscope_request_id=submitted.request_id,
            attempt=job.attempts,
        )

    def _source_current(self, job: JobRecord) -> bool:
        """Is the source still the upload this job was planned for (same bytes, same metadata)?"""
        try:
            head: ObjectHead = self.p.storage.head(job.source_key)
        except NotFound:
            return False
        if head.etag != job.source_etag:
            return False
        return job.source_meta_digest is None or metadata_digest(head.user_meta) == job.source_meta_digest

    def _submit_refused(self, job: JobRecord, exc: DashScopeError) -> None:
        kind = Kind(exc.kind)
        if kind in (Kind.THROTTLED, Kind.ACCOUNT):
            # Not an attempt: the service said no before creating anything; the job stays at the head.
            job.tasks.pop()
            job.attempts -= 1
            pause = THROTTLE_PAUSE_SECONDS if kind is Kind.THROTTLED else ACCOUNT_PAUSE_SECONDS
            self.lease.submits_paused_until = self.p.clock() + pause
            self.report.throttled += 1
            self._save(job, State.QUEUED, f"{exc.code}: stays queued")
            log.event(
                "job.submit_throttled" if kind is Kind.THROTTLED else "dashscope.account_problem",
                logging.INFO if kind is Kind.THROTTLED else logging.ERROR,
                job_id=job.job_id,
                code=exc.code,
                dashscope_request_id=exc.request_id,
            )
            return
        task = job.tasks[-1]
        task.status, task.code, task.message, task.finished_at = (
            "REFUSED",
            exc.code,
            exc.message,
            self.p.clock(),
        )
        self._retry_or_end(job, kind, exc.code, exc.message, State.FAILED)

    def _uncertain(self, job: JobRecord, message: str) -> None:
        """The submit may have created a task we cannot see. Resubmit at most once (policy)."""
        task = job.tasks[-1]
        task.uncertain, task.status, task.finished_at = True, "UNCERTAIN", self.p.clock()
        job.uncertain_submits += 1
        log.event(
            "job.submit_uncertain",
            logging.WARNING,
            job_id=job.job_id,
            key=job.source_key,
            reason=message,
            uncertain_submits=job.uncertain_submits,
        )
        if self.s.uncertain_submit_policy == "resubmit" and job.uncertain_submits == 1:
            job.not_before = self.p.clock() + self.s.poll_interval_seconds
            self._save(
                job, State.QUEUED, "submit outcome unknown: resubmitting once (a second task may exist)"
            )
            self.report.requeued += 1
        else:
            self._end(job, State.FAILED, "dashscope.submit_outcome_unknown", message)

    def _first_query_delay(self) -> float:
        # A task rarely ends before its usual running time: the first query goes out just before it,
        # later ones every poll interval, so an ending is seen within about one interval.
        learned = self.lease.task_seconds
        return max(self.s.poll_interval_seconds, 0.9 * learned) if learned else self.s.poll_interval_seconds

    # --- in flight -----------------------------------------------------------------------------
    def _advance_in_flight(self, job: JobRecord) -> None:
        now = self.p.clock()
        if job.state is State.SUBMITTING:
            # Only a crash leaves this state behind (our own submit moves on at once).
            self._uncertain(
                job, "found SUBMITTING: the previous holder stopped between submit and its answer"
            )
            return
        if job.next_query_at > now or now < self.pause_queries_until:
            return
        spacing = 1.0 / self.s.query_qps
        if now < self.last_query_at + spacing:
            self.p.sleep(self.last_query_at + spacing - now)
        self.last_query_at = self.p.clock()
        task = job.tasks[-1]
        self.report.queries += 1
        job.event["queries"] = int(job.event.get("queries", 0)) + 1
        try:
            state = self.p.client.query(task.task_id or "")
        except DashScopeError as exc:
            if Kind(exc.kind) in (Kind.THROTTLED, Kind.ACCOUNT):
                self.pause_queries_until = self.p.clock() + THROTTLE_PAUSE_SECONDS
            job.next_query_at = self.p.clock() + self._query_interval()
            log.event(
                "task.query_failed", logging.WARNING, job_id=job.job_id, task_id=task.task_id, code=exc.code
            )
            return
        if self._alive():  # an answer that arrives after the deadline is left for the next holder
            self._on_task_state(job, state)

    def _query_interval(self) -> float:
        in_flight = sum(1 for j in self.cache.values() if j.state in IN_FLIGHT_STATES)
        return max(self.s.poll_interval_seconds, in_flight / self.s.query_qps)

    def _on_task_state(self, job: JobRecord, state: TaskState) -> None:
        task = job.tasks[-1]
        now = self.p.clock()
        if not state.finished:
            task.status = state.status
            job.next_query_at = now + self._query_interval()
            return
        seen_succeeded = task.status == "SUCCEEDED"
        task.status, task.code, task.message, task.finished_at = state.status, state.code, state.message, now
        if state.status == "SUCCEEDED":
            self._learn_duration(state.run_seconds)
            self.succeeded[job.job_id] = state
        elif state.status == "FAILED":
            kind = classify(None, state.code)
            self._retry_or_end(
                job, kind, state.code or "task.failed", state.message or "task failed", State.FAILED
            )
        elif state.status == "CANCELED":
            self._end(job, State.FAILED, "task.canceled", "the task was canceled outside outpaint")
        elif seen_succeeded:  # UNKNOWN after a success: the result expired before it was written
            self._end(
                job,
                State.EXPIRED,
                "result.lost",
                "the service forgot a task that had succeeded; `outpaint retry` buys it again",
            )
        else:  # UNKNOWN: the service no longer knows the task (after 24 h, or never created)
            self._retry_or_end(
                job, Kind.TRANSIENT, "task.unknown", "the service no longer knows the task", State.EXPIRED
            )

    def _learn_duration(self, seconds: float | None) -> None:
        """Moving average of the service's own running times (not our polling delay)."""
        if seconds is None or seconds < 0:
            return
        previous = self.lease.task_seconds
        self.lease.task_seconds = seconds if previous is None else 0.8 * previous + 0.2 * seconds

    # --- write-back ----------------------------------------------------------------------------
    def _write_back(self, job: JobRecord, state: TaskState) -> None:
        """Fetch a succeeded task's result and store it; never buy it again on the way."""
        if not state.output_url:
            self._end(job, State.FAILED, "result.missing", "the task succeeded without an output_image_url")
            return
        try:
            result = self.p.fetcher.fetch(state.output_url)
        except ResultLost as exc:
            self._end(job, State.EXPIRED, exc.code, f"{exc.message}; `outpaint retry` buys the result again")
            return
        except ResultUnavailable as exc:
            self._writeback_failed(job, exc.code, exc.message)
            return
        except ResultRefused as exc:
            self._end(job, State.FAILED, exc.code, exc.message)
            return
        except Exception as exc:  # a library error: bounded like any write-back failure
            self._writeback_failed(job, "result.fetch_error", type(exc).__name__)
            return
        try:
            if job.finish:
                result = finish_exact(result, job.finish["width"], job.finish["height"])
            self._store_output(job, result)
        except OutpaintError as exc:
            self._writeback_failed(job, exc.code, exc.message)
        except Exception as exc:  # e.g. Pillow failing on the result: bounded like any write-back failure
            self._writeback_failed(job, "result.write_error", type(exc).__name__)
        finally:
            result.file.close()

    def _writeback_failed(self, job: JobRecord, code: str, message: str) -> None:
        """Back off, count the failure in the record (across runs), give up after a few."""
        failures = int(job.event.get("writeback_failures", 0)) + 1
        job.event["writeback_failures"] = failures
        if failures >= MAX_WRITEBACK_FAILURES:
            self._end(
                job, State.FAILED, "result.write_failed", f"{failures} write-back failures, last: {message}"
            )
            return
        job.next_query_at = self.p.clock() + min(MAX_BACKOFF_SECONDS, 2.0**failures)
        self._save(job, job.state, f"{code}: write-back failed ({failures}), retrying")

    def _store_output(self, job: JobRecord, result: ResultImage) -> None:
        p = self.p
        if not self._source_current(job):
            # A newer upload has its own job; writing this older result could overwrite its output.
            self._end(job, State.SKIPPED, "source.changed", "the source changed while the task ran")
            return
        key = self._output_key(job, result.extension)
        task = job.tasks[-1]
        try:
            existing = p.storage.head(key)
        except NotFound:
            existing = None
        if existing is not None and existing.user_meta.get(META_JOB_ID) == job.job_id:
            etag = existing.etag  # written by a holder that stopped before recording DONE
        elif (
            existing is not None
            and unquote(existing.user_meta.get(META_SOURCE, job.source_key)) != job.source_key
        ):
            other = unquote(existing.user_meta[META_SOURCE])
            self._end(
                job,
                State.FAILED,
                "output.key_conflict",
                f"{key} already holds the result of {other}; rename one of the two uploads",
            )
            return
        else:
            etag = p.storage.put(
                key,
                result.file,
                content_type=result.content_type,
                user_meta={
                    META_SOURCE: quote(job.source_key, safe="/"),
                    "outpaint-source-etag": job.source_etag,
                    META_JOB_ID: job.job_id,
                    "outpaint-task-id": task.task_id or "",
                    "outpaint-variant": job.variant_name,
                    META_GENERATED_BY: GENERATED_BY,
                },
            )
        job.output_key, job.output_etag, job.output_size = key, etag, result.size
        job.output_format = result.format
        job.event["result_width"], job.event["result_height"] = result.width, result.height
        self._save(job, State.DONE, key)
        self.report.done += 1
        log.event(
            "job.done",
            job_id=job.job_id,
            key=job.source_key,
            task_id=task.task_id,
            output_key=key,
            width=result.width,
            height=result.height,
            seconds=round(p.clock() - job.created_at, 3),
        )

    def _output_key(self, job: JobRecord, extension: str) -> str:
        # The path under the input prefix is kept exactly (empty segments too); only the name changes.
        relative = job.source_key[len(self.s.input_prefix) :]
        folder, slash, name = relative.rpartition("/")
        stem = name.rsplit(".", 1)[0] if "." in name[1:] else name
        if int(job.event.get("variants", 1)) > 1:
            stem = f"{stem}.{job.variant_name}"
        return f"{self.s.output_prefix}{folder}{slash}{stem}.{extension}"

    # --- endings -------------------------------------------------------------------------------
    def _retry_or_end(self, job: JobRecord, kind: Kind, code: str, message: str, end_state: State) -> None:
        if kind is Kind.TRANSIENT and job.attempts < self.s.max_attempts:
            job.not_before = self.p.clock() + self.s.retry_backoff_seconds
            job.error_code, job.error_message = code, message
            self._save(job, State.QUEUED, f"{code}: retry {job.attempts + 1}/{self.s.max_attempts}")
            self.report.requeued += 1
            log.event(
                "job.retry",
                logging.WARNING,
                job_id=job.job_id,
                key=job.source_key,
                code=code,
                attempt=job.attempts,
            )
            return
        self._end(job, end_state, code, message)

    def _end(self, job: JobRecord, state: State, code: str, message: str) -> None:
        job.error_code, job.error_message = code, message
        self._save(job, state, f"{code}: {message}")
        self.report.failed += state in (State.FAILED, State.EXPIRED)
        log.event(
            f"job.{state.value.lower()}",
            logging.WARNING,
            job_id=job.job_id,
            key=job.source_key,
            state=state.value,
            code=code,
            reason=message,
        )
