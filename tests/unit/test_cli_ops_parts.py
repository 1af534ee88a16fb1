"""Ops CLI pieces that need no emulator: parsing, formatting, progress, usage errors."""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import sys
import time

import pytest

import outpaint
from outpaint.cli import main, ops_backfill
from outpaint.cli.ops_backfill import _print_summary, scan_prefix, stall_message
from outpaint.cli.ops_common import OpsError, format_seconds, format_time, parse_duration
from outpaint.cli.ops_progress import Progress
from outpaint.cli.ops_views import state_timings
from outpaint.config import load_settings
from outpaint.job import JobRecord, State
from outpaint.poller import PollReport
from tests.support.images import photo


@pytest.fixture
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith(("OUTPAINT_", "ALIBABA_CLOUD_", "DASHSCOPE_")):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30d", 30 * 86_400), ("12h", 43_200), ("45m", 2_700), ("90s", 90), ("2w", 1_209_600),
     ("1d12h", 129_600), ("1.5h", 5_400), (" 7D ", 604_800)],
)  # fmt: skip
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "d", "12x", "1h-2m", "1h 2m", "-3d"])
def test_bad_durations_are_usage_errors(text):
    with pytest.raises(argparse.ArgumentTypeError, match="expected a duration like 30d"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.424, "0.42s"), (12.34, "12.3s"), (185, "3m 05s"), (7_800, "2h 10m"), (356_400, "4d 3h")],
)
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text


def test_format_time_is_utc_with_milliseconds():
    assert format_time(1_740_816_003.12) == "2025-03-01 08:00:03.120Z"


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def test_progress_redraws_a_bar_on_a_terminal():
    now = [0.0]
    stream = _Stream(tty=True)
    with Progress("backfill", 4, stream=stream, clock=lambda: now[0]) as progress:
        for _ in range(4):
            now[0] += 0.5
            progress.advance(note="n created")
    frames = stream.getvalue().split("\r")[1:]
    assert frames[-1].rstrip() == "backfill [##############################] 4/4 100%  2.0s  n created"
    assert frames[0].startswith("backfill [########......................] 1/4  25%  0.5s")
    assert stream.getvalue().endswith("\n")


def test_progress_writes_periodic_lines_elsewhere():
    now = [0.0]
    stream = _Stream(tty=False)
    with Progress("purge", 20, stream=stream, clock=lambda: now[0]) as progress:
        for _ in range(20):
            now[0] += 0.5
            progress.advance()
    assert stream.getvalue().splitlines() == [
        "purge: 1/20   5%  0.5s",  # the first update
        "purge: 11/20  55%  5.5s",  # LINE_SECONDS later
        "purge: 20/20 100%  10.0s",  # close
    ]


def test_progress_does_not_repeat_the_last_line():
    stream = _Stream(tty=False)
    with Progress("drain", 1, stream=stream, clock=lambda: 0.0) as progress:
        progress.update(1)
    assert stream.getvalue().splitlines() == ["drain: 1/1 100%  0.0s"]


@pytest.mark.parametrize(
    ("prefix", "scanned"),
    [("inbox/2024/", "inbox/2024/"), ("inbox/", "inbox/"), ("", "inbox/"), ("in", "inbox/")],
)
def test_scan_prefix_stays_inside_the_input_prefix(prefix, scanned):
    assert scan_prefix(prefix, "inbox/") == scanned


def test_scan_prefix_refuses_other_prefixes():
    with pytest.raises(OpsError, match="outside the input prefix"):
        scan_prefix("outpainted/", "inbox/")


def test_state_timings_measure_each_history_entry():
    job = JobRecord(job_id="j", bucket="b", source_key="k", source_etag="e", state=State.QUEUED,
                    created_at=100.0, updated_at=100.0)  # fmt: skip
    job.begin(State.QUEUED, "1 variant(s)", now=100.0)
    job.move(State.SUBMITTING, now=101.5)
    job.move(State.SUBMITTED, "task-1", now=101.75)
    job.move(State.DONE, now=104.0)
    assert [(t["state"], t["seconds"]) for t in state_timings(job)] == [
        ("QUEUED", 1.5), ("SUBMITTING", 0.25), ("SUBMITTED", 2.25), ("DONE", None)]  # fmt: skip


def test_missing_settings_exit_2_with_one_line_per_field(clean_env, capsys):
    assert main(["status"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "outpaint status: invalid settings:",
        "  bucket (OUTPAINT_BUCKET): Field required",
    ]


def test_missing_credentials_exit_2_naming_both_variables(clean_env, capsys):
    clean_env.setenv("OUTPAINT_BUCKET", "b")
    clean_env.setenv("OUTPAINT_ACCESS_KEY_ID", "LTAI-x")
    assert main(["purge", "--older-than", "30d"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "outpaint purge: missing OSS credentials:",
        "  access_key_secret (OUTPAINT_ACCESS_KEY_SECRET or ALIBABA_CLOUD_ACCESS_KEY_SECRET): not set",
    ]
    assert "LTAI-x" not in err


@pytest.mark.parametrize(
    "argv",
    [["retry"], ["retry", "abc", "--failed"], ["purge"], ["purge", "--older-than", "soon"], ["jobs"],
     ["invoke", "deploy", "e.json"], ["backfill"], ["status", "--limit", "-1"], ["status", "--limit", "x"],
     ["backfill", "inbox/", "--limit", "-1"], ["backfill", "inbox/", "--limit", "0"]],
)  # fmt: skip
def test_usage_errors_exit_2(clean_env, capsys, argv):
    clean_env.setenv("OUTPAINT_BUCKET", "b")
    assert main(argv) == 2
    assert capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "status", "code", "text"),
    [
        (["status", "--json", "--limit", "x"], 2, "usage", "expected a whole number >= 0"),
        (["jobs", "list", "--json", "--state", "NOPE"], 2, "usage", "invalid choice"),
        (["status", "--json"], 2, "config.invalid", "bucket (OUTPAINT_BUCKET): Field required"),
        (["backfill", "outpainted/", "--json"], 1, "ops.failed", "outside the input prefix"),
    ],
)
def test_json_commands_print_json_errors(clean_env, capsys, argv, status, code, text):
    if "bucket" not in text:
        clean_env.setenv("OUTPAINT_BUCKET", "b")
        clean_env.setenv("OUTPAINT_ACCESS_KEY_ID", "LTAI-x")
        clean_env.setenv("OUTPAINT_ACCESS_KEY_SECRET", "s")
    assert main(argv) == status
    out, err = capsys.readouterr()
    error = json.loads(out)["error"]
    assert error["code"] == code
    assert text in error["message"]
    assert text in err


