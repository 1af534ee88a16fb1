"""What every ops command shares: the settings-backed context, the error type, output and time helpers."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any

from outpaint.errors import ConfigError, OutpaintError

if TYPE_CHECKING:
    from outpaint.app import Pipeline
    from outpaint.checkpoints import Checkpoints
    from outpaint.config import Settings
    from outpaint.deadletters import DeadLetters
    from outpaint.lease import LeaseStore
    from outpaint.oss import Credentials
    from outpaint.store import JobStore

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


class UsageError(Exception):
    """A command line that cannot be run as given (exit 2, like argparse's own refusals)."""


class OpsError(OutpaintError):
    """An ops command could not do what was asked (nothing found, lease held, ...): exit status 1."""

    code = "ops.failed"


class Ops:
    """Settings plus the bucket's job store, lease, checkpoints or Pipeline, each built on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def credentials(self) -> Credentials:
        from outpaint.app import static_credentials

        credentials = static_credentials(self.settings)
        if credentials is None:
            missing = [
                f"  {field} (OUTPAINT_{field.upper()} or ALIBABA_CLOUD_{field.upper()}): not set"
                for field in ("access_key_id", "access_key_secret")
                if getattr(self.settings, field) is None
            ]
            raise ConfigError("missing OSS credentials:\n" + "\n".join(missing))
        return credentials

    @cached_property
    def store(self) -> JobStore:
        """The job store alone (no DashScope key needed)."""
        from outpaint.app import open_store

        return open_store(self.settings, self.credentials)

    @cached_property
    def leases(self) -> LeaseStore:
        """The poller lease (no DashScope key needed)."""
        from outpaint.lease import LeaseStore

        return LeaseStore(self.store.storage, self.settings.state_prefix)

    @cached_property
    def dead_letters(self) -> DeadLetters:
        """Upload events FC gave up on (no DashScope key needed)."""
        from outpaint.deadletters import DeadLetters

        return DeadLetters(self.store.storage, self.settings.state_prefix)

    @cached_property
    def checkpoints(self) -> Checkpoints:
        """Backfill checkpoints (no DashScope key needed)."""
        from outpaint.checkpoints import Checkpoints

        return Checkpoints(self.store.storage, self.settings.state_prefix)

    @cached_property
    def pipeline(self) -> Pipeline:
        """The same Pipeline the functions build (needs the DashScope key)."""
        from outpaint.app import build_pipeline

        return build_pipeline(self.settings, self.credentials)


def cli_log_level(settings: Settings, verbose: bool) -> str:
    """The ops commands' log level: the settings' with ``-v``, else warnings only."""
    return settings.log_level if verbose else "WARNING"


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def parse_duration(text: str) -> float:
    """``30d``, ``12h``, ``1d12h``, ``90s``, ``2w`` → seconds (argparse ``type``)."""
    compact = text.strip().lower()
    parts = _DURATION_PART.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise argparse.ArgumentTypeError(f"expected a duration like 30d, 12h, 45m or 1d12h, got {text!r}")
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def non_negative_int(text: str) -> int:
    """An integer >= 0 (argparse ``type``): a usage error, exit 2, otherwise."""
    return _bounded_int(text, 0, "a whole number >= 0")


def positive_int(text: str) -> int:
    """An integer >= 1 (argparse ``type``): a usage error, exit 2, otherwise."""
    return _bounded_int(text, 1, "a whole number >= 1")


def _bounded_int(text: str, minimum: int, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def format_seconds(seconds: float) -> str:
    """A short human duration: ``0.42s``, ``12.5s``, ``3m 05s``, ``2h 10m``, ``4d 3h``."""
    if seconds < 60:
        return f"{seconds:.2f}s" if seconds < 10 else f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def format_time(timestamp: float) -> str:
    """UTC wall time with milliseconds, e.g. ``2025-03-01 08:00:03.120Z``."""
    milliseconds = int(timestamp * 1000) % 1000
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(timestamp)) + f".{milliseconds:03d}Z"


def fail(command: str, message: str, status: int, *, code: str | None = None, as_json: bool = False) -> int:
    """Print ``outpaint <command>: <message>`` to stderr and return ``status``; with ``as_json`` also
    ``{"error": {"code", "message"}}`` on stdout, so a ``--json`` caller always gets JSON."""
    print(f"outpaint {command}: {message}", file=sys.stderr)
    if as_json:
        print(json.dumps({"error": {"code": code or "error", "message": message}}, ensure_ascii=False))
    return status
