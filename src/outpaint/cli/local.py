"""`outpaint local up`: the OSS emulator, the DashScope emulator and the local FC runner, together.

Serves until Ctrl-C or SIGTERM. Everything persists under ``--data-dir`` (the bucket with the job
records, the FC runner's pending invocations, the DashScope emulator's tasks), so a stop or a crash
continues at the next start. See docs/local-stack.md.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from outpaint.local.stack import (
    DEFAULT_DASHSCOPE_PORT,
    DEFAULT_DATA_DIR,
    DEFAULT_OSS_PORT,
    LOCAL_ACCESS_KEY_ID,
    LOCAL_ACCESS_KEY_SECRET,
    LocalStack,
    StackConfig,
)

REAL_DASHSCOPE_URL = "https://dashscope.aliyuncs.com/api/v1"
PRICE_CNY = 0.18  # per generated image, the documented price of image-out-painting


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared by `local up` and `demo`."""
    add = parser.add_argument
    add(
        "--dashscope",
        choices=("emulator", "real"),
        default="emulator",
        help="the DashScope emulator (default), or the real service: needs $DASHSCOPE_API_KEY, "
        "and every task is paid (see docs/local-stack.md)",
    )
    add(
        "--dashscope-url",
        metavar="URL",
        help=f"with --dashscope real: the API base URL (default {REAL_DASHSCOPE_URL})",
    )
    add(
        "--s-yaml", type=Path, help="the Serverless Devs file to run (default: ./s.yaml, else the checkout's)"
    )
    add(
        "--runtime",
        choices=("inprocess", "custom"),
        default="inprocess",
        help="call the handlers in this process, or through `python -m outpaint.runtime` over HTTP",
    )
    add(
        "--tick-every",
        type=float,
        metavar="SECONDS",
        help="fire timers every SECONDS instead of their cron (default %(default)s; None: s.yaml's cron)",
    )
    add(
        "--task-seconds",
        type=parse_range,
        default="2-5",
        metavar="MIN-MAX",
        help="emulated task duration (default %(default)s)",
    )
    add(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a function environment variable (repeatable), e.g. OUTPAINT_DEFAULT_RATIO=16:9",
    )
    add("--verbose", action="store_true", help="also show the emulators' routine request lines")


def parse_env(pairs: Sequence[str], flag: str = "--env") -> dict[str, str]:
    """``["A=1", "B=x"]`` → ``{"A": "1", "B": "x"}``; a pair without ``=`` is an error."""
    values = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"{flag} {pair!r}: expected NAME=VALUE")
        values[name] = value
    return values


def parse_range(text: str) -> tuple[float, float]:
    """``"2-5"`` → ``(2.0, 5.0)``, ``"3"`` → ``(3.0, 3.0)`` (argparse ``type``: a usage error otherwise)."""
    low, _, high = text.partition("-")
    try:
        values = float(low), float(high or low)
    except ValueError:
        values = (-1.0, -1.0)
    if not 0 <= values[0] <= values[1]:
        raise argparse.ArgumentTypeError(
            f"expected MIN-MAX seconds with 0 <= MIN <= MAX, e.g. 2-5; got {text!r}"
        )
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="outpaint local up", description=__doc__.splitlines()[0])
    add = parser.add_argument
    add(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="where the bucket, pending invocations and tasks live (default %(default)s)",
    )
    add("--host", default="127.0.0.1", help="address the emulators bind (default %(default)s)")
    add("--oss-port", type=int, default=DEFAULT_OSS_PORT, help="OSS emulator port (default %(default)s)")
    add(
        "--dashscope-port",
        type=int,
        default=DEFAULT_DASHSCOPE_PORT,
        help="DashScope emulator port (default %(default)s)",
    )
    add("--bucket", default="outpaint-local", help="the bucket (default %(default)s)")
    add(
        "--public-endpoint",
        metavar="URL",
        help="with --dashscope real: an internet-reachable address of the OSS emulator (a tunnel) for "
        "signed input URLs; without it inputs go through DashScope's temporary storage",
    )
    add("--yes", action="store_true", help="with --dashscope real: accept that every upload is a paid task")
    add_stack_arguments(parser)
    return parser


def config_from(args: argparse.Namespace, **overrides: object) -> StackConfig:
    """A StackConfig from the shared flags (plus ``local up``'s own when present)."""
    values: dict[str, object] = {
        "s_yaml": args.s_yaml,
        "runtime": args.runtime,
        "tick_every": args.tick_every,
        "task_seconds": args.task_seconds,
        "extra_env": parse_env(args.env),
        "verbose": args.verbose,
        "dashscope_url": real_dashscope_url(args),
    }
    for name in ("data_dir", "host", "oss_port", "dashscope_port", "bucket", "public_endpoint"):
        if hasattr(args, name):
            values[name] = getattr(args, name)
    values.update(overrides)
    return StackConfig(**values)  # type: ignore[arg-type]


def real_dashscope_url(args: argparse.Namespace) -> str | None:
    """The real service's base URL when the flags ask for it (``--dashscope-url`` alone implies real)."""
    if args.dashscope == "real" or args.dashscope_url:
        return args.dashscope_url or REAL_DASHSCOPE_URL
    return None


