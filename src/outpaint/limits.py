"""The poller's part of the settings: the account's quota and how jobs are paced and retried."""

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
