"""`outpaint local up` as a user runs it: a subprocess on free ports, plain oss2 with the printed settings."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import oss2
import pytest
from PIL import Image

from outpaint.local.logs import LogSink
from outpaint.local.oss import OssEmulator
from outpaint.local.stack import LOCAL_API_KEY, LocalStack, StackConfig, StackError
from tests.support.images import photo

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalUp:
    """One `outpaint local up` process; its output is collected line by line."""

    def __init__(self, data_dir: Path, *flags: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OUTPAINT_", "DASHSCOPE_"))}
        command = [
            sys.executable,
            "-m",
            "outpaint",
            "local",
            "up",
            "--data-dir",
            str(data_dir),
            "--oss-port",
            str(free_port()),
            "--dashscope-port",
            str(free_port()),
            "--tick-every",
            "0.5",
            "--task-seconds",
            "0.5-1",
            *flags,
        ]
        self.process = subprocess.Popen(
            command,
            cwd=data_dir.parent,
            env={**env, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.up = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self.up.wait(30):
            self.kill()
            pytest.fail("local up did not come up:\n" + self.output())

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if line.startswith("Ctrl-C stops the stack"):
                self.up.set()

    def output(self) -> str:
        return "".join(self.lines)

    def bucket(self) -> oss2.Bucket:
        """A plain oss2 client made only from what the banner printed."""
        printed = dict(re.findall(r"\b(OSS_[A-Z_]+)=(\S+)", self.output()))
        auth = oss2.Auth(printed["OSS_ACCESS_KEY_ID"], printed["OSS_ACCESS_KEY_SECRET"])
        return oss2.Bucket(auth, printed["OSS_ENDPOINT"], printed["OSS_BUCKET"])

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(20)

    def kill(self) -> None:
        """A crash: the whole process group (the stack and any runtime it started) dies at once."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


def wait_for(condition, timeout: float, what: str, stack: LocalUp):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}; stack output:\n{stack.output()[-6000:]}")


def keys(bucket: oss2.Bucket, prefix: str) -> list[str]:
    return [obj.key for obj in oss2.ObjectIterator(bucket, prefix=prefix)]


def size_of(bucket: oss2.Bucket, key: str) -> tuple[int, int]:
    with Image.open(io.BytesIO(bucket.get_object(key).read())) as image:
        return image.size


def test_an_upload_with_plain_oss2_comes_out_expanded_and_sigterm_stops_cleanly(tmp_path):
    stack = LocalUp(tmp_path / "data", "--runtime", "custom")
    try:
        bucket = stack.bucket()
        bucket.put_object("inbox/shoe.jpg", photo(1000, 800), headers={"x-oss-meta-outpaint-ratio": "16:9"})

        wait_for(lambda: keys(bucket, "outpainted/"), 20, "the result", stack)
        assert size_of(bucket, "outpainted/shoe.jpg") == (1423, 800)
    finally:
        status = stack.terminate()
    output = stack.output()
    assert status == 0, output
    assert "stopped" in output
    for component in ("[oss]", "[dashscope]", "[on-upload]", "[on-tick]"):
        assert component in output
    assert "runtime custom" in output


def test_the_banner_exports_what_the_ops_cli_needs(tmp_path):
    stack = LocalUp(tmp_path / "data")
    try:
        printed = dict(re.findall(r"export ((?:OUTPAINT|DASHSCOPE)_[A-Z_]+)=(\S+)", stack.output()))
        assert {
            "OUTPAINT_BUCKET",
            "OUTPAINT_OSS_ENDPOINT",
            "OUTPAINT_ACCESS_KEY_ID",
            "DASHSCOPE_API_KEY",
        } <= set(printed)
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("OUTPAINT_", "DASHSCOPE_", "ALIBABA_"))
        }
        status = subprocess.run(
            [sys.executable, "-m", "outpaint", "status", "--json"],
            env={**env, **printed},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        assert (report["bucket"], report["total"]) == ("outpaint-local", 0)
    finally:
        assert stack.terminate() == 0


@pytest.fixture
def outpaint_logger():
    """LocalStack routes the ``outpaint`` logger to its sink: give the next test the logger back."""
    logger = logging.getLogger("outpaint")
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)
    logger.propagate = propagate


