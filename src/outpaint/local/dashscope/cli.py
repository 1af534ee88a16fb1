"""Command line: ``python -m outpaint.local.dashscope [flags]``."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from .app import create_app
from .settings import Settings, parse_range
from .state import EmulatorState

DEFAULT_PORT = 8022

EPILOG = """\
choices where DashScope's docs are silent (details: docs/dashscope-emulator.md):
  over-concurrency  queue (default): accepted, PENDING until a slot frees;
                    reject: 429 Throttling.AllocationQuota
  output_ratio a:b  if w*b >= h*a: W=w, H=ceil(w*b/a); else H=h, W=ceil(h*a/b); original centred
  scales            W=floor(w*x_scale+0.5), H=floor(h*y_scale+0.5), centred; offsets: W=w+left+right
  limit_image_size  true: output aspect beyond 1:4..4:1 fails InvalidParameter; JPEG quality stepped to <=5 MB
  output            PNG if the input has alpha, else JPEG q90; >10 MiB or >8192*8192 px: DataInspection
  failures          input download/decode/size problems fail the task at once; InternalError.Algo at task end
  rotation-only     angle 90/180/270 with no expansion: 400 InvalidParameter at submit
  missing header    no X-DashScope-Async: 403 AccessDenied; unknown model: 404 ModelNotFound
  rate limits       token buckets of ceil(qps) tokens; cancel counts against --query-qps
  retention         counted from submit; then UNKNOWN (HTTP 200), result URL 404
  timestamps        UTC+8; best_quality doubles the task time; no --api-key: any key accepted
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (defaults come from ``Settings``)."""
    d = Settings()
    parser = argparse.ArgumentParser(
        prog="python -m outpaint.local.dashscope",
        description="Local emulator of DashScope's image-out-painting async API.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="listen address (default %(default)s)")
    add("--port", type=int, default=DEFAULT_PORT, help="listen port, 0 for a free one (default %(default)s)")
    add(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help="accepted key (repeatable; none: any)",
    )
    add("--qps", type=float, default=d.qps, help="submit requests per second (default %(default)s)")
    add("--concurrency", type=int, default=d.concurrency, help="running tasks at once (default %(default)s)")
    add(
        "--query-qps",
        type=float,
        default=d.query_qps,
        help="query/cancel requests per second (default %(default)s)",
    )
    add(
        "--task-seconds",
        type=parse_range,
        default=d.task_seconds,
        help="running time: S or MIN-MAX (default 8-15)",
    )
    add("--fail-rate", type=float, default=d.fail_rate, help="fraction of tasks failing InternalError.Algo")
    add("--seed", type=int, default=None, help="seed for task timing/failure draws (default: random)")
    add(
        "--retention-seconds", type=float, default=d.retention_seconds, help="task and result lifetime (24 h)"
    )
    add("--result-url-seconds", type=float, default=None, help="result URL lifetime (default: retention)")
    add(
        "--over-concurrency",
        choices=("queue", "reject"),
        default=d.over_concurrency,
        help="past --concurrency",
    )
    add("--throttle-rate", type=float, default=d.throttle_rate, help="fraction of valid calls answered 429")
    add("--error-rate", type=float, default=d.error_rate, help="fraction of valid calls answered 500/503")
    add("--latency", type=parse_range, default=d.latency, help="added response delay: S or MIN-MAX seconds")
    add("--download-timeout", type=float, default=d.download_timeout, help="input download timeout, seconds")
    add(
        "--max-download-bytes",
        type=int,
        default=d.max_download_bytes,
        help="input size cap (default 10000000: the documented 10 MB, read strictly)",
    )
    for name, meaning in (
        ("moderation-input-rate", "submits refused 400 InvalidParameter.ImageContent"),
        ("moderation-output-rate", "tasks FAILED DataInspectionFailed (the generated image)"),
        ("late-failure-rate", "tasks accepted, then FAILED InvalidParameter"),
        ("missing-status-rate", "query answers without output.task_status"),
    ):
        add(f"--{name}", type=float, default=0.0, help=f"fraction of {meaning}")
    add(
        "--result-origin",
        default=None,
        help="origin of result URLs, e.g. http://localhost:8022 (default: as asked)",
    )
    add(
        "--temporary-storage-seconds",
        type=float,
        default=d.temporary_storage_seconds,
        help="lifetime of an uploaded temporary file (oss:// URL; default 48 h)",
    )
    add(
        "--data-dir",
        type=Path,
        default=None,
        help="keep tasks and results here across restarts (default: in memory only)",
    )
    add("--log-level", default="INFO", help="logging level (default %(default)s)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Parse flags and serve until interrupted."""
    args = vars(build_parser().parse_args(argv))
    host, port, level = args.pop("host"), args.pop("port"), args.pop("log_level")
    data_dir = args.pop("data_dir")
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its request lines carry signed input URLs
    try:
        state = EmulatorState(Settings(**args), data_dir)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    shown = f"[{host}]" if ":" in host else host
    logging.getLogger("outpaint.local.dashscope").info(
        "DashScope emulator on http://%s:%d/api/v1 (seed %d)", shown, port, state.seed
    )
    try:
        uvicorn.run(create_app(state), host=host, port=port, log_level="warning", access_log=False)
    finally:
        state.close()
