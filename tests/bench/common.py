"""Shared pieces: the deployment's FC knobs, pipeline settings for a stack, FC-like delivery, progress."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from outpaint.config import Settings, load_settings
from outpaint.oss import Credentials
from outpaint.runtime import Invocation
from tests.support.stack import ACCESS_KEY_ID, ACCESS_KEY_SECRET, API_KEY, BUCKET, Stack

REPO = Path(__file__).resolve().parents[2]
FIRST_RETRY_SECONDS = 0.5  # FC async retries: binary exponential backoff 0.5 s, 1 s, 2 s, …
TIMER_EVENT = b'{"triggerTime":"2026-01-01T00:00:00Z","triggerName":"every-minute","payload":"{}"}'
_started = time.monotonic()


def progress(message: str) -> None:
    """One progress line on stderr, stamped with the seconds since the bench started."""
    print(f"[{time.monotonic() - _started:7.1f}s] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class FunctionConfig:
    """What FC enforces for one function, as deployed (``s.yaml``)."""

    timeout_seconds: float
    reserved_concurrency: int | None
    async_retries: int
    max_event_age_seconds: float


@cache
def function_config(resource: str) -> FunctionConfig:
    """The FC knobs of ``resource`` (``on-upload`` or ``on-tick``) read from the deployment file."""
    props = yaml.safe_load((REPO / "s.yaml").read_text())["resources"][resource]["props"]
    concurrency = (props.get("concurrencyConfig") or {}).get("reservedConcurrency")
    async_config = props.get("asyncInvokeConfig") or {}
    return FunctionConfig(
        timeout_seconds=float(props["timeout"]),
        reserved_concurrency=int(concurrency) if concurrency else None,
        async_retries=int(async_config.get("maxAsyncRetryAttempts", 3)),
        max_event_age_seconds=float(async_config.get("maxAsyncEventAgeInSeconds", 18000)),
    )


def settings_values(stack: Stack, *, qps: float, concurrency: int) -> dict[str, Any]:
    """Settings pointing at ``stack``; every poller knob keeps its shipped default (unlike the tests)."""
    return {
        "bucket": BUCKET,
        "region": "cn-beijing",
        "oss_endpoint": stack.oss.endpoint,
        "oss_public_endpoint": stack.oss.endpoint,
        "access_key_id": ACCESS_KEY_ID,
        "access_key_secret": ACCESS_KEY_SECRET,
        "dashscope_base_url": stack.dashscope.base_url,
        "dashscope_api_key": API_KEY,
        "allowed_result_hosts": [stack.dashscope.origin],
        "submit_qps": qps,
        "max_concurrent_tasks": concurrency,
        "log_level": "WARNING",
    }


def pipeline_settings(stack: Stack, *, qps: float, concurrency: int) -> Settings:
    """``settings_values`` as a Settings object, for in-process invocations."""
    return load_settings(**settings_values(stack, qps=qps, concurrency=concurrency))


def settings_env(values: dict[str, Any]) -> dict[str, str]:
    """``settings_values`` as the environment variables a deployed function would read."""
    return {
        f"OUTPAINT_{name.upper()}": ",".join(value) if isinstance(value, list) else str(value)
        for name, value in values.items()
    }


def invocation(resource: str) -> Invocation:
    """A fresh invocation of ``resource`` with its deployed timeout and the stack's credentials."""
    return Invocation(
        request_id=uuid.uuid4().hex,
        function_name=resource,
        timeout_seconds=function_config(resource).timeout_seconds,
        credentials=Credentials(ACCESS_KEY_ID, ACCESS_KEY_SECRET),
    )


@dataclass(frozen=True)
class Delivery:
    """How one asynchronous event ended after FC's retries."""

    ok: bool
    attempts: int
    error: str | None
    ended_at: float


def deliver(
    call: Callable[[], object], retries: int, sleep: Callable[[float], None] = time.sleep
) -> Delivery:
    """Run ``call`` the way FC runs an asynchronous invocation: on an error, run it again up to
    ``retries`` times after 0.5 s, 1 s, 2 s, … (the event is then dropped, or dead-lettered)."""
    error = None
    for attempt in range(1, retries + 2):
        try:
            call()
        except Exception as exc:  # FC treats any raised error as a failed invocation
            error = f"{type(exc).__name__}: {exc}"[:200]
        else:
            return Delivery(True, attempt, None, time.time())
        if attempt <= retries:
            sleep(FIRST_RETRY_SECONDS * 2 ** (attempt - 1))
    return Delivery(False, retries + 1, error, time.time())
