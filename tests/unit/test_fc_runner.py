"""The local FC runner: OSS events and timers reach handlers the way FC delivers them (in-process)."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import sys
import threading
import time
import types
from pathlib import Path

import httpx
import oss2
import pytest

from outpaint.events import parse_failed_invocation
from outpaint.local import invokers
from outpaint.local.fc import FcRunner
from outpaint.local.invokers import CustomRuntimeInvoker, Identity, InProcessInvoker, RunnerError
from outpaint.local.logs import LogSink
from outpaint.local.oss import OssEmulator
from outpaint.local.slsyaml import load_functions
from outpaint.local.spool import Spool

AK, SK, ACCOUNT = "LTAI-runner-test", "runner-test-secret", "1234567890123456"
IDENTITY = Identity(ACCOUNT, "cn-beijing", AK, SK)

S_YAML = """\
edition: 3.0.0
vars:
  prefix: inbox/
resources:
  on-upload:
    component: fc3
    props:
      region: cn-beijing
      functionName: fake-upload
      handler: fakefc.on_upload
      timeout: 60
      memorySize: 512
      environmentVariables: {FAKE_SETTING: from-s-yaml}
      instanceLifecycleConfig: {initializer: {handler: fakefc.initialize, timeout: 10}}
      asyncInvokeConfig: {maxAsyncRetryAttempts: 2}
      triggers:
        - triggerName: upload-jpg
          triggerType: oss
          sourceArn: acs:oss:cn-beijing:${config('AccountID')}:bkt
          triggerConfig:
            events: [oss:ObjectCreated:PutObject]
            filter: {key: {prefix: '${vars.prefix}', suffix: .jpg}}
  on-tick:
    component: fc3
    props:
      region: cn-beijing
      functionName: fake-tick
      handler: fakefc.on_tick
      timeout: 90
      environmentVariables: {FAKE_SETTING: from-s-yaml}
      concurrencyConfig: {reservedConcurrency: 1}
      asyncInvokeConfig: {maxAsyncRetryAttempts: 0}
      triggers:
        - triggerName: poller
          triggerType: timer
          triggerConfig: {cronExpression: '0 * * * * *', enable: true, payload: '{"action": "tick"}'}
"""


class Fake:
    """The handler module the s.yaml above names; records each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes, object, float, str | None]] = []
        self.initialized = 0
        self.failures_left = 0
        self.tick_seconds = 0.0
        self.active = self.max_active = 0
        self.lock = threading.Lock()

    def module(self) -> types.ModuleType:
        module = types.ModuleType("fakefc")
        module.initialize = self.initialize
        module.on_upload = self.on_upload
        module.on_tick = self.on_tick
        return module

    def initialize(self, context):
        self.initialized += 1

    def on_upload(self, event, context):
        self.calls.append(("on_upload", event, context, time.monotonic(), os.environ.get("FAKE_SETTING")))
        if self.failures_left:
            self.failures_left -= 1
            raise RuntimeError("handler failed on purpose")
        return {"ok": True}

    def on_tick(self, event, context):
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        self.calls.append(("on_tick", event, context, time.monotonic(), None))
        time.sleep(self.tick_seconds)
        with self.lock:
            self.active -= 1
        return {}


@pytest.fixture
def fake(monkeypatch):
    fake = Fake()
    monkeypatch.setitem(sys.modules, "fakefc", fake.module())
    return fake


@pytest.fixture
def make_runner(tmp_path: Path):
    runners = []
    (tmp_path / "s.yaml").write_text(S_YAML)

    def make(**options):
        functions = load_functions(tmp_path / "s.yaml", {}, {"AccountID": ACCOUNT})
        log = io.StringIO()
        invoker = InProcessInvoker(IDENTITY, tmp_path, lambda f: dict(f.environment))
        runner = FcRunner(functions, invoker, IDENTITY, LogSink(log), **options)
        runner.log = log
        runners.append(runner)
        return runner.start()

    def environment():
        return {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}

    before = environment()
    yield make
    for runner in runners:
        runner.stop(grace=2)
    assert environment() == before  # the in-process invoker gave the environment back


