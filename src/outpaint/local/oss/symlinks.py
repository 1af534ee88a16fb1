"""Symlinks: PutSymlink and GetSymlink (reads through a symlink are resolved in objects.py)."""

from __future__ import annotations

from urllib.parse import unquote

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from .context import Call
from .errors import OssError
from .objects import store_new
from .wire import http_date, quoted_etag, url_encode


async def put_symlink(call: Call) -> Response:
    target = unquote(call.headers.get("x-oss-symlink-target", ""))
    if not target:
        raise OssError(
            "InvalidArgument", "PutSymlink needs x-oss-symlink-target.", ArgumentName="x-oss-symlink-target"
        )
    # A symlink has no body of its own: the (empty) body is stored with the target.
    record, previous = await store_new(call, object_type="Symlink", symlink_target=target)
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
