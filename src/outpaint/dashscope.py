"""DashScope image-out-painting over plain httpx: submit a task, query it, classify every error.

The wire protocol is two JSON calls, so the official SDK (and its ~0.5 s import) is not needed. One
httpx client per instance is kept across warm invocations (connection reuse).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from outpaint.errors import DashScopeError, Kind, SubmitOutcomeUnknown

if TYPE_CHECKING:
    import httpx

MODEL = "image-out-painting"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"  # the service's timestamps; both in one (unstated) time zone
SUBMIT_PATH = "/services/aigc/image2image/out-painting"
GATEWAY_STATUSES = (502, 503, 504)


# Provider code -> kind. Codes not listed fall back to the HTTP status (see ``classify``).
# Sources: the out-painting API reference's error table and the generic DashScope code pages.
CODE_KINDS: dict[str, Kind] = {
    "Throttling": Kind.THROTTLED,
    "Throttling.RateQuota": Kind.THROTTLED,
    "Throttling.BurstRate": Kind.THROTTLED,
    # Evidence says this is usually a per-minute cap, not an exhausted balance: wait, do not fail.
    "Throttling.AllocationQuota": Kind.THROTTLED,
    "LimitRequests": Kind.THROTTLED,
    "limit_requests": Kind.THROTTLED,
    "insufficient_quota": Kind.THROTTLED,
    "InvalidApiKey": Kind.ACCOUNT,
    "AccessDenied": Kind.ACCOUNT,
    "AccessDenied.Unpurchased": Kind.ACCOUNT,
    "Workspace.AccessDenied": Kind.ACCOUNT,
    "Model.AccessDenied": Kind.ACCOUNT,
    "AllocationQuota.FreeTierOnly": Kind.ACCOUNT,
    "Arrearage": Kind.ACCOUNT,
    "CommodityNotPurchased": Kind.ACCOUNT,
    "PrepaidBillOverdue": Kind.ACCOUNT,
    "PostpaidBillOverdue": Kind.ACCOUNT,
    "ModelNotFound": Kind.ACCOUNT,
    "WorkSpaceNotFound": Kind.ACCOUNT,
    "InvalidParameter": Kind.PERMANENT,
    "InvalidParameter.JsonPhrase": Kind.PERMANENT,
    "InvalidParameter.ImageFormat": Kind.PERMANENT,
    "InvalidParameter.ImageContent": Kind.PERMANENT,
    "InvalidParameter.DataInspection": Kind.PERMANENT,
    "DataInspectionFailed": Kind.PERMANENT,
    "IPInfringementSuspect": Kind.PERMANENT,
    "BadRequest.EmptyInput": Kind.PERMANENT,
    "BadRequest.EmptyParameters": Kind.PERMANENT,
    "BadRequest.EmptyModel": Kind.PERMANENT,
    "BadRequest.TooLarge": Kind.PERMANENT,
    "BadRequest.UnsupportedFileFormat": Kind.PERMANENT,
    "InvalidURL": Kind.PERMANENT,
    "UnsupportedOperation": Kind.PERMANENT,
    # The service could not fetch our signed URL: usually transient (network, a URL that expired while
    # the task waited); bounded by max_attempts and a fresh URL on every submit.
    "InvalidParameter.FileDownload": Kind.TRANSIENT,
    "BadRequest.InputDownloadFailed": Kind.TRANSIENT,
    "RequestTimeOut": Kind.TRANSIENT,
    "InternalError": Kind.TRANSIENT,
    "InternalError.Algo": Kind.TRANSIENT,
    "InternalError.FileUpload": Kind.TRANSIENT,
    "InternalError.Timeout": Kind.TRANSIENT,
    "SystemError": Kind.TRANSIENT,
    "ModelUnavailable": Kind.TRANSIENT,
}


# (code, fragment of the lower-cased message) -> kind, checked before CODE_KINDS: one code, two meanings.
MESSAGE_KINDS: tuple[tuple[str, str, Kind], ...] = (
    # What the service answers for a model that is withdrawn or misspelt: configuration, not the input.
    ("InvalidParameter", "model not exist", Kind.ACCOUNT),
    # The same code is a per-minute cap ("Allocated quota exceeded, please increase your quota limit.")
    # or used-up credits / free allocation: only an operator ends the latter.
    ("Throttling.AllocationQuota", "free allocated quota exceeded", Kind.ACCOUNT),
    ("Throttling.AllocationQuota", "allocated credits limit", Kind.ACCOUNT),
    ("insufficient_quota", "free allocated quota exceeded", Kind.ACCOUNT),
    ("insufficient_quota", "allocated credits limit", Kind.ACCOUNT),
)

# Content-safety refusals: our code and what a user is told. No retry: the same image fails again.
MODERATION: dict[str, tuple[str, str]] = {
    "InvalidParameter.ImageContent": (
        "moderation.image_content",
        "the image did not pass DashScope's content-safety check; it was not out-painted",
    ),
    "DataInspectionFailed": (
        "moderation.inappropriate_content",
        "DashScope's content check found the input or the generated image inappropriate; nothing was stored",
    ),
    "IPInfringementSuspect": (
        "moderation.ip_infringement",
        "DashScope suspects the image infringes intellectual property; it was not out-painted",
    ),
}


def classify(status: int | None, code: str | None, message: str | None = None) -> Kind:
    """The kind of a provider error: by code and message first, then by code, then by HTTP status."""
    text = (message or "").lower()
    for rule_code, fragment, kind in MESSAGE_KINDS:
        if code == rule_code and fragment in text:
            return kind
    if code and code in CODE_KINDS:
        return CODE_KINDS[code]
    if status == 429:
        return Kind.THROTTLED
    if status in (401, 403):
        return Kind.ACCOUNT
    if status is None or status == 408 or status >= 500:
        return Kind.TRANSIENT
    return Kind.PERMANENT


@dataclass(frozen=True)
class Submitted:
    """A task the service accepted."""

    task_id: str
    request_id: str | None


@dataclass(frozen=True)
class TaskState:
    """One query's answer."""

    task_id: str
    status: str  # PENDING RUNNING SUCCEEDED FAILED CANCELED UNKNOWN (SUSPENDED is treated as RUNNING)
    request_id: str | None
    output_url: str | None = None
    code: str | None = None
    message: str | None = None
    image_count: int | None = None
    scheduled_time: str | None = None
    end_time: str | None = None

    @property
    def run_seconds(self) -> float | None:
        """How long the service ran the task (end_time - scheduled_time), when it says."""
        try:
            start = datetime.strptime(self.scheduled_time or "", TIME_FORMAT)
            end = datetime.strptime(self.end_time or "", TIME_FORMAT)
        except ValueError:
            return None
        return (end - start).total_seconds()

    @property
    def finished(self) -> bool:
        return self.status in ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN")


