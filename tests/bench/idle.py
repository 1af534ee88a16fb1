"""Idle latency: one upload into an idle system, upload-to-output time minus the task time.

Ours: the OSS event reaches on_upload at upload time; on_upload takes the free poller lease and follows
the task itself, so the timer is not fired (a tick firing meanwhile would only wait for the lease).
Naive: the same event to the naive handler. The output is watched with HEAD every 50 ms.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import oss2

from outpaint.app import handle_upload
from outpaint.config import Settings
from tests.bench.burst import NAIVE_PARAMETERS, RATIO
from tests.bench.common import deliver, function_config, invocation, pipeline_settings, progress
from tests.bench.naive import NaiveHandler
from tests.support.images import photo
from tests.support.stack import API_KEY, running_stack

WATCH_EVERY = 0.05


def run_idle(
    repeat: int, workdir: Path, *, task_seconds: float, qps: float, concurrency: int
) -> dict[str, dict[str, Any]]:
    """``repeat`` uploads per approach, one at a time, each into a system with nothing else to do."""
    image = photo(1000, 800)
    retries = function_config("on-upload").async_retries
    knobs = {"qps": qps, "concurrency": concurrency, "task_seconds": (task_seconds, task_seconds)}
    results: dict[str, dict[str, Any]] = {}
    for approach in ("ours", "naive"):
        with running_stack(workdir / f"idle-{approach}", **knobs) as stack:
            settings = pipeline_settings(stack, qps=qps, concurrency=concurrency)
            naive = NaiveHandler(stack.bucket(), stack.dashscope.base_url, API_KEY, NAIVE_PARAMETERS)
            handler = _ours(settings) if approach == "ours" else naive
            overheads = []
            try:
                for i in range(repeat):
                    key = f"idle/{i:03d}.jpg"
                    started = time.time()
                    event = stack.upload(f"inbox/{key}", image, ratio=RATIO)
                    worker = threading.Thread(target=deliver, args=(partial(handler, event), retries))
                    worker.start()
                    ended = _appears(stack.bucket(), f"outpainted/{key}", started + 60 + task_seconds)
                    worker.join()
                    overheads.append(ended - started - task_seconds)
                    progress(f"idle/{approach}: upload {i + 1}/{repeat}: overhead {overheads[-1]:.2f} s")
            finally:
                naive.close()
            results[approach] = {
                "overhead_seconds": statistics.median(overheads),
                "samples": overheads,
                "queries_per_job": stack.dashscope.stats()["queries"] / repeat,
            }
    return results


def _ours(settings: Settings) -> Callable[[bytes], object]:
    return lambda event: handle_upload(event, invocation("on-upload"), settings)


def _appears(bucket: oss2.Bucket, key: str, deadline: float) -> float:
    """When ``key`` first exists (``inf`` if it never does before ``deadline``)."""
    while time.time() < deadline:
        if bucket.object_exists(key):
            return time.time()
        time.sleep(WATCH_EVERY)
    return float("inf")
