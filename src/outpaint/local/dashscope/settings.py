"""The emulator's knobs: one immutable value, validated as a whole, replaced on live reconfiguration."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

Range = tuple[float, float]
OverConcurrency = Literal["queue", "reject"]

MIB = 1024 * 1024


def parse_range(value: Any) -> Range:
    """A duration or a ``min-max`` range: ``3``, ``"0.5"``, ``"8-15"``, ``[8, 15]`` → ``(min, max)``."""
    if isinstance(value, bool):
        raise ValueError(f"expected seconds or a min-max range, got {value!r}")
    if isinstance(value, int | float):
        low = high = float(value)
    elif isinstance(value, str):
        low_text, sep, high_text = value.strip().partition("-")
        try:
            low = float(low_text)
            high = float(high_text) if sep else low
        except ValueError:
            raise ValueError(f"expected seconds or a min-max range like 8-15, got {value!r}") from None
    elif isinstance(value, list | tuple) and len(value) == 2:
        low, high = (float(v) for v in value)
    else:
        raise ValueError(f"expected seconds or a min-max range, got {value!r}")
    if not 0 <= low <= high:
        raise ValueError(f"range must satisfy 0 <= min <= max, got {value!r}")
    return (low, high)


_FLOATS = (
    "qps",
    "query_qps",
    "fail_rate",
    "retention_seconds",
    "result_url_seconds",
    "throttle_rate",
    "error_rate",
    "download_timeout",
    "moderation_input_rate",
    "moderation_output_rate",
    "late_failure_rate",
    "missing_status_rate",
    "temporary_storage_seconds",
)
_INTS = ("concurrency", "seed", "max_download_bytes")


def _origin(value: str) -> str:
    """``scheme://host[:port]`` without a trailing slash; ValueError for anything else."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise ValueError(f"result_origin must be an origin like http://host:port, got {value!r}")
    return value.rstrip("/")


def _number(name: str, value: Any, kind: type[float] | type[int]) -> Any:
    """``value`` as ``kind`` (JSON and flags may deliver strings or integral floats)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(number) or (kind is int and number != int(number)):
        raise ValueError(f"{name} must be a finite {kind.__name__}, got {value!r}")
    return kind(number) if kind is float else int(number)


@dataclass(frozen=True)
class Settings:
    """Every knob of the emulator; see docs/dashscope-emulator.md for what each one does."""

    api_keys: tuple[str, ...] = ()  # empty: any non-empty key is accepted
    qps: float = 2.0
    concurrency: int = 5
    query_qps: float = 20.0
    task_seconds: Range = (8.0, 15.0)
    fail_rate: float = 0.0
    seed: int | None = None
    retention_seconds: float = 86400.0
    result_url_seconds: float | None = None  # None: same as retention_seconds
    over_concurrency: OverConcurrency = "queue"
    throttle_rate: float = 0.0
    error_rate: float = 0.0
    latency: Range = (0.0, 0.0)
    download_timeout: float = 10.0
    max_download_bytes: int = 10_000_000  # "10 MB", read strictly as 10,000,000 bytes
    moderation_input_rate: float = 0.0  # submit refused: 400 InvalidParameter.ImageContent
    moderation_output_rate: float = 0.0  # task FAILED: DataInspectionFailed (the generated image)
    late_failure_rate: float = 0.0  # accepted, then FAILED: InvalidParameter (validation after accept)
    missing_status_rate: float = 0.0  # a query answers 200 without output.task_status
    # Origin of result URLs (scheme://host[:port]); None: the one the query came to. Lets a test serve
    # results from a host the client's allow-list must admit, as the real result buckets are.
    result_origin: str | None = None
    temporary_storage_seconds: float = 48 * 3600.0  # how long an uploaded temporary file resolves

    def __post_init__(self) -> None:
        fix = object.__setattr__  # frozen: normalise in place once
        fix(self, "api_keys", tuple(k for k in (self.api_keys or ()) if k))
        fix(self, "task_seconds", parse_range(self.task_seconds))
        fix(self, "latency", parse_range(self.latency))
        for name in _FLOATS:
            value = getattr(self, name)
            if value is not None:
                fix(self, name, _number(name, value, float))
        for name in _INTS:
            value = getattr(self, name)
            if value is not None:
                fix(self, name, _number(name, value, int))
        for name in (
            "qps", "query_qps", "retention_seconds", "download_timeout", "result_url_seconds",
            "temporary_storage_seconds",
        ):  # fmt: skip
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0, got {value!r}")
        for name in (
            "fail_rate", "throttle_rate", "error_rate", "moderation_input_rate", "moderation_output_rate",
            "late_failure_rate", "missing_status_rate",
        ):  # fmt: skip
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {getattr(self, name)!r}")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency!r}")
        if self.max_download_bytes < 1:
            raise ValueError(f"max_download_bytes must be >= 1, got {self.max_download_bytes!r}")
        if self.result_origin is not None:
            fix(self, "result_origin", _origin(self.result_origin))
        if self.over_concurrency not in ("queue", "reject"):
            raise ValueError(f"over_concurrency must be 'queue' or 'reject', got {self.over_concurrency!r}")

    @property
    def url_lifetime(self) -> float:
        """Seconds a result URL stays valid."""
        return self.retention_seconds if self.result_url_seconds is None else self.result_url_seconds

    def replace(self, **knobs: Any) -> Settings:
        """A new Settings with ``knobs`` changed; unknown names raise ``ValueError``."""
        unknown = sorted(set(knobs) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **knobs)

    def public(self) -> dict[str, Any]:
        """The settings as JSON, with API keys reduced to a count (keys are never echoed)."""
        data = dataclasses.asdict(self)
        data["api_keys"] = len(self.api_keys)
        data["url_lifetime"] = self.url_lifetime
        return data
