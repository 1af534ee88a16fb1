"""Event notifications: FC OSS-trigger events, matched like native triggers, delivered at least once.

Each subscription has its own worker thread, so a slow or unreachable subscriber never delays another.
Failures are retried with exponential backoff, the way FC treats asynchronous invocations:

* a subscriber that cannot be reached (connection refused, timeout, HTTP 429/502/503/504) is retried
  until the event is ``retry_window`` seconds old, so it gets the event once it comes back;
* a subscriber that was reached but failed (callable raised, any other non-2xx) is retried
  ``max_retries`` more times, like FC's ``maxAsyncRetryAttempts`` (default 3).

Pending deliveries live in memory: stopping the emulator drops them (they are logged).
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import httpx

from .wire import iso_time

log = logging.getLogger(__name__)

EVENT_TYPES = {
    "ObjectCreated": (
        "PutObject",
        "PostObject",
        "CopyObject",
        "InitiateMultipartUpload",
        "UploadPart",
        "UploadPartCopy",
        "CompleteMultipartUpload",
        "AppendObject",
        "PutSymlink",
    ),
    "ObjectRemoved": ("DeleteObject", "DeleteObjects", "AbortMultipartUpload"),
}
_UNREACHABLE_STATUSES = {429, 502, 503, 504}


@dataclass(frozen=True)
class ObjectEvent:
    """What happened to one object; rendered into FC's event JSON per subscription."""

    name: str  # without the "oss:" prefix, e.g. "ObjectCreated:PutObject"
    bucket: str
    key: str
    size: int
    delta_size: int
    etag: str
    time: float
    request_id: str
    source_ip: str
    mime_type: str | None = None  # objectMeta is only sent for ObjectCreated events
    user_meta: dict[str, str] | None = None


class DeliveryError(Exception):
    """The subscriber failed the delivery; ``unreachable`` tells a down subscriber from a failing one."""

    def __init__(self, message: str, *, unreachable: bool) -> None:
        super().__init__(message)
        self.unreachable = unreachable


def parse_event_patterns(events: Iterable[str]) -> frozenset[str]:
    """Validate trigger-style names (``oss:ObjectCreated:PutObject``, ``oss:ObjectCreated:*``)."""
    patterns = set()
    for event in events:
        scheme, _, name = event.partition(":")
        category, _, action = name.partition(":")
        if (
            scheme != "oss"
            or category not in EVENT_TYPES
            or (action != "*" and action not in EVENT_TYPES[category])
        ):
            known = ", ".join(f"oss:{c}:{a}" for c, actions in EVENT_TYPES.items() for a in ("*", *actions))
            raise ValueError(f"unknown OSS event {event!r}; known: {known}")
        patterns.add(name)
    if not patterns:
        raise ValueError("a subscription needs at least one event")
    return frozenset(patterns)


class Subscription:
    """A notification rule: which events and keys go to which target. Call :meth:`unsubscribe` to stop."""

    def __init__(
        self,
        notifier: Notifier,
        target: Callable[[bytes], object] | str,
        *,
        events: frozenset[str],
        prefix: str,
        suffix: str,
        bucket: str | None,
    ) -> None:
        self.rule_id = os.urandom(20).hex()
        self.target = target
        self.events = events
        self.prefix = prefix
        self.suffix = suffix
        self.bucket = bucket
        self._notifier = notifier
        self._queue: list[tuple[float, int, _Delivery]] = []
        self._wakeup = threading.Condition()
        self._closed = False
        self._client = httpx.Client(timeout=30.0) if isinstance(target, str) else None
        self._thread = threading.Thread(target=self._run, name=f"oss-notify-{self.rule_id[:8]}", daemon=True)
        self._thread.start()

    def matches(self, event: ObjectEvent) -> bool:
        category = event.name.partition(":")[0]
        return (
            (self.bucket is None or self.bucket == event.bucket)
            and (event.name in self.events or f"{category}:*" in self.events)
            and event.key.startswith(self.prefix)
            and event.key.endswith(self.suffix)
        )

    def unsubscribe(self) -> None:
        """Stop delivering; events not yet delivered to this subscription are dropped."""
        self._notifier.remove(self)
        with self._wakeup:
            self._closed = True
            dropped = len(self._queue)
            self._queue.clear()
            self._wakeup.notify()
        self._notifier.settle(dropped)
        if dropped:
            log.warning("dropped %d undelivered event(s) for %s", dropped, self.describe())
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=35.0)
        if self._client is not None:
            self._client.close()

    def describe(self) -> str:
        return (
            self.target if isinstance(self.target, str) else getattr(self.target, "__qualname__", "callable")
        )

    def enqueue(self, payload: bytes, event: ObjectEvent) -> None:
        delivery = _Delivery(
            payload=payload, label=f"{event.name} {event.bucket}/{event.key}", born=time.monotonic()
        )
        self._schedule(delivery, delivery.born)

    def _schedule(self, delivery: _Delivery, due: float) -> None:
        with self._wakeup:
            heapq.heappush(self._queue, (due, next(_sequence), delivery))
            self._wakeup.notify()

    def _run(self) -> None:
        while True:
            with self._wakeup:
                while not self._closed and (not self._queue or self._queue[0][0] > time.monotonic()):
                    timeout = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._wakeup.wait(timeout)
                if self._closed:
                    return
                _, _, delivery = heapq.heappop(self._queue)
            self._attempt(delivery)

    def _attempt(self, delivery: _Delivery) -> None:
        delivery.attempts += 1
        try:
            self._deliver(delivery.payload)
        except DeliveryError as exc:
            retry_at = self._notifier.next_retry(delivery, unreachable=exc.unreachable)
            if retry_at is None or self._closed:
                log.error(
                    "gave up delivering %s to %s after %d attempt(s): %s",
                    delivery.label,
                    self.describe(),
                    delivery.attempts,
                    exc,
                )
                self._notifier.settle(1)
            else:
                log.warning(
                    "delivering %s to %s failed (attempt %d, retrying in %.1fs): %s",
                    delivery.label,
                    self.describe(),
                    delivery.attempts,
                    retry_at - time.monotonic(),
                    exc,
                )
                self._schedule(delivery, retry_at)
        else:
            log.info("delivered %s to %s", delivery.label, self.describe())
            self._notifier.settle(1)

    def _deliver(self, payload: bytes) -> None:
        if self._client is None:
            try:
                self.target(payload)  # type: ignore[operator]
            except Exception as exc:
                raise DeliveryError(f"{type(exc).__name__}: {exc}", unreachable=False) from exc
            return
        try:
            response = self._client.post(
                self.target,  # type: ignore[arg-type]
                content=payload,
                headers={"Content-Type": "application/octet-stream"},
            )
        except httpx.TransportError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}", unreachable=True) from exc
        if not response.is_success:
            raise DeliveryError(
                f"HTTP {response.status_code}", unreachable=response.status_code in _UNREACHABLE_STATUSES
            )


