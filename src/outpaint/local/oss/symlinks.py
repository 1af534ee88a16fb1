"""Symlinks: PutSymlink and GetSymlink (reads through a symlink are resolved in objects.py)."""

from __future__ import annotations

from functools import partial
from urllib.parse import unquote

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from .context import Call
from .errors import OssError
from .objectacl import header_acl
from .objects import attrs_from, check_creatable
from .tagging import header_tags
from .wire import http_date, quoted_etag, url_encode


async def put_symlink(call: Call) -> Response:
    target = unquote(call.headers.get("x-oss-symlink-target", ""))
    if not target:
        raise OssError(
            "InvalidArgument", "PutSymlink needs x-oss-symlink-target.", ArgumentName="x-oss-symlink-target"
        )
    forbid = call.flag("x-oss-forbid-overwrite")
    attrs = attrs_from(call.headers)
    extra = {"acl": header_acl(call), "tags": header_tags(call) or {}}
    await run_in_threadpool(check_creatable, call, forbid)
    writer = await call.receive()  # a symlink has no body of its own
    record, previous = await run_in_threadpool(
        partial(
            call.storage.put_object,
            call.bucket_name,
            call.object_key,
            writer,
            attrs,
            forbid_overwrite=forbid,
            object_type="Symlink",
            symlink_target=target,
            **extra,
        )
    )
    call.publish_created("PutSymlink", record, previous)
    return Response(headers={"ETag": quoted_etag(record.etag)})


async def get_symlink(call: Call) -> Response:
    record = await run_in_threadpool(call.storage.head_object, call.bucket_name, call.object_key)
    if record.symlink_target is None:
        raise OssError("NotSymlink", Key=call.object_key)
    return Response(
        headers={
            "x-oss-symlink-target": url_encode(record.symlink_target),
            "ETag": quoted_etag(record.etag),
            "Last-Modified": http_date(record.last_modified),
            **record.attrs.user_meta,
        }
    )
