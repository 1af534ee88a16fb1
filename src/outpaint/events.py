"""Typed trigger events: FC's native OSS event, the EventBridge CloudEvents envelope and the timer event.

Everything is parsed from the raw invocation payload (bytes, str or an already-decoded mapping).
Anything malformed raises :class:`~outpaint.errors.EventError` whose message names the offending
field path, for example ``events[0].oss.object.key: field required``.

Object keys are kept exactly as delivered: FC's OSS events carry raw UTF-8 keys, not URL-encoded ones.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
)

from outpaint.errors import EventError

__all__ = [
    "FailedInvocation",
    "ObjectRecord",
    "TimerEvent",
    "parse_failed_invocation",
    "parse_oss_event",
    "parse_timer_event",
]


def _timestamp_string(value: object) -> object:
    # Lax pydantic would read a bare number as a Unix time; events always carry ISO-8601 text.
    if not isinstance(value, (str, datetime)):
        raise ValueError("expected an ISO-8601 timestamp string")
    return value


Timestamp = Annotated[datetime, BeforeValidator(_timestamp_string)]


class _Raw(BaseModel):
    """Base of the wire models: raw camelCase keys, unknown keys ignored, immutable."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class OssBucket(_Raw):
    name: StrictStr
    arn: StrictStr | None = None
    ownerIdentity: StrictStr | None = None
    virtualBucket: StrictStr | None = None


class OssObjectMeta(_Raw):
    mimeType: StrictStr | None = None
    userMeta: dict[StrictStr, StrictStr] | None = None


class OssObject(_Raw):
    key: StrictStr = Field(min_length=1)
    size: StrictInt = Field(ge=0)
    eTag: StrictStr
    deltaSize: StrictInt | None = None
    objectMeta: OssObjectMeta | None = None


class OssInfo(_Raw):
    bucket: OssBucket
    object: OssObject
    ossSchemaVersion: StrictStr | None = None
    ruleId: StrictStr | None = None


class OssRecord(_Raw):
    """One element of ``events`` (reference fc-and-oss.md §A1), field for field."""

    eventName: StrictStr = Field(min_length=1)
    eventSource: StrictStr | None = None
    eventTime: Timestamp
    eventVersion: StrictStr | None = None
    oss: OssInfo
    region: StrictStr
    requestParameters: dict[StrictStr, Any] | None = None
    responseElements: dict[StrictStr, Any] | None = None
    userIdentity: dict[StrictStr, Any] | None = None


class OssEvent(_Raw):
    """The native OSS trigger payload: ``{"events": [record, ...]}``."""

    events: list[OssRecord] = Field(min_length=1)


class CloudEvent(_Raw):
    """EventBridge-based OSS triggers: a CloudEvents envelope whose ``data`` is one record."""

    specversion: StrictStr
    id: StrictStr
    source: StrictStr
    type: StrictStr
    subject: StrictStr | None = None
    time: Timestamp | None = None
    aliyunaccountid: StrictStr | None = None
    aliyunregionid: StrictStr | None = None
    data: OssRecord


class ObjectRecord(BaseModel):
    """One object event, flattened to what the pipeline needs."""

    model_config = ConfigDict(frozen=True)

    event_name: str
    event_time: datetime
    region: str
    bucket: str
    key: str
    etag: str
    size: int
    request_id: str | None = None
    user_meta: dict[str, str] | None = None
    mime_type: str | None = None

    @property
    def is_created(self) -> bool:
        """True for every ``ObjectCreated:*`` event (put, post, copy, multipart complete, ...)."""
        return self.event_name.startswith("ObjectCreated:")

    @classmethod
    def from_record(cls, record: OssRecord) -> ObjectRecord:
        """Flatten a wire record: strip an ``oss:`` prefix from the name, quotes and case from the ETag."""
        obj = record.oss.object
        meta = obj.objectMeta
        request_id = (record.responseElements or {}).get("requestId")
        return cls(
            event_name=record.eventName.removeprefix("oss:"),
            event_time=record.eventTime,
            region=record.region,
            bucket=record.oss.bucket.name,
            key=obj.key,
            etag=obj.eTag.strip('"').upper(),
            size=obj.size,
            request_id=request_id if isinstance(request_id, str) else None,
            user_meta=dict(meta.userMeta) if meta and meta.userMeta is not None else None,
            mime_type=meta.mimeType if meta else None,
        )


