"""Writes outside the poller: `outpaint retry` (under the poller lease) and `outpaint purge`."""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from outpaint.cli.ops_common import (
    Ops,
    OpsError,
    fail,
    format_seconds,
    format_time,
    parse_duration,
    print_json,
)
from outpaint.cli.ops_progress import Progress
from outpaint.cli.ops_views import find_jobs, jobs_of_output
from outpaint.job import MOVES, TERMINAL_STATES, JobRecord, State
from outpaint.journal import Journal
from outpaint.outcomes import Reopen

if TYPE_CHECKING:
    from outpaint.lease import Lease, LeaseStore

RETRY_HELP = "re-queue FAILED/EXPIRED jobs (holds the poller lease while it writes)"
PURGE_HELP = "delete terminal job records older than a duration (with their markers and index entries)"
# The ends the table of moves lets go back to the queue (FAILED, EXPIRED).
RETRYABLE_STATES = tuple(s for s in TERMINAL_STATES if State.QUEUED in MOVES.get(s, ()))
LEASE_BASE_SECONDS = 30.0
LEASE_SECONDS_PER_JOB = 0.5
DEFAULT_WAIT_SECONDS = 120.0


# ============================================================================= lease
@contextmanager
def holding_lease(leases: LeaseStore, seconds: float, wait: float | None) -> Iterator[Lease]:
    """The poller lease for ``seconds`` (waiting up to ``wait`` for a holder to finish), released after.

    Raises OpsError when a poller keeps it: after creation, only the lease holder writes job records.
    """
    wait_until = time.time() + wait if wait is not None else None
    with leases.hold(lambda now: seconds, wait_until=wait_until) as lease:
        if lease is None:
            raise OpsError(_lease_busy(leases, waited=wait is not None))
        yield lease


def _lease_busy(leases: LeaseStore, waited: bool) -> str:
    holder = leases.current()
    until = ""
    if holder is not None:
        until = f" (term {holder.term}, expires in {format_seconds(max(holder.expires_at - time.time(), 0))})"
    advice = "it is still held after waiting" if waited else "use --wait [SECONDS] to wait for it"
    return f"a poller holds the lease{until}; records are written only by the lease holder: {advice}"


# ============================================================================= retry
def configure_retry(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "job_id",
        nargs="?",
        metavar="ID|KEY",
        help="the job to re-queue: an id, a source key or an output key",
    )
    parser.add_argument("--failed", action="store_true", help="re-queue every FAILED job")
    parser.add_argument("--expired", action="store_true", help="re-queue every EXPIRED job")
    parser.add_argument(
        "--wait",
        type=float,
        nargs="?",
        const=DEFAULT_WAIT_SECONDS,
        metavar="SECONDS",
        help=f"wait for a running poller to release the lease (default {DEFAULT_WAIT_SECONDS:.0f}s)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def retry(ops: Ops, args: argparse.Namespace) -> int:
    if bool(args.job_id) == (args.failed or args.expired):
        return fail("retry", "give either a job ID or --failed/--expired", 2)
    store, leases = ops.store, ops.leases
    candidates = _retry_candidates(ops, args)
    requeued: list[str] = []
    if candidates:
        seconds = LEASE_BASE_SECONDS + LEASE_SECONDS_PER_JOB * len(candidates)
        journal = Journal(store)
        with holding_lease(leases, seconds, args.wait) as lease:
            for job_id in candidates:
                if not leases.holds(lease):
                    raise OpsError(f"lost the poller lease after re-queuing {len(requeued)} job(s)")
                record = store.load(job_id)  # again, now that nobody else writes
                if record is not None and record.state in RETRYABLE_STATES:
                    journal.apply(record, Reopen())
                    requeued.append(job_id)
    if args.job_id and not requeued:
        raise OpsError(f"job {args.job_id} changed state before it could be re-queued")
    if args.json:
        print_json({"requeued": requeued})
    else:
        print(f"re-queued {len(requeued)} job(s); the next tick submits them")
        for job_id in requeued:
            print(f"  {job_id}")
    return 0


def _retry_candidates(ops: Ops, args: argparse.Namespace) -> list[str]:
    store = ops.store
    if args.job_id:  # a job id, a source key (its jobs) or an output key (the job that wrote it)
        records = find_jobs(store, args.job_id) or jobs_of_output(ops, args.job_id)
        if not records:
            raise OpsError(f"no job {args.job_id}")
        retryable = [r.job_id for r in records if r.state in RETRYABLE_STATES]
        if not retryable:
            states = ", ".join(sorted({r.state.value for r in records}))
            what = f"job {records[0].job_id}" if len(records) == 1 else f"every job of {args.job_id}"
            raise OpsError(f"{what} is {states}; only FAILED or EXPIRED jobs are retried")
        return retryable
    states = [State.FAILED] * args.failed + [State.EXPIRED] * args.expired
    return [job_id for state in states for job_id in store.job_ids(state)]


# ============================================================================= purge
def configure_purge(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--older-than",
        type=parse_duration,
        required=True,
        metavar="DURATION",
        help="age since the job's last change, e.g. 30d, 12h, 1d12h",
    )
    parser.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def purge(ops: Ops, args: argparse.Namespace) -> int:
    store = ops.store
    cutoff = time.time() - args.older_than
    # A job last changed before the cutoff was created before it too: the markers' creation time
    # (no GET) narrows the candidates.
    candidates = [
        job_id for state in TERMINAL_STATES for job_id in store.job_ids(state, created_before=cutoff)
    ]
    matched: list[JobRecord] = []
    with Progress("purge (dry run)" if args.dry_run else "purge", len(candidates)) as progress:
        for job_id in candidates:
            record = store.load(job_id)
            if record is not None and record.state in TERMINAL_STATES and record.updated_at < cutoff:
                matched.append(record)
                if not args.dry_run:
                    store.delete_job(record)
            progress.advance()
    _print_purge(matched, args)
    return 0


def _print_purge(matched: list[JobRecord], args: argparse.Namespace) -> None:
    by_state = Counter(record.state.value for record in matched)
    if args.json:
        print_json(
            {
                "dry_run": args.dry_run,
                "older_than_seconds": args.older_than,
                "deleted" if not args.dry_run else "would_delete": len(matched),
                "by_state": dict(by_state),
                "jobs": [
                    {
                        "job_id": r.job_id,
                        "state": r.state.value,
                        "key": r.source_key,
                        "updated_at": r.updated_at,
                    }
                    for r in matched
                ],
            }
        )
        return
    verb = "would delete" if args.dry_run else "deleted"
    states = ", ".join(f"{state} {count}" for state, count in sorted(by_state.items()))
    age = format_seconds(args.older_than)
    detail = f" ({states})" if states else ""
    print(f"{verb} {len(matched)} job record(s) last changed more than {age} ago{detail}")
    if args.dry_run:
        for r in matched:
            print(f"  {format_time(r.updated_at)}  {r.state.value:<8} {r.job_id}  {r.source_key}")
