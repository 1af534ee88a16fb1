"""Operating a deployment: `outpaint status | jobs show | retry | backfill | invoke | purge`.

Every command reads the same OUTPAINT_* settings as the functions (``load_settings``), so it works
against the local stack and a real bucket alike. Exit status: 0 ok, 1 operational failure (nothing
found, lease held, OSS or DashScope error), 2 bad usage or settings.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from outpaint import log
from outpaint.cli import ops_backfill, ops_invoke, ops_maintenance, ops_views
from outpaint.cli.ops_common import Ops, cli_log_level, fail
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
}


def build_parser(command: str) -> argparse.ArgumentParser:
    description, configure, _run = COMMANDS[command]
    parser = argparse.ArgumentParser(prog=f"outpaint {command}", description=description)
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show the pipeline's INFO log lines on stderr"
    )
    configure(parser)
    return parser


def main(command: str, argv: Sequence[str]) -> int:
    """Run one ops command; 0 ok, 1 operational failure, 2 bad usage or settings."""
    from outpaint.config import load_settings

    try:
        args = build_parser(command).parse_args(list(argv))
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2), already printed
        return int(exc.code or 0)
    try:
        settings = load_settings()
        log.configure(cli_log_level(settings, args.verbose))
        return COMMANDS[command][2](Ops(settings), args)
    except ConfigError as exc:
        return fail(command, exc.message, 2)
    except OutpaintError as exc:
        return fail(command, exc.message, 1)
    except KeyboardInterrupt:
        return fail(command, "interrupted", 1)
