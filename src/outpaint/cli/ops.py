"""Operating a deployment: `outpaint status | jobs | retry | backfill | invoke | events | purge`.

Every command reads the same OUTPAINT_* settings as the functions (``load_settings``), so it works
against the local stack and a real bucket alike. Exit status: 0 ok, 1 operational failure (nothing
found, lease held, OSS or DashScope error), 2 bad usage or settings.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from outpaint import log
from outpaint.cli import ops_backfill, ops_events, ops_invoke, ops_maintenance, ops_views
from outpaint.cli.ops_common import Ops, UsageError, cli_log_level, fail
from outpaint.errors import ConfigError, OutpaintError

Configure = Callable[[argparse.ArgumentParser], None]
Run = Callable[[Ops, argparse.Namespace], int]

# command -> (description, add its arguments, run it)
COMMANDS: dict[str, tuple[str, Configure, Run]] = {
    "status": (ops_views.STATUS_HELP, ops_views.configure_status, ops_views.status),
    "jobs": (ops_views.JOBS_HELP, ops_views.configure_jobs, ops_views.jobs),
    "retry": (ops_maintenance.RETRY_HELP, ops_maintenance.configure_retry, ops_maintenance.retry),
    "purge": (ops_maintenance.PURGE_HELP, ops_maintenance.configure_purge, ops_maintenance.purge),
    "backfill": (ops_backfill.HELP, ops_backfill.configure, ops_backfill.backfill),
    "invoke": (ops_invoke.HELP, ops_invoke.configure, ops_invoke.invoke),
    "events": (ops_events.HELP, ops_events.configure, ops_events.events),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        raise UsageError(message)


def build_parser(command: str) -> argparse.ArgumentParser:
    description, configure, _run = COMMANDS[command]
    parser = _Parser(prog=f"outpaint {command}", description=description)
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show the pipeline's INFO log lines on stderr"
    )
    configure(parser)
    return parser


def main(command: str, argv: Sequence[str]) -> int:
    """Run one ops command; 0 ok, 1 operational failure, 2 bad usage or settings."""
    from outpaint.config import load_settings

    as_json = "--json" in argv  # a --json caller gets JSON on errors too, usage errors included
    try:
        args = build_parser(command).parse_args(list(argv))
        settings = load_settings()
        log.configure(cli_log_level(settings, args.verbose))
        return COMMANDS[command][2](Ops(settings), args)
    except SystemExit as exc:  # argparse's --help
        return int(exc.code or 0)
    except UsageError as exc:
        return fail(command, str(exc), 2, code="usage", as_json=as_json)
    except OutpaintError as exc:  # settings: 2; anything met while running: 1
        status = 2 if isinstance(exc, ConfigError) else 1
        return fail(command, exc.message, status, code=exc.code, as_json=as_json)
    except KeyboardInterrupt:
        return fail(command, "interrupted", 1, code="interrupted", as_json=as_json)
