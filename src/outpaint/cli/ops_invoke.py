"""`outpaint invoke upload|tick|dead-letter EVENT.json`: run a handler locally with a synthetic FC context."""

from __future__ import annotations

import argparse
import importlib
import sys
import uuid
from pathlib import Path

from outpaint.cli.ops_common import Ops, cli_log_level, fail, print_json

HELP = (
    "run on_upload, on_tick or on_dead_letter locally on an event file (e.g. events/oss-put.json); "
    "prints the result"
)
# A submit is only started with its connect + read timeout (about 27 s by default) left before the
# function's end: with a much shorter timeout the handler queues jobs but submits none.
DEFAULT_TIMEOUT_SECONDS = 60.0
HANDLERS = {"upload": "handle_upload", "tick": "handle_tick", "dead-letter": "handle_dead_letter"}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "handler", choices=tuple(HANDLERS), help="on_upload, on_tick or on_dead_letter (FC's failure payload)"
    )
    parser.add_argument("event", metavar="EVENT.json", help="the event payload file, or - for stdin")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help="the function timeout (default %(default)g: a submit is only started with its connect + read "
        "timeout, about 27 s, left, so a much shorter timeout queues jobs without submitting them)",
    )


def invoke(ops: Ops, args: argparse.Namespace) -> int:
    """Exit 1 when the handler answered with an error (a malformed event), else 0."""
    from outpaint.runtime import Invocation

    try:
        payload = sys.stdin.buffer.read() if args.event == "-" else Path(args.event).read_bytes()
    except OSError as exc:
        return fail("invoke", f"cannot read the event: {exc.strerror}: {args.event}", 2)
    invocation = Invocation(
        request_id=f"cli-{uuid.uuid4().hex}",
        function_name=f"on_{args.handler.replace('-', '_')}",
        timeout_seconds=args.timeout,
        credentials=ops.credentials,
    )
    handler = getattr(importlib.import_module("outpaint.app"), HANDLERS[args.handler])
    # The handler applies its settings' log level: give it the CLI's (warnings, or the settings' with -v).
    settings = ops.settings.model_copy(update={"log_level": cli_log_level(ops.settings, args.verbose)})
    result = handler(payload, invocation, settings)
    print_json(result)
    return 1 if "error" in result else 0
