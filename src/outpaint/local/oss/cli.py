"""Command line: ``python -m outpaint.local.oss [options]``."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
from collections.abc import Sequence
from typing import Any

from .emulator import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    DEFAULT_ACCOUNT_ID,
    DEFAULT_REGION,
    OssEmulator,
)
from .notify import parse_event_patterns

DEFAULT_PORT = 9000
DEFAULT_DATA_DIR = ".outpaint-local/oss"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m outpaint.local.oss",
        description="Local Alibaba Cloud OSS emulator with FC-style event notifications.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port to listen on (0 picks a free one)"
    )
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="where buckets and objects are stored")
    parser.add_argument(
        "--bucket", action="append", default=[], metavar="NAME", help="bucket to create at start (repeatable)"
    )
    parser.add_argument(
        "--public-read",
        action="append",
        default=[],
        metavar="BUCKET",
        help="bucket to create with ACL public-read, readable without signature (repeatable)",
    )
    parser.add_argument("--access-key-id", default=DEFAULT_ACCESS_KEY_ID, help="the accepted AccessKey id")
    parser.add_argument("--access-key-secret", default=DEFAULT_ACCESS_KEY_SECRET, help="its secret")
    parser.add_argument(
        "--sts",
        action="append",
        default=[],
        metavar="AK:SECRET:TOKEN",
        help="also accept these STS credentials; requests must carry the token (repeatable)",
    )
    parser.add_argument(
        "--region", default=DEFAULT_REGION, help="region id: V4 signing scope and event region"
    )
    parser.add_argument(
        "--account-id", default=DEFAULT_ACCOUNT_ID, help="owner account id in events and listings"
    )
    parser.add_argument(
        "--domain",
        action="append",
        default=None,
        metavar="HOST",
        help="endpoint host name whose sub-domains address buckets virtual-host style "
        "(repeatable; default: localhost)",
    )
    parser.add_argument(
        "--no-auth", action="store_true", help="accept every request without checking signatures"
    )
    parser.add_argument(
        "--notify",
        action="append",
        default=[],
        metavar="URL[,bucket=B][,prefix=P][,suffix=S][,events=E1|E2]",
        help="POST events to URL, filtered like an OSS trigger; events default to oss:ObjectCreated:* "
        "(repeatable)",
    )
    parser.add_argument(
        "--notify-retry-window",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="how long an event is retried while its subscriber is unreachable",
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser


def parse_notify(spec: str) -> dict[str, Any]:
    """``URL[,key=value...]`` into subscribe() arguments."""
    url, *options = spec.split(",")
    arguments: dict[str, Any] = {"target": url}
    for option in options:
        name, sep, value = option.partition("=")
        if not sep or name not in ("bucket", "prefix", "suffix", "events"):
            raise argparse.ArgumentTypeError(f"bad --notify option {option!r}")
        arguments[name] = value.split("|") if name == "events" else value
    try:
        parse_event_patterns(arguments.get("events", ["oss:ObjectCreated:*"]))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return arguments


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        subscriptions = [parse_notify(spec) for spec in args.notify]
        sts = [tuple(spec.split(":", 2)) for spec in args.sts]
        if any(len(entry) != 3 for entry in sts):
            raise argparse.ArgumentTypeError("--sts takes AK:SECRET:TOKEN")
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    emulator = OssEmulator(
        data_dir=args.data_dir,
        buckets=args.bucket,
        access_key_id=args.access_key_id,
        access_key_secret=args.access_key_secret,
        host=args.host,
        port=args.port,
        region=args.region,
        sts_credentials=sts,
        public_read=args.public_read,
        account_id=args.account_id,
        auth=not args.no_auth,
        domains=args.domain or ("localhost",),
        notify_retry_window=args.notify_retry_window,
    )
    for subscription in subscriptions:
        emulator.subscribe(**subscription)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal: make that a clean exit.
    signal.signal(signal.SIGTERM, _exit)
    with contextlib.suppress(KeyboardInterrupt):
        emulator.run()
    return 0


def _exit(signum: int, frame: object) -> None:
    raise SystemExit(0)
