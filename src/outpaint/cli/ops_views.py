"""Read-only views: `outpaint status` and `outpaint jobs show ID|KEY`."""

from __future__ import annotations

import argparse
import json
import re
import time
from itertools import islice
from typing import TYPE_CHECKING, Any

from outpaint.cli import ops_jobs_list
from outpaint.cli.ops_common import (
    Ops,
    OpsError,
    format_seconds,
    format_time,
    non_negative_int,
    print_json,
)
from outpaint.deadletters import summary
from outpaint.health import HOUR, Level, alerts, worst
from outpaint.job import IN_FLIGHT_STATES, JobRecord, State
from outpaint.naming import META_JOB_ID

if TYPE_CHECKING:
    from outpaint.health import Health
    from outpaint.lease import Lease
    from outpaint.store import JobStore

STATUS_HELP = "counts by state, in-flight vs quota, oldest queued job, recent failures"
JOBS_HELP = (
    "`jobs show ID|KEY`: one job by id, every job of a source key, or the job of an output key; "
    "`jobs list [--state S] [--prefix P] [--since T]`: jobs newest first"
)
FAILURE_STATES = (State.FAILED, State.EXPIRED, State.REJECTED)
_JOB_ID = re.compile(r"[0-9a-f]{32}")


# ============================================================================= status
def configure_status(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--limit", type=non_negative_int, default=10, help="recent failures to show (default %(default)s)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument(
        "--check",
        action="store_true",
        help="print one line per alert and exit 0 (none), 1 (warning) or 2 (critical): for cron or a probe",
    )


def status(ops: Ops, args: argparse.Namespace) -> int:
    report = status_report(ops, args.limit)
    if args.json:
        print_json(report)
    elif args.check:
        for alert in report["alerts"]:
            print(f"{alert['level']} {alert['code']}: {alert['message']} (fix: {alert['fix']})")
        if not report["alerts"]:
            print("OK no alerts")
    else:
        _print_status(report)
    return int(Level[report["level"]]) if args.check else 0


def status_report(ops: Ops, limit: int, now: float | None = None) -> dict[str, Any]:
    """One LIST per state marker prefix, one GET for the oldest queued job and one per failure shown."""
    now = time.time() if now is None else now
    store = ops.store
    ids = {state: store.job_ids(state) for state in State}
    oldest = next(store.records(State.QUEUED, ids[State.QUEUED]), None)
    failures: list[JobRecord] = []
    for state in FAILURE_STATES:
        failures.extend(islice(store.records(state, reversed(ids[state])), limit))
    failures.sort(key=lambda r: r.updated_at, reverse=True)
    lease = ops.leases.current()
    health = lease.health if lease is not None else None
    letter_keys = ops.dead_letters.keys()
    found = alerts(
        health, now, ops.settings.alert_policy(), queued=len(ids[State.QUEUED]), dead_letters=len(letter_keys)
    )
    return {
        "level": worst(found).name,
        "alerts": [
            {"level": a.level.name, "code": a.code, "message": a.message, "fix": a.fix} for a in found
        ],
        "health": _health_view(health, now),
        "bucket": ops.settings.bucket,
        "state_prefix": ops.settings.state_prefix,
        "counts": {state.value: len(ids[state]) for state in State},
        "total": sum(len(found) for found in ids.values()),
        "in_flight": sum(len(ids[state]) for state in IN_FLIGHT_STATES),
        "max_concurrent_tasks": ops.settings.max_concurrent_tasks,
        "oldest_queued": oldest
        and {"job_id": oldest.job_id, "key": oldest.source_key, "age_seconds": now - oldest.created_at},
        "poller": _lease_view(lease, now),
        "dead_letters": [
            {"key": key, **(summary(letter) if letter else {"reason": "unreadable dead letter"})}
            for key, letter in ops.dead_letters.entries(letter_keys[:limit])
        ],
        "dead_letters_total": len(letter_keys),
        "recent_failures": [
            {
                "job_id": r.job_id,
                "state": r.state.value,
                "key": r.source_key,
                "variant": r.variant_name,
                "code": r.error_code,
                "reason": r.error_message,
                "at": r.updated_at,
            }
            for r in failures[:limit]
        ],
    }


def _health_view(health: Health | None, now: float) -> dict[str, Any] | None:
    """The last poller run and the counters of the last hour and day."""
    if health is None or health.last_run_ended is None:
        return None
    oldest = health.oldest_queued_at
    return {
        "last_run_ago_seconds": now - health.last_run_ended,
        "last_run_seconds": health.last_run_seconds,
        "queued": health.queued,
        "oldest_queued_age_seconds": None if oldest is None else now - oldest,
        "in_flight": health.in_flight,
        "last_hour": health.window(now, HOUR).model_dump(),
        "last_day": health.window(now, 24 * HOUR).model_dump(),
        "account_problem": health.account_problem and health.account_problem.model_dump(),
    }


def _lease_view(lease: Lease | None, now: float) -> dict[str, Any]:
    if lease is None:
        return {"lease": "never taken"}
    held = lease.live(now)
    view: dict[str, Any] = {"lease": "held" if held else "free", "term": lease.term}
    if held:
        view["expires_in_seconds"] = lease.expires_at - now
    return view


def _print_status(report: dict[str, Any]) -> None:
    print(f"bucket {report['bucket']} (state under {report['state_prefix']})")
    health = report["health"]
    if health is None:
        print("health: no poller run recorded yet")
    else:
        hour, day = health["last_hour"], health["last_day"]
        print(
            f"health: last poller run {format_seconds(health['last_run_ago_seconds'])} ago "
            f"(took {format_seconds(health['last_run_seconds'] or 0)}); last hour {hour['done']} done, "
            f"{hour['failed']} failed, {hour['throttled']} throttled; last day {day['done']} done, "
            f"{day['failed']} failed"
        )
    for alert in report["alerts"]:
        print(f"{alert['level']}: {alert['message']}\n    fix: {alert['fix']}")
    if not report["alerts"]:
        print("alerts: none")
    print(f"jobs: {report['total']}")
    oldest = report["oldest_queued"]
    for state, count in report["counts"].items():
        extra = ""
        if state == State.QUEUED.value and oldest:
            extra = f"   oldest created {format_seconds(oldest['age_seconds'])} ago ({oldest['key']})"
        print(f"  {state:<11}{count:>6}{extra}")
    print(f"in flight: {report['in_flight']} of {report['max_concurrent_tasks']} (max_concurrent_tasks)")
    poller = report["poller"]
    lease = f"{poller['lease']} (term {poller['term']}" if "term" in poller else poller["lease"]
    if "expires_in_seconds" in poller:
        lease += f", {format_seconds(poller['expires_in_seconds'])} left"
    print(f"poller lease: {lease}{')' if 'term' in poller else ''}")
    if report["dead_letters_total"]:
        print(f"dead letters: {report['dead_letters_total']} (outpaint backfill --dead-letters replays them)")
        for item in report["dead_letters"]:
            keys = ", ".join(item.get("keys") or []) or "(no object key in the event)"
            print(f"  {format_time(item['received_at']) if 'received_at' in item else '?'}  {keys}")
            print(f"      {item['reason']}")
    failures = report["recent_failures"]
    if not failures:
        print("recent failures: none")
        return
    print("recent failures (newest first):")
    for item in failures:
        print(
            f"  {format_time(item['at'])}  {item['state']:<8} {item['code'] or '-'}  {item['key']}"
            f"  [{item['variant']}] {item['job_id']}"
        )
        if item["reason"]:
            print(f"      {item['reason']}")


# ============================================================================= jobs show
def configure_jobs(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = sub.add_parser("show", help="a job by id, every job of a source object key, or an output's job")
    show.add_argument(
        "target", metavar="ID|KEY", help="a job id (32 hex digits), a source object key or an output key"
    )
    show.add_argument("--json", action="store_true", help="print JSON instead of text")
    ops_jobs_list.configure(sub)


def jobs(ops: Ops, args: argparse.Namespace) -> int:
    if args.action == "list":
        return ops_jobs_list.list_jobs(ops, args)
    records = find_jobs(ops.store, args.target) or jobs_of_output(ops, args.target)
    if not records:
        raise OpsError(f"no job with id or source key {args.target!r}: {_why_no_job(ops, args.target)}")
    views = [job_view(record) for record in records]
    if args.json:
        print_json(views[0] if _JOB_ID.fullmatch(args.target) else views)
    else:
        print("\n\n".join(_job_text(view) for view in views))
    return 0


def find_jobs(store: JobStore, target: str) -> list[JobRecord]:
    """The job ``target`` names (an id), else every job of the source key ``target``, oldest first."""
    if _JOB_ID.fullmatch(target):
        record = store.load(target)
        if record is not None:
            return [record]
    records = [r for r in map(store.load, store.job_ids_for_source(target)) if r is not None]
    return sorted(records, key=lambda r: r.created_at)


def jobs_of_output(ops: Ops, key: str) -> list[JobRecord]:
    """The job whose output is ``key`` (read from the output's provenance metadata)."""
    if not key.startswith(ops.settings.output_prefix):
        return []
    head = ops.store.storage.head_or_none(key)
    job_id = head.user_meta.get(META_JOB_ID) if head is not None else None
    record = ops.store.load(job_id) if job_id else None
    return [record] if record is not None else []


def _why_no_job(ops: Ops, key: str) -> str:
    """Why ``key`` has no job, and what to do about it."""
    s = ops.settings
    if key.startswith(s.state_prefix):
        return "it is outpaint's own state"
    if not key.startswith((s.input_prefix, s.output_prefix)):
        return f"it is outside the input prefix {s.input_prefix!r}: only uploads there are out-painted"
    if ops.store.storage.head_or_none(key) is None:
        return "there is no such object in the bucket"
    if key.startswith(s.output_prefix):
        return "the object carries no outpaint-job-id: outpaint did not write it"
    return (
        "the object exists but no upload event reached on_upload (a lost event, or an upload older than the "
        "trigger; `outpaint status` lists dead letters): "
        f"`outpaint backfill {key}` offers it to intake"
    )


def state_timings(record: JobRecord) -> list[dict[str, Any]]:
    """The history with the time spent in each entry (None for the current, last one)."""
    entries = record.history
    return [
        {
            "state": entry.state.value,
            "at": entry.at,
            "seconds": entries[i + 1].at - entry.at if i + 1 < len(entries) else None,
            "note": entry.note,
        }
        for i, entry in enumerate(entries)
    ]


def job_view(record: JobRecord) -> dict[str, Any]:
    """The record as JSON plus ``timings`` (per history entry) and ``seconds_in_state`` (summed)."""
    timings = state_timings(record)
    totals: dict[str, float] = {}
    for item in timings:
        if item["seconds"] is not None:
            totals[item["state"]] = totals.get(item["state"], 0.0) + item["seconds"]
    view = record.model_dump(mode="json", exclude={"history"})
    return {**view, "timings": timings, "seconds_in_state": totals}


def _job_text(view: dict[str, Any]) -> str:
    lines = [
        f"job {view['job_id']}  {view['state']}",
        f"  source      {view['source_key']} (etag {view['source_etag']}, {view['source_size']} bytes)",
        f"  variant     {view['variant_name']}",
        f"  parameters  {json.dumps(view['parameters'], sort_keys=True)}",
        f"  attempts    {view['attempts']} (uncertain submits {view['uncertain_submits']})",
    ]
    if view["output_key"]:
        size = f"{view['output_size']} bytes, {view['output_format']}"
        lines.append(f"  output      {view['output_key']} ({size})")
    if view["error_code"]:
        label = "error     " if view["state"] in {s.value for s in FAILURE_STATES} else "last error"
        lines.append(f"  {label}  {view['error_code']}: {view['error_message']}")
    lines.extend(f"  warning     {warning}" for warning in view["warnings"])
    lines.append(f"  tasks       {len(view['tasks']) or 'none'}")
    for number, task in enumerate(view["tasks"], 1):
        took = ""
        if task["finished_at"]:
            took = f"  took {format_seconds(task['finished_at'] - task['submitted_at'])}"
        code = f"  {task['code']}" if task["code"] else ""
        lines.append(f"    {number}. {task['task_id'] or '(no task id)'}  {task['status']}{code}{took}")
    lines.append("  history")
    for item in view["timings"]:
        spent = format_seconds(item["seconds"]) if item["seconds"] is not None else "-"
        note = f"  {item['note']}" if item["note"] else ""
        lines.append(f"    {format_time(item['at'])}  {item['state']:<10} {spent:>9}{note}")
    return "\n".join(lines)