def test_an_oss_upload_reaches_on_upload_with_an_fc_context(tmp_path, fake, make_runner):
    runner = make_runner(tick_every=3600)
    with OssEmulator(
        tmp_path / "oss",
        buckets=["bkt", "other"],
        access_key_id=AK,
        access_key_secret=SK,
        region="cn-beijing",
        account_id=ACCOUNT,
    ) as oss:
        runner.connect(oss)
        bucket = oss2.Bucket(oss2.Auth(AK, SK), oss.endpoint, "bkt")
        for key in ("inbox/a.jpg", "inbox/a.txt", "elsewhere/b.jpg"):
            bucket.put_object(key, b"not really an image")
        # The trigger's sourceArn names bkt: an upload to another bucket is not its event.
        oss2.Bucket(oss2.Auth(AK, SK), oss.endpoint, "other").put_object("inbox/c.jpg", b"x")
        assert oss.drain_notifications(5)
        assert runner.wait_idle(5)

    [(name, event, context, _, setting)] = fake.calls
    record = json.loads(event)["events"][0]
    assert (name, record["eventName"], record["oss"]["object"]["key"]) == (
        "on_upload",
        "ObjectCreated:PutObject",
        "inbox/a.jpg",
    )
    assert re.fullmatch(r"1-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{12}", context.request_id)
    assert (context.function.name, context.function.handler, context.function.timeout) == (
        "fake-upload",
        "fakefc.on_upload",
        60,
    )
    assert context.function.memory == "512"
    assert (context.credentials.access_key_id, context.credentials.access_key_secret) == (AK, SK)
    assert (context.region, context.account_id) == ("cn-beijing", ACCOUNT)
    assert setting == "from-s-yaml"  # the function's environment from s.yaml
    assert fake.initialized == 1  # the initializer ran once, at start
    assert runner.stats["succeeded"] == 1


def test_a_failing_invocation_is_retried_with_backoff_then_dropped(fake, make_runner):
    fake.failures_left = 99
    runner = make_runner(tick_every=3600, retry_delay=0.05)

    request_id = runner.deliver("on-upload", b'{"events": []}', "test event")
    assert runner.wait_idle(5)

    assert len(fake.calls) == 3  # the first attempt + maxAsyncRetryAttempts (2)
    assert {call[2].request_id for call in fake.calls} == {request_id}
    first, second, third = (call[3] for call in fake.calls)
    assert second - first >= 0.05
    assert third - second >= 0.1  # exponential backoff
    assert (runner.stats["retries"], runner.stats["dropped"], runner.stats["succeeded"]) == (2, 1, 0)
    log = runner.log.getvalue()
    assert "RuntimeError: handler failed on purpose; retry 1/2 in 0.1s" in log
    assert "after 3 attempt(s); dropped" in log


def test_a_handler_that_recovers_on_a_retry_is_not_dropped(fake, make_runner):
    fake.failures_left = 1
    runner = make_runner(tick_every=3600, retry_delay=0.01)

    runner.deliver("on-upload", b"{}")
    assert runner.wait_idle(5)

    assert len(fake.calls) == 2
    assert (runner.stats["retries"], runner.stats["dropped"], runner.stats["succeeded"]) == (1, 0, 1)


def test_the_timer_fires_with_fc_timer_events_and_the_poller_never_runs_twice(fake, make_runner):
    fake.tick_seconds = 0.3
    runner = make_runner(tick_every=0.05)
    time.sleep(1.2)
    runner.stop(grace=2)

    ticks = [call for call in fake.calls if call[0] == "on_tick"]
    assert 2 <= len(ticks) <= 5
    assert fake.max_active == 1  # reservedConcurrency 1
    assert runner.stats["timer_skipped"] > 0  # fires that found the previous one still waiting
    event = json.loads(ticks[0][1])
    assert event["triggerName"] == "poller"
    assert event["payload"] == '{"action": "tick"}'
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["triggerTime"])


class _RefusingInvoker:
    """An invoker whose instances fail to start (a bad initializer, a runtime that exits)."""

    def __init__(self) -> None:
        self.stopped = 0

    def start(self, functions) -> None:
        raise RunnerError("on-upload: initializer failed: boom")

    def invoke(self, function, event, headers):  # pragma: no cover - never reached
        raise AssertionError

    def stop(self) -> None:
        self.stopped += 1


def test_a_runner_that_fails_to_start_stops_its_invoker(tmp_path):
    (tmp_path / "s.yaml").write_text(S_YAML)
    functions = load_functions(tmp_path / "s.yaml", {}, {"AccountID": ACCOUNT})
    invoker = _RefusingInvoker()
    runner = FcRunner(functions, invoker, IDENTITY, LogSink(io.StringIO()), tick_every=0.01)

    with pytest.raises(RunnerError, match="initializer failed"):
        runner.start()

    assert invoker.stopped == 1
    assert not any(thread.is_alive() for thread in runner._threads)


