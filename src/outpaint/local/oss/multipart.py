"""Multipart upload: Initiate, UploadPart, Complete, Abort, ListParts, ListMultipartUploads."""

from __future__ import annotations

from functools import partial
from typing import BinaryIO

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from . import xmlio
from .buckets import encoder, xml_response
from .context import Call
from .errors import OssError
from .listing import upload_page
from .objectacl import header_acl
from .objects import (
    attrs_from,
    check_conditions,
    check_creatable,
    content_md5,
    parse_copy_source,
    resolve_range,
    write_result,
)
from .storage import MAX_PART_NUMBER, BlobWriter
from .tagging import header_tags
from .wire import iso_time, quoted_etag

MAX_PARTS_LISTED = 1000
MAX_UPLOADS_LISTED = 1000
_MAX_COMPLETE_BODY = 4 * 1024 * 1024
_COPY_CHUNK = 1 << 20


async def initiate(call: Call) -> Response:
    attrs = attrs_from(call.headers)
    await run_in_threadpool(check_creatable, call, call.flag("x-oss-forbid-overwrite"))
    acl, tags = header_acl(call), header_tags(call)
    upload = await run_in_threadpool(
        call.storage.create_upload, call.bucket_name, call.object_key, attrs, acl, tags
    )
    call.publish_upload_step("InitiateMultipartUpload", call.object_key)
    enc = encoder(call)
    return xml_response(
        "InitiateMultipartUploadResult",
        [
            ("Bucket", call.bucket_name),
            ("Key", enc(call.object_key)),
            ("UploadId", upload.upload_id),
            ("EncodingType", call.param("encoding-type") or None),
        ],
    )


def _part_number(call: Call) -> int:
    number = call.param("partNumber", "") or ""
    if not number.isdigit() or not 1 <= int(number) <= MAX_PART_NUMBER:
        raise OssError("InvalidArgument", f"partNumber must be between 1 and {MAX_PART_NUMBER}.")
    return int(number)


async def upload_part(call: Call) -> Response:
    upload_id = call.param("uploadId", "") or ""
    number = _part_number(call)
    await run_in_threadpool(call.storage.upload, call.bucket_name, call.object_key, upload_id)
    writer = await call.receive()
    part = await run_in_threadpool(
        call.storage.put_part, call.bucket_name, call.object_key, upload_id, number, writer
    )
    call.publish_upload_step("UploadPart", call.object_key, part.size, part.etag)
    return Response(
        headers={
            "ETag": quoted_etag(part.etag),
            "Content-MD5": content_md5(part.etag),
            "x-oss-hash-crc64ecma": str(part.crc64),
        }
    )


async def upload_part_copy(call: Call) -> Response:
    """UploadPartCopy: a part taken from an existing object, whole or ``x-oss-copy-source-range``."""
    upload_id = call.param("uploadId", "") or ""
    number = _part_number(call)
    source = parse_copy_source(call.headers["x-oss-copy-source"])
    await run_in_threadpool(call.storage.upload, call.bucket_name, call.object_key, upload_id)
    src, body = await run_in_threadpool(call.storage.open_object, *source)
    with body:
        if check_conditions(src, call.headers, prefix="x-oss-copy-source-"):
            return Response(status_code=304, headers={"ETag": quoted_etag(src.etag)})
        span = resolve_range(call.headers.get("x-oss-copy-source-range"), src.size, standard=True)
        first, last = span if span else (0, src.size - 1)
        writer = await run_in_threadpool(_copy_range, call, body, first, last - first + 1)
    part = await run_in_threadpool(
        call.storage.put_part, call.bucket_name, call.object_key, upload_id, number, writer
    )
    call.publish_upload_step("UploadPartCopy", call.object_key, part.size, part.etag)
    return xml_response(
        "CopyPartResult",
        [("LastModified", iso_time(part.last_modified)), ("ETag", quoted_etag(part.etag))],
        headers={"ETag": quoted_etag(part.etag), "x-oss-hash-crc64ecma": str(part.crc64)},
    )


def _copy_range(call: Call, body: BinaryIO, first: int, length: int) -> BlobWriter:
    writer = call.storage.new_writer()
    try:
        body.seek(first)
        while length > 0 and (chunk := body.read(min(length, _COPY_CHUNK))):
            writer.write(chunk)
            length -= len(chunk)
        writer.finish()
    except BaseException:
        writer.discard()
        raise
    return writer


