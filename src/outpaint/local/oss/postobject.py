"""PostObject: browser form upload (multipart/form-data) authenticated by a signed policy document."""

from __future__ import annotations

import base64
import binascii
import calendar
import json
import time
from functools import partial
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from .buckets import xml_response
from .context import Call
from .errors import OssError
from .objects import attrs_from, check_creatable, write_result
from .storage import BlobWriter
from .wire import quoted_etag

_MAX_FIELDS_BYTES = 1024 * 1024


async def post_object(call: Call) -> Response:
    boundary = _boundary(call.headers.get("content-type", ""))
    decoder = MultipartDecoder(boundary.encode(), max_form_memory_size=_MAX_FIELDS_BYTES)
    fields: dict[str, str] = {}
    writer: BlobWriter | None = None
    try:
        writer = await _receive_form(call, decoder, fields)
        await _authorize(call, fields)
        key = fields.get("key", "").replace("${filename}", fields.pop("\0filename", ""))
        if not key:
            raise OssError("InvalidArgument", "The form needs a key field.")
        call.key = key
        if "policy" in fields:
            check_policy(fields["policy"], fields, call.bucket_name, writer.digest.size, time.time())
        forbid = fields.get("x-oss-forbid-overwrite", "false").lower() == "true"
        await run_in_threadpool(check_creatable, call, forbid)
        attrs = attrs_from(fields)
        record, previous = await run_in_threadpool(
            partial(call.storage.put_object, call.bucket_name, key, writer, attrs, forbid_overwrite=forbid)
        )
    except BaseException:
        if writer is not None:
            writer.discard()
        raise
    call.publish_created("PostObject", record, previous)
    headers = write_result(record)
    status = fields.get("success_action_status", "204")
    if status == "201":
        host = call.headers.get("host", "")
        return xml_response(
            "PostResponse",
            [
                ("Bucket", call.bucket_name),
                ("Location", f"http://{host}/{call.bucket_name}/{key}"),
                ("Key", key),
                ("ETag", quoted_etag(record.etag)),
            ],
            headers=headers,
            status=201,
        )
    return Response(status_code=200 if status == "200" else 204, headers=headers)


class _FormReader:
    """Collects the text fields and streams the ``file`` field (which OSS requires last) to a writer."""

    def __init__(self, call: Call, fields: dict[str, str]) -> None:
        self.call = call
        self.fields = fields
        self.writer: BlobWriter | None = None
        self._name = ""
        self._value = bytearray()

    async def handle(self, event: object) -> None:
        if isinstance(event, File) and event.name.lower() == "file":
            self._name, self.writer = "file", self.call.storage.new_writer()
            self.fields["\0filename"] = event.filename
        elif isinstance(event, Field | File):
            self._name, self._value = event.name.lower(), bytearray()
        elif isinstance(event, Data):
            if self._name == "file" and self.writer is not None:
                await run_in_threadpool(self.writer.write, event.data)
            else:
                self._value += event.data
                if not event.more_data:
                    self.fields[self._name] = self._value.decode("utf-8", "replace")


async def _receive_form(call: Call, decoder: MultipartDecoder, fields: dict[str, str]) -> BlobWriter:
    reader = _FormReader(call, fields)
    try:
        async for chunk in call.request.stream():
            decoder.receive_data(chunk)
            while not isinstance(event := decoder.next_event(), NeedData | Epilogue):
                await reader.handle(event)
        if reader.writer is None:
            raise OssError("InvalidArgument", "The form needs a file field, as its last field.")
        await run_in_threadpool(reader.writer.finish)
    except BaseException as exc:
        if reader.writer is not None:
            reader.writer.discard()
        if isinstance(exc, ValueError):
            raise OssError("MalformedPOSTRequest") from exc
        raise
    return reader.writer


async def _authorize(call: Call, fields: dict[str, str]) -> None:
    """A signed policy, or an anonymous form on a public-read-write bucket."""
    if not call.state.auth or call.state.verifier.verify_post_form(fields) is not None:
        return
    bucket = await run_in_threadpool(call.storage.bucket, call.bucket_name)
    if bucket.acl != "public-read-write":
        raise OssError("AccessDenied", "Anonymous PostObject needs a public-read-write bucket.")


def check_policy(encoded: str, fields: dict[str, str], bucket: str, size: int, now: float) -> None:
    """Enforce the policy's expiration and conditions (``eq``, ``starts-with``, ``content-length-range``)."""
    try:
        policy: dict[str, Any] = json.loads(base64.b64decode(encoded, validate=True))
        expiration = calendar.timegm(
            time.strptime(policy["expiration"].split(".")[0].rstrip("Z"), "%Y-%m-%dT%H:%M:%S")
        )
        conditions = policy.get("conditions", [])
    except (binascii.Error, ValueError, KeyError, TypeError, AttributeError):
        raise OssError("InvalidPolicyDocument") from None
    if now > expiration:
        raise OssError("AccessDenied", "Invalid according to Policy: Policy expired.")
    values = {**fields, "bucket": bucket}
    for condition in conditions:
        if isinstance(condition, dict):
            checks = [("eq", name, expected) for name, expected in condition.items()]
        elif isinstance(condition, list) and len(condition) == 3:
            checks = [tuple(condition)]
        else:
            raise OssError("InvalidPolicyDocument")
        for operator, name, expected in checks:
            if not _holds(str(operator).lower(), str(name), expected, values, size):
                raise OssError(
                    "AccessDenied", f"Invalid according to Policy: Policy Condition failed: {condition}"
                )


def _holds(operator: str, name: str, expected: Any, values: dict[str, str], size: int) -> bool:
    if operator == "content-length-range":
        return int(name) <= size <= int(expected)
    actual = values.get(name.lstrip("$").lower(), "")
    if operator == "eq":
        return actual == str(expected)
    if operator == "starts-with":
        return actual.startswith(str(expected))
    if operator == "in":
        return actual in expected
    if operator == "not-in":
        return actual not in expected
    raise OssError("InvalidPolicyDocument", f"Unknown policy operator {operator!r}.")


def _boundary(content_type: str) -> str:
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.strip().partition("=")
        if name.lower() == "boundary" and value:
            return value.strip('"')
    raise OssError("MalformedPOSTRequest", "The Content-Type header has no multipart boundary.")
