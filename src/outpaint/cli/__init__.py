"""The `outpaint` command. Each command group lives in its own module and registers its subcommands.

Modules are imported only when their command runs, so `outpaint --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from outpaint import __version__

# command name -> (module under outpaint.cli, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "plan": ("plan", "dry run: print the variants an image + metadata would produce"),
    "local": ("local", "local up: run the emulated OSS + DashScope + FC stack (no cloud account)"),
    "demo": ("demo", "the end-to-end demo on the local stack (`make run`): sample images in, gallery out"),
    "status": ("ops", "job counts by state, in-flight vs quota, recent failures"),
    "jobs": ("ops", "`jobs show ID|KEY`: a job's tasks, attempts and timings; `jobs list`: jobs by state"),
    "retry": ("ops", "re-queue FAILED/EXPIRED jobs (under the poller lease)"),
    "backfill": ("ops", "enqueue existing objects through the normal intake (resumable)"),
    "invoke": ("ops", "run on_upload/on_tick/on_dead_letter locally on an event file"),
    "events": ("ops", "`events put KEY`: the FC upload event of an existing object, for invoke"),
    "purge": ("ops", "delete terminal job records older than a duration"),
}


# Top-level modules of the `local` extra (emulators, local FC runner): a plain `pip install outpaint`
# lacks them, and `outpaint local up` / `outpaint demo` say what to install instead of a traceback.
LOCAL_EXTRA_MODULES = frozenset({"uvicorn", "starlette", "yaml", "werkzeug", "functions_framework"})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="outpaint", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"outpaint {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_module, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `outpaint` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS:
        build_parser().parse_args(args or ["--help"])
        return 2
    try:
        module = importlib.import_module(f"outpaint.cli.{COMMANDS[args[0]][0]}")
        return int(module.main(args[0], args[1:]) or 0)
    except ModuleNotFoundError as exc:
        if exc.name not in LOCAL_EXTRA_MODULES:
            raise
        print(
            f"outpaint {args[0]}: needs the local stack's packages (module {exc.name!r} is missing): "
            "pip install 'outpaint[local]'",
            file=sys.stderr,
        )
        return 2
    except BrokenPipeError:
        # The reader went away (`outpaint status | head`): stop quietly, and keep the interpreter's own
        # final flush from complaining about the closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
