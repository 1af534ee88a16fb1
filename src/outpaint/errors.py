"""Every failure mode of the pipeline is one exception class with a stable, machine-readable code.

The code is what ends up in job records and log lines; the message is for people and names the
offending value and the limit it broke.
"""

from __future__ import annotations


class OutpaintError(Exception):
    """Base class: carries a stable ``code`` (for example ``plan.ratio_out_of_range``)."""

    code = "outpaint.error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class ConfigError(OutpaintError):
    """Settings are missing or invalid; raised once at start with one line per bad field."""

    code = "config.invalid"


class EventError(OutpaintError):
    """A trigger event could not be parsed; the message names the offending field."""

    code = "event.malformed"


class PlanError(OutpaintError):
    """The upload's metadata or the image itself cannot be turned into a valid API request."""

    code = "plan.invalid"


class StorageError(OutpaintError):
    """An OSS call failed in a way the caller cannot handle locally."""

    code = "storage.error"


class ImageProbeError(OutpaintError):
    """The object is not a decodable image of a supported format."""

    code = "image.unreadable"


class DashScopeError(OutpaintError):
    """DashScope answered with an error; ``kind`` says what the pipeline should do about it."""

    code = "dashscope.error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        kind: str = "permanent",
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.kind = kind
        self.status = status
        self.request_id = request_id


class SubmitOutcomeUnknown(DashScopeError):
    """The submit request was sent but no answer arrived: a task may or may not exist."""

    code = "dashscope.submit_outcome_unknown"


class ResultRefused(OutpaintError):
    """A result URL points outside the allowed hosts, or the result is too large."""

    code = "result.refused"