def test_a_second_stack_on_the_same_data_dir_is_refused_cleanly(tmp_path, outpaint_logger):
    with OssEmulator(tmp_path / "data" / "oss"):  # the first stack's emulator holds the data dir
        second = LocalStack(
            StackConfig(data_dir=tmp_path / "data", oss_port=0, dashscope_port=0), LogSink(io.StringIO())
        )
        with pytest.raises(StackError, match=r"another local stack uses --data-dir .*data: stop it"):
            second.start()
        assert (second.oss, second.dashscope, second.runner) == (None, None, None)


def test_a_taken_dashscope_port_names_its_flag_and_releases_the_data_dir(tmp_path, outpaint_logger):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = StackConfig(data_dir=tmp_path / "data", oss_port=0, dashscope_port=port)
        with pytest.raises(
            StackError, match=rf"DashScope emulator on 127\.0\.0\.1:{port}: .*see --dashscope-port"
        ):
            LocalStack(config, LogSink(io.StringIO())).start()
    OssEmulator(tmp_path / "data" / "oss").stop()  # the failed stack let go of its data dir


def test_a_job_left_in_flight_by_a_crash_completes_after_a_restart(tmp_path):
    # Only the timer polls, in short ticks, so the crashed holder's lease lapses within seconds.
    flags = ("--env", "OUTPAINT_UPLOAD_POLLS=false", "--env", "OUTPAINT_TICK_BUDGET_SECONDS=2")
    stack = LocalUp(tmp_path / "data", *flags)
    try:
        bucket = stack.bucket()
        bucket.put_object(
            "inbox/tall.png", photo(600, 900, fmt="PNG"), headers={"x-oss-meta-outpaint-ratio": "1:1"}
        )
        wait_for(lambda: keys(bucket, ".outpaint/state/submitted/"), 20, "the submitted job", stack)
        assert not keys(bucket, "outpainted/")
    finally:
        stack.kill()

    restarted = LocalUp(tmp_path / "data", *flags)
    try:
        [key] = wait_for(lambda: keys(restarted.bucket(), "outpainted/"), 30, "the result", restarted)
        assert key.startswith("outpainted/tall.")
        assert size_of(restarted.bucket(), key) == (900, 900)
        # The result is written first, then the job's record moves on to DONE.
        wait_for(lambda: not keys(restarted.bucket(), ".outpaint/state/submitted/"), 10, "DONE", restarted)
    finally:
        assert restarted.terminate() == 0


BURST = 16
# Only the timer polls, in short ticks, so a crashed holder's lease lapses within seconds.
QUICK_RESTART = ("--env", "OUTPAINT_UPLOAD_POLLS=false", "--env", "OUTPAINT_TICK_BUDGET_SECONDS=2")


def upload_burst(bucket: oss2.Bucket) -> None:
    for n in range(BURST):
        bucket.put_object(
            f"inbox/burst-{n}.jpg", photo(800, 600), headers={"x-oss-meta-outpaint-ratio": "1:1"}
        )
    time.sleep(0.3)  # the OSS emulator hands the events to the runner just after each PUT returns


def job_records(bucket: oss2.Bucket) -> list[dict]:
    return [json.loads(bucket.get_object(key).read()) for key in keys(bucket, ".outpaint/jobs/")]


def assert_every_upload_done_once(stack: LocalUp) -> None:
    bucket = stack.bucket()
    wait_for(lambda: len(keys(bucket, "outpainted/")) == BURST, 90, "every result", stack)
    records = job_records(bucket)
    assert sorted(r["state"] for r in records) == ["DONE"] * BURST
    notes = [entry.get("note") or "" for record in records for entry in record["history"]]
    assert not [note for note in notes if "task.unknown" in note]  # no task the emulator forgot


