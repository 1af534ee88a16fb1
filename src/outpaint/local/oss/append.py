"""AppendObject: ``POST /<key>?append&position=<n>`` grows an Appendable object."""

from __future__ import annotations

from functools import partial

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from .context import Call
from .errors import OssError
from .objectacl import header_acl
from .objects import attrs_from, write_result
from .storage import ObjectRecord
from .tagging import header_tags


async def append_object(call: Call) -> Response:
    position = call.param("position") or ""
    if not position.isdigit():
        raise OssError("InvalidArgument", "position must be a non-negative integer.", ArgumentName="position")
    current = await run_in_threadpool(_current, call)
    if current is not None and current.object_type != "Appendable":
        raise OssError("ObjectNotAppendable", Key=call.object_key)
    length = current.size if current else 0
    if int(position) != length:
        error = OssError("PositionNotEqualToLength", Position=position, Length=str(length))
        error.headers["x-oss-next-append-position"] = str(length)
        raise error
    if current is None:
        extra = {"acl": header_acl(call), "tags": header_tags(call) or {}}
        attrs = attrs_from(call.headers)
        writer = await call.receive()
    else:
        extra = {"acl": current.acl, "tags": current.tags}
        attrs = current.attrs
        record, body = await run_in_threadpool(call.storage.open_object, call.bucket_name, call.object_key)
        with body:
            if record.blob != current.blob:
                raise OssError("PositionNotEqualToLength", "The object changed while appending.")
            writer = await call.receive(prefix=body)
    record, previous = await run_in_threadpool(
        partial(
            call.storage.put_object,
            call.bucket_name,
            call.object_key,
            writer,
            attrs,
            forbid_overwrite=False,
            replacing=current.blob if current else "",
            object_type="Appendable",
            **extra,
        )
    )
    call.publish_created("AppendObject", record, previous)
    return Response(headers={**write_result(record), "x-oss-next-append-position": str(record.size)})


def _current(call: Call) -> ObjectRecord | None:
    try:
        return call.storage.head_object(call.bucket_name, call.object_key)
    except OssError as error:
        if error.code == "NoSuchKey":
            return None
        raise