class _FakeProcess:
    def __init__(self, *args, **kwargs) -> None:
        self.stdout = io.BytesIO()
        self.terminated = self.waited = False
        self.returncode = None

    def poll(self):
        return self.returncode

    def terminate(self) -> None:
        self.terminated = True

    def wait(self, timeout=None) -> int:
        self.waited = True
        return 0

    def kill(self) -> None:  # pragma: no cover - wait() answers at once
        pass


def test_custom_runtime_stops_the_instances_it_started_when_one_fails(tmp_path, monkeypatch):
    (tmp_path / "s.yaml").write_text(S_YAML)
    functions = load_functions(tmp_path / "s.yaml", {}, {"AccountID": ACCOUNT})
    started: list[_FakeProcess] = []

    def popen(*args, **kwargs):
        started.append(_FakeProcess())
        return started[-1]

    def wait_for_port(port, process):
        if len(started) == 2:  # the second function's runtime never comes up
            raise RunnerError(f"the runtime on port {port} exited with status 1")

    monkeypatch.setattr(invokers.subprocess, "Popen", popen)
    monkeypatch.setattr(invokers, "wait_for_port", wait_for_port)
    monkeypatch.setattr(httpx, "post", lambda *args, **kwargs: httpx.Response(200))  # /initialize
    invoker = CustomRuntimeInvoker(IDENTITY, tmp_path, lambda f: dict(f.environment), LogSink(io.StringIO()))

    with pytest.raises(RunnerError, match="exited with status 1"):
        invoker.start(functions)

    assert len(started) == 2
    assert all(process.terminated and process.waited for process in started)
    assert invoker._instances == {}


DEAD_LETTER_S_YAML = """\
edition: 3.0.0
resources:
  always-fails:
    component: fc3
    props:
      region: cn-beijing
      functionName: always-fails
      handler: fakefc.fails
      asyncInvokeConfig:
        maxAsyncRetryAttempts: 1
        destinationConfig:
          onFailure:
            destination: acs:fc:cn-beijing:${config('AccountID')}:functions/dead-letter
  dead-letter:
    component: fc3
    props:
      region: cn-beijing
      functionName: dead-letter
      handler: fakefc.dead_letter
      asyncInvokeConfig: {maxAsyncRetryAttempts: 2}
"""


class DeadLetters:
    """A function that always fails, and a destination that records what it got (and can fail)."""

    def __init__(self) -> None:
        self.failed: list[bytes] = []
        self.received: list[tuple[dict, object]] = []
        self.refusals_left = 0
        self.refused = threading.Event()

    def module(self) -> types.ModuleType:
        module = types.ModuleType("fakefc")
        module.fails = self.fails
        module.dead_letter = self.dead_letter
        return module

    def fails(self, event, context):
        self.failed.append(event)
        raise ValueError("bad input on purpose")

    def dead_letter(self, event, context):
        if self.refusals_left:
            self.refusals_left -= 1
            self.refused.set()
            raise RuntimeError("destination down on purpose")
        self.received.append((json.loads(event), context))
        return {}


@pytest.fixture
def dead_letters(tmp_path, monkeypatch):
    letters = DeadLetters()
    monkeypatch.setitem(sys.modules, "fakefc", letters.module())
    (tmp_path / "s.yaml").write_text(DEAD_LETTER_S_YAML)
    return letters


def spooled_runner(tmp_path: Path, **options) -> FcRunner:
    functions = load_functions(tmp_path / "s.yaml", {}, {"AccountID": ACCOUNT})
    invoker = InProcessInvoker(IDENTITY, tmp_path, lambda f: dict(f.environment))
    log = io.StringIO()
    runner = FcRunner(
        functions, invoker, IDENTITY, LogSink(log), spool=Spool(tmp_path / "pending"), **options
    )
    runner.log = log
    return runner.start()


