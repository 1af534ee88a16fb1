"""Burst: N uploads at once, ours and naive, each on a fresh stack with the same emulator settings."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from outpaint.app import build_pipeline, handle_tick, handle_upload
from outpaint.config import Settings
from outpaint.job import ACTIVE_STATES, TERMINAL_STATES, State
from outpaint.store import JobStore
from tests.bench.common import (
    TIMER_EVENT,
    Delivery,
    deliver,
    function_config,
    invocation,
    pipeline_settings,
    progress,
)
from tests.bench.naive import NaiveHandler
from tests.support.images import photo
from tests.support.stack import API_KEY, Stack, running_stack

RATIO = "16:9"
# What the naive handler sends for every upload: the same expansion ours plans from the metadata.
NAIVE_PARAMETERS: dict[str, object] = {"output_ratio": RATIO, "add_watermark": True, "limit_image_size": True}
CHECK_EVERY = 0.25
PROGRESS_EVERY = 10.0


@dataclass(frozen=True)
class BurstConfig:
    """The burst and the account limits the emulator enforces."""

    n: int
    task_seconds: float
    qps: float
    concurrency: int
    tick_every: float

    @property
    def lower_bound(self) -> float:
        """No schedule finishes sooner: every slot busy all the time, or submits back to back."""
        waves = math.ceil(self.n / self.concurrency) * self.task_seconds
        return max(waves, (self.n - 1) / self.qps + self.task_seconds)

    def timeout(self) -> float:
        """When a side is given up on (its unfinished jobs count as lost)."""
        return 4 * self.lower_bound + 3 * self.tick_every + 60


@dataclass
class BurstSide:
    """One approach's outcome, with the emulator's counters."""

    approach: str
    jobs: int
    done: int
    makespan: float
    stats: dict[str, Any]
    timed_out: bool = False
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def lost(self) -> int:
        return self.jobs - self.done

    def per_job(self, counter: str) -> float:
        return self.stats[counter] / self.jobs

    def as_dict(self, lower_bound: float) -> dict[str, Any]:
        return {
            **asdict(self),
            "lost": self.lost,
            "makespan_ratio": self.makespan / lower_bound,
            "submits_per_job": self.per_job("submits_accepted"),
            "throttled_per_job": self.per_job("submits_throttled"),
            "queries_per_job": self.per_job("queries"),
        }


def run_burst(config: BurstConfig, workdir: Path) -> dict[str, BurstSide]:
    """Both approaches, one after the other, each against a fresh pair of emulators."""
    knobs = {
        "qps": config.qps,
        "concurrency": config.concurrency,
        "task_seconds": (config.task_seconds, config.task_seconds),
    }
    image = photo(1000, 800)
    sides: dict[str, BurstSide] = {}
    for approach, run in (("ours", _run_ours), ("naive", _run_naive)):
        with running_stack(workdir / f"burst-{approach}", **knobs) as stack:
            progress(f"burst/{approach}: uploading {config.n} images")
            events = [stack.upload(f"inbox/burst/{i:04d}.jpg", image, ratio=RATIO) for i in range(config.n)]
            progress(f"burst/{approach}: delivering {config.n} events at once")
            sides[approach] = run(stack, events, config)
            side = sides[approach]
            progress(
                f"burst/{approach}: {side.done}/{side.jobs} done in {side.makespan:.1f} s "
                f"(lower bound {config.lower_bound:.1f} s)"
            )
    return sides


# ----------------------------------------------------------------------------------------------- ours
def _run_ours(stack: Stack, events: list[bytes], config: BurstConfig) -> BurstSide:
    """Events to on_upload through a pool as wide as its reserved concurrency; the timer fires on_tick."""
    settings = pipeline_settings(stack, qps=config.qps, concurrency=config.concurrency)
    store = build_pipeline(settings, stack.credentials).store
    upload = function_config("on-upload")
    pollers: list[dict[str, Any]] = []
    t0 = time.time()

    def on_upload(event: bytes) -> None:
        started = time.time()
        result = handle_upload(event, invocation("on-upload"), settings)
        if "poller" in result and result["poller"]["lease"] == "acquired":
            pollers.append(_poller_entry("on_upload", started, t0, result["poller"]))

    stop = threading.Event()
    timer = threading.Thread(
        target=_fire_timer, args=(settings, config.tick_every, t0, stop, pollers), daemon=True
    )
    timer.start()
    with ThreadPoolExecutor(upload.reserved_concurrency or len(events)) as pool:
        futures = [pool.submit(deliver, _bind(on_upload, event), upload.async_retries) for event in events]
        finished = _wait(
            lambda: all(f.done() for f in futures) and not _active(store),
            t0 + config.timeout(),
            lambda: _ours_progress(store, t0),
        )
        stop.set()
    timer.join()
    deliveries = [f.result() for f in futures]
    records = [r for r in (store.load(job_id) for job_id in store.all_job_ids()) if r is not None]
    ended = [r.history[-1].at for r in records if r.state in TERMINAL_STATES]
    return BurstSide(
        approach="ours",
        jobs=len(events),
        done=sum(r.state is State.DONE for r in records),
        makespan=max(ended, default=time.time()) - t0,
        stats=stack.dashscope.stats(),
        timed_out=not finished,
        detail={
            "failed_deliveries": sum(not d.ok for d in deliveries),
            "states": {s.value: sum(r.state is s for r in records) for s in State if s in TERMINAL_STATES},
            "pollers": sorted(pollers, key=lambda p: p["start"]),
            "tick_every": config.tick_every,
            "upload_concurrency": upload.reserved_concurrency,
        },
    )


def _fire_timer(
    settings: Settings, period: float, t0: float, stop: threading.Event, pollers: list[dict[str, Any]]
) -> None:
    """FC's timer trigger: an event every ``period`` s from ``t0`` (the burst lands just after a tick).
    on_tick has one instance, so events run in turn; one that waited past its maximum age is dropped."""
    max_age = function_config("on-tick").max_event_age_seconds
    fire = t0 + period
    while not stop.wait(max(0.0, fire - time.time())):
        started = time.time()
        report = handle_tick(TIMER_EVENT, invocation("on-tick"), settings)
        if report["lease"] == "acquired":
            pollers.append(_poller_entry("on_tick", started, t0, report))
        fire += period
        while fire < time.time() - max_age:
            fire += period


def _poller_entry(function: str, started: float, t0: float, report: dict[str, Any]) -> dict[str, Any]:
    keep = ("rounds", "submitted", "throttled", "queries", "done")
    return {
        "function": function,
        "start": round(started - t0, 2),
        "end": round(time.time() - t0, 2),
        **{k: report[k] for k in keep},
    }


def _active(store: JobStore) -> int:
    return sum(len(store.markers(state)) for state in ACTIVE_STATES)


def _ours_progress(store: JobStore, t0: float) -> str:
    queued = len(store.markers(State.QUEUED))
    in_flight = len(store.markers(State.SUBMITTED)) + len(store.markers(State.SUBMITTING))
    return f"burst/ours: t={time.time() - t0:5.1f} s, {queued} queued, {in_flight} in flight"


# ---------------------------------------------------------------------------------------------- naive
def _run_naive(stack: Stack, events: list[bytes], config: BurstConfig) -> BurstSide:
    """One invocation per event at once (no reserved concurrency), FC's async retries on any error."""
    handler = NaiveHandler(stack.bucket(), stack.dashscope.base_url, API_KEY, NAIVE_PARAMETERS)
    retries = function_config("on-upload").async_retries
    t0 = time.time()
    try:
        with ThreadPoolExecutor(len(events)) as pool:
            futures: list[Future[Delivery]] = [
                pool.submit(deliver, _bind(handler, event), retries) for event in events
            ]
            finished = _wait(
                lambda: all(f.done() for f in futures),
                t0 + config.timeout(),
                lambda: _naive_progress(futures, t0),
            )
        deliveries = [f.result() for f in futures]
    finally:
        handler.close()
    return BurstSide(
        approach="naive",
        jobs=len(events),
        done=sum(d.ok for d in deliveries),
        makespan=max(d.ended_at for d in deliveries) - t0,
        stats=stack.dashscope.stats(),
        timed_out=not finished,
        detail={
            "attempts": sum(d.attempts for d in deliveries),
            "errors": _error_counts(deliveries),
            "over_concurrency": stack.dashscope.configure()["over_concurrency"],
            "retries": retries,
        },
    )


def _naive_progress(futures: list[Future[Delivery]], t0: float) -> str:
    ended = [f.result() for f in futures if f.done()]
    done = sum(d.ok for d in ended)
    return f"burst/naive: t={time.time() - t0:5.1f} s, {done} done, {len(ended) - done} given up"


def _error_counts(deliveries: list[Delivery]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for delivery in deliveries:
        if delivery.error:
            counts[delivery.error] = counts.get(delivery.error, 0) + 1
    return counts


# --------------------------------------------------------------------------------------------- shared
def _bind(function: Callable[[bytes], object], event: bytes) -> Callable[[], object]:
    return lambda: function(event)


def _wait(finished: Callable[[], bool], deadline: float, status: Callable[[], str]) -> bool:
    """Check ``finished`` until it holds or ``deadline`` passes, printing ``status`` now and then."""
    next_report = time.time() + PROGRESS_EVERY
    while time.time() < deadline:
        if finished():
            return True
        if time.time() >= next_report:
            progress(status())
            next_report += PROGRESS_EVERY
        time.sleep(CHECK_EVERY)
    return False