SLOW_UPLOADS = """\
import sys
import time

sys.path.insert(0, {repo!r})
import handler  # the real handlers

initialize, on_tick, on_dead_letter = handler.initialize, handler.on_tick, handler.on_dead_letter


def on_upload(event, context):
    time.sleep(1)  # every worker busy for a second: the rest of a burst waits in the queue
    return handler.on_upload(event, context)
"""


def slow_upload_s_yaml(tmp_path: Path) -> Path:
    """The real s.yaml and handlers, with on_upload a second slower (its code beside the copy)."""
    repo = Path(__file__).resolve().parents[2]
    (tmp_path / "slowfc.py").write_text(SLOW_UPLOADS.format(repo=str(repo)))
    s_yaml = tmp_path / "s.yaml"
    s_yaml.write_text((repo / "s.yaml").read_text().replace("handler: handler.", "handler: slowfc."))
    return s_yaml


def test_a_sigkill_right_after_a_burst_loses_no_upload_and_no_task(tmp_path):
    flags = (*QUICK_RESTART, "--s-yaml", str(slow_upload_s_yaml(tmp_path)))
    stack = LocalUp(tmp_path / "data", *flags)
    try:
        upload_burst(stack.bucket())
        wait_for(lambda: keys(stack.bucket(), ".outpaint/state/submitted/"), 20, "a task in flight", stack)
    finally:
        stack.kill()
    pending = list((tmp_path / "data" / "fc" / "pending").glob("*.json"))
    assert pending, "the burst was over before the kill: the test proves nothing"
    tasks = [
        json.loads(path.read_text()) for path in (tmp_path / "data" / "dashscope" / "tasks").glob("*.json")
    ]
    assert any(task["status"] in ("PENDING", "RUNNING") for task in tasks), "no task was in flight"

    restarted = LocalUp(tmp_path / "data", *flags)
    try:
        assert_every_upload_done_once(restarted)  # with no backfill
        assert re.search(
            r"delivering \d+ invocation\(s\) left pending by the previous run", restarted.output()
        )
    finally:
        assert restarted.terminate() == 0


def test_a_graceful_stop_logs_what_was_pending_and_delivers_it_after_the_restart(tmp_path):
    flags = (*QUICK_RESTART, "--s-yaml", str(slow_upload_s_yaml(tmp_path)))
    stack = LocalUp(tmp_path / "data", *flags)
    try:
        upload_burst(stack.bucket())
    finally:
        assert stack.terminate() == 0
    stopped = re.search(
        r"stopped with (\d+) invocation\(s\) pending in \S+, delivered at the next start: (.*)",
        stack.output(),
    )
    assert stopped, stack.output()[-4000:]
    assert "upload" in stopped.group(2)
    assert "inbox/burst-" in stopped.group(2)  # trigger and key named

    restarted = LocalUp(tmp_path / "data", *flags)
    try:
        assert_every_upload_done_once(restarted)
        assert f"delivering {stopped.group(1)} invocation(s)" in restarted.output()
    finally:
        assert restarted.terminate() == 0


def test_every_upload_under_the_prefix_gets_a_visible_record_whatever_its_name(tmp_path):
    # One prefix trigger (s.yaml): upper-case and mixed-case names run, a text file is REJECTED, not lost.
    # `--env` of a setting the stack sets itself (the key) overrides it instead of crashing.
    stack = LocalUp(
        tmp_path / "data",
        "--env",
        "OUTPAINT_DEFAULT_RATIO=16:9",
        "--env",
        f"OUTPAINT_DASHSCOPE_API_KEY={LOCAL_API_KEY}",
    )
    try:
        bucket = stack.bucket()
        bucket.put_object("inbox/camera.PNG", photo(800, 600, fmt="PNG"))
        bucket.put_object("inbox/phone.Jpg", photo(800, 600))
        bucket.put_object("inbox/notes.txt", b"shopping list\n" * 10)
        wait_for(lambda: len(keys(bucket, "outpainted/")) == 2, 30, "both results", stack)
        assert sorted(keys(bucket, "outpainted/")) == ["outpainted/camera.jpg", "outpainted/phone.jpg"]

        def records() -> dict[str, dict]:
            found = {}
            for key in keys(bucket, ".outpaint/jobs/"):
                record = json.loads(bucket.get_object(key).read())
                found[record["source_key"]] = record
            return found

        wait_for(lambda: len(records()) == 3, 10, "three records", stack)
        notes = records()["inbox/notes.txt"]
        assert (notes["state"], notes["error_code"]) == ("REJECTED", "source.not_an_image")
        assert "plain text" in notes["error_message"]
    finally:
        assert stack.terminate() == 0, stack.output()


