"""The DashScope wire format: error catalogue, error bodies, ids and timestamps."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from starlette.responses import JSONResponse

# DashScope is a Beijing service and its examples carry no zone; UTC+8 is the documented region's clock.
BEIJING = timezone(timedelta(hours=8))


@dataclass(frozen=True)
class ErrorCode:
    """One documented error: HTTP status (for synchronous answers), code and default message."""

    status: int
    code: str
    message: str


INVALID_API_KEY_MISSING = ErrorCode(401, "InvalidApiKey", "No API-key provided.")
INVALID_API_KEY = ErrorCode(401, "InvalidApiKey", "Invalid API-key provided.")
SYNC_NOT_SUPPORTED = ErrorCode(403, "AccessDenied", "current user api does not support synchronous calls")
JSON_PHRASE = ErrorCode(400, "InvalidParameter.JsonPhrase", "input json error")
EMPTY_MODEL = ErrorCode(400, "BadRequest.EmptyModel", 'Required parameter "model" missing from request.')
# What the real service answers for a wrong model name (probed by public code; the generic docs list
# 404 ModelNotFound, which this model's endpoint was not seen to use).
MODEL_NOT_EXIST = ErrorCode(400, "InvalidParameter", "Model not exist.")
EMPTY_INPUT = ErrorCode(400, "BadRequest.EmptyInput", "Required input parameter missing from request.")
INVALID_PARAMETER = ErrorCode(
    400, "InvalidParameter", "the parameters must conform to the specification: {detail}"
)
TOO_LARGE = ErrorCode(413, "BadRequest.TooLarge", "Payload Too Large.")
UNSUPPORTED_OPERATION = ErrorCode(
    400, "UnsupportedOperation", "The operation is unsupported on the referee object."
)
# A cancel of a task that is not PENDING (the real answer's text).
CANCEL_NOT_PENDING = ErrorCode(400, "UnsupportedOperation", "please confirm if the task is in PENDING status")
RATE_QUOTA = ErrorCode(429, "Throttling.RateQuota", "Requests rate limit exceeded, please try again later.")
ALLOCATION_QUOTA = ErrorCode(
    429, "Throttling.AllocationQuota", "Allocated quota exceeded, please increase your quota limit."
)
THROTTLING = ErrorCode(429, "Throttling", "Requests throttling triggered.")
INTERNAL_ERROR = ErrorCode(
    500,
    "InternalError",
    "An internal error has occured, please try again later or contact service support.",
)
MODEL_UNAVAILABLE = ErrorCode(503, "ModelUnavailable", "Model is unavailable, please try again later.")
NOT_FOUND = ErrorCode(404, "NotFound", "The requested resource does not exist.")

# Task failure codes (reported inside a FAILED task, HTTP 200).
FILE_DOWNLOAD = ErrorCode(400, "InvalidParameter.FileDownload", "download for input_image error")
IMAGE_FORMAT = ErrorCode(400, "InvalidParameter.ImageFormat", "read image error")
DATA_INSPECTION = ErrorCode(
    400, "InvalidParameter.DataInspection", "The image size is not supported for the data inspection."
)
ALGO = ErrorCode(500, "InternalError.Algo", "algorithm process error")
# Content safety: the input refused at submit, the output refused inside a FAILED task.
IMAGE_CONTENT = ErrorCode(
    400, "InvalidParameter.ImageContent", "The image content does not comply with green network verification"
)
DATA_INSPECTION_FAILED = ErrorCode(
    400, "DataInspectionFailed", "Input or output data may contain inappropriate content."
)
# A request the service accepted and then failed in validation (seen on sibling models).
LATE_VALIDATION = ErrorCode(
    400, "InvalidParameter", "the parameters must conform to the specification: {detail}"
)


class EmulatedError(Exception):
    """A documented error with an optional detail (substituted, or appended in parentheses)."""

    def __init__(self, error: ErrorCode, detail: str = "") -> None:
        self.error = error
        if "{detail}" in error.message:
            self.message = error.message.format(detail=detail)
        else:
            self.message = f"{error.message} ({detail})" if detail else error.message
        super().__init__(f"{error.code}: {self.message}")


class ApiError(EmulatedError):
    """A synchronous error answer: ``{request_id, code, message}`` with the code's HTTP status."""


class TaskFailure(EmulatedError):
    """Ends a task as FAILED with ``output.code``/``output.message`` (HTTP 200 on the query)."""


def invalid(detail: str) -> ApiError:
    """400 ``InvalidParameter`` naming the offending field."""
    return ApiError(INVALID_PARAMETER, detail)


def new_id() -> str:
    """A request or task id in DashScope's UUID shape."""
    return str(uuid.uuid4())


def timestamp(epoch: float) -> str:
    """``YYYY-MM-DD HH:MM:SS.mmm`` in UTC+8, like ``submit_time`` in the examples."""
    stamp = datetime.fromtimestamp(epoch, BEIJING)
    return stamp.strftime("%Y-%m-%d %H:%M:%S.") + f"{stamp.microsecond // 1000:03d}"


def error_response(error: ApiError, request_id: str) -> JSONResponse:
    """The documented synchronous error body."""
    body = {"request_id": request_id, "code": error.error.code, "message": error.message}
    return JSONResponse(body, status_code=error.error.status)
