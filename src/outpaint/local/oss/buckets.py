"""Service and bucket operations: buckets, ACL, info, location, ListObjects v1/v2, batch delete."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from functools import partial

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from . import xmlio
from .context import Call
from .errors import OssError
from .listing import Page, list_page
from .storage import ACLS, BucketRecord, ObjectRecord
from .wire import iso_time, quoted_etag, url_encode

MAX_KEYS = 1000
MAX_DELETE_KEYS = 1000
_MAX_XML_BODY = 2 * 1024 * 1024
_RESOURCE_GROUP = "rg-default-id"  # what OSS reports for a bucket in the account's default resource group


def xml_response(
    root: str, children: list[xmlio.Node], headers: dict[str, str] | None = None, status: int = 200
) -> Response:
    return Response(
        xmlio.render(root, children), status_code=status, media_type="application/xml", headers=headers
    )


def owner(call: Call) -> list[xmlio.Node]:
    account = call.state.notifier.account_id
    return [("ID", account), ("DisplayName", account)]


def encoder(call: Call) -> Callable[[str], str]:
    """``encoding-type=url`` percent-encodes keys and prefixes in the answer; nothing else is valid."""
    encoding = call.param("encoding-type") or ""
    if encoding not in ("", "url"):
        raise OssError("InvalidArgument", "encoding-type must be url.", ArgumentName="encoding-type")
    return url_encode if encoding else str


async def put_bucket(call: Call) -> Response:
    acl = _acl(call)
    body = await call.read_body(_MAX_XML_BODY)
    if body.strip():
        storage_class = xmlio.text(xmlio.parse(body), "StorageClass", "Standard")
        if storage_class != "Standard":
            raise OssError(
                "NotImplemented", f"Storage class {storage_class} is not emulated (only Standard)."
            )
    await run_in_threadpool(partial(call.storage.create_bucket, call.bucket_name, acl))
    return Response(headers={"Location": f"/{call.bucket_name}"})


async def delete_bucket(call: Call) -> Response:
    await run_in_threadpool(call.storage.delete_bucket, call.bucket_name)
    return Response(status_code=204)


async def put_bucket_acl(call: Call) -> Response:
    await run_in_threadpool(call.storage.set_bucket_acl, call.bucket_name, _acl(call))
    return Response()


async def get_bucket_acl(call: Call) -> Response:
    record = await run_in_threadpool(call.storage.bucket, call.bucket_name)
    return xml_response(
        "AccessControlPolicy", [("Owner", owner(call)), ("AccessControlList", [("Grant", record.acl)])]
    )


async def get_bucket_location(call: Call) -> Response:
    await run_in_threadpool(call.storage.bucket, call.bucket_name)
    body = xmlio.render("LocationConstraint", [], text=f"oss-{call.state.region}")
    return Response(body, media_type="application/xml")


async def get_bucket_info(call: Call) -> Response:
    record = await run_in_threadpool(call.storage.bucket, call.bucket_name)
    return xml_response(
        "BucketInfo",
        [
            (
                "Bucket",
                [
                    ("AccessMonitor", "Disabled"),
                    ("BlockPublicAccess", False),
                    ("Comment", ""),
                    ("CreationDate", iso_time(record.created)),
                    ("CrossRegionReplication", "Disabled"),
                    ("DataRedundancyType", "LRS"),
                    *_endpoints(call),
                    ("Location", f"oss-{call.state.region}"),
                    ("Name", record.name),
                    ("Region", call.state.region),
                    ("ResourceGroupId", _RESOURCE_GROUP),
                    ("StorageClass", "Standard"),
                    ("TransferAcceleration", "Disabled"),
                    ("Owner", owner(call)),
                    ("AccessControlList", [("Grant", record.acl)]),
                    ("ServerSideEncryptionRule", [("SSEAlgorithm", "None")]),
                ],
            )
        ],
    )


async def list_live_channels(call: Call) -> Response:
    """ListLiveChannel: live channels are not emulated, so a bucket never has any."""
    await run_in_threadpool(call.storage.bucket, call.bucket_name)
    return xml_response(
        "ListLiveChannelResult",
        [
            ("Prefix", call.param("prefix") or ""),
            ("Marker", call.param("marker") or ""),
            ("MaxKeys", call.int_param("max-keys", 100, MAX_KEYS)),
            ("IsTruncated", False),
        ],
    )


async def list_buckets(call: Call) -> Response:
    prefix = call.param("prefix") or ""
    marker = call.param("marker") or ""
    max_keys = call.int_param("max-keys", 100, MAX_KEYS)
    records = await run_in_threadpool(call.storage.buckets)
    matching = [r for r in records if r.name.startswith(prefix) and r.name > marker]
    # max-keys 0: an empty, untruncated page, as for objects (listing.list_page).
    page, truncated = matching[:max_keys], 0 < max_keys < len(matching)
    return xml_response(
        "ListAllMyBucketsResult",
        [
            ("Prefix", prefix),
            ("Marker", marker),
            ("MaxKeys", max_keys),
            ("IsTruncated", truncated),
            ("NextMarker", page[-1].name if truncated else None),
            ("Owner", owner(call)),
            ("Buckets", [("Bucket", _bucket_summary(call, record)) for record in page]),
        ],
    )


async def list_objects(call: Call) -> Response:
    """ListObjects (v1, ``marker``) and ListObjectsV2 (``list-type=2``, continuation tokens)."""
    v2 = call.param("list-type") == "2"
    enc = encoder(call)
    prefix = call.param("prefix") or ""
    delimiter = call.param("delimiter") or ""
    max_keys = call.int_param("max-keys", 100, MAX_KEYS)
    token = call.param("continuation-token") or ""
    start_after = call.param("start-after") or ""
    # v1 pages with marker; v2 with an opaque continuation token, or start-after on the first page.
    marker = (_decode_token(token) if token else start_after) if v2 else call.param("marker") or ""
    page = await run_in_threadpool(_list, call, prefix, delimiter, marker, max_keys)
    with_owner = not v2 or call.param("fetch-owner") == "true"
    head: list[xmlio.Node] = [("Name", call.bucket_name), ("Prefix", enc(prefix))]
    if v2:
        head += [
            ("StartAfter", enc(start_after) if start_after else None),
            ("ContinuationToken", token or None),
        ]
    else:
        head += [("Marker", enc(marker))]
    head += [
        ("MaxKeys", max_keys),
        ("Delimiter", enc(delimiter)),
        ("EncodingType", call.param("encoding-type") or None),
        ("IsTruncated", page.truncated),
    ]
    if page.truncated:
        head += (
            [("NextContinuationToken", enc(_encode_token(page.last)))]
            if v2
            else [("NextMarker", enc(page.last))]
        )
    if v2:
        head.append(("KeyCount", len(page.objects) + len(page.prefixes)))
    contents = [("Contents", _object_summary(call, record, enc, with_owner)) for record in page.objects]
    prefixes = [("CommonPrefixes", [("Prefix", enc(common))]) for common in page.prefixes]
    return xml_response("ListBucketResult", head + contents + prefixes)


async def delete_multiple_objects(call: Call) -> Response:
    if "content-md5" not in call.headers:
        raise OssError("InvalidDigest", "DeleteMultipleObjects requires a Content-MD5 header.")
    enc = encoder(call)
    root = xmlio.parse(await call.read_body(_MAX_XML_BODY))
    if root.tag != "Delete":
        raise OssError("MalformedXML")
    keys = [xmlio.text(node, "Key") for node in root.findall("Object")]
    if not keys or len(keys) > MAX_DELETE_KEYS or not all(keys):
        raise OssError("MalformedXML", f"Between 1 and {MAX_DELETE_KEYS} non-empty keys are required.")
    quiet = xmlio.text(root, "Quiet", "false").lower() == "true"
    await run_in_threadpool(call.storage.bucket, call.bucket_name)
    for key in keys:
        removed = await run_in_threadpool(call.storage.delete_object, call.bucket_name, key)
        if removed is not None:
            call.publish_removed("DeleteObjects", removed)
    deleted = [] if quiet else [("Deleted", [("Key", enc(key))]) for key in keys]
    return xml_response("DeleteResult", [("EncodingType", call.param("encoding-type") or None), *deleted])


def _list(call: Call, prefix: str, delimiter: str, marker: str, max_keys: int) -> Page:
    with call.storage.reading(call.bucket_name) as (keys, records):
        return list_page(keys, records, prefix=prefix, delimiter=delimiter, marker=marker, max_keys=max_keys)


def _object_summary(
    call: Call, record: ObjectRecord, enc: Callable[[str], str], with_owner: bool
) -> list[xmlio.Node]:
    return [
        ("Key", enc(record.key)),
        ("LastModified", iso_time(record.last_modified)),
        ("ETag", quoted_etag(record.etag)),
        ("Type", record.object_type),
        ("Size", record.size),
        ("StorageClass", record.storage_class),
        ("Owner", owner(call) if with_owner else None),
    ]


def _bucket_summary(call: Call, record: BucketRecord) -> list[xmlio.Node]:
    return [
        ("CreationDate", iso_time(record.created)),
        *_endpoints(call),
        ("Location", f"oss-{call.state.region}"),
        ("Name", record.name),
        ("Region", call.state.region),
        ("StorageClass", "Standard"),
    ]


def _endpoints(call: Call) -> list[xmlio.Node]:
    host = call.headers.get("host", "")
    return [("ExtranetEndpoint", host), ("IntranetEndpoint", host)]


def _acl(call: Call) -> str:
    acl = call.headers.get("x-oss-acl", "private")
    if acl not in ACLS:
        raise OssError(
            "InvalidArgument", f"x-oss-acl must be one of {', '.join(ACLS)}.", ArgumentName="x-oss-acl"
        )
    return acl


def _encode_token(last: str) -> str:
    return base64.urlsafe_b64encode(last.encode()).decode()


def _decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise OssError("InvalidArgument", "The continuation token is not valid.") from None
