"""Both emulators on loopback, settings pointing at them, and helpers to drive the real handlers."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import oss2

from outpaint.app import Pipeline, build_pipeline, handle_tick, handle_upload
from outpaint.config import Settings, load_settings
from outpaint.local.dashscope import DashScopeEmulator
from outpaint.local.oss import OssEmulator
from outpaint.oss import Credentials
from outpaint.runtime import Invocation

BUCKET = "outpaint-test"
ACCESS_KEY_ID = "LTAI-test-key"
ACCESS_KEY_SECRET = "test-secret-never-logged"
API_KEY = "sk-test-never-logged"


@dataclass
class Stack:
    """A running OSS emulator + DashScope emulator with a bucket and the events OSS emitted."""

    oss: OssEmulator
    dashscope: DashScopeEmulator
    events: list[bytes] = field(default_factory=list)
    overrides: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def credentials(self) -> Credentials:
        return Credentials(ACCESS_KEY_ID, ACCESS_KEY_SECRET)

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "bucket": BUCKET,
            "region": "cn-beijing",
            "oss_endpoint": self.oss.endpoint,
            "oss_public_endpoint": self.oss.endpoint,
            "dashscope_base_url": self.dashscope.base_url,
            "dashscope_api_key": API_KEY,
            "allowed_result_hosts": [self.dashscope.origin],
            "poll_interval_seconds": 0.2,
            "retry_backoff_seconds": 0.0,
            "tick_safety_margin_seconds": 1.0,
            # Short timeouts: tests poll with deadlines of seconds, and a submit is only started when
            # its answer can still be recorded before the (test's) hard end.
            "connect_timeout_seconds": 2.0,
            "read_timeout_seconds": 5.0,
        }
        values.update(self.overrides)
        values.update(overrides)
        return load_settings(**values)

    def pipeline(self, **overrides: Any) -> Pipeline:
        return build_pipeline(self.settings(**overrides), self.credentials)

    def bucket(self) -> oss2.Bucket:
        return oss2.Bucket(oss2.Auth(ACCESS_KEY_ID, ACCESS_KEY_SECRET), self.oss.endpoint, BUCKET)

    def invocation(self, timeout: float = 30.0) -> Invocation:
        return Invocation(
            request_id=uuid.uuid4().hex,
            function_name="test",
            timeout_seconds=timeout,
            credentials=self.credentials,
        )

    def upload(self, key: str, data: bytes, **meta: str) -> bytes:
        """PUT the object with ``outpaint-*`` metadata and return the OSS event it produced."""
        before = len(self.events)
        headers = {f"x-oss-meta-outpaint-{name.replace('_', '-')}": value for name, value in meta.items()}
        self.bucket().put_object(key, data, headers=headers)
        deadline = time.time() + 5
        while time.time() < deadline:
            self.oss.drain_notifications(1.0)
            with self._lock:
                if len(self.events) > before:
                    return self.events[-1]
            time.sleep(0.01)
        raise AssertionError(f"no OSS event for {key}")

    def on_upload(self, event: bytes, **overrides: Any) -> dict[str, Any]:
        return handle_upload(event, self.invocation(), self.settings(**overrides))

    def on_tick(self, timeout: float = 30.0, **overrides: Any) -> dict[str, Any]:
        return handle_tick(
            b'{"triggerName":"poller","payload":"{}"}', self.invocation(timeout), self.settings(**overrides)
        )

    def _record(self, event: bytes) -> None:
        with self._lock:
            self.events.append(event)


@contextmanager
def running_stack(tmp: Path, **dashscope: Any) -> Iterator[Stack]:
    """Start both emulators for one test (or module) and stop them afterwards."""
    knobs: dict[str, Any] = {"qps": 2.0, "concurrency": 5, "task_seconds": (0.3, 0.5), "seed": 7}
    knobs.update(dashscope)
    with (
        OssEmulator(
            data_dir=tmp / "oss",
            buckets=[BUCKET],
            access_key_id=ACCESS_KEY_ID,
            access_key_secret=ACCESS_KEY_SECRET,
            region="cn-beijing",
        ) as oss,
        DashScopeEmulator(api_keys=[API_KEY], **knobs) as ds,
    ):
        stack = Stack(oss=oss, dashscope=ds)
        oss.subscribe(stack._record, events=["oss:ObjectCreated:*"], prefix="inbox/")
        yield stack