@dataclass
class _Delivery:
    payload: bytes
    label: str
    born: float
    attempts: int = 0
    failures: int = 0  # failures of a reachable subscriber, counted against max_retries


_sequence = itertools.count()


class Notifier:
    """Fans object events out to matching subscriptions and tracks what is still undelivered."""

    def __init__(
        self,
        *,
        region: str,
        account_id: str,
        max_retries: int = 3,
        retry_window: float = 3600.0,
        backoff: tuple[float, float] = (0.5, 5.0),
    ) -> None:
        self.region = region
        self.account_id = account_id
        self.max_retries = max_retries
        self.retry_window = retry_window
        self.backoff = backoff
        self._subscriptions: list[Subscription] = []
        self._pending = 0
        self._lock = threading.Condition()

    def subscribe(
        self,
        target: Callable[[bytes], object] | str,
        events: Iterable[str],
        prefix: str = "",
        suffix: str = "",
        bucket: str | None = None,
    ) -> Subscription:
        if not (callable(target) or (isinstance(target, str) and target.startswith(("http://", "https://")))):
            raise ValueError("a subscriber is a callable taking bytes or an http(s):// URL")
        subscription = Subscription(
            self, target, events=parse_event_patterns(events), prefix=prefix, suffix=suffix, bucket=bucket
        )
        with self._lock:
            self._subscriptions.append(subscription)
        return subscription

    def remove(self, subscription: Subscription) -> None:
        with self._lock:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)

    def publish(self, event: ObjectEvent) -> None:
        """Queue ``event`` for every matching subscription (returns at once)."""
        with self._lock:
            matched = [s for s in self._subscriptions if s.matches(event)]
            self._pending += len(matched)
        for subscription in matched:
            subscription.enqueue(self.render(event, subscription.rule_id), event)

    def render(self, event: ObjectEvent, rule_id: str) -> bytes:
        """FC's OSS-trigger event JSON (one record), as the bytes a handler receives."""
        obj: dict[str, object] = {
            "deltaSize": event.delta_size,
            "eTag": event.etag,
            "key": event.key,
            "size": event.size,
        }
        if event.mime_type is not None:
            obj["objectMeta"] = {"mimeType": event.mime_type, "userMeta": event.user_meta or {}}
        record = {
            "eventName": event.name,
            "eventSource": "acs:oss",
            "eventTime": iso_time(event.time),
            "eventVersion": "1.0",
            "oss": {
                "bucket": {
                    "arn": f"acs:oss:{self.region}:{self.account_id}:{event.bucket}",
                    "name": event.bucket,
                    "ownerIdentity": self.account_id,
                    "virtualBucket": "",
                },
                "object": obj,
                "ossSchemaVersion": "1.0",
                "ruleId": rule_id,
            },
            "region": self.region,
            "requestParameters": {"sourceIPAddress": event.source_ip},
            "responseElements": {"requestId": event.request_id},
            "userIdentity": {"principalId": self.account_id},
        }
        return json.dumps({"events": [record]}, ensure_ascii=False).encode()

    def next_retry(self, delivery: _Delivery, *, unreachable: bool) -> float | None:
        """When to try again, or None to give up."""
        if not unreachable:
            delivery.failures += 1
            if delivery.failures > self.max_retries:
                return None
        initial, ceiling = self.backoff
        delay = min(ceiling, initial * 2 ** (delivery.attempts - 1))
        retry_at = time.monotonic() + delay
        return retry_at if retry_at - delivery.born <= self.retry_window else None

    def settle(self, count: int) -> None:
        """Mark ``count`` deliveries as finished (delivered, given up or dropped)."""
        with self._lock:
            self._pending -= count
            self._lock.notify_all()

    def drain(self, timeout: float) -> bool:
        """Wait until nothing is pending; False if deliveries are still pending after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._pending > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)
            return True

    def close(self) -> None:
        """Stop every subscription (undelivered events are dropped and logged)."""
        with self._lock:
            subscriptions = list(self._subscriptions)
        for subscription in subscriptions:
            subscription.unsubscribe()