def banner(stack: LocalStack) -> str:
    """Endpoints, bucket, credentials (the stack's own throwaway ones), and how to use them."""
    config = stack.config
    endpoint, bucket, prefix = stack.oss_endpoint, config.bucket, stack.settings().input_prefix
    handover = "signed URLs of --public-endpoint" if config.public_endpoint else "DashScope temporary storage"
    dashscope = (
        f"{stack.dashscope_base_url}  (REAL service, paid per image; key from $DASHSCOPE_API_KEY; inputs "
        f"via {handover})"
        if config.dashscope_url
        else f"{stack.dashscope_base_url}  (emulator: stand-in pictures, API key {stack.api_key})"
    )
    timers = f"every {config.tick_every:g}s (--tick-every)" if config.tick_every else "on s.yaml's cron"
    functions = ", ".join(f"{f.resource_id} ({f.handler})" for f in stack.functions.values())
    return f"""\
outpaint local stack is up
  OSS endpoint   {endpoint}   region {config.region}   bucket {bucket}   data in {config.data_dir}/
  DashScope      {dashscope}
  functions      {functions}; runtime {config.runtime}; timers {timers}
  credentials    AccessKeyId {LOCAL_ACCESS_KEY_ID}  AccessKeySecret {LOCAL_ACCESS_KEY_SECRET}  (local only)

Drop an image under {prefix} with outpaint-* metadata; results appear under {stack.settings().output_prefix}

  export OSS_ENDPOINT={endpoint} OSS_BUCKET={bucket} OSS_REGION={config.region}
  export OSS_ACCESS_KEY_ID={LOCAL_ACCESS_KEY_ID} OSS_ACCESS_KEY_SECRET={LOCAL_ACCESS_KEY_SECRET}

  import oss2
  auth = oss2.Auth("{LOCAL_ACCESS_KEY_ID}", "{LOCAL_ACCESS_KEY_SECRET}")
  bucket = oss2.Bucket(auth, "{endpoint}", "{bucket}")
  bucket.put_object_from_file("{prefix}photo.jpg", "photo.jpg",
                              headers={{"x-oss-meta-outpaint-ratio": "16:9"}})

The ops CLI (outpaint status, jobs show, backfill, retry, invoke, purge) against this stack:

{ops_exports(stack)}

Ctrl-C stops the stack; pending jobs continue after the next start.
"""


def ops_exports(stack: LocalStack) -> str:
    """``export`` lines of the OUTPAINT_* settings the ops CLI needs to reach this stack, ready to paste.

    A real DashScope key (``--dashscope-url``) is never printed: the shell that has it keeps it."""
    config = stack.config
    environment = stack.function_environment(next(iter(stack.functions.values())))
    names = [
        "OUTPAINT_BUCKET",
        "OUTPAINT_REGION",
        "OUTPAINT_OSS_ENDPOINT",
        "OUTPAINT_OSS_PUBLIC_ENDPOINT",
        "OUTPAINT_DASHSCOPE_BASE_URL",
        "OUTPAINT_ALLOWED_RESULT_HOSTS",
    ]
    values = {name: environment[name] for name in names if environment.get(name)}
    values["OUTPAINT_ACCESS_KEY_ID"] = LOCAL_ACCESS_KEY_ID
    values["OUTPAINT_ACCESS_KEY_SECRET"] = LOCAL_ACCESS_KEY_SECRET
    if not config.dashscope_url:
        values["DASHSCOPE_API_KEY"] = stack.api_key
    # --env overrides (prefixes, ...) apply to the ops CLI too.
    values.update({k: v for k, v in config.extra_env.items() if k.startswith("OUTPAINT_")})
    return "\n".join(f"  export {name}={shlex.quote(value)}" for name, value in values.items())


def wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass


def up(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    config = config_from(args)
    if config.dashscope_url and not args.yes:
        print(
            "outpaint local up: against the real DashScope every upload is one paid task per variant "
            f"({PRICE_CNY:.2f} CNY per image); nothing was started: pass --yes to accept",
            file=sys.stderr,
        )
        return 2
    stack = LocalStack(config)
    stack.start()
    try:
        print(banner(stack), flush=True)
        wait_for_signal()
        print("stopping the local stack...", flush=True)
    finally:
        stack.stop()
    print("stopped", flush=True)
    return 0


def main(command: str, argv: Sequence[str]) -> int:
    """`outpaint local up [flags]`."""
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: outpaint local up [flags]   (outpaint local up --help for the flags)")
        return 0 if argv else 2
    if argv[0] != "up":
        print(f"outpaint local: unknown subcommand {argv[0]!r}; expected `up`", file=sys.stderr)
        return 2
    from outpaint.errors import ConfigError
    from outpaint.local.invokers import RunnerError
    from outpaint.local.slsyaml import SlsYamlError
    from outpaint.local.stack import StackError

    try:
        return up(argv[1:])
    except (StackError, SlsYamlError, RunnerError, ConfigError) as exc:
        print(f"outpaint local up: {exc}", file=sys.stderr)
        return 1
