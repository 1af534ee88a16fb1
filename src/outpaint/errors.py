"""Every failure mode of outpaint is one exception class with a stable, machine-readable ``code``.

The code is what ends up in job records and log lines; the message is for people and names the
offending value and the limit it broke. Foreign exceptions (oss2, httpx, Pillow) are mapped to these at
one boundary each (``oss.py``, ``dashscope.py``, ``results.py``, ``probe.py``); nothing above them sees a
library's error type. The tree:

    OutpaintError                 base: ``code`` + message
    ├── ConfigError               settings missing or invalid (one line per bad field)
    ├── EventError                a trigger event that cannot be parsed
    ├── PlanError                 metadata or image that cannot become a valid API request
    ├── ImageProbeError           not a decodable image of a supported format (or cut short)
    ├── StorageError              an OSS call failed
    │   ├── NotFound              the object does not exist
    │   └── AlreadyExists         a create-if-absent write found the object there
    ├── DashScopeError            the service answered with an error; ``kind`` says what to do
    │   └── SubmitOutcomeUnknown  a submit was sent, no answer came: a task may exist
    ├── ResultError               a succeeded task's result could not be taken
    │   ├── ResultRefused         off the allowed hosts, too large, not an image: never retried
    │   ├── ResultLost            the result URL answers 401/403/404/410: expired or gone
    │   └── ResultUnavailable     network or 5xx: may pass, retried with back-off
    └── IllegalMove               a job transition the state table does not allow (a bug)
"""

from __future__ import annotations

from enum import Enum


class Kind(str, Enum):
    """What the pipeline does about a DashScope error."""

    THROTTLED = "throttled"  # quota: the job stays queued, no attempt is used
    ACCOUNT = "account"  # key, billing or access problem: jobs stay queued, an operator must act
    TRANSIENT = "transient"  # may succeed later: retried up to max_attempts
    PERMANENT = "permanent"  # this input will never succeed: the job fails


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


class ImageProbeError(OutpaintError):
    """The object is not a decodable image of a supported format."""

    code = "image.unreadable"


class StorageError(OutpaintError):
    """An OSS call failed in a way the caller cannot handle locally."""

    code = "storage.error"


class NotFound(StorageError):
    """The object does not exist."""

    code = "storage.not_found"


class AlreadyExists(StorageError):
    """A create-if-absent write found the object already there."""

    code = "storage.already_exists"


class DashScopeError(OutpaintError):
    """DashScope answered with an error; ``kind`` says what the pipeline should do about it."""

    code = "dashscope.error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        kind: Kind = Kind.PERMANENT,
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


class ResultError(OutpaintError):
    """A succeeded task's result could not be downloaded or stored."""

    code = "result.error"


class ResultRefused(ResultError):
    """A result URL points outside the allowed hosts, or the result is too large or not an image."""

    code = "result.refused"


class ResultLost(ResultError):
    """The result URL answers 401/403/404/410: it expired or the result is gone."""

    code = "result.lost"


class ResultUnavailable(ResultError):
    """The download failed in a way that may pass (network, 5xx): try again later."""

    code = "result.unavailable"


class IllegalMove(OutpaintError):
    """A job transition that the table of allowed moves (``job.MOVES``) does not contain."""

    code = "job.illegal_move"