class DashScopeClient:
    """Submit and query out-painting tasks."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 20.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        import httpx

        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def submit(self, image_url: str, parameters: dict[str, Any]) -> Submitted:
        """POST the task. Raise DashScopeError (with ``kind``), or SubmitOutcomeUnknown when the
        request may have reached the service but no answer came back (never replay it blindly)."""
        import httpx

        body = {"model": MODEL, "input": {"image_url": image_url}, "parameters": parameters}
        headers = {"X-DashScope-Async": "enable"}
        if image_url.startswith("oss://"):  # a temporary-storage file (outpaint.handover)
            headers["X-DashScope-OssResourceResolve"] = "enable"
        try:
            response = self._http.post(SUBMIT_PATH, json=body, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # Nothing reached the service: safe to try again.
            raise DashScopeError(
                f"submit not sent: {type(exc).__name__}", code="dashscope.connect", kind=Kind.TRANSIENT
            ) from exc
        except httpx.TransportError as exc:
            raise SubmitOutcomeUnknown(
                f"submit sent, no answer: {type(exc).__name__}", kind=Kind.TRANSIENT
            ) from exc
        data = json_body(response)
        if response.status_code in GATEWAY_STATUSES and not data.get("code"):
            # A proxy answered, not DashScope: the request may have reached the service.
            raise SubmitOutcomeUnknown(
                f"submit answered HTTP {response.status_code} by a gateway",
                kind=Kind.TRANSIENT,
                status=response.status_code,
            )
        if response.status_code != 200 or data.get("code"):
            raise provider_error(response.status_code, data, "submit")
        output = data.get("output") or {}
        task_id = output.get("task_id")
        if not isinstance(task_id, str) or not task_id:
            raise SubmitOutcomeUnknown(
                "submit answered without a task id",
                kind=Kind.TRANSIENT,
                request_id=data.get("request_id"),
            )
        return Submitted(task_id=task_id, request_id=data.get("request_id"))

    def query(self, task_id: str) -> TaskState:
        """GET the task's state. Raise DashScopeError (with ``kind``) when the query itself fails."""
        import httpx

        try:
            response = self._http.get(f"/tasks/{task_id}")
        except httpx.TransportError as exc:
            raise DashScopeError(
                f"query failed: {type(exc).__name__}", code="dashscope.transport", kind=Kind.TRANSIENT
            ) from exc
        data = json_body(response)
        if response.status_code != 200:
            raise provider_error(response.status_code, data, "query")
        output = data.get("output") or {}
        raw_status = output.get("task_status") if isinstance(output, dict) else None
        if not isinstance(raw_status, str) or not raw_status:
            # Only an explicit UNKNOWN means "no such task"; a body without a status says nothing, and
            # reading it as UNKNOWN could buy a task again.
            raise DashScopeError(
                "query answered without output.task_status",
                code="dashscope.malformed_answer",
                kind=Kind.TRANSIENT,
                status=response.status_code,
                request_id=data.get("request_id"),
            )
        status = raw_status.upper()
        return TaskState(
            task_id=task_id,
            status="RUNNING" if status == "SUSPENDED" else status,
            request_id=data.get("request_id"),
            output_url=output.get("output_image_url"),
            code=output.get("code"),
            message=output.get("message"),
            image_count=(data.get("usage") or {}).get("image_count"),
            scheduled_time=output.get("scheduled_time"),
            end_time=output.get("end_time"),
        )


def json_body(response: httpx.Response) -> dict[str, Any]:
    """The JSON object of ``response``, or ``{}``."""
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def provider_error(status: int, data: dict[str, Any], what: str) -> DashScopeError:
    """The classified error of a DashScope answer ``data`` with HTTP ``status`` to call ``what``."""
    code = data.get("code") or f"HTTP{status}"
    message = data.get("message") or f"{what} answered HTTP {status}"
    return DashScopeError(
        f"{what}: {code}: {message}",
        code=code,
        kind=classify(status, data.get("code"), data.get("message")),
        status=status,
        request_id=data.get("request_id"),
    )
