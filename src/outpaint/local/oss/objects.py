"""Object operations: Put, Get (ranges, conditions, image/info), Head, GetObjectMeta, Delete, Copy."""

from __future__ import annotations

import base64
import dataclasses
import re
from collections.abc import AsyncIterator, Mapping
from functools import partial
from typing import BinaryIO
from urllib.parse import unquote

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from . import compression, xmlio
from .context import Call
from .errors import OssError
from .objectacl import header_acl
from .storage import ObjectAttrs, ObjectRecord
from .tagging import header_tags
from .wire import http_date, iso_time, parse_http_date, quoted_etag

STORED_HEADERS = (
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
    "x-oss-server-side-encryption",  # AES256 only: it round-trips; the data is not really encrypted
)
MAX_USER_META_BYTES = 8 * 1024
_READ_CHUNK = 1 << 20
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}


def attrs_from(headers: Mapping[str, str], default_type: str = "application/octet-stream") -> ObjectAttrs:
    """Content-Type (``default_type`` when absent), ``x-oss-meta-*`` and the other stored headers."""
    _refuse_unemulated(headers)
    user_meta = {name: value for name, value in headers.items() if name.startswith("x-oss-meta-")}
    if sum(len(name) + len(value) for name, value in user_meta.items()) > MAX_USER_META_BYTES:
        raise OssError("InvalidArgument", "User metadata must not exceed 8 KB in total.")
    return ObjectAttrs(
        content_type=headers.get("content-type") or default_type,
        user_meta=user_meta,
        headers={name: headers[name] for name in STORED_HEADERS if name in headers},
    )


def _refuse_unemulated(headers: Mapping[str, str]) -> None:
    """Storage classes other than Standard and KMS/SM4 encryption are refused, not silently dropped."""
    storage_class = headers.get("x-oss-storage-class", "Standard")
    if storage_class != "Standard":
        raise OssError(
            "NotImplemented", f"x-oss-storage-class {storage_class} is not emulated (only Standard)."
        )
    encryption = headers.get("x-oss-server-side-encryption", "AES256")
    if encryption in ("KMS", "SM4"):
        raise OssError(
            "NotImplemented", f"x-oss-server-side-encryption {encryption} is not emulated (only AES256)."
        )
    if encryption != "AES256":
        raise OssError(
            "InvalidArgument",
            "x-oss-server-side-encryption must be AES256, KMS or SM4.",
            ArgumentName="x-oss-server-side-encryption",
        )


def object_headers(record: ObjectRecord) -> dict[str, str]:
    """The headers GetObject and HeadObject answer with (Content-Length is set by the caller)."""
    return {
        "Content-Type": record.attrs.content_type,
        "ETag": quoted_etag(record.etag),
        "Last-Modified": http_date(record.last_modified),
        "Accept-Ranges": "bytes",
        "x-oss-object-type": record.object_type,
        "x-oss-storage-class": record.storage_class,
        "x-oss-hash-crc64ecma": str(record.crc64),
        **record.attrs.headers,
        **record.attrs.user_meta,
        **({"x-oss-tagging-count": str(len(record.tags))} if record.tags else {}),
    }


def content_md5(etag: str) -> str:
    """The base64 Content-MD5 header OSS answers a write with, from an MD5 ETag."""
    return base64.b64encode(bytes.fromhex(etag)).decode()


def write_result(record: ObjectRecord) -> dict[str, str]:
    """Headers of a successful write: ETag, CRC-64 (which the SDKs compare with their own), encryption."""
    encryption = record.attrs.headers.get("x-oss-server-side-encryption")
    return {
        "ETag": quoted_etag(record.etag),
        "x-oss-hash-crc64ecma": str(record.crc64),
        **({"x-oss-server-side-encryption": encryption} if encryption else {}),
    }


async def store_new(call: Call, **kind: str) -> tuple[ObjectRecord, ObjectRecord | None]:
    """Write the request body at the call's key as a new object (PutObject, PutSymlink): the overwrite
    check, then attributes, ACL and tags from the headers; ``kind`` adds the object type's own fields.
    The written record and the one it replaced."""
    forbid = call.flag("x-oss-forbid-overwrite")
    attrs = attrs_from(call.headers)
    extra = {"acl": header_acl(call), "tags": header_tags(call) or {}}
    await run_in_threadpool(check_creatable, call, forbid)
    writer = await call.receive()
    return await run_in_threadpool(
        partial(
            call.storage.put_object,
            call.bucket_name,
            call.object_key,
            writer,
            attrs,
            forbid_overwrite=forbid,
            **extra,
            **kind,
        )
    )


