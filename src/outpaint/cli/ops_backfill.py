"""`outpaint backfill PREFIX`: existing objects through the same idempotent intake and quota as uploads.

Each object is offered to intake exactly as an upload event's object is (``Pipeline.offer``: one HEAD,
the probe, the plan), so a job id is the one a real upload event would produce (duplicates end there).
Backfill never submits: ``--drain`` runs the ordinary poller until no job is active. A checkpoint under
the state prefix remembers the last key processed, so an interrupted run continues where it stopped.

``--dead-letters`` replays the upload events FC gave up on (kept by the dead-letter function) through the
same intake as the upload function, and discards each one once its objects went through.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from outpaint.cli.ops_common import Ops, OpsError, UsageError, fail, format_seconds, positive_int, print_json
from outpaint.cli.ops_progress import Progress
from outpaint.deadletters import summary
from outpaint.errors import EventError
from outpaint.job import ACTIVE_STATES, Trigger

if TYPE_CHECKING:
    from outpaint.app import Pipeline
    from outpaint.checkpoints import Checkpoints
    from outpaint.poller import PollReport
    from outpaint.store import JobStore

HELP = (
    "enqueue existing objects under PREFIX, or replay the dead letters, through the normal intake "
    "(resumable; --drain finishes them)"
)
CHECKPOINT_EVERY = 10
DRAIN_REFRESH_SECONDS = 2.0
DRAIN_IDLE_SECONDS = 1.0  # pause after a poller run that moved nothing (no busy loop)
DRAIN_STALL_SECONDS = 60.0  # give up after this long without progress (e.g. a DashScope key problem)
POLL_COUNTERS = ("submitted", "throttled", "queries", "done", "failed", "requeued")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "prefix", metavar="PREFIX", nargs="?", help="object key prefix, inside the input prefix"
    )
    parser.add_argument(
        "--dead-letters",
        action="store_true",
        help="instead of PREFIX: replay the upload events FC gave up on, clearing each one replayed",
    )
    parser.add_argument("--dry-run", action="store_true", help="list what would be enqueued, change nothing")
    parser.add_argument("--restart", action="store_true", help="ignore the checkpoint of an earlier run")
    parser.add_argument(
        "--limit", type=positive_int, metavar="N", help="process at most N (>= 1) objects in this run"
    )
    parser.add_argument("--drain", action="store_true", help="then run the poller until no job is active")
    parser.add_argument("--json", action="store_true", help="print a JSON summary instead of text")


def backfill(ops: Ops, args: argparse.Namespace) -> int:
    if (args.prefix is None) == (not args.dead_letters):
        raise UsageError("give a PREFIX or --dead-letters (one of the two)")
    if args.dead_letters:
        return _dead_letters(ops, args)
    prefix = scan_prefix(args.prefix, ops.settings.input_prefix)
    # Built first, so a missing DashScope key fails before anything is listed.
    pipeline = None if args.dry_run else ops.pipeline
    store, checkpoints = ops.store, ops.checkpoints
    checkpoint = None if args.restart else checkpoints.load(prefix)
    start_after = checkpoint["last_key"] if checkpoint else ""
    keys = [key for key in store.storage.list_keys(prefix, start_after) if not key.endswith("/")]
    batch = keys if args.limit is None else keys[: args.limit]
    if pipeline is None:
        return _dry_run(store, batch, start_after, args.json)
    summary: dict[str, Any] = {"prefix": prefix, "resumed_after": start_after or None, "listed": len(keys)}
    summary.update(
        _enqueue(
            pipeline, checkpoints, prefix, batch, complete=len(batch) == len(keys), checkpoint=checkpoint
        )
    )
    return _finish(pipeline, summary, args, _print_summary)


def _finish(pipeline: Pipeline, summary: dict[str, Any], args: argparse.Namespace, show: Any) -> int:
    """Drain when asked, print the summary, and exit 1 when the drain stalled."""
    if args.drain:
        summary["drain"] = drain(pipeline)
    if args.json:
        print_json(summary)
    else:
        show(summary)
        _print_drain(summary.get("drain"))
    if args.drain and summary["drain"]["stalled"]:
        return fail("backfill", stall_message(summary["drain"]), 1)
    return 0


def _dead_letters(ops: Ops, args: argparse.Namespace) -> int:
    """Replay the dead letters (at most ``--limit``) through intake; discard each one replayed."""
    pipeline = None if args.dry_run else ops.pipeline
    letters = ops.dead_letters
    keys = letters.keys()
    entries = letters.entries(keys if args.limit is None else keys[: args.limit])
    if pipeline is None:
        found = [
            {"key": key, **(summary(letter) if letter else {"reason": "unreadable"})}
            for key, letter in entries
        ]
        if args.json:
            print_json({"dry_run": True, "dead_letters": found})
        else:
            for item in found:
                keys_text = ", ".join(item.get("keys") or []) or "-"
                print(f"would replay {item['key']}: {keys_text}  ({item['reason']})")
            print(f"{len(found)} dead letter(s)")
        return 0
    actions: Counter[str] = Counter()
    kept: list[dict[str, str]] = []
    with Progress("dead letters", len(entries)) as progress:
        for key, letter in entries:
            try:
                if letter is None:
                    raise EventError("the dead letter cannot be read")
                records = letter.invocation.records()
            except EventError as exc:
                kept.append({"key": key, "why": exc.message})
                continue
            actions.update(outcome.action for outcome in pipeline.intake(records))
            letters.discard(key)  # only once intake took every record: a crash before keeps it
            progress.advance(note=f"{actions['created']} created")
    replayed = len(entries) - len(kept)
    result = {"dead_letters": len(keys), "replayed": replayed, "actions": dict(actions), "kept": kept}
    return _finish(pipeline, result, args, _print_replay)


def _print_replay(result: dict[str, Any]) -> None:
    print(f"dead letters: {result['replayed']} of {result['dead_letters']} replayed and cleared")
    if result["actions"]:
        print("  " + ", ".join(f"{action} {count}" for action, count in sorted(result["actions"].items())))
    for item in result["kept"]:
        print(f"  kept {item['key']}: {item['why']} (look at it, then delete it by hand)")


def scan_prefix(prefix: str, input_prefix: str) -> str:
    """The prefix to list: PREFIX itself inside the input prefix, or the input prefix when PREFIX
    contains it (``""`` means "everything"); anything else would only produce ignored events."""
    if prefix.startswith(input_prefix):
        return prefix
    if input_prefix.startswith(prefix):
        return input_prefix
    raise OpsError(
        f"{prefix!r} is outside the input prefix {input_prefix!r}: intake would ignore every object"
    )


def intake_object(pipeline: Pipeline, key: str) -> str:
    """Offer one existing object to intake; the action it took (created, duplicate, ..., or gone)."""
    outcome = pipeline.offer(key, Trigger(name="backfill", request_id=f"backfill-{int(time.time() * 1000)}"))
    return "gone" if outcome.reason == "object.gone" else outcome.action


def _enqueue(
    pipeline: Pipeline,
    checkpoints: Checkpoints,
    prefix: str,
    keys: list[str],
    *,
    complete: bool,
    checkpoint: dict[str, Any] | None,
) -> dict[str, Any]:
    """Intake ``keys`` in order, checkpointing every few; clear the checkpoint once the listing is done."""
    actions: Counter[str] = Counter()
    earlier = int(checkpoint["processed"]) if checkpoint else 0
    last_key = checkpoint["last_key"] if checkpoint else ""
    finished = False
    try:
        with Progress("backfill", len(keys)) as progress:
            for key in keys:
                actions[intake_object(pipeline, key)] += 1
                last_key = key
                if actions.total() % CHECKPOINT_EVERY == 0:
                    _save(checkpoints, prefix, last_key, earlier + actions.total())
                progress.advance(note=f"{actions['created']} created")
        finished = True
    finally:
        if finished and complete:
            checkpoints.delete(prefix)
        elif actions:  # interrupted or limited: the next run continues after last_key
            _save(checkpoints, prefix, last_key, earlier + actions.total())
    return {
        "processed": actions.total(),
        "actions": dict(actions),
        "last_key": last_key or None,
        "complete": complete,
        "processed_total": earlier + actions.total(),
    }


def _save(checkpoints: Checkpoints, prefix: str, last_key: str, processed: int) -> None:
    checkpoints.save(
        prefix, {"prefix": prefix, "last_key": last_key, "processed": processed, "at": time.time()}
    )


def drain(pipeline: Pipeline) -> dict[str, Any]:
    """Run the poller (lease, quota and pacing as in on_tick) until no job is queued or in flight."""
    store, settings = pipeline.store, pipeline.settings
    started = time.monotonic()
    totals: Counter[str] = Counter()
    remaining = _active(store)
    first = remaining
    with Progress("drain", first) as progress:
        last_refresh = time.monotonic()

        def report_progress(_report: PollReport) -> None:
            # Called after every poller round: count what is left, every few seconds.
            nonlocal last_refresh
            if time.monotonic() - last_refresh >= DRAIN_REFRESH_SECONDS:
                last_refresh = time.monotonic()
                left = _active(store)
                progress.update(max(first - left, 0), note=f"{left} active")

        last_progress, stalled = time.monotonic(), False
        while remaining:
            report = pipeline.poll(
                time.time() + settings.tick_budget_seconds, wait_for_lease=True, on_round=report_progress
            )
            totals.update({name: getattr(report, name) for name in POLL_COUNTERS})
            before, remaining = remaining, _active(store)
            progress.update(max(first - remaining, 0), note=f"{remaining} active")
            moved = report.submitted or report.done or report.failed or report.in_flight
            if moved or remaining < before:
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress >= DRAIN_STALL_SECONDS:
                stalled = True
                break
            else:  # nothing to wait for inside the poller (out of time, submits refused): no busy loop
                pipeline.sleep(DRAIN_IDLE_SECONDS)
    return {
        **{name: totals[name] for name in POLL_COUNTERS},
        "seconds": round(time.monotonic() - started, 3),
        "stalled": stalled,
        "active": remaining,
    }


def stall_message(drained: dict[str, Any]) -> str:
    """Why `backfill --drain` gave up, and where to look."""
    refused = f"; {drained['throttled']} submit(s) refused or throttled" if drained["throttled"] else ""
    return (
        f"drain stopped: no progress for {format_seconds(DRAIN_STALL_SECONDS)} with {drained['active']} "
        f"job(s) still active{refused}. Check `outpaint status` and the logs (run with -v; "
        "dashscope.account_problem means the DashScope key, billing or model access needs an operator)"
    )


def _active(store: JobStore) -> int:
    return sum(len(store.job_ids(state)) for state in ACTIVE_STATES)


def _dry_run(store: JobStore, keys: list[str], start_after: str, as_json: bool) -> int:
    known = {key: len(store.job_ids_for_source(key)) for key in keys}
    if as_json:
        print_json({"dry_run": True, "resumed_after": start_after or None, "objects": known})
        return 0
    if start_after:
        print(f"(continuing after {start_after}; --restart to start over)")
    for key, jobs in known.items():
        print(f"would enqueue {key}{f'  (has {jobs} job(s) already)' if jobs else ''}")
    print(f"{len(keys)} object(s)")
    return 0


def _print_summary(summary: dict[str, Any]) -> None:
    resumed = f" (continuing after {summary['resumed_after']})" if summary["resumed_after"] else ""
    counts = f"{summary['processed']} of {summary['listed']} object(s) processed"
    print(f"backfill {summary['prefix']}{resumed}: {counts}")
    if summary["actions"]:
        print("  " + ", ".join(f"{action} {count}" for action, count in sorted(summary["actions"].items())))
    if summary["complete"]:
        print("  listing complete; checkpoint cleared")
    elif summary["processed"]:
        print(
            f"  checkpoint saved after {summary['last_key']}: run again to continue, --restart to start over"
        )


def _print_drain(drained: dict[str, Any] | None) -> None:
    if drained:
        calls = (
            f"{drained['submitted']} submits, {drained['throttled']} throttled, {drained['queries']} queries"
        )
        took = format_seconds(drained["seconds"])
        print(f"drain: {drained['done']} done, {drained['failed']} failed in {took} ({calls})")
