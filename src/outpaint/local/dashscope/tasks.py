"""Task lifecycle: PENDING → RUNNING → SUCCEEDED | FAILED (or CANCELED), slots, retention, results."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter, deque
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from .fetch import fetch_image
from .imaging import Result, decode, render
from .settings import Settings
from .signing import UrlSigner
from .store import TaskStore
from .validation import Submission
from .wire import ALGO, ALLOCATION_QUOTA, CANCEL_NOT_PENDING, ApiError, TaskFailure, new_id, timestamp

log = logging.getLogger("outpaint.local.dashscope")

PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED, UNKNOWN = (
    "PENDING",
    "RUNNING",
    "SUCCEEDED",
    "FAILED",
    "CANCELED",
    "UNKNOWN",
)
BEST_QUALITY_FACTOR = 2.0  # the docs only say best_quality "multiplies" the processing time


@dataclass(eq=False)
class Task:
    """One out-painting task and the draws that fix its fate at submit time."""

    task_id: str
    submission: Submission
    submitted: float  # epoch seconds
    submitted_mono: float
    seconds: float  # drawn running time
    fails: bool  # drawn InternalError.Algo
    fated: TaskFailure | None = None  # an injected failure (faults.task_failure), shown when the task ends
    status: str = PENDING
    scheduled: float | None = None
    ended: float | None = None
    failure: TaskFailure | None = None
    result: Result | None = None
    result_path: str | None = None  # signed path+query of output_image_url
    runner: asyncio.Task[None] | None = field(default=None, repr=False)

    def output(self, origin: str) -> dict[str, Any]:
        """The ``output`` object of a query answer (result URLs are served from ``origin``)."""
        out: dict[str, Any] = {"task_id": self.task_id, "task_status": self.status}
        out["submit_time"] = timestamp(self.submitted)
        if self.scheduled is not None:
            out["scheduled_time"] = timestamp(self.scheduled)
        if self.ended is not None:
            out["end_time"] = timestamp(self.ended)
        if self.status in (PENDING, RUNNING, SUCCEEDED, FAILED):  # as sibling models answer
            out["task_metrics"] = {
                "TOTAL": 1,
                "SUCCEEDED": int(self.status == SUCCEEDED),
                "FAILED": int(self.status == FAILED),
            }
        if self.result_path is not None:
            out["output_image_url"] = origin + self.result_path
        if self.failure is not None:
            out["code"], out["message"] = self.failure.error.code, self.failure.message
        return out

    def draws(self) -> dict[str, Any]:
        """Operator view: the task's seeded draws and state."""
        return {"task_id": self.task_id, "status": self.status, "seconds": self.seconds, "fails": self.fails}