async def put_object(call: Call) -> Response:
    record, previous = await store_new(call)
    call.publish_created("PutObject", record, previous)
    return Response(headers={**write_result(record), "Content-MD5": content_md5(record.etag)})


async def copy_object(call: Call) -> Response:
    source = parse_copy_source(call.headers["x-oss-copy-source"])
    directive = call.headers.get("x-oss-metadata-directive", "COPY").upper()
    if directive not in ("COPY", "REPLACE"):
        raise OssError("InvalidArgument", "x-oss-metadata-directive must be COPY or REPLACE.")
    forbid = call.flag("x-oss-forbid-overwrite")
    src = await run_in_threadpool(call.storage.head_object, *source)
    if check_conditions(src, call.headers, prefix="x-oss-copy-source-"):
        return Response(status_code=304, headers={"ETag": quoted_etag(src.etag)})
    # REPLACE without a Content-Type keeps the source's, as OSS does.
    attrs = attrs_from(call.headers, src.attrs.content_type) if directive == "REPLACE" else None
    tagging = call.headers.get("x-oss-tagging-directive", "COPY").upper()
    if tagging not in ("COPY", "REPLACE"):
        raise OssError("InvalidArgument", "x-oss-tagging-directive must be Copy or Replace.")
    record, previous = await run_in_threadpool(
        partial(
            call.storage.copy_object,
            source,
            call.bucket_name,
            call.object_key,
            attrs,
            forbid_overwrite=forbid,
            tags=(header_tags(call) or {}) if tagging == "REPLACE" else None,
            acl=header_acl(call),
        )
    )
    call.publish_created("CopyObject", record, previous)
    body = xmlio.render(
        "CopyObjectResult",
        [("ETag", quoted_etag(record.etag)), ("LastModified", iso_time(record.last_modified))],
    )
    return Response(body, media_type="application/xml", headers=write_result(record))


def parse_copy_source(header: str) -> tuple[str, str]:
    """``/<bucket>/<percent-encoded key>`` (an optional ``?versionId=`` is ignored) as (bucket, key)."""
    path = header.partition("?")[0]
    bucket, _, key = unquote(path.lstrip("/")).partition("/")
    if not bucket or not key:
        raise OssError("InvalidArgument", "x-oss-copy-source must be /<bucket>/<key>.")
    return bucket, key


async def get_object(call: Call) -> Response:
    record, body = await run_in_threadpool(open_resolved, call)
    try:
        if check_conditions(record, call.headers):
            body.close()
            return _not_modified(record)
        span = resolve_range(
            call.headers.get("range"), record.size, call.headers.get("x-oss-range-behavior") == "standard"
        )
    except BaseException:
        body.close()
        raise
    headers = object_headers(record)
    for param, header in _RESPONSE_OVERRIDES.items():
        if (value := call.param(param)) is not None:
            headers[header] = value
    if span is None:
        first, length, status = 0, record.size, 200
    else:
        first, length, status = span[0], span[1] - span[0] + 1, 206
        headers["Content-Range"] = f"bytes {span[0]}-{span[1]}/{record.size}"
    stream = _read(body, first, length)
    stored_encoding = record.attrs.headers.get("content-encoding")
    if span is None and compression.wanted(
        call.headers.get("accept-encoding", ""), record.attrs.content_type, record.size, stored_encoding
    ):
        headers["Content-Encoding"] = "gzip"
        return StreamingResponse(compression.gzipped(stream), status_code=status, headers=headers)
    headers["Content-Length"] = str(length)
    return StreamingResponse(stream, status_code=status, headers=headers)


async def head_object(call: Call) -> Response:
    record = await run_in_threadpool(head_resolved, call)
    if check_conditions(record, call.headers):
        return _not_modified(record)
    return Response(headers={**object_headers(record), "Content-Length": str(record.size)})


async def get_object_meta(call: Call) -> Response:
    record = await run_in_threadpool(call.storage.head_object, call.bucket_name, call.object_key)
    return Response(
        headers={
            "ETag": quoted_etag(record.etag),
            "Last-Modified": http_date(record.last_modified),
            "Content-Length": str(record.size),
            "x-oss-hash-crc64ecma": str(record.crc64),
        }
    )


async def delete_object(call: Call) -> Response:
    removed = await run_in_threadpool(call.storage.delete_object, call.bucket_name, call.object_key)
    if removed is not None:
        call.publish_removed("DeleteObject", removed)
    return Response(status_code=204)