FAILING_UPLOADS = """\
import sys

sys.path.insert(0, {repo!r})
import handler  # the real handlers

initialize, on_tick, on_dead_letter = handler.initialize, handler.on_tick, handler.on_dead_letter


def on_upload(event, context):
    raise RuntimeError("OSS answered 503 ServiceUnavailable")  # every attempt: FC gives up on the event
"""


def ops_cli(stack: LocalUp, *argv: str) -> subprocess.CompletedProcess:
    """The ops CLI with what the banner exports, as an operator runs it beside `local up`."""
    printed = dict(re.findall(r"export ((?:OUTPAINT|DASHSCOPE)_[A-Z_]+)=(\S+)", stack.output()))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OUTPAINT_", "DASHSCOPE_", "ALIBABA_"))}
    return subprocess.run(
        [sys.executable, "-m", "outpaint", *argv],
        env={**env, **printed},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_an_upload_fc_gives_up_on_becomes_a_dead_letter_and_backfill_finishes_it_with_one_task(tmp_path):
    repo = Path(__file__).resolve().parents[2]
    (tmp_path / "failfc.py").write_text(FAILING_UPLOADS.format(repo=str(repo)))
    text = (repo / "s.yaml").read_text().replace("handler: handler.on_upload", "handler: failfc.on_upload")
    # One retry instead of three: the runner's back-off makes three a 7 s wait.
    text = text.replace("maxAsyncRetryAttempts: 3", "maxAsyncRetryAttempts: 1", 1)
    (tmp_path / "s.yaml").write_text(text)
    stack = LocalUp(tmp_path / "data", "--s-yaml", str(tmp_path / "s.yaml"))
    try:
        bucket = stack.bucket()
        bucket.put_object("inbox/lost.jpg", photo(800, 600), headers={"x-oss-meta-outpaint-ratio": "16:9"})
        wait_for(lambda: keys(bucket, ".outpaint/dead-letters/"), 30, "the dead letter", stack)

        check = ops_cli(stack, "status", "--check")
        assert check.returncode == 1, check.stdout + check.stderr
        assert check.stdout.startswith(
            "WARNING uploads.dead_letters: 1 upload event(s) failed every FC retry"
        )
        [letter] = json.loads(ops_cli(stack, "status", "--json").stdout)["dead_letters"]
        assert letter["keys"] == ["inbox/lost.jpg"]
        assert "OSS answered 503 ServiceUnavailable" in letter["reason"]
        assert not keys(bucket, ".outpaint/jobs/"), "on_upload never got as far as a record"

        replay = ops_cli(stack, "backfill", "--dead-letters", "--drain", "--json")
        assert replay.returncode == 0, replay.stderr
        result = json.loads(replay.stdout)
        # The stack's own timer may finish the job before the drain's poller gets the lease.
        assert (result["replayed"], result["actions"], result["drain"]["active"]) == (1, {"created": 1}, 0)
        wait_for(lambda: keys(bucket, "outpainted/"), 20, "the result", stack)
        assert keys(bucket, "outpainted/") == ["outpainted/lost.jpg"]
        [record] = [json.loads(bucket.get_object(k).read()) for k in keys(bucket, ".outpaint/jobs/")]
        assert (record["state"], len(record["tasks"])) == ("DONE", 1)  # exactly one task
        assert not keys(bucket, ".outpaint/dead-letters/")
        assert ops_cli(stack, "status", "--check").stdout == "OK no alerts\n"
    finally:
        assert stack.terminate() == 0, stack.output()