class Scheduler:
    """Owns the tasks: admission against the concurrency limit, execution, expiry. Runs on the event loop.

    With a ``store``, every task is saved at each change and the saved ones are taken back at start: a
    task that was PENDING or RUNNING then runs again (its drawn time counted from when it first started).
    """

    def __init__(
        self,
        settings: Settings,
        seed: int,
        executor: Executor,
        signer: UrlSigner,
        store: TaskStore | None = None,
    ) -> None:
        self.settings = settings
        self.reseed(seed)
        self._executor = executor
        self._signer = signer
        self._store = store
        self._tasks: dict[str, Task] = {}
        self._pending: deque[Task] = deque()
        self.running = 0
        self.peak_running = 0
        self.expired = 0
        if store is not None:
            self._restore(store)

    def _restore(self, store: TaskStore) -> None:
        now, now_mono = time.time(), time.monotonic()
        for values in store.load():
            task = Task(**values, submitted_mono=now_mono - (now - values["submitted"]))
            self._tasks[task.task_id] = task
            if task.status in (PENDING, RUNNING):
                self._pending.append(task)
        # Tasks that were running go first: they held the slots.
        self._pending = deque(sorted(self._pending, key=lambda task: task.status != RUNNING))
        if self._tasks:
            log.info("%d task(s) restored, %d to run", len(self._tasks), len(self._pending))

    def reseed(self, seed: int) -> None:
        """Restart the task draw sequence (duration, then failure, per submit) from ``seed``."""
        self._rng = random.Random(seed)  # noqa: S311 - simulation, not security

    def check_capacity(self) -> None:
        """In ``reject`` mode, refuse a submit when every concurrency slot is taken."""
        self.purge()
        busy = self.running + len(self._pending)
        if self.settings.over_concurrency == "reject" and busy >= self.settings.concurrency:
            raise ApiError(ALLOCATION_QUOTA, f"{busy} tasks in progress, limit {self.settings.concurrency}")

    def submit(self, submission: Submission, fated: TaskFailure | None = None) -> Task:
        """Accept a task (PENDING) and start it when a slot is free; ``fated``: how it will fail."""
        seconds = self._draw_seconds()
        fails = self._rng.random() < self.settings.fail_rate
        if submission.params.best_quality:
            seconds *= BEST_QUALITY_FACTOR
        task = Task(new_id(), submission, time.time(), time.monotonic(), seconds, fails, fated)
        self._tasks[task.task_id] = task
        self._pending.append(task)
        self._save(task)
        log.info("task %s -> PENDING (draw %.3fs%s)", task.task_id, seconds, ", will fail" if fails else "")
        self.pump()
        return task

    def get(self, task_id: str) -> Task | None:
        """A retained task, or ``None`` (never existed or expired: answered as UNKNOWN)."""
        self.purge()
        return self._tasks.get(task_id)

    def cancel(self, task_id: str) -> Task:
        """Cancel a PENDING task; anything else is ``UnsupportedOperation``."""
        task = self.get(task_id)
        if task is None or task.status != PENDING:
            status = task.status if task else UNKNOWN
            log.info("cancel of task %s refused: it is %s", task_id, status)
            raise ApiError(CANCEL_NOT_PENDING)
        self._pending.remove(task)
        task.ended = time.time()
        self._transition(task, CANCELED)
        return task

    def pump(self) -> None:
        """Start pending tasks, oldest first, while slots are free."""
        while self._pending and self.running < self.settings.concurrency:
            task = self._pending.popleft()
            self.running += 1
            self.peak_running = max(self.peak_running, self.running)
            task.runner = asyncio.get_running_loop().create_task(self._execute(task))

    def purge(self) -> None:
        """Forget tasks older than the retention period (their results go with them)."""
        horizon = time.monotonic() - self.settings.retention_seconds
        for task in [t for t in self._tasks.values() if t.submitted_mono < horizon]:
            del self._tasks[task.task_id]
            if task in self._pending:
                self._pending.remove(task)
            if self._store is not None:
                self._store.remove(task.task_id)
            self.expired += 1
            log.info("task %s expired (%s) -> UNKNOWN", task.task_id, task.status)

    def counts(self) -> dict[str, int]:
        """Retained tasks by status."""
        self.purge()
        found = Counter(task.status for task in self._tasks.values())
        return {status: found[status] for status in (PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED)}

    def draws(self) -> list[dict[str, Any]]:
        """Every retained task's draws, in submit order."""
        self.purge()
        return [task.draws() for task in self._tasks.values()]

    def close(self) -> None:
        """Stop every runner (used by reset and shutdown); saved tasks stay saved."""
        for task in self._tasks.values():
            if task.runner is not None and not task.runner.done():
                task.runner.cancel()
        self._pending.clear()

    def forget(self) -> None:
        """Stop every runner and forget every task and result, saved ones included."""
        self.close()
        self._tasks.clear()
        if self._store is not None:
            self._store.clear()

    async def _execute(self, task: Task) -> None:
        if task.scheduled is None:
            task.scheduled = time.time()
            self._transition(task, RUNNING)
        deadline = time.monotonic() + task.scheduled + task.seconds - time.time()
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self._executor, self._work, task, self.settings)
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))
            if task.fated is not None:
                raise task.fated
            if task.fails:
                raise TaskFailure(ALGO)
        except TaskFailure as failure:
            task.failure = failure
            self._finish(task, FAILED)
        except Exception as exc:  # an emulator bug must not wedge the slot; surface it as the service would
            log.exception("task %s crashed", task.task_id)
            task.failure = TaskFailure(ALGO, type(exc).__name__)
            self._finish(task, FAILED)
        else:
            task.result = result
            expires = int(time.time() + self.settings.url_lifetime)
            task.result_path = self._signer.sign(f"{task.task_id}.{result.extension}", expires)
            self._finish(task, SUCCEEDED)
        finally:
            self.running -= 1
        self.pump()  # not when cancelled (a shutdown, a forget): the next task must not start then

    def _work(self, task: Task, settings: Settings) -> Result:
        """Download and paint (on the executor); the result is saved before the task says SUCCEEDED."""
        submission = task.submission
        data = fetch_image(submission.image_url, settings.download_timeout, settings.max_download_bytes)
        result = render(decode(data), submission.params)
        if self._store is not None:
            self._store.save_result(task.task_id, result)
        return result

    def _finish(self, task: Task, status: str) -> None:
        task.ended = time.time()
        self._transition(task, status)

    def _transition(self, task: Task, status: str) -> None:
        previous, task.status = task.status, status
        self._save(task)
        detail = f" {task.failure}" if task.failure else ""
        log.info("task %s %s -> %s%s", task.task_id, previous, status, detail)

    def _save(self, task: Task) -> None:
        if self._store is not None:
            self._store.save(task)

    def _draw_seconds(self) -> float:
        low, high = self.settings.task_seconds
        return low + (high - low) * self._rng.random()  # always one draw, so the sequence never shifts
