"""The ops CLI against both emulators, driven through ``outpaint.cli.main`` with settings from the
environment, exactly as an operator runs it."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pytest

from outpaint import log
from outpaint.cli import main, ops_backfill
from outpaint.job import State
from outpaint.store import JobStore
from tests.support.images import photo
from tests.support.stack import ACCESS_KEY_ID, ACCESS_KEY_SECRET, API_KEY, BUCKET, running_stack

EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.fixture
def stack(tmp_path):
    with running_stack(tmp_path) as stack:
        yield stack


@pytest.fixture
def env(stack, monkeypatch):
    """OUTPAINT_* variables pointing at the stack (and nothing else from the caller's environment)."""
    for name in list(os.environ):
        if name.startswith(("OUTPAINT_", "ALIBABA_CLOUD_", "DASHSCOPE_")):
            monkeypatch.delenv(name)
    values = {
        "BUCKET": BUCKET,
        "REGION": "cn-beijing",
        "OSS_ENDPOINT": stack.oss.endpoint,
        "OSS_PUBLIC_ENDPOINT": stack.oss.endpoint,
        "ACCESS_KEY_ID": ACCESS_KEY_ID,
        "ACCESS_KEY_SECRET": ACCESS_KEY_SECRET,
        "DASHSCOPE_BASE_URL": stack.dashscope.base_url,
        "DASHSCOPE_API_KEY": API_KEY,
        "ALLOWED_RESULT_HOSTS": stack.dashscope.origin,
        "POLL_INTERVAL_SECONDS": "0.2",
        "RETRY_BACKOFF_SECONDS": "0",
        "TICK_SAFETY_MARGIN_SECONDS": "1",
        "LOG_LEVEL": "WARNING",
    }
    for name, value in values.items():
        monkeypatch.setenv(f"OUTPAINT_{name}", value)
    return monkeypatch


def run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def run_json(capsys, *argv: str):
    status, out, err = run(capsys, *argv, "--json")
    assert status == 0, err
    return json.loads(out)


def put_images(stack, prefix: str, count: int, **meta: str) -> list[str]:
    bucket = stack.bucket()
    keys = [f"{prefix}{i:03d}.jpg" for i in range(count)]
    image = photo(600, 600)
    headers = {f"x-oss-meta-outpaint-{name}": value for name, value in meta.items()}
    for key in keys:
        bucket.put_object(key, image, headers=headers)
    return keys


def store_of(stack) -> JobStore:
    return stack.pipeline().store


def jobs_by_key(stack) -> dict[str, object]:
    store = store_of(stack)
    return {record.source_key: record for record in map(store.load, store.all_job_ids())}


# ============================================================================= backfill
@pytest.mark.slow
def test_backfill_of_50_objects_respects_the_quota(env, stack, capsys):
    # Tasks of 2-3 s: at 2 submits/s the 5 slots fill up, so both the rate and the concurrency bind.
    stack.dashscope.configure(task_seconds=(2.0, 3.0))
    keys = put_images(stack, "inbox/bulk/", 50, ratio="16:9")

    started = time.monotonic()
    summary = run_json(capsys, "backfill", "inbox/bulk/", "--drain")
    wall = time.monotonic() - started

    assert summary["actions"] == {"created": 50}
    assert summary["complete"] is True
    jobs = jobs_by_key(stack)
    assert sorted(jobs) == keys
    assert {job.state for job in jobs.values()} == {State.DONE}
    stats = stack.dashscope.stats()
    submits = stats["submits_accepted"] + stats["submits_throttled"]
    assert stats["peak_running"] <= 5
    assert stats["submits_throttled"] <= 0.05 * submits
    assert stats["submits_accepted"] == 50
    assert sum(stats["tasks"].values()) == 50
    assert summary["drain"]["done"] == 50
    print(
        f"\nbackfill 50: {wall:.1f}s wall, {submits} submits, {stats['submits_throttled']} throttled, "
        f"peak running {stats['peak_running']}, drain {summary['drain']}"
    )


def test_backfill_is_idempotent_with_real_events(env, stack, capsys):
    event = stack.upload("inbox/dup.jpg", photo(600, 600), ratio="4:3")
    stack.on_upload(event, upload_polls=False)

    summary = run_json(capsys, "backfill", "inbox/")

    assert summary["actions"] == {"duplicate": 1}
    assert len(store_of(stack).all_job_ids()) == 1


def test_backfill_resumes_after_an_interruption(env, stack, capsys, monkeypatch):
    keys = put_images(stack, "inbox/resume/", 25, ratio="16:9")
    real_intake = ops_backfill.intake_object
    calls = []

    def interrupted_after_13(pipeline, key):
        if len(calls) == 13:
            raise KeyboardInterrupt
        calls.append(key)
        return real_intake(pipeline, key)

    monkeypatch.setattr(ops_backfill, "intake_object", interrupted_after_13)
    status, _out, err = run(capsys, "backfill", "inbox/resume/")
    assert status == 1
    assert "interrupted" in err
    assert sorted(jobs_by_key(stack)) == keys[:13]

    monkeypatch.setattr(ops_backfill, "intake_object", real_intake)
    summary = run_json(capsys, "backfill", "inbox/resume/")

    assert summary["resumed_after"] == keys[12]
    assert summary["actions"] == {"created": 12}
    assert summary["processed_total"] == 25
    assert sorted(jobs_by_key(stack)) == keys
    assert stack.dashscope.stats()["submits_accepted"] == 0  # backfill alone never submits


def test_backfill_limit_checkpoint_restart_and_dry_run(env, stack, capsys):
    keys = put_images(stack, "inbox/batch/", 6, ratio="16:9")

    first = run_json(capsys, "backfill", "inbox/batch/", "--limit", "4")
    status, out, _ = run(capsys, "backfill", "inbox/batch/", "--dry-run")
    second = run_json(capsys, "backfill", "inbox/batch/")
    again = run_json(capsys, "backfill", "inbox/batch/", "--restart", "--limit", "2")

    assert (first["processed"], first["complete"], first["last_key"]) == (4, False, keys[3])
    assert status == 0
    assert out.splitlines() == [
        f"(continuing after {keys[3]}; --restart to start over)",
        f"would enqueue {keys[4]}",
        f"would enqueue {keys[5]}",
        "2 object(s)",
    ]
    assert (second["resumed_after"], second["actions"], second["complete"]) == (keys[3], {"created": 2}, True)
    assert (again["resumed_after"], again["actions"]) == (None, {"duplicate": 2})


def test_backfill_drain_stops_when_dashscope_refuses_the_key(env, stack, capsys, monkeypatch):
    put_images(stack, "inbox/nokey/", 1, ratio="16:9")
    env.setenv("OUTPAINT_DASHSCOPE_API_KEY", "sk-wrong")
    env.setenv("OUTPAINT_TICK_BUDGET_SECONDS", "0.5")
    monkeypatch.setattr(ops_backfill, "DRAIN_STALL_SECONDS", 1.5)
    monkeypatch.setattr(ops_backfill, "DRAIN_IDLE_SECONDS", 0.2)

    started = time.monotonic()
    status, out, err = run(capsys, "backfill", "inbox/nokey/", "--drain")

    assert status == 1
    assert time.monotonic() - started < 10
    assert "created 1" in out
    assert "drain stopped: no progress" in err
    assert "outpaint status" in err
    assert [job.state for job in jobs_by_key(stack).values()] == [State.QUEUED]
    assert stack.dashscope.stats()["submits_accepted"] == 0


def test_backfill_outside_the_input_prefix_is_refused(env, capsys):
    status, _out, err = run(capsys, "backfill", "outpainted/")
    assert status == 1
    assert "outside the input prefix 'inbox/'" in err


# ============================================================================= retry
def test_retry_requeues_a_failed_job_under_the_lease(env, stack, capsys, tmp_path):
    stack.dashscope.configure(fail_rate=1.0)
    env.setenv("OUTPAINT_MAX_ATTEMPTS", "1")
    event_file = tmp_path / "event.json"
    event_file.write_bytes(stack.upload("inbox/fails.jpg", photo(), ratio="1:1"))
    result = run_json_plain(capsys, "invoke", "upload", str(event_file))
    [job_id] = result["outcomes"][0]["job_ids"]
    store = store_of(stack)
    failed = store.load(job_id)
    assert failed.state is State.FAILED
    assert failed.error_code == "InternalError.Algo"

    leases = stack.pipeline().leases
    lease = leases.acquire(60)
    status, _out, err = run(capsys, "retry", job_id)
    assert status == 1
    assert "a poller holds the lease" in err
    assert "--wait" in err
    leases.release(lease)

    stack.dashscope.configure(fail_rate=0.0)
    assert run_json(capsys, "retry", "inbox/fails.jpg") == {"requeued": [job_id]}  # by its source key
    queued = store.load(job_id)
    assert queued.state is State.QUEUED
    assert queued.attempts == 0
    assert queued.history[-1].note == "retried by operator"
    assert [h.state for h in queued.history][:-1] == [h.state for h in failed.history]
    assert len(queued.tasks) == 1  # the failed task stays on record
    assert leases.current().released

    run_json_plain(capsys, "invoke", "tick", str(EVENTS / "timer.json"))
    done = store.load(job_id)
    assert done.state is State.DONE
    assert [t.status for t in done.tasks] == ["FAILED", "SUCCEEDED"]
    status, text, _ = run(capsys, "jobs", "show", job_id)
    assert "  last error  InternalError.Algo: " in text


def test_retry_refuses_jobs_that_did_not_fail(env, stack, capsys):
    put_images(stack, "inbox/", 1, ratio="16:9")
    summary = run_json(capsys, "backfill", "inbox/")
    assert summary["actions"] == {"created": 1}
    [job_id] = store_of(stack).all_job_ids()

    status, _out, err = run(capsys, "retry", job_id)
    assert status == 1
    assert "is QUEUED; only FAILED or EXPIRED jobs are retried" in err
    assert run(capsys, "retry", job_id, "--failed")[0] == 2
    assert run_json(capsys, "retry", "--failed", "--expired") == {"requeued": []}
    status, _out, err = run(capsys, "retry", "inbox/000.jpg")  # a source key: its jobs
    assert status == 1
    assert f"job {job_id} is QUEUED; only FAILED or EXPIRED jobs are retried" in err
    assert "no job inbox/none.jpg" in run(capsys, "retry", "inbox/none.jpg")[2]


# ============================================================================= purge
def test_purge_deletes_old_terminal_records_only(env, stack, capsys):
    stack.bucket().put_object("inbox/broken.jpg", b"not an image")
    put_images(stack, "inbox/done/", 2, ratio="16:9")
    run_json(capsys, "backfill", "inbox/", "--drain")
    put_images(stack, "inbox/queued/", 1, ratio="16:9")
    run_json(capsys, "backfill", "inbox/queued/")
    store = store_of(stack)
    before = jobs_by_key(stack)
    assert {k: j.state for k, j in before.items()} == {
        "inbox/broken.jpg": State.REJECTED,
        "inbox/done/000.jpg": State.DONE,
        "inbox/done/001.jpg": State.DONE,
        "inbox/queued/000.jpg": State.QUEUED,
    }
    time.sleep(1.2)

    dry = run_json(capsys, "purge", "--older-than", "1s", "--dry-run")
    assert (dry["would_delete"], dry["by_state"]) == (4 - 1, {"DONE": 2, "REJECTED": 1})
    assert len(store.all_job_ids()) == 4
    assert run_json(capsys, "purge", "--older-than", "1h")["deleted"] == 0

    status, out, _ = run(capsys, "purge", "--older-than", "1s")

    assert status == 0
    assert out.strip() == "deleted 3 job record(s) last changed more than 1.00s ago (DONE 2, REJECTED 1)"
    assert list(jobs_by_key(stack)) == ["inbox/queued/000.jpg"]
    for key in ("inbox/broken.jpg", "inbox/done/000.jpg"):
        assert store.job_ids_for_source(key) == []
    assert all(store.job_ids(state) == [] for state in (State.DONE, State.REJECTED))
    assert len(store.job_ids(State.QUEUED)) == 1


# ============================================================================= status, jobs show
def test_status_and_jobs_show_text_and_json(env, stack, capsys):
    stack.bucket().put_object("inbox/broken.jpg", b"not an image")
    put_images(stack, "inbox/a/", 1, ratio="16:9")
    run_json(capsys, "backfill", "inbox/", "--drain")
    put_images(stack, "inbox/b/", 2, ratio="16:9")
    run_json(capsys, "backfill", "inbox/b/")

    report = run_json(capsys, "status")
    status, text, _ = run(capsys, "status")

    assert report["counts"] == {
        "QUEUED": 2, "SUBMITTING": 0, "SUBMITTED": 0, "DONE": 1,
        "FAILED": 0, "REJECTED": 1, "EXPIRED": 0, "SKIPPED": 0,
    }  # fmt: skip
    assert (report["total"], report["in_flight"], report["max_concurrent_tasks"]) == (4, 0, 5)
    assert report["oldest_queued"]["key"] == "inbox/b/000.jpg"
    assert report["poller"]["lease"] == "free"
    [failure] = report["recent_failures"]
    assert (failure["state"], failure["code"]) == ("REJECTED", "source.not_an_image")
    assert failure["key"] == "inbox/broken.jpg"
    assert status == 0
    assert "in flight: 0 of 5 (max_concurrent_tasks)" in text
    assert "oldest created" in text
    assert "(inbox/b/000.jpg)" in text
    assert "REJECTED source.not_an_image  inbox/broken.jpg" in text

    [done] = run_json(capsys, "jobs", "show", "inbox/a/000.jpg")
    by_id = run_json(capsys, "jobs", "show", done["job_id"])
    status, text, _ = run(capsys, "jobs", "show", done["job_id"])

    assert by_id == done
    assert done["state"] == "DONE"
    assert done["output_key"] == "outpainted/a/000.jpg"
    assert done["parameters"]["output_ratio"] == "16:9"
    assert [t["status"] for t in done["tasks"]] == ["SUCCEEDED"]
    assert [t["state"] for t in done["timings"]] == ["QUEUED", "SUBMITTING", "SUBMITTED", "DONE"]
    assert set(done["seconds_in_state"]) == {"QUEUED", "SUBMITTING", "SUBMITTED"}
    assert status == 0
    assert text.startswith(f"job {done['job_id']}  DONE\n  source      inbox/a/000.jpg")
    assert "  output      outpainted/a/000.jpg" in text
    assert f"    1. {done['tasks'][0]['task_id']}  SUCCEEDED" in text
    status, _out, err = run(capsys, "jobs", "show", "inbox/nothing.jpg")
    assert status == 1
    assert err.strip() == (
        "outpaint jobs: no job with id or source key 'inbox/nothing.jpg': "
        "there is no such object in the bucket"
    )

    [by_output] = run_json(capsys, "jobs", "show", "outpainted/a/000.jpg")
    assert by_output["job_id"] == done["job_id"]
    stack.bucket().put_object("inbox/never.JPG", photo())  # no event delivered: backfill would find it
    status, _out, err = run(capsys, "jobs", "show", "inbox/never.JPG")
    assert status == 1
    assert "no upload event reached on_upload" in err
    assert "`outpaint backfill inbox/never.JPG`" in err
    status, _out, err = run(capsys, "jobs", "show", "elsewhere/x.jpg")
    assert "outside the input prefix 'inbox/'" in err


# ============================================================================= invoke
def run_json_plain(capsys, *argv: str):
    status, out, err = run(capsys, *argv)
    assert status == 0, err
    return json.loads(out)


def test_invoke_runs_the_handlers_on_the_sample_events(env, stack, capsys):
    upload = run_json_plain(capsys, "invoke", "upload", str(EVENTS / "oss-put.json"), "--timeout", "10")
    tick = run_json_plain(capsys, "invoke", "tick", str(EVENTS / "timer.json"))

    # The sample names the local stack's bucket, not this one: intake ignores it, as the function would.
    assert upload == {
        "outcomes": [{"key": "inbox/cat.jpg", "action": "ignored", "reason": "foreign_bucket", "job_ids": []}]
    }
    assert tick["lease"] == "acquired"
    status, out, _ = run(capsys, "invoke", "upload", str(EVENTS / "timer.json"))
    assert status == 1
    assert json.loads(out)["error"] == "event.malformed"


def test_invoke_logs_at_the_clis_level_not_the_settings(env, stack, capsys):
    env.setenv("OUTPAINT_LOG_LEVEL", "DEBUG")
    run_json_plain(capsys, "invoke", "tick", str(EVENTS / "timer.json"))
    assert log.logger.level == logging.WARNING  # without -v: warnings only, as every ops command
    run_json_plain(capsys, "invoke", "-v", "tick", str(EVENTS / "timer.json"))
    assert log.logger.level == logging.DEBUG  # -v: the settings' level


def test_settings_errors_are_listed_one_per_line(env, capsys):
    env.delenv("OUTPAINT_BUCKET")
    env.setenv("OUTPAINT_SUBMIT_QPS", "0")
    status, _out, err = run(capsys, "status")
    assert status == 2
    assert err.splitlines() == [
        "outpaint status: invalid settings:",
        "  bucket (OUTPAINT_BUCKET): Field required",
        "  submit_qps (OUTPAINT_SUBMIT_QPS): Input should be greater than 0",
    ]


# ============================================================================= health and alerts
def test_a_bad_key_is_a_critical_alert_after_one_poller_run(env, stack, capsys, tmp_path):
    env.setenv("OUTPAINT_DASHSCOPE_API_KEY", "sk-wrong")
    event_file = tmp_path / "event.json"
    event_file.write_bytes(stack.upload("inbox/k.jpg", photo(), ratio="16:9"))
    run_json_plain(capsys, "invoke", "upload", str(event_file), "--timeout", "30")  # intake, one poller run

    status, out, _ = run(capsys, "status", "--check")
    assert status == 2
    [line] = out.splitlines()
    assert line.startswith("CRITICAL dashscope.account_problem: DashScope refuses submits")
    assert "InvalidApiKey" in line
    assert "DASHSCOPE_API_KEY" in line  # the fix
    report = run_json(capsys, "status")
    assert report["level"] == "CRITICAL"
    assert report["health"]["queued"] == 1
    assert report["health"]["account_problem"]["code"] == "InvalidApiKey"
    status, text, _ = run(capsys, "status")
    assert "CRITICAL: DashScope refuses submits" in text
    assert "fix: set a valid DASHSCOPE_API_KEY" in text


def test_a_stopped_timer_is_critical_after_three_periods(env, stack, capsys):
    from outpaint.cli.ops_common import Ops
    from outpaint.cli.ops_views import status_report
    from outpaint.config import load_settings

    put_images(stack, "inbox/t/", 1, ratio="16:9")
    run_json(capsys, "backfill", "inbox/t/", "--drain")
    assert run(capsys, "status", "--check")[:2] == (0, "OK no alerts\n")

    ops = Ops(load_settings())
    soon, late = time.time() + 2 * 60, time.time() + 3 * 60 + 5
    assert status_report(ops, 10, now=soon)["alerts"] == []
    [alert] = status_report(ops, 10, now=late)["alerts"]
    assert (alert["level"], alert["code"]) == ("CRITICAL", "poller.stale")
    assert "timer trigger" in alert["fix"]


# ============================================================================= dead letters
def fc_failure_payload(event: bytes, request_id: str) -> bytes:
    """What FC hands the on-failure destination after the last retry (docs/local-stack.md)."""
    return json.dumps(
        {
            "timestamp": int(time.time() * 1000),
            "requestContext": {
                "requestId": request_id,
                "functionArn": "acs:fc:cn-beijing:123:functions/outpaint-on-upload",
                "condition": "UnhandledInvocationError",
                "approximateInvokeCount": 4,
            },
            "requestPayload": event.decode(),
            "responseContext": {"statusCode": 200, "functionError": "UnhandledInvocationError"},
            "responsePayload": '{"errorType": "StorageError", "errorMessage": "OSS answered 503"}',
        }
    ).encode()


def test_a_dead_letter_shows_in_status_and_backfill_finishes_it_with_one_task(env, stack, capsys, tmp_path):
    event = stack.upload("inbox/dl/lost.jpg", photo(), ratio="16:9")  # the event on_upload never finished
    failure = tmp_path / "failure.json"
    failure.write_bytes(fc_failure_payload(event, "req-1"))
    for _ in range(2):  # FC may deliver to the destination more than once: one dead letter
        status, out, _ = run(capsys, "invoke", "dead-letter", str(failure))
        assert status == 0, out
    assert [json.loads(out)["new"]] == [False]

    status, out, _ = run(capsys, "status", "--check")
    assert status == 1
    assert out.splitlines() == [
        "WARNING uploads.dead_letters: 1 upload event(s) failed every FC retry and wait as dead letters "
        "(fix: `outpaint backfill --dead-letters` offers their objects to intake again (after fixing what "
        "the reason says) and clears each one it finished)"
    ]
    report = run_json(capsys, "status")
    [letter] = report["dead_letters"]
    assert letter["keys"] == ["inbox/dl/lost.jpg"]
    assert letter["request_id"] == "req-1"
    assert letter["reason"] == (
        'UnhandledInvocationError: {"errorType": "StorageError", "errorMessage": "OSS answered 503"}'
    )
    assert run(capsys, "status")[1].count("inbox/dl/lost.jpg") == 1

    dry = run_json(capsys, "backfill", "--dead-letters", "--dry-run")
    assert [d["keys"] for d in dry["dead_letters"]] == [["inbox/dl/lost.jpg"]]
    assert stack.dashscope.stats()["submits_accepted"] == 0

    result = run_json(capsys, "backfill", "--dead-letters", "--drain")
    assert (result["replayed"], result["actions"], result["kept"]) == (1, {"created": 1}, [])
    assert result["drain"]["done"] == 1
    assert stack.dashscope.stats()["submits_accepted"] == 1
    [job_id] = store_of(stack).job_ids_for_source("inbox/dl/lost.jpg")
    assert store_of(stack).load(job_id).state is State.DONE
    assert run(capsys, "status", "--check")[:2] == (0, "OK no alerts\n")
    # Replaying the same event again (say, from a copy) finds the job: still one task.
    stack.on_upload(event)
    assert stack.dashscope.stats()["submits_accepted"] == 1


def test_a_dead_letter_that_is_not_an_upload_event_is_kept_and_said(env, stack, capsys, tmp_path):
    failure = tmp_path / "failure.json"
    failure.write_bytes(fc_failure_payload(b'{"not": "an oss event"}', "req-2"))
    assert run(capsys, "invoke", "dead-letter", str(failure))[0] == 0
    result = run_json(capsys, "backfill", "--dead-letters")
    assert result["replayed"] == 0
    [kept] = result["kept"]
    assert "unknown shape" in kept["why"]
    assert run_json(capsys, "status")["dead_letters_total"] == 1


def test_backfill_wants_a_prefix_or_dead_letters(env, capsys):
    status, out, err = run(capsys, "backfill", "--json")
    assert status == 2
    assert json.loads(out) == {
        "error": {"code": "usage", "message": "give a PREFIX or --dead-letters (one of the two)"}
    }
    assert "give a PREFIX or --dead-letters" in err


def test_jobs_list_filters_by_state_prefix_and_age(env, stack, capsys):
    put_images(stack, "inbox/a/", 2, ratio="16:9")
    put_images(stack, "inbox/b/", 1, ratio="banana")  # REJECTED
    stack.bucket().put_object("inbox/b/skip.jpg", photo(600, 600), headers={"x-oss-meta-outpaint-skip": "1"})
    run_json(capsys, "backfill", "inbox/")

    every = run_json(capsys, "jobs", "list")
    created = [j["created_at"] for j in every]
    assert created == sorted(created, reverse=True), "newest first"
    assert {j["state"] for j in every} == {"QUEUED", "REJECTED", "SKIPPED"}
    rejected = run_json(capsys, "jobs", "list", "--state", "rejected")
    assert [(j["key"], j["code"]) for j in rejected] == [("inbox/b/000.jpg", "plan.bad_ratio")]
    skipped_or_queued = run_json(capsys, "jobs", "list", "--state", "SKIPPED", "--state", "queued")
    assert {j["state"] for j in skipped_or_queued} == {"SKIPPED", "QUEUED"}
    assert {j["key"] for j in run_json(capsys, "jobs", "list", "--prefix", "inbox/a/")} == {
        "inbox/a/000.jpg",
        "inbox/a/001.jpg",
    }
    assert len(run_json(capsys, "jobs", "list", "--limit", "1")) == 1
    assert run_json(capsys, "jobs", "list", "--since", "1h") == every
    status, text, _ = run(capsys, "jobs", "list", "--state", "REJECTED")
    assert status == 0
    assert "REJECTED   inbox/b/000.jpg [default]" in text
    assert "plan.bad_ratio" in text
    assert text.splitlines()[-1] == "1 job(s)"
    # status counts SKIPPED and REJECTED too
    counts = run_json(capsys, "status")["counts"]
    assert (counts["SKIPPED"], counts["REJECTED"], counts["QUEUED"]) == (1, 1, 2)


def test_events_put_writes_the_event_of_an_existing_object(env, stack, capsys, tmp_path):
    stack.bucket().put_object(
        "inbox/ev/图片.jpg",
        photo(),
        headers={"x-oss-meta-outpaint-ratio": "16:9", "Content-Type": "image/jpeg"},
    )
    status, out, err = run(capsys, "events", "put", "inbox/ev/图片.jpg")
    assert status == 0, err
    [record] = json.loads(out)["events"]
    assert record["eventName"] == "ObjectCreated:PutObject"
    assert record["oss"]["bucket"]["name"] == BUCKET
    assert record["oss"]["object"]["key"] == "inbox/ev/图片.jpg"
    assert record["oss"]["object"]["objectMeta"] == {
        "mimeType": "image/jpeg",
        "userMeta": {"x-oss-meta-outpaint-ratio": "16:9"},
    }
    event = tmp_path / "event.json"
    event.write_text(out)
    result = run_json_plain(capsys, "invoke", "upload", str(event), "--timeout", "10")
    assert [o["action"] for o in result["outcomes"]] == ["created"]
    other = json.loads(run(capsys, "events", "put", "inbox/ev/图片.jpg", "--bucket", "elsewhere")[1])
    assert other["events"][0]["oss"]["bucket"]["name"] == "elsewhere"
    status, _, err = run(capsys, "events", "put", "inbox/ev/missing.jpg")
    assert status == 1
    assert "no object 'inbox/ev/missing.jpg'" in err