def test_an_invocation_that_fails_all_its_retries_goes_to_its_on_failure_function(tmp_path, dead_letters):
    runner = spooled_runner(tmp_path, retry_delay=0.05)
    try:
        request_id = runner.deliver("always-fails", b'{"events": ["an upload"]}', "test event")
        assert runner.wait_idle(5)
    finally:
        runner.stop(grace=2)

    assert len(dead_letters.failed) == 2  # the first attempt + maxAsyncRetryAttempts (1)
    [(record, context)] = dead_letters.received
    assert record["requestContext"] == {
        "requestId": request_id,
        "functionArn": f"acs:fc:cn-beijing:{ACCOUNT}:functions/always-fails",
        "condition": "UnhandledInvocationError",
        "approximateInvokeCount": 2,
    }
    assert record["requestPayload"] == '{"events": ["an upload"]}'
    assert record["responseContext"] == {"statusCode": 200, "functionError": "UnhandledInvocationError"}
    assert record["responsePayload"] == "ValueError: bad input on purpose"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["timestamp"])
    assert context.function.name == "dead-letter"
    assert context.request_id != request_id  # an invocation of its own
    assert (runner.stats["dead_letters"], runner.stats["dropped"]) == (1, 0)
    assert (
        f"{request_id} failed: ValueError: bad input on purpose; after 2 attempt(s); sent to onFailure"
        in (runner.log.getvalue())
    )
    assert list((tmp_path / "pending").iterdir()) == []  # nothing left once delivered
    # The pipeline's dead-letter handler reads the record as FC's.
    failed = parse_failed_invocation(json.dumps(record).encode())
    assert (failed.request_id, failed.condition, failed.invoke_count) == (
        request_id,
        "UnhandledInvocationError",
        2,
    )
    assert failed.error == "ValueError: bad input on purpose"
    assert failed.payload == {"events": ["an upload"]}


def test_an_event_too_old_to_run_goes_to_the_destination_unrun(tmp_path, dead_letters):
    runner = spooled_runner(tmp_path)
    try:
        runner.functions["always-fails"] = dataclasses.replace(
            runner.functions["always-fails"], max_event_age_seconds=0
        )
        runner.deliver("always-fails", b"{}")
        assert runner.wait_idle(5)
    finally:
        runner.stop(grace=2)

    assert dead_letters.failed == []
    [(record, _)] = dead_letters.received
    assert record["requestContext"]["condition"] == "MaxEventAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 0


def test_a_destination_delivery_waiting_for_its_retry_survives_a_stop(tmp_path, dead_letters):
    dead_letters.refusals_left = 1
    runner = spooled_runner(tmp_path, retry_delay=0.5)
    request_id = runner.deliver("always-fails", b'{"key": "inbox/a.jpg"}', "test event")
    try:
        assert dead_letters.refused.wait(5)  # the destination's first attempt failed: its retry waits
    finally:
        runner.stop(grace=2)
    assert dead_letters.received == []
    stop_line = runner.log.getvalue().splitlines()[-1]
    assert f"stopped with 1 invocation(s) pending in {tmp_path / 'pending'}" in stop_line
    assert f"dead-letter onFailure of {request_id}" in stop_line

    restarted = spooled_runner(tmp_path, retry_delay=0.05)
    try:
        assert restarted.wait_idle(5)
    finally:
        restarted.stop(grace=2)
    [(record, _)] = dead_letters.received
    assert record["requestContext"]["requestId"] == request_id
    assert record["requestPayload"] == '{"key": "inbox/a.jpg"}'
    assert "delivering 1 invocation(s) left pending by the previous run" in restarted.log.getvalue()
    assert len(dead_letters.failed) == 2  # the failed function was not run again
    assert list((tmp_path / "pending").iterdir()) == []


def test_queued_events_survive_a_stop_and_keep_their_request_ids(tmp_path, fake, make_runner):
    release = threading.Event()
    runner = make_runner(tick_every=3600, spool=Spool(tmp_path / "pending"))

    def slow(event, context):  # holds every worker, so the rest of the burst waits in the queue
        release.wait(5)
        return fake.on_upload(event, context)

    runner.invoker._handlers["fakefc.on_upload"] = slow
    ids = [runner.deliver("on-upload", f'{{"n": {n}}}'.encode(), f"event {n}") for n in range(6)]
    runner.stop(grace=0)
    release.set()  # the running ones finish after the stop and are forgotten then
    assert "stopped with 6 invocation(s) pending" in runner.log.getvalue()
    deadline = time.monotonic() + 5
    while len(list((tmp_path / "pending").iterdir())) > 2 and time.monotonic() < deadline:
        time.sleep(0.02)

    restarted = make_runner(tick_every=3600, spool=Spool(tmp_path / "pending"))
    assert restarted.wait_idle(5)
    delivered = [call[2].request_id for call in fake.calls if call[0] == "on_upload"]
    assert sorted(set(delivered)) == sorted(ids)  # every one, the queued ones after the restart
    assert restarted.stats["succeeded"] == 2  # 6 events, 4 workers: two never started before the stop
    assert list((tmp_path / "pending").iterdir()) == []
