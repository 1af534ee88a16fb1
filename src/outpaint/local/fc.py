"""The local Function Compute runner: the s.yaml triggers, delivered like FC delivers them.

* OSS triggers become subscriptions on the OSS emulator with the trigger's events, prefix and suffix;
  timer triggers fire on their cron schedule (or every ``tick_every`` seconds, for development).
* Invocations are asynchronous, as FC's are for both trigger types: each function has a bounded pool of
  workers (``reservedConcurrency``, capped by ``max_concurrency``), so the singleton poller never runs
  twice at once; a timer event that finds the previous one of its trigger still waiting is skipped.
* A failed invocation is retried with exponential backoff up to ``maxAsyncRetryAttempts`` times; an
  event that waited longer than ``maxAsyncEventAgeInSeconds`` is not run. Either is then handed to the
  function's onFailure destination when that is a function of s.yaml (an asynchronous invocation with
  FC's destination record, :func:`destination_record`), else dropped and logged.
* With a :class:`~outpaint.local.spool.Spool`, OSS events, retries and destination deliveries are
  durable, as FC's async queue is: what a stop or a crash left pending is delivered at the next start.
  Timer events are not kept: the next tick does their work.
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
from outpaint.local.spool import PendingEvent, Spool

DEFAULT_MAX_CONCURRENCY = 4
SUMMARY_CHARS = 200
SHOWN_PENDING = 10  # pending events named one by one in the stop log line
# FC's names for why an invocation went to its onFailure destination.
RETRIES_EXHAUSTED = "UnhandledInvocationError"
EVENT_AGE_EXCEEDED = "MaxEventAgeExceeded"


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
    born: float = field(default_factory=time.time)
    attempt: int = 0
    timer: str | None = None  # the timer trigger that fired it, for coalescing (never spooled)

    def pending(self, not_before: float = 0.0) -> PendingEvent:
        """This event as the spool keeps it; ``not_before``: when its next attempt is due."""
        return PendingEvent(
            request_id=self.request_id,
            function=self.function.resource_id,
            payload=self.payload,
            label=self.label,
            born=self.born,
            attempt=self.attempt,
            not_before=not_before,
        )


def function_arn(function: FunctionSpec, identity: Identity) -> str:
    """The FC 3.0 ARN of ``function``: ``acs:fc:<region>:<account>:functions/<name>``."""
    return f"acs:fc:{function.region}:{identity.account_id}:functions/{function.name}"


def destination_record(event: _Event, identity: Identity, condition: str, error: str, attempts: int) -> bytes:
    """What FC hands an onFailure destination function (docs/local-stack.md has the source)."""
    return json.dumps(
        {
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "requestContext": {
                "requestId": event.request_id,
                "functionArn": function_arn(event.function, identity),
                "condition": condition,
                "approximateInvokeCount": attempts,
            },
            "requestPayload": event.payload.decode("utf-8", "replace"),
            "responseContext": {"statusCode": 200 if attempts else 0, "functionError": condition},
            "responsePayload": error,
        }
    ).encode()


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
        spool: Spool | None = None,
    ) -> None:
        self.functions = dict(functions)
        self.invoker = invoker
        self.identity = identity
        self.sink = sink
        self.max_concurrency = max_concurrency
        self.retry_delay = retry_delay
        self.tick_every = tick_every
        self.spool = spool
        self._by_name = {function.name: function for function in self.functions.values()}
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
                self._check_destination(function)
            self._recover()
        except BaseException:
            self.stop(grace=0)
            raise
        return self

    def _check_destination(self, function: FunctionSpec) -> None:
        destination = function.on_failure
        if destination is None or self._destination(function) is not None:
            return
        why = (
            f"function {destination.function} is not in s.yaml"
            if destination.function
            else "the local runner delivers only to functions"
        )
        self._log(function, f"onFailure destination {destination.arn}: {why}; failures are logged only")

    def _recover(self) -> None:
        """Queue what the spool kept from a previous run, each retry after its remaining backoff."""
        if self.spool is None:
            return
        now, recovered = time.time(), 0
        for pending in self.spool.load():
            function = self.functions.get(pending.function)
            if function is None:
                gone = f"{pending.request_id} dropped: {pending.function} is no longer in s.yaml"
                self.sink.emit("fc", gone)
                self.spool.remove(pending.request_id)
                continue
            recovered += 1
            event = _Event(
                function, pending.payload, pending.label, pending.request_id, pending.born, pending.attempt
            )
            with self._changed:
                self._outstanding += 1
            self._schedule(event, max(0.0, pending.not_before - now))
        if recovered:
            self.sink.emit("fc", f"delivering {recovered} invocation(s) left pending by the previous run")

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
        self._report_pending()

    def _report_pending(self) -> None:
        if self.spool is None:
            return
        pending = self.spool.load()
        if not pending:
            return
        shown = "; ".join(f"{p.request_id} {p.function} {p.label}" for p in pending[:SHOWN_PENDING])
        more = f"; and {len(pending) - SHOWN_PENDING} more" if len(pending) > SHOWN_PENDING else ""
        self.sink.emit(
            "fc",
            f"stopped with {len(pending)} invocation(s) pending in {self.spool.directory}, "
            f"delivered at the next start: {shown}{more}",
        )

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
        self._keep(event)
        if self._stopping.is_set():
            return  # kept for the next start (a timer event is not: the next tick does its work)
        with self._changed:
            self._outstanding += 1
        self._queues[event.function.resource_id].put(event)

    def _keep(self, event: _Event, not_before: float = 0.0) -> None:
        if self.spool is not None and event.timer is None:
            self.spool.put(event.pending(not_before))

    def _forget(self, event: _Event) -> None:
        if self.spool is not None and event.timer is None:
            self.spool.remove(event.request_id)

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
            age = time.time() - event.born
            if age > function.max_event_age_seconds:
                reason = f"waited {age:.0f}s > maxAsyncEventAgeInSeconds {function.max_event_age_seconds}"
                self._give_up(event, EVENT_AGE_EXCEEDED, reason, f"not run: {reason}")
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
        self._forget(event)
        self.stats["succeeded"] += 1
        over = f" (over the {function.timeout}s timeout)" if took > function.timeout else ""
        self._log(function, f"{event.request_id} done in {took:.2f}s{over}: {_summary(result)}")

    def _failed(self, event: _Event, message: str) -> None:
        function = event.function
        if event.attempt >= function.max_async_retries:
            what = f"failed: {message}; after {event.attempt + 1} attempt(s)"
            self._give_up(event, RETRIES_EXHAUSTED, message, what)
            return
        delay = self.retry_delay * 2**event.attempt
        event.attempt += 1
        self._keep(event, not_before=time.time() + delay)
        if self._stopping.is_set():
            self._log(function, f"{event.request_id} failed: {message}; retry {event.attempt} after restart")
            return
        self.stats["retries"] += 1
        self._log(
            function,
            f"{event.request_id} failed: {message}; retry {event.attempt}/"
            f"{function.max_async_retries} in {delay:.1f}s",
        )
        with self._changed:
            self._outstanding += 1
        self._schedule(event, delay)

    def _give_up(self, event: _Event, condition: str, error: str, what: str) -> None:
        """Hand ``event`` to its function's onFailure destination, or drop it; either way it is done."""
        destination = self._destination(event.function)
        if destination is None:
            self.stats["dropped"] += 1
            self._log(event.function, f"{event.request_id} {what}; dropped")
        else:
            attempts = event.attempt + 1 if condition == RETRIES_EXHAUSTED else 0
            record = destination_record(event, self.identity, condition, error, attempts)
            dead_letter = _Event(destination, record, f"onFailure of {event.request_id}")
            self.stats["dead_letters"] += 1
            self._log(
                event.function,
                f"{event.request_id} {what}; sent to onFailure {destination.resource_id} "
                f"as {dead_letter.request_id}",
            )
            self._enqueue(dead_letter)  # kept before the event is forgotten: delivered at least once
        self._forget(event)

    def _destination(self, function: FunctionSpec) -> FunctionSpec | None:
        destination = function.on_failure
        return self._by_name.get(destination.function) if destination and destination.function else None

    def _schedule(self, event: _Event, delay: float) -> None:
        """Queue ``event`` after ``delay`` seconds (its ``_outstanding`` count is already taken)."""
        with self._changed:
            timer = threading.Timer(delay, self._retry, args=(event,))
            timer.daemon = True
            self._retries.add(timer)
        timer.start()

    def _retry(self, event: _Event) -> None:
        with self._changed:
            self._retries.discard(threading.current_thread())  # type: ignore[arg-type]
        if not self._stopping.is_set():
            with self._changed:
                self._outstanding += 1
            self._queues[event.function.resource_id].put(event)  # already kept with its retry state
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
