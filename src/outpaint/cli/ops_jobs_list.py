"""`outpaint jobs list [--state S] [--prefix P] [--since T]`: jobs newest first, from the state markers.

The markers' names carry each job's creation time, so ``--state`` and ``--since`` cost one LIST per state
and no GET; only the jobs shown (and, with ``--prefix``, the ones looked at) are read.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from outpaint.cli.ops_common import Ops, format_time, parse_duration, positive_int, print_json
from outpaint.job import State
from outpaint.naming import parse_marker

DEFAULT_LIMIT = 50


def _state(text: str) -> State:
    try:
        return State(text.strip().upper())
    except ValueError:
        names = ", ".join(state.value for state in State)
        raise argparse.ArgumentTypeError(f"invalid choice {text!r} (choose from {names})") from None


def configure(sub: Any) -> None:
    """Add the ``list`` action to the ``jobs`` command's subparsers."""
    listing = sub.add_parser("list", help="jobs newest first, by state, source prefix and age")
    listing.add_argument(
        "--state", type=_state, action="append", metavar="S", help="only this state (repeatable; any case)"
    )
    listing.add_argument("--prefix", default="", metavar="P", help="only source keys starting with P")
    listing.add_argument(
        "--since", type=parse_duration, metavar="T", help="only jobs created in the last T (30m, 12h, 7d)"
    )
    listing.add_argument(
        "--limit", type=positive_int, default=DEFAULT_LIMIT, help="at most N jobs (default %(default)s)"
    )
    listing.add_argument("--json", action="store_true", help="print JSON instead of text")


def list_jobs(ops: Ops, args: argparse.Namespace) -> int:
    store = ops.store
    since_ms = (time.time() - args.since) * 1000 if args.since is not None else None
    candidates = []  # (created ms, job id), from the marker names
    for state in args.state or list(State):
        for key in store.storage.list_keys(store.layout.marker_prefix(state)):
            created_ms, job_id = parse_marker(key)
            if created_ms is not None and (since_ms is None or created_ms >= since_ms):
                candidates.append((created_ms, job_id))
    candidates.sort(reverse=True)
    shown: list[dict[str, Any]] = []
    for _created, job_id in candidates:
        if len(shown) == args.limit:
            break
        record = store.load(job_id)
        if record is None or not record.source_key.startswith(args.prefix):
            continue
        shown.append(
            {
                "job_id": record.job_id,
                "state": record.state.value,
                "key": record.source_key,
                "variant": record.variant_name,
                "created_at": record.created_at,
                "updated_at": record.updated_at,
                "code": record.error_code,
                "output_key": record.output_key,
            }
        )
    if args.json:
        print_json(shown)
        return 0
    for item in shown:
        detail = item["code"] or item["output_key"] or ""
        print(
            f"{format_time(item['created_at'])}  {item['state']:<10} {item['key']} [{item['variant']}]"
            f"  {item['job_id']}{'  ' + detail if detail else ''}"
        )
    more = " (more match: raise --limit)" if len(shown) == args.limit else ""
    print(f"{len(shown)} job(s){more}")
    return 0
