"""Everything one emulator instance knows: settings, quota buckets, faults, tasks and counters."""

from __future__ import annotations

import dataclasses
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .faults import Faults
from .quota import TokenBucket
from .settings import Settings
from .signing import UrlSigner
from .store import TaskStore
from .tasks import Scheduler

IMAGE_WORKERS = 4  # downloads and Pillow work run here, never on the event loop


@dataclass
class Counters:
    """Request counters reported by ``GET /_emulator/stats``."""

    submits_accepted: int = 0
    submits_throttled: int = 0  # every 429 on submit: rate, concurrency (reject mode), injected
    submits_rejected: int = 0  # every other synchronous submit error (auth, validation)
    queries: int = 0
    queries_throttled: int = 0
    cancels: int = 0
    injected_errors: int = 0  # injected 500/503 on any API call
    result_downloads: int = 0
    result_downloads_refused: int = 0


class EmulatorState:
    """Mutated only on the server's event loop (the embedding API hops onto it).

    With a ``data_dir`` tasks and results are kept there and taken back by the next instance.
    """

    def __init__(self, settings: Settings, data_dir: Path | None = None) -> None:
        if settings.seed is None:
            settings = settings.replace(seed=secrets.randbelow(2**31))
        self.settings = settings
        self.store = TaskStore(data_dir) if data_dir is not None else None
        self.signer = UrlSigner(self.store.signing_key() if self.store else None)
        self.executor = ThreadPoolExecutor(IMAGE_WORKERS, thread_name_prefix="dashscope-emulator")
        self._rebuild()

    def _rebuild(self) -> None:
        seed = self.seed
        self.counters = Counters()
        self.submit_bucket = TokenBucket(self.settings.qps)
        self.query_bucket = TokenBucket(self.settings.query_qps)
        self.faults = Faults(seed)
        self.scheduler = Scheduler(self.settings, seed, self.executor, self.signer, self.store)

    @property
    def seed(self) -> int:
        assert self.settings.seed is not None  # resolved in __init__
        return self.settings.seed

    def configure(self, **knobs: Any) -> dict[str, Any]:
        """Change knobs live (``ValueError`` on bad input); a new seed restarts the draw sequences."""
        if knobs.get("seed", self.seed) is None:
            raise ValueError("seed must be an integer")
        previous, self.settings = self.settings, self.settings.replace(**knobs)
        self.submit_bucket.set_rate(self.settings.qps)
        self.query_bucket.set_rate(self.settings.query_qps)
        self.scheduler.settings = self.settings
        if self.seed != previous.seed:
            self.scheduler.reseed(self.seed)
            self.faults = Faults(self.seed)
        self.scheduler.pump()  # a higher concurrency admits waiting tasks now
        return self.settings.public()

    def reset(self) -> None:
        """Forget every task, counter and token; restart the seeded draws; keep the settings."""
        self.scheduler.forget()
        self._rebuild()

    def forget_tasks(self) -> None:
        """A fault: forget every task and result (saved ones too), as a service that lost them would;
        their queries answer UNKNOWN. Counters, tokens and draws go on."""
        self.scheduler.forget()

    def stats(self) -> dict[str, Any]:
        """Counters, tasks by status and slot usage."""
        scheduler = self.scheduler
        return {
            **dataclasses.asdict(self.counters),
            "tasks": scheduler.counts(),
            "tasks_expired": scheduler.expired,
            "running": scheduler.running,
            "peak_running": scheduler.peak_running,
            "seed": self.seed,
        }

    def close(self) -> None:
        """Stop runners and the worker pool."""
        self.scheduler.close()
        self.executor.shutdown(wait=False, cancel_futures=True)