async def complete(call: Call) -> Response:
    upload_id = call.param("uploadId", "") or ""
    body = await call.read_body(_MAX_COMPLETE_BODY)
    requested = None if call.headers.get("x-oss-complete-all") == "yes" else _requested_parts(body)
    record, previous = await run_in_threadpool(
        partial(
            call.storage.complete_upload,
            call.bucket_name,
            call.object_key,
            upload_id,
            requested,
            forbid_overwrite=call.flag("x-oss-forbid-overwrite"),
        )
    )
    call.publish_created("CompleteMultipartUpload", record, previous)
    enc = encoder(call)
    host = call.headers.get("host", "")
    return xml_response(
        "CompleteMultipartUploadResult",
        [
            ("EncodingType", call.param("encoding-type") or None),
            ("Location", f"http://{host}/{call.bucket_name}/{enc(call.object_key)}"),
            ("Bucket", call.bucket_name),
            ("Key", enc(call.object_key)),
            ("ETag", quoted_etag(record.etag)),
        ],
        headers=write_result(record),
    )


async def abort(call: Call) -> Response:
    await run_in_threadpool(
        call.storage.abort_upload, call.bucket_name, call.object_key, call.param("uploadId", "") or ""
    )
    call.publish_upload_step("AbortMultipartUpload", call.object_key)
    return Response(status_code=204)


async def list_parts(call: Call) -> Response:
    upload_id = call.param("uploadId", "") or ""
    max_parts = call.int_param("max-parts", MAX_PARTS_LISTED, MAX_PARTS_LISTED)
    marker = call.int_param("part-number-marker", 0, MAX_PART_NUMBER)
    upload = await run_in_threadpool(call.storage.upload, call.bucket_name, call.object_key, upload_id)
    numbers = [n for n in sorted(upload.parts) if n > marker]
    shown, truncated = numbers[:max_parts], len(numbers) > max_parts
    parts = [
        (
            "Part",
            [
                ("PartNumber", n),
                ("LastModified", iso_time(upload.parts[n].last_modified)),
                ("ETag", quoted_etag(upload.parts[n].etag)),
                ("HashCrc64ecma", upload.parts[n].crc64),
                ("Size", upload.parts[n].size),
            ],
        )
        for n in shown
    ]
    enc = encoder(call)
    return xml_response(
        "ListPartsResult",
        [
            ("Bucket", call.bucket_name),
            ("Key", enc(call.object_key)),
            ("UploadId", upload_id),
            ("PartNumberMarker", marker),
            ("NextPartNumberMarker", shown[-1] if shown else marker),
            ("MaxParts", max_parts),
            ("IsTruncated", truncated),
            *parts,
        ],
    )


async def list_uploads(call: Call) -> Response:
    """ListMultipartUploads with prefix, delimiter, key-marker, upload-id-marker and max-uploads."""
    prefix = call.param("prefix") or ""
    delimiter = call.param("delimiter") or ""
    key_marker = call.param("key-marker") or ""
    upload_id_marker = call.param("upload-id-marker") or ""
    max_uploads = call.int_param("max-uploads", MAX_UPLOADS_LISTED, MAX_UPLOADS_LISTED)
    uploads = await run_in_threadpool(call.storage.uploads, call.bucket_name)
    page = upload_page(
        uploads,
        prefix=prefix,
        delimiter=delimiter,
        key_marker=key_marker,
        upload_id_marker=upload_id_marker,
        max_uploads=max_uploads,
    )
    enc = encoder(call)
    entries = [
        ("Upload", [("Key", enc(u.key)), ("UploadId", u.upload_id), ("Initiated", iso_time(u.initiated))])
        for u in page.uploads
    ]
    prefixes = [("CommonPrefixes", [("Prefix", enc(common))]) for common in page.prefixes]
    return xml_response(
        "ListMultipartUploadsResult",
        [
            ("Bucket", call.bucket_name),
            ("EncodingType", call.param("encoding-type") or None),
            ("KeyMarker", enc(key_marker)),
            ("UploadIdMarker", upload_id_marker),
            ("NextKeyMarker", enc(page.next_key) if page.truncated else ""),
            ("NextUploadIdMarker", page.next_upload_id if page.truncated else ""),
            ("Delimiter", enc(delimiter)),
            ("Prefix", enc(prefix)),
            ("MaxUploads", max_uploads),
            ("IsTruncated", page.truncated),
            *entries,
            *prefixes,
        ],
    )


def _requested_parts(body: bytes) -> list[tuple[int, str]]:
    root = xmlio.parse(body)
    if root.tag != "CompleteMultipartUpload":
        raise OssError("MalformedXML")
    parts = []
    for node in root.findall("Part"):
        number = xmlio.text(node, "PartNumber")
        if not number.isdigit():
            raise OssError("MalformedXML", "Every Part needs a numeric PartNumber.")
        parts.append((int(number), xmlio.text(node, "ETag")))
    return parts
