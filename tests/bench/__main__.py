"""``python -m tests.bench`` (``make bench``): run the benchmarks, print the table, write the JSON."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tests.bench import report
from tests.bench.burst import BurstConfig, run_burst
from tests.bench.cold import run_cold
from tests.bench.common import REPO, function_config, progress
from tests.bench.idle import run_idle
from tests.bench.memory import run_memory

BENCHMARKS = ("burst", "idle", "cold", "memory")
DEFAULT_REPEAT = {"idle": 5, "cold": 11}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument("--n", type=int, default=60, help="uploads in the burst (default 60)")
    parser.add_argument("--task-seconds", type=float, default=5.0, help="fixed task time (default 5)")
    parser.add_argument("--qps", type=float, default=2.0, help="emulator submit QPS (default 2)")
    parser.add_argument("--concurrency", type=int, default=5, help="emulator concurrent tasks (default 5)")
    parser.add_argument(
        "--tick-every", type=float, default=60.0, help="seconds between timer ticks in the burst (default 60)"
    )
    parser.add_argument(
        "--only", choices=BENCHMARKS, action="append", help="run only this benchmark (repeatable)"
    )
    parser.add_argument(
        "--repeat", type=int, help="uploads for idle (default 5) and fresh processes for cold (default 11)"
    )
    parser.add_argument(
        "--out", type=Path, default=REPO / "bench" / "results.json", help="JSON results (bench/results.json)"
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    selected = args.only or list(BENCHMARKS)
    config = BurstConfig(args.n, args.task_seconds, args.qps, args.concurrency, args.tick_every)
    limits = {"qps": args.qps, "concurrency": args.concurrency}
    results: dict[str, Any] = {
        "command": " ".join(["python -m tests.bench", *argv]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "settings": vars(args) | {"out": str(args.out), "only": selected},
        "fc": {resource: asdict(function_config(resource)) for resource in ("on-upload", "on-tick")},
    }
    rows: list[report.Row] = []
    with tempfile.TemporaryDirectory(prefix="outpaint-bench-") as tmp:
        workdir = Path(tmp)
        if "burst" in selected:
            sides = run_burst(config, workdir)
            results["burst"] = {
                "lower_bound": config.lower_bound,
                **{name: side.as_dict(config.lower_bound) for name, side in sides.items()},
            }
            rows += report.burst_rows(config, sides)
        if "idle" in selected:
            repeat = args.repeat or DEFAULT_REPEAT["idle"]
            results["idle"] = run_idle(repeat, workdir, task_seconds=args.task_seconds, **limits)
            rows += report.idle_rows(args.task_seconds, results["idle"])
        if "cold" in selected:
            results["cold"] = run_cold(args.repeat or DEFAULT_REPEAT["cold"], workdir, **limits)
            rows += report.cold_rows(results["cold"])
        if "memory" in selected:
            results["memory"] = run_memory(workdir, **limits)
            rows += report.memory_rows(results["memory"])
    results["table"] = report.as_json(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, default=str) + "\n")
    progress(f"wrote {args.out}")
    print(report.render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
