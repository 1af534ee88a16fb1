"""Cold start: fresh processes importing the handler (and running a first on_tick) vs the dependency floor."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.bench.common import (
    REPO,
    TIMER_EVENT,
    function_config,
    progress,
    settings_env,
    settings_values,
)
from tests.support.stack import running_stack

BARE = "bare import oss2, httpx, pydantic"
HANDLER = "import handler"
FOREIGN_ENV = ("OUTPAINT_", "DASHSCOPE_", "ALIBABA_CLOUD_", "BENCH_")
KIB_PER_MIB = 1024


@dataclass(frozen=True)
class ChildRun:
    """One fresh process: wall time from spawn to exit, and what it reported."""

    wall_ms: float
    report: dict[str, Any]

    @property
    def peak_rss_mib(self) -> float:
        return self.report["peak_rss_kib"] / KIB_PER_MIB


def child_env(values: dict[str, Any] | None = None, resource: str | None = None) -> dict[str, str]:
    """This process's environment without any settings of ours, plus ``values`` as a function sees them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_ENV)}
    if values is not None:
        env.update(settings_env(values))
    if resource is not None:
        env["BENCH_FC_TIMEOUT"] = str(function_config(resource).timeout_seconds)
    return env


def spawn(args: list[str], env: dict[str, str], stdin: bytes = b"") -> ChildRun:
    """Run ``python -m tests.bench.child ARGS`` from the repository root and parse its report."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "tests.bench.child", *args],
        input=stdin,
        capture_output=True,
        cwd=REPO,
        env=env,
        check=False,
        timeout=300,
    )
    wall_ms = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{done.stderr.decode(errors='replace')[-2000:]}")
    return ChildRun(wall_ms, json.loads(done.stdout.decode().strip().splitlines()[-1]))


@dataclass(frozen=True)
class ColdCase:
    """One measured variant of a fresh process."""

    name: str
    args: tuple[str, ...]
    stdin: bytes = b""
    uses_stack: bool = False


def summarize(runs: list[ChildRun]) -> dict[str, Any]:
    """Medians (and the spread of wall times) over repeated fresh processes."""
    calls = [r.report["call_ms"] for r in runs if "call_ms" in r.report]
    return {
        "runs": len(runs),
        "wall_ms": statistics.median(r.wall_ms for r in runs),
        "wall_ms_min": min(r.wall_ms for r in runs),
        "wall_ms_max": max(r.wall_ms for r in runs),
        "import_ms": statistics.median(r.report["import_ms"] for r in runs),
        "call_ms": statistics.median(calls) if calls else None,
        "peak_rss_mib": statistics.median(r.peak_rss_mib for r in runs),
    }


def run_cold(repeat: int, workdir: Path, *, qps: float, concurrency: int) -> dict[str, dict[str, Any]]:
    """Each case ``repeat`` times, interleaved (so drift hits every case alike), after one warm-up each
    that also writes the .pyc files. The first on_tick runs on an empty bucket against the emulators."""
    with running_stack(workdir / "cold", qps=qps, concurrency=concurrency) as stack:
        tick_env = child_env(settings_values(stack, qps=qps, concurrency=concurrency), "on-tick")
        bare_env = child_env()
        first = spawn(["invoke", "on_tick"], tick_env, TIMER_EVENT)
        closure = json.dumps(first.report["modules"]).encode()
        cases = [
            ColdCase(BARE, ("import-bare",)),
            ColdCase(HANDLER, ("import-handler",)),
            ColdCase("import handler + what its first call imports", ("import-closure",), closure),
            ColdCase(
                "import handler + first on_tick (empty bucket)", ("invoke", "on_tick"), TIMER_EVENT, True
            ),
        ]
        for case in cases:  # warm-up
            spawn(list(case.args), tick_env if case.uses_stack else bare_env, case.stdin)
        runs: dict[str, list[ChildRun]] = {case.name: [] for case in cases}
        for i in range(repeat):
            progress(f"cold: round {i + 1}/{repeat}")
            for case in cases:
                env = tick_env if case.uses_stack else bare_env
                runs[case.name].append(spawn(list(case.args), env, case.stdin))
    return {name: summarize(samples) for name, samples in runs.items()}