async def process_object(call: Call) -> Response:
    """``x-oss-process``: only ``image/info`` is emulated."""
    process = call.param("x-oss-process", "")
    if process != "image/info":
        raise OssError("NotImplemented", f"x-oss-process={process} is not emulated (only image/info).")
    from .imageinfo import describe

    record, body = await run_in_threadpool(call.storage.open_object, call.bucket_name, call.object_key)
    with body:
        info = await run_in_threadpool(describe, body, record.size)
    return Response(info, media_type="application/json")


def head_resolved(call: Call) -> ObjectRecord:
    """The addressed object; a symlink reads as its target's body with its own metadata."""
    record = call.storage.head_object(call.bucket_name, call.object_key)
    return _through_link(record, _target(call, record)) if record.symlink_target is not None else record


def open_resolved(call: Call) -> tuple[ObjectRecord, BinaryIO]:
    """Like :func:`head_resolved`, with the body opened."""
    record = call.storage.head_object(call.bucket_name, call.object_key)
    if record.symlink_target is None:
        return call.storage.open_object(call.bucket_name, call.object_key)
    _target(call, record)
    target, body = call.storage.open_object(call.bucket_name, record.symlink_target)
    return _through_link(record, target), body


def _target(call: Call, link: ObjectRecord) -> ObjectRecord:
    try:
        return call.storage.head_object(call.bucket_name, link.symlink_target or "")
    except OssError as error:
        if error.code == "NoSuchKey":
            raise OssError("SymlinkTargetNotExist", Key=link.key, Target=link.symlink_target or "") from None
        raise


def _through_link(link: ObjectRecord, target: ObjectRecord) -> ObjectRecord:
    return dataclasses.replace(target, key=link.key, attrs=link.attrs, object_type="Symlink")


def check_conditions(record: ObjectRecord, headers: Mapping[str, str], prefix: str = "") -> bool:
    """Apply If-Match / If-Unmodified-Since (412) and If-None-Match / If-Modified-Since (True: 304)."""
    if_match = headers.get(prefix + "if-match")
    if if_match is not None and not _etag_matches(if_match, record.etag):
        raise OssError("PreconditionFailed", Condition="If-Match")
    unmodified_since = parse_http_date(headers.get(prefix + "if-unmodified-since", ""))
    if unmodified_since is not None and record.last_modified > unmodified_since:
        raise OssError("PreconditionFailed", Condition="If-Unmodified-Since")
    if_none_match = headers.get(prefix + "if-none-match")
    if if_none_match is not None:
        return _etag_matches(if_none_match, record.etag)
    modified_since = parse_http_date(headers.get(prefix + "if-modified-since", ""))
    return modified_since is not None and record.last_modified <= modified_since


def resolve_range(header: str | None, size: int, standard: bool) -> tuple[int, int] | None:
    """Inclusive (first, last) to answer with 206, or None for the whole object with 200.

    By default OSS ignores a range it cannot serve exactly; with ``x-oss-range-behavior: standard``
    an end past the object is truncated and a start past it is 416 InvalidRange.
    """
    match = _RANGE.fullmatch(header.strip()) if header else None
    if match is None or not (match[1] or match[2]):
        return None  # absent, malformed or multi-range
    if match[1]:
        first = int(match[1])
        last = int(match[2]) if match[2] else size - 1
        if last < first:
            return None
    else:
        suffix = int(match[2])
        first, last = (size - suffix if suffix else size), size - 1
    if size == 0 or first >= size:
        if standard:
            raise OssError("InvalidRange", ActualObjectSize=str(size))
        return None
    if first < 0 or last >= size:
        if not standard:
            return None
        first, last = max(first, 0), min(last, size - 1)
    return first, last


def _etag_matches(condition: str, etag: str) -> bool:
    candidates = {value.strip().strip('"').upper() for value in condition.split(",")}
    return "*" in candidates or etag in candidates


def _not_modified(record: ObjectRecord) -> Response:
    return Response(
        status_code=304,
        headers={"ETag": quoted_etag(record.etag), "Last-Modified": http_date(record.last_modified)},
    )


def check_creatable(call: Call, forbid_overwrite: bool) -> None:
    """Fail before receiving a body that could not be stored (the commit checks again, atomically)."""
    call.storage.bucket(call.bucket_name)
    if forbid_overwrite:
        try:
            call.storage.head_object(call.bucket_name, call.object_key)
        except OssError:
            return
        raise OssError("FileAlreadyExists", Key=call.object_key)


async def _read(body: BinaryIO, first: int, length: int) -> AsyncIterator[bytes]:
    try:
        await run_in_threadpool(body.seek, first)
        remaining = length
        while remaining > 0:
            chunk = await run_in_threadpool(body.read, min(_READ_CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
    finally:
        body.close()
