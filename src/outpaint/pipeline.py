"""Orchestration: intake (upload side) and the poller (tick side).

intake: event records → guards → HEAD + probe → plan → job records (create-if-absent is the
idempotency claim). The poller, run by on_tick and opportunistically by on_upload, holds the lease
and until its deadline: queries in-flight tasks, writes results back, and admits queued jobs while
the account's concurrency and submit rate allow.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from outpaint import GENERATED_BY, log
from outpaint.dashscope import Kind, classify
from outpaint.errors import DashScopeError, ImageProbeError, OutpaintError, PlanError, SubmitOutcomeUnknown
from outpaint.plan import PlanDefaults, plan_upload, user_metadata
from outpaint.results import ResultLost, ResultRefused, ResultUnavailable, finish_exact
from outpaint.storage import NotFound
from outpaint.store import IN_FLIGHT_STATES, JobRecord, Lease, State, TaskAttempt, job_id_for

if TYPE_CHECKING:
    from outpaint.config import Settings
    from outpaint.dashscope import DashScopeClient, TaskState
    from outpaint.events import ObjectRecord
    from outpaint.results import ResultFetcher, ResultImage
    from outpaint.storage import Storage
    from outpaint.store import JobStore

META_JOB_ID = "outpaint-job-id"
META_GENERATED_BY = "outpaint-generated-by"
THROTTLE_PAUSE_SECONDS = 1.0
ACCOUNT_PAUSE_SECONDS = 30.0
MAX_SLEEP_SECONDS = 1.0
MAX_DOWNLOAD_FAILURES = 5


@dataclass
class IntakeOutcome:
    """What intake did with one event record."""

    key: str
    action: str  # created, duplicate, rejected, skipped, ignored
    reason: str | None = None
    job_ids: list[str] = field(default_factory=list)


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

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Pipeline:
    """Intake and poller over one bucket. ``clock`` and ``sleep`` are injectable for tests."""

    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        store: JobStore,
        client: DashScopeClient,
        fetcher: ResultFetcher,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.store = store
        self.client = client
        self.fetcher = fetcher
        self.clock = clock
        self.sleep = sleep
        self.defaults = PlanDefaults(
            ratio=settings.default_ratio,
            gravity=settings.default_gravity,
            best_quality=settings.best_quality,
            add_watermark=settings.add_watermark,
            limit_image_size=settings.limit_image_size,
        )

    # ============================================================================= intake
    def intake(self, records: list[ObjectRecord]) -> list[IntakeOutcome]:
        """Turn each event record into job records; never raises for one bad record alone."""
        return [self._intake_one(record) for record in records]

    def _intake_one(self, record: ObjectRecord) -> IntakeOutcome:
        key = record.key
        reason = self._ignore_reason(record)
        if reason:
            log.event(
                "intake.ignored", key=key, bucket=record.bucket, reason=reason, event_name=record.event_name
            )
            return IntakeOutcome(key, "ignored", reason)
        try:
            head = self.storage.head(key)
        except NotFound:
            log.event("intake.ignored", key=key, reason="object.gone")
            return IntakeOutcome(key, "ignored", "object.gone")
        if head.user_meta.get(META_GENERATED_BY):
            log.event("intake.ignored", key=key, reason="own_output")
            return IntakeOutcome(key, "ignored", "own_output")
        base = self._new_record(key, head.etag, head.size, record)
        try:
            facts = self.storage.probe_image(key, head.size)
            plan = plan_upload(user_metadata(head.user_meta), facts, self.defaults)
        except (ImageProbeError, PlanError) as exc:
            return self._create_final(base, State.REJECTED, "rejected", exc.code, exc.message)
        if plan.skipped:
            return self._create_final(base, State.SKIPPED, "skipped", "plan.skipped", plan.skipped)
        outcome = IntakeOutcome(key, "duplicate")
        for variant in plan.variants:
            job = base.model_copy(deep=True)
            job.job_id = job_id_for(self.settings.bucket, key, head.etag, variant.digest())
            job.variant_name = variant.name
            job.parameters = dict(variant.parameters)
            job.output_width, job.output_height = variant.output_width, variant.output_height
            job.finish = variant.finish.model_dump() if variant.finish else None
            job.warnings = list(variant.warnings)
            job.move(State.QUEUED, f"{len(plan.variants)} variant(s)", now=job.created_at)
            job.event["variants"] = len(plan.variants)
            created = self.store.create(job)
            outcome.job_ids.append(job.job_id)
            if created:
                outcome.action = "created"
            log.event(
                "job.created" if created else "job.duplicate",
                job_id=job.job_id,
                key=key,
                variant=variant.name,
                state=State.QUEUED.value,
                warnings=job.warnings or None,
            )
        return outcome

    def _ignore_reason(self, record: ObjectRecord) -> str | None:
        s = self.settings
        key = record.key
        if record.bucket != s.bucket:
            return "foreign_bucket"
        if not record.is_created:
            return "not_a_creation_event"
        if key.startswith((s.output_prefix, s.state_prefix)):
            return "own_output"
        if not key.startswith(s.input_prefix):
            return "outside_input_prefix"
        if key.endswith("/"):
            return "folder_marker"
        return None

    def _new_record(self, key: str, etag: str, size: int, record: ObjectRecord) -> JobRecord:
        now = self.clock()
        return JobRecord(
            job_id="",
            bucket=self.settings.bucket,
            source_key=key,
            source_etag=etag,
            source_size=size,
            state=State.QUEUED,
            created_at=now,
            updated_at=now,
            event={"name": record.event_name, "request_id": record.request_id},
        )

    def _create_final(
        self, job: JobRecord, state: State, action: str, code: str, message: str
    ) -> IntakeOutcome:
        job.job_id = job_id_for(self.settings.bucket, job.source_key, job.source_etag, action)
        job.error_code, job.error_message = code, message
        job.move(state, message, now=job.created_at)
        if not self.store.create(job):
            action = "duplicate"
        log.event(
            f"job.{action}",
            logging.WARNING if action == "rejected" else logging.INFO,
            job_id=job.job_id,
            key=job.source_key,
            state=state.value,
            code=code,
            reason=message,
        )
        return IntakeOutcome(job.source_key, action, f"{code}: {message}", [job.job_id])

    # ============================================================================= poller
    def poll(self, deadline: float, *, wait_for_lease: bool = False) -> PollReport:
        """Hold the lease and work until ``deadline`` or until nothing is queued or in flight."""
        lease = self._acquire(deadline, wait_for_lease)
        if lease is None:
            log.event("poller.lease_held")
            return PollReport(lease="held")
        run = _PollerRun(self, lease, deadline)
        try:
            run.loop()
        finally:
            if self.store.holds_lease(lease, now=self.clock()):
                self.store.release_lease(lease)
        log.event("poller.finished", **run.report.as_dict())
        return run.report

    def _acquire(self, deadline: float, wait: bool) -> Lease | None:
        while True:
            now = self.clock()
            lease = self.store.acquire_lease(max(deadline - now, 1.0) + 5.0, now=now)
            if lease is not None or not wait or now + 1.0 >= deadline:
                return lease
            self.sleep(1.0)


class _PollerRun:
    """One lease holder's work loop. Records it wrote are cached: while it holds the lease, nobody
    else changes them."""

    def __init__(self, pipeline: Pipeline, lease: Lease, deadline: float) -> None:
        self.p = pipeline
        self.s = pipeline.settings
        self.lease = lease
        self.deadline = deadline
        self.report = PollReport()
        self.cache: dict[str, JobRecord] = {}
        self.pause_submits_until = 0.0
        self.pause_queries_until = 0.0
        self.last_query_at = 0.0
        self.succeeded: dict[str, TaskState] = {}  # this round's finished tasks awaiting write-back

    # --- loop ----------------------------------------------------------------------------------
    def loop(self) -> None:
        while self.p.clock() < self.deadline:
            if not self.p.store.holds_lease(self.lease, now=self.p.clock()):
                log.event("poller.lease_lost", logging.WARNING, term=self.lease.term)
                return
            self.report.rounds += 1
            queued, in_flight = self._collect()
            self.succeeded.clear()
            for job in in_flight:
                self._guard(job, self._advance_in_flight)
            # Jobs sent back to the queue by a retry join the others in FIFO order.
            queued = sorted(
                (j for j in queued + in_flight if j.state is State.QUEUED), key=lambda j: j.marker_name
            )
            # A succeeded task no longer holds a service slot: refill it before writing the result back.
            running = [j for j in in_flight if j.state in IN_FLIGHT_STATES and j.job_id not in self.succeeded]
            self._admit(queued, len(running))
            for job_id, state in list(self.succeeded.items()):
                self._guard(self.cache[job_id], lambda job, state=state: self._write_back(job, state))
            listed = {j.job_id for j in queued}
            active = queued + [j for j in in_flight if j.job_id not in listed]
            in_flight = [j for j in active if j.state in IN_FLIGHT_STATES]
            queued = [j for j in active if j.state is State.QUEUED]
            self.report.in_flight, self.report.queued = len(in_flight), len(queued)
            wake = self._next_wake(queued, in_flight)
            if wake is None:
                return
            self.p.sleep(
                max(0.05, min(wake - self.p.clock(), MAX_SLEEP_SECONDS, self.deadline - self.p.clock()))
            )

    def _collect(self) -> tuple[list[JobRecord], list[JobRecord]]:
        """Every active job, from one LIST per state, repairing stray markers on the way."""
        found: dict[State, list[JobRecord]] = {}
        for state in (State.SUBMITTING, State.SUBMITTED, State.QUEUED):
            for marker, job_id in self.p.store.markers(state):
                job = self.cache.get(job_id)
                if job is None or job.state != state:
                    job = self.p.store.reconcile_marker(marker, state, job_id)
                    if job is None:
                        continue
                    self.cache[job_id] = job
                found.setdefault(job.state, []).append(job)
        in_flight = found.get(State.SUBMITTING, []) + found.get(State.SUBMITTED, [])
        return sorted(found.get(State.QUEUED, []), key=lambda j: j.marker_name), in_flight

    def _guard(self, job: JobRecord, step: Callable[[JobRecord], None]) -> None:
        """One job's failure never aborts the round; the next round starts again from what is stored."""
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

    def _next_wake(self, waiting: list[JobRecord], in_flight: list[JobRecord]) -> float | None:
        """When to look again; None when nothing is left to do before the deadline."""
        times = [j.next_query_at for j in in_flight]
        if waiting and len(in_flight) < self.s.max_concurrent_tasks:
            earliest = min(j.not_before for j in waiting)
            times.append(max(earliest, self._next_submit_slot(), self.pause_submits_until))
        wake = min(times, default=None)
        return wake if wake is not None and wake < self.deadline else None

    # --- admission -----------------------------------------------------------------------------
    def _next_submit_slot(self) -> float:
        # 5 % slack over the nominal spacing keeps us under a limiter that counts per window.
        return self.lease.last_submit_at + 1.05 / self.s.submit_qps

    def _admit(self, queued: list[JobRecord], in_flight: int) -> int:
        admitted = 0
        for job in queued:
            now = self.p.clock()
            if in_flight + admitted >= self.s.max_concurrent_tasks or now < self.pause_submits_until:
                break
            if job.not_before > now:
                continue
            if now < self._next_submit_slot():
                break
            before = job.state
            self._guard(job, self._submit)
            if job.state in IN_FLIGHT_STATES and before is State.QUEUED:
                admitted += 1
        return admitted

    def _submit(self, job: JobRecord) -> None:
        p, s = self.p, self.s
        try:
            head = p.storage.head(job.source_key)
        except NotFound:
            head = None
        if head is None or head.etag != job.source_etag:
            self._end(
                job, State.SKIPPED, "source.changed", "the source object changed or was deleted before submit"
            )
            return
        url = p.storage.sign_get_url(job.source_key, s.signed_url_seconds)
        job.event.pop("download_failures", None)
        now = p.clock()
        job.input_url = log.redact_url(url)
        job.attempts += 1
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

    def _submit_refused(self, job: JobRecord, exc: DashScopeError) -> None:
        kind = Kind(exc.kind)
        if kind in (Kind.THROTTLED, Kind.ACCOUNT):
            # Not an attempt: the job goes back to the head of the queue.
            job.tasks.pop()
            job.attempts -= 1
            pause = THROTTLE_PAUSE_SECONDS if kind is Kind.THROTTLED else ACCOUNT_PAUSE_SECONDS
            self.pause_submits_until = self.p.clock() + pause
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

    # --- in-flight -----------------------------------------------------------------------------
    def _advance_in_flight(self, job: JobRecord) -> None:
        now = self.p.clock()
        if job.state is State.SUBMITTING:
            # Only a crash leaves this state on disk (our own submit moves on at once).
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
        else:  # UNKNOWN: the task (or our record of it) is gone, usually after 24 h
            self._retry_or_end(
                job, Kind.TRANSIENT, "task.unknown", "the service no longer knows the task", State.EXPIRED
            )

    def _learn_duration(self, seconds: float | None) -> None:
        """Moving average of the service's own running times (not our polling delay)."""
        if seconds is None or seconds < 0:
            return
        previous = self.lease.task_seconds
        self.lease.task_seconds = seconds if previous is None else 0.8 * previous + 0.2 * seconds

    def _write_back(self, job: JobRecord, state: TaskState) -> None:
        p = self.p
        if not state.output_url:
            self._end(job, State.FAILED, "result.missing", "the task succeeded without an output_image_url")
            return
        try:
            result = p.fetcher.fetch(state.output_url)
        except ResultLost as exc:
            self._retry_or_end(job, Kind.TRANSIENT, exc.code, exc.message, State.EXPIRED)
            return
        except ResultUnavailable as exc:
            failures = int(job.event.get("download_failures", 0)) + 1
            job.event["download_failures"] = failures
            if failures >= MAX_DOWNLOAD_FAILURES:
                self._retry_or_end(job, Kind.TRANSIENT, exc.code, exc.message, State.EXPIRED)
            else:
                job.next_query_at = p.clock() + self._query_interval()
            return
        except ResultRefused as exc:
            self._end(job, State.FAILED, exc.code, exc.message)
            return
        try:
            self._store_output(job, result)
        finally:
            result.file.close()

    def _store_output(self, job: JobRecord, result: ResultImage) -> None:
        p = self.p
        try:
            current = p.storage.head(job.source_key)
        except NotFound:
            current = None
        if current is None or current.etag != job.source_etag:
            # A newer upload has its own job; writing this older result could overwrite its output.
            self._end(job, State.SKIPPED, "source.changed", "the source changed while the task ran")
            return
        if job.finish:
            result = finish_exact(result, job.finish["width"], job.finish["height"])
        key = self._output_key(job, result.extension)
        task = job.tasks[-1]
        try:
            existing = p.storage.head(key)
        except NotFound:
            existing = None
        if existing is None or existing.user_meta.get(META_JOB_ID) != job.job_id:
            etag = p.storage.put(
                key,
                result.file,
                content_type=result.content_type,
                user_meta={
                    "outpaint-source": quote(job.source_key, safe="/"),
                    "outpaint-source-etag": job.source_etag,
                    META_JOB_ID: job.job_id,
                    "outpaint-task-id": task.task_id or "",
                    "outpaint-variant": job.variant_name,
                    META_GENERATED_BY: GENERATED_BY,
                },
            )
        else:
            etag = existing.etag  # written by a holder that stopped before recording DONE
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

    def _save(self, job: JobRecord, state: State, note: str) -> None:
        previous = job.state
        job.move(state, note, now=self.p.clock())
        self.p.store.save(job, previous)
        self.cache[job.job_id] = job