def test_plan_json_prints_json_errors(capsys, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    assert main(["plan", str(text), "--json", "--meta", "ratio=1:1"]) == 2
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["code"] == "source.not_an_image"
    assert "plain text" in error["message"]


def test_backfill_summary_mentions_a_checkpoint_only_after_processing_something(capsys):
    summary = {"prefix": "inbox/", "resumed_after": None, "listed": 3, "processed": 0, "actions": {}}
    _print_summary({**summary, "last_key": None, "complete": False})
    assert "checkpoint" not in capsys.readouterr().out
    _print_summary({**summary, "processed": 1, "last_key": "inbox/a.jpg", "complete": False})
    assert "checkpoint saved after inbox/a.jpg" in capsys.readouterr().out


class _StuckPipeline:
    """A pipeline whose jobs stay queued: every poller run is refused by DashScope at once."""

    def __init__(self) -> None:
        self.settings = load_settings(bucket="b")
        self.store = self
        self.polls = 0
        self.sleeps: list[float] = []

    def job_ids(self, state: State) -> list[str]:
        return ["j1", "j2"] if state is State.QUEUED else []

    def poll(self, deadline: float, *, wait_for_lease: bool, on_round: object = None) -> PollReport:
        self.polls += 1
        return PollReport(throttled=1, queued=2)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        time.sleep(seconds)


def test_drain_pauses_between_idle_runs_and_gives_up_when_nothing_moves(monkeypatch):
    monkeypatch.setattr(ops_backfill, "DRAIN_STALL_SECONDS", 0.2)
    monkeypatch.setattr(ops_backfill, "DRAIN_IDLE_SECONDS", 0.05)
    pipeline = _StuckPipeline()

    drained = ops_backfill.drain(pipeline)  # type: ignore[arg-type]

    assert drained["stalled"] is True
    assert drained["active"] == 2
    assert 2 <= pipeline.polls <= 6  # not a busy loop: one run per idle pause
    assert set(pipeline.sleeps) == {0.05}
    message = stall_message(drained)
    assert "no progress" in message
    assert "outpaint status" in message
    assert f"{drained['throttled']} submit(s) refused" in message


def test_help_exits_0(capsys):
    assert main(["backfill", "--help"]) == 0
    assert "--drain" in capsys.readouterr().out


def test_unreachable_oss_names_the_endpoint(clean_env, capsys):
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{sock.getsockname()[1]}"
    values = {"BUCKET": "bkt", "ACCESS_KEY_ID": "id", "ACCESS_KEY_SECRET": "secret", "OSS_ENDPOINT": endpoint}
    for name, value in values.items():
        clean_env.setenv(f"OUTPAINT_{name}", value)
    assert main(["status"]) == 1
    err = capsys.readouterr().err
    assert f"cannot reach OSS at {endpoint}: ConnectionError" in err
    assert "HTTP -2" not in err


def test_invoke_reports_an_unreadable_event_file(clean_env, capsys, tmp_path):
    for name, value in {"BUCKET": "b", "ACCESS_KEY_ID": "id", "ACCESS_KEY_SECRET": "secret"}.items():
        clean_env.setenv(f"OUTPAINT_{name}", value)
    assert main(["invoke", "upload", str(tmp_path / "missing.json")]) == 2
    assert "cannot read the event: No such file or directory" in capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"outpaint {outpaint.__version__}"


def test_a_closed_pipe_ends_quietly(monkeypatch, capfd, tmp_path):
    image = tmp_path / "a.jpg"
    image.write_bytes(photo(800, 600))
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone (`outpaint … | head`, after head printed its lines)
    with open(write_end, "w", buffering=1) as pipe:  # line-buffered: the first line meets the closed pipe
        monkeypatch.setattr("sys.stdout", pipe)
        status = main(["plan", str(image), "--meta", "ratio=16:9"])
    assert status == 1
    assert "BrokenPipeError" not in capfd.readouterr().err


def test_local_commands_without_the_local_extra_say_what_to_install(capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def without_uvicorn(name, *args, **kwargs):
        if name.split(".")[0] == "uvicorn":
            raise ModuleNotFoundError(f"No module named {name!r}", name="uvicorn")
        return real_import(name, *args, **kwargs)

    for module in [
        m for m in sys.modules if m.startswith(("uvicorn", "outpaint.local", "outpaint.cli.local"))
    ]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setattr(builtins, "__import__", without_uvicorn)
    assert main(["local", "up", "--data-dir", "/nonexistent/never-created"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "outpaint local: needs the local stack's packages (module 'uvicorn' is missing): "
        "pip install 'outpaint[local]'\n"
    )
