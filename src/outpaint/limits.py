"""The poller's part of the settings (the account's quota, how jobs are paced and retried) and the
thresholds of the operators' alerts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SUBMIT_ANSWER_SLACK = 2.0  # beyond connect + read timeout, to record a submit's answer


@dataclass(frozen=True)
class PollerLimits:
    """Quota, pacing and retry limits (``Settings.poller_limits()``)."""

    submit_qps: float
    max_concurrent_tasks: int
    query_qps: float
    poll_interval_seconds: float
    max_attempts: int
    retry_backoff_seconds: float
    uncertain_submit_policy: Literal["resubmit", "fail"]
    signed_url_seconds: int
    connect_timeout_seconds: float
    read_timeout_seconds: float

    @property
    def submit_seconds(self) -> float:
        """The longest a submit can take before its answer is recorded."""
        return self.connect_timeout_seconds + self.read_timeout_seconds + SUBMIT_ANSWER_SLACK


@dataclass(frozen=True)
class AlertPolicy:
    """When ``outpaint status`` raises an alert (``Settings.alert_policy()``)."""

    timer_period_seconds: float
    queue_age_seconds: float
    failure_rate: float
    min_finished: int = 5  # failures are rated only over at least this many finished jobs in the hour
