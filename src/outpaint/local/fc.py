"""The local Function Compute runner: the s.yaml triggers, delivered like FC delivers them.

* OSS triggers become subscriptions on the OSS emulator with the trigger's events, prefix and suffix;
  timer triggers fire on their cron schedule (or every ``tick_every`` seconds, for development).
* Invocations are asynchronous, as FC's are for both trigger types: each function has a bounded pool of
  workers (``reservedConcurrency``, capped by ``max_concurrency``), so the singleton poller never runs
  twice at once; a timer event that finds the previous one of its trigger still waiting is skipped.
* A failed invocation is retried with exponential backoff up to ``maxAsyncRetryAttempts`` times, then
  dropped and logged (FC would hand it to the onFailure destination); an event that waited longer than
  ``maxAsyncEventAgeInSeconds`` is dropped unrun.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from typing import Any

from outpaint.local import cron
from outpaint.local.invokers import Identity, InvocationFailed, Invoker, fc_headers
from outpaint.local.logs import LogSink, current_component
from outpaint.local.slsyaml import FunctionSpec, OssTrigger, TimerTrigger

DEFAULT_MAX_CONCURRENCY = 4
SUMMARY_CHARS = 200


def new_request_id() -> str:
    """An FC-shaped request id, e.g. ``1-67c2b0a1-0a1b2c3d-4e5f60718293``."""
    tail = uuid.uuid4().hex
    return f"1-{int(time.time()):08x}-{tail[:8]}-{tail[8:20]}"


@dataclass
class _Event:
    function: FunctionSpec
    payload: bytes
    label: str
    request_id: str = field(default_factory=new_request_id)
    born: float = field(default_factory=time.monotonic)
    attempt: int = 0
    timer: str | None = None  # the timer trigger that fired it, for coalescing


def timer_event(trigger: TimerTrigger, when: datetime) -> bytes:
    """FC's timer event (reference §A2): trigger time without milliseconds, payload as a string."""
    moment = when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps(
        {"triggerTime": moment, "triggerName": trigger.name, "payload": trigger.payload}
    ).encode()