class TimerEvent(BaseModel):
    """FC timer trigger event (reference §A2). Every field is optional: a manual invoke may send ``{}``."""

    model_config = ConfigDict(frozen=True, extra="ignore", validate_by_name=True, validate_by_alias=True)

    trigger_time: Timestamp | None = Field(default=None, alias="triggerTime")
    trigger_name: StrictStr | None = Field(default=None, alias="triggerName")
    payload: StrictStr | None = None

    def payload_json(self) -> dict[str, Any]:
        """The trigger message decoded as a JSON object; ``{}`` when there is none."""
        if not self.payload or not self.payload.strip():
            return {}
        try:
            value = json.loads(self.payload)
        except json.JSONDecodeError as exc:
            raise EventError(f"payload: not valid JSON ({exc.msg} at position {exc.pos})") from None
        if not isinstance(value, dict):
            raise EventError(f"payload: expected a JSON object, got {type(value).__name__}")
        return value


def _load(raw: bytes | str | Mapping[str, Any]) -> dict[str, Any]:
    """Decode the invocation payload into a dict, or raise EventError."""
    if isinstance(raw, Mapping):
        return dict(raw)
    if isinstance(raw, bytes | bytearray):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EventError(f"event: not UTF-8 text (byte {exc.start})") from None
    if not isinstance(raw, str):
        raise EventError(f"event: expected bytes, str or a mapping, got {type(raw).__name__}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise EventError(f"event: not valid JSON ({exc.msg} at position {exc.pos})") from None
    if not isinstance(value, dict):
        raise EventError(f"event: expected a JSON object, got {type(value).__name__}")
    return value


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "event"


def _validate(model: type[_Raw] | type[TimerEvent], data: dict[str, Any]) -> Any:
    """Validate ``data`` against ``model``; turn every pydantic error into one EventError line."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            message = str(err["ctx"]["error"]) if err["type"] == "value_error" else err["msg"]
            problems.append(f"{_field_path(err['loc'])}: {message[:1].lower()}{message[1:]}")
        raise EventError("; ".join(problems)) from None


def parse_oss_event(raw: bytes | str | Mapping[str, Any]) -> list[ObjectRecord]:
    """Parse a native ``{"events": [...]}`` OSS event or an EventBridge envelope into flat records."""
    data = _load(raw)
    if "events" in data:
        records = _validate(OssEvent, data).events
    elif "specversion" in data or "data" in data:
        records = [_validate(CloudEvent, data).data]
    else:
        keys = ", ".join(sorted(data)) or "none"
        raise EventError(
            f"event: unknown shape (expected 'events' or a CloudEvents envelope with 'data'; keys: {keys})"
        )
    return [ObjectRecord.from_record(record) for record in records]


def parse_timer_event(raw: bytes | str | Mapping[str, Any] | None) -> TimerEvent:
    """Parse a timer trigger event; ``None`` or an empty payload gives a TimerEvent with defaults."""
    if raw is None or (isinstance(raw, bytes | bytearray | str) and not raw.strip()):
        return TimerEvent()
    return _validate(TimerEvent, _load(raw))


ERROR_TEXT_LIMIT = 2000  # characters of the failed function's answer kept with a dead letter


class FailedInvocation(BaseModel):
    """An invocation FC gave up on, as it hands it to an on-failure destination function.

    FC sends ``requestContext`` (request id, function ARN, condition, invoke count), ``requestPayload``
    (the original event, as text), ``responseContext`` and ``responsePayload`` (the last answer). A bare
    event (a manual invoke) is taken as its own payload. Nothing is refused: what cannot be read is kept
    as it came, so a dead letter is never lost for its shape.
    """

    model_config = ConfigDict(frozen=True)

    request_id: str | None = None
    function_arn: str | None = None
    condition: str | None = None
    invoke_count: int | None = None
    error: str | None = None
    payload: Any = None

    def records(self) -> list[ObjectRecord]:
        """The object records of the original event; EventError when it is not an OSS event."""
        return parse_oss_event(self.payload)


def _json_or_text(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def parse_failed_invocation(raw: bytes | str | Mapping[str, Any]) -> FailedInvocation:
    """Read FC's on-failure destination payload (or a bare event) into a FailedInvocation."""
    data = _json_or_text(dict(raw) if isinstance(raw, Mapping) else raw)
    if not isinstance(data, dict) or "requestPayload" not in data:
        return FailedInvocation(payload=data)
    context = data.get("requestContext") if isinstance(data.get("requestContext"), dict) else {}
    response = data.get("responseContext") if isinstance(data.get("responseContext"), dict) else {}
    answer = data.get("responsePayload")
    error = answer if isinstance(answer, str) else (json.dumps(answer) if answer is not None else None)
    error = error or response.get("functionError")
    count = context.get("approximateInvokeCount")
    return FailedInvocation(
        request_id=str(context["requestId"]) if context.get("requestId") else None,
        function_arn=str(context["functionArn"]) if context.get("functionArn") else None,
        condition=str(context["condition"]) if context.get("condition") else None,
        invoke_count=count if isinstance(count, int) else None,
        error=error[:ERROR_TEXT_LIMIT] if isinstance(error, str) else None,
        payload=_json_or_text(data["requestPayload"]),
    )