class FcRunner:
    """Invokes ``functions`` (by s.yaml resource id) through ``invoker`` the way FC's async path does."""

    def __init__(
        self,
        functions: Mapping[str, FunctionSpec],
        invoker: Invoker,
        identity: Identity,
        sink: LogSink,
        *,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        retry_delay: float = 1.0,
        tick_every: float | None = None,
    ) -> None:
        self.functions = dict(functions)
        self.invoker = invoker
        self.identity = identity
        self.sink = sink
        self.max_concurrency = max_concurrency
        self.retry_delay = retry_delay
        self.tick_every = tick_every
        self.stats: Counter[str] = Counter()
        self._queues: dict[str, queue.Queue[_Event | None]] = {}
        self._threads: list[threading.Thread] = []
        self._waiting_timers: set[str] = set()
        self._retries: set[threading.Timer] = set()
        self._outstanding = 0
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._subscriptions: list[Any] = []

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> FcRunner:
        """Start the function instances, the worker pools and the timers; on any failure, stop what
        was started (the invoker's instances included) before raising."""
        try:
            self.invoker.start(self.functions)
            for function in self.functions.values():
                workers = min(function.reserved_concurrency or self.max_concurrency, self.max_concurrency)
                self._queues[function.resource_id] = queue.Queue()
                for index in range(max(workers, 1)):
                    self._spawn(f"fc-{function.resource_id}-{index}", self._work, function.resource_id)
                for trigger in function.timer_triggers:
                    if trigger.enabled:
                        self._spawn(f"fc-timer-{trigger.name}", self._run_timer, function, trigger)
        except BaseException:
            self.stop(grace=0)
            raise
        return self

    def connect(self, oss: Any) -> None:
        """Subscribe every OSS trigger to ``oss`` (an OssEmulator) with the trigger's filters and the
        bucket of its ``sourceArn`` (every bucket when the ARN names none)."""
        for function in self.functions.values():
            for trigger in function.oss_triggers:
                target = partial(self._on_oss_event, function, trigger)
                self._subscriptions.append(
                    oss.subscribe(
                        target,
                        events=list(trigger.events),
                        prefix=trigger.prefix,
                        suffix=trigger.suffix,
                        bucket=trigger.bucket,
                    )
                )

    def stop(self, grace: float = 5.0) -> None:
        """Stop timers and retries, let running invocations finish for up to ``grace`` seconds."""
        self._stopping.set()
        for subscription in self._subscriptions:
            subscription.unsubscribe()
        self._subscriptions.clear()
        with self._changed:
            for timer in self._retries:
                timer.cancel()
            self._retries.clear()
        for work in self._queues.values():
            for _ in range(self.max_concurrency):
                work.put(None)
        deadline = time.monotonic() + grace
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.invoker.stop()

    def wait_idle(self, timeout: float) -> bool:
        """True once no event is queued, running or waiting for a retry (within ``timeout``)."""
        with self._changed:
            return self._changed.wait_for(lambda: self._outstanding == 0, timeout)

    # --- delivery ------------------------------------------------------------------------------
    def deliver(self, resource_id: str, payload: bytes, label: str = "event") -> str:
        """Queue an asynchronous invocation of ``resource_id``; returns its request id."""
        event = _Event(self.functions[resource_id], payload, label)
        self._enqueue(event)
        return event.request_id

    def _on_oss_event(self, function: FunctionSpec, trigger: OssTrigger, payload: bytes) -> None:
        self._enqueue(_Event(function, payload, f"{trigger.name} {_object_key(payload)}"))

    def _enqueue(self, event: _Event) -> None:
        if self._stopping.is_set():
            return
        with self._changed:
            self._outstanding += 1
        self._queues[event.function.resource_id].put(event)

    def _settle(self) -> None:
        with self._changed:
            self._outstanding -= 1
            self._changed.notify_all()

    # --- timers --------------------------------------------------------------------------------
    def _run_timer(self, function: FunctionSpec, trigger: TimerTrigger) -> None:
        schedule = cron.Every(self.tick_every) if self.tick_every else cron.parse(trigger.cron)
        now = datetime.now(timezone.utc)
        while not self._stopping.is_set():
            fire_at = schedule.next_after(now)
            if self._stopping.wait(max(0.0, (fire_at - datetime.now(timezone.utc)).total_seconds())):
                return
            now = fire_at
            with self._changed:
                if trigger.name in self._waiting_timers:
                    self.stats["timer_skipped"] += 1
                    continue
                self._waiting_timers.add(trigger.name)
            event = _Event(function, timer_event(trigger, fire_at), f"timer {trigger.name}")
            event.timer = trigger.name
            self._enqueue(event)

    # --- workers -------------------------------------------------------------------------------
    def _spawn(self, name: str, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _work(self, resource_id: str) -> None:
        work = self._queues[resource_id]
        while True:
            event = work.get()
            if event is None or self._stopping.is_set():
                return
            if event.timer:
                with self._changed:
                    self._waiting_timers.discard(event.timer)
            try:
                self._run(event)
            finally:
                self._settle()

    def _run(self, event: _Event) -> None:
        function = event.function
        token = current_component.set(function.resource_id)
        try:
            age = time.monotonic() - event.born
            if age > function.max_event_age_seconds:
                self.stats["dropped"] += 1
                self._log(
                    function,
                    f"{event.request_id} dropped unrun: waited {age:.0f}s "
                    f"> maxAsyncEventAgeInSeconds {function.max_event_age_seconds}",
                )
                return
            self._invoke(event)
        finally:
            current_component.reset(token)

    def _invoke(self, event: _Event) -> None:
        function = event.function
        headers = fc_headers(function, self.identity, event.request_id, path="/invoke", retry=event.attempt)
        retry_note = f" (retry {event.attempt})" if event.attempt else ""
        self._log(function, f"{event.request_id} invoke {event.label}{retry_note}")
        self.stats["invocations"] += 1
        started = time.monotonic()
        try:
            result = self.invoker.invoke(function, event.payload, headers)
        except InvocationFailed as exc:
            self.stats["failures"] += 1
            self._failed(event, str(exc))
            return
        took = time.monotonic() - started
        self.stats["succeeded"] += 1
        over = f" (over the {function.timeout}s timeout)" if took > function.timeout else ""
        self._log(function, f"{event.request_id} done in {took:.2f}s{over}: {_summary(result)}")

    def _failed(self, event: _Event, message: str) -> None:
        function = event.function
        if event.attempt >= function.max_async_retries or self._stopping.is_set():
            self.stats["dropped"] += 1
            self._log(
                function,
                f"{event.request_id} failed: {message}; dropped after {event.attempt + 1} "
                "attempt(s) (FC would send it to the onFailure destination)",
            )
            return
        delay = self.retry_delay * 2**event.attempt
        event.attempt += 1
        self.stats["retries"] += 1
        self._log(
            function,
            f"{event.request_id} failed: {message}; retry {event.attempt}/"
            f"{function.max_async_retries} in {delay:.1f}s",
        )
        with self._changed:
            self._outstanding += 1
            timer = threading.Timer(delay, self._retry, args=(event,))
            timer.daemon = True
            self._retries.add(timer)
        timer.start()

    def _retry(self, event: _Event) -> None:
        with self._changed:
            self._retries.discard(threading.current_thread())  # type: ignore[arg-type]
        self._enqueue(event)
        self._settle()  # the retry's own count, after the event is queued again

    def _log(self, function: FunctionSpec, message: str) -> None:
        self.sink.emit(function.resource_id, message)


def _object_key(payload: bytes) -> str:
    try:
        return str(json.loads(payload)["events"][0]["oss"]["object"]["key"])
    except (ValueError, KeyError, IndexError, TypeError):
        return "(unreadable event)"


def _summary(result: Any) -> str:
    text = json.dumps(result, default=str, separators=(",", ":"))
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 3] + "..."
