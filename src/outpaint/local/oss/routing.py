"""Which operation a request is: method + addressing level + sub-resources, as OSS dispatches them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.responses import Response

from . import append, buckets, multipart, objectacl, objects, postobject, symlinks, tagging
from .auth import V1_SUBRESOURCES
from .context import Call
from .errors import OssError

# What an anonymous caller needs from the bucket ACL; SELF operations authenticate themselves.
READ, WRITE, OWNER, SELF = "read", "write", "owner", "self"

# Sub-resources the emulated operations understand; any other OSS sub-resource is refused with 501
# instead of being silently served as a plain object or bucket request.
_UNDERSTOOD = frozenset(
    {
        "acl",
        "uploads",
        "location",
        "delete",
        "objectMeta",
        "uploadId",
        "partNumber",
        "security-token",
        "x-oss-process",
        "continuation-token",
        "bucketInfo",
        "live",
        "tagging",
        "symlink",
        "append",
        "position",
    }
    | {name for name in V1_SUBRESOURCES if name.startswith("response-")}
)

# Ordinary (non sub-resource) parameters of the emulated operations and of the signatures. Any other
# parameter without a value is taken for a sub-resource OSS has and the emulator does not
# (``?regions``, ``?publicAccessBlock``): it answers 501 instead of falling through to another operation.
_PARAMETERS = frozenset(
    {
        "prefix",
        "marker",
        "max-keys",
        "delimiter",
        "encoding-type",
        "list-type",
        "start-after",
        "fetch-owner",
        "key-marker",
        "upload-id-marker",
        "max-uploads",
        "max-parts",
        "part-number-marker",
        "OSSAccessKeyId",
        "Expires",
        "Signature",
        "x-oss-signature-version",
        "x-oss-credential",
        "x-oss-date",
        "x-oss-expires",
        "x-oss-signature",
        "x-oss-additional-headers",
        "x-oss-security-token",
    }
)


@dataclass(frozen=True)
class Operation:
    name: str
    handler: Callable[[Call], Awaitable[Response]]
    access: str


async def _not_emulated(call: Call) -> Response:
    raise OssError("NotImplemented")


def _has(name: str) -> Callable[[Call], bool]:
    return lambda call: call.has(name)


def _header(name: str) -> Callable[[Call], bool]:
    return lambda call: name in call.headers


def _list_v2(call: Call) -> bool:
    return call.param("list-type") == "2"


def _form(call: Call) -> bool:
    return call.headers.get("content-type", "").startswith("multipart/form-data")


def _part_copy(call: Call) -> bool:
    return call.has("uploadId") and "x-oss-copy-source" in call.headers


def _object_only(call: Call) -> bool:
    return any(call.has(name) for name in ("tagging", "symlink", "append", "position"))


def _always(call: Call) -> bool:
    return True


# (level, method, condition, operation): the first matching rule wins. Level is where the request
# points: "service" (no bucket), "bucket" (no key) or "object"; "*" matches any level or method.
_RULES: list[tuple[str, str, Callable[[Call], bool], Operation]] = [
    ("service", "GET", _always, Operation("ListBuckets", buckets.list_buckets, OWNER)),
    # Bucket tagging and the like: same names as object sub-resources, not emulated on buckets.
    ("bucket", "*", _object_only, Operation("BucketSubresource", _not_emulated, OWNER)),
    ("bucket", "GET", _has("acl"), Operation("GetBucketAcl", buckets.get_bucket_acl, OWNER)),
    ("bucket", "GET", _has("bucketInfo"), Operation("GetBucketInfo", buckets.get_bucket_info, OWNER)),
    ("bucket", "GET", _has("location"), Operation("GetBucketLocation", buckets.get_bucket_location, OWNER)),
    ("bucket", "GET", _has("live"), Operation("ListLiveChannel", buckets.list_live_channels, OWNER)),
    ("*", "*", _has("live"), Operation("LiveChannel", _not_emulated, OWNER)),
    ("bucket", "GET", _has("uploads"), Operation("ListMultipartUploads", multipart.list_uploads, READ)),
    ("bucket", "GET", _list_v2, Operation("ListObjectsV2", buckets.list_objects, READ)),
    ("bucket", "GET", _always, Operation("ListObjects", buckets.list_objects, READ)),
    ("bucket", "PUT", _has("acl"), Operation("PutBucketAcl", buckets.put_bucket_acl, OWNER)),
    ("bucket", "PUT", _always, Operation("PutBucket", buckets.put_bucket, OWNER)),
    ("bucket", "DELETE", _always, Operation("DeleteBucket", buckets.delete_bucket, OWNER)),
    (
        "bucket",
        "POST",
        _has("delete"),
        Operation("DeleteMultipleObjects", buckets.delete_multiple_objects, WRITE),
    ),
    ("bucket", "POST", _form, Operation("PostObject", postobject.post_object, SELF)),
    ("object", "GET", _has("acl"), Operation("GetObjectAcl", objectacl.get_object_acl, OWNER)),
    ("object", "PUT", _has("acl"), Operation("PutObjectAcl", objectacl.put_object_acl, OWNER)),
    ("object", "GET", _has("tagging"), Operation("GetObjectTagging", tagging.get_object_tagging, READ)),
    ("object", "PUT", _has("tagging"), Operation("PutObjectTagging", tagging.put_object_tagging, WRITE)),
    (
        "object",
        "DELETE",
        _has("tagging"),
        Operation("DeleteObjectTagging", tagging.delete_object_tagging, WRITE),
    ),
    ("object", "GET", _has("symlink"), Operation("GetSymlink", symlinks.get_symlink, READ)),
    ("object", "PUT", _has("symlink"), Operation("PutSymlink", symlinks.put_symlink, WRITE)),
    ("object", "POST", _has("append"), Operation("AppendObject", append.append_object, WRITE)),
    ("object", "GET", _has("uploadId"), Operation("ListParts", multipart.list_parts, READ)),
    ("object", "GET", _has("x-oss-process"), Operation("ProcessObject", objects.process_object, READ)),
    ("object", "GET", _always, Operation("GetObject", objects.get_object, READ)),
    ("object", "HEAD", _has("objectMeta"), Operation("GetObjectMeta", objects.get_object_meta, READ)),
    ("object", "HEAD", _always, Operation("HeadObject", objects.head_object, READ)),
    ("object", "PUT", _part_copy, Operation("UploadPartCopy", multipart.upload_part_copy, WRITE)),
    ("object", "PUT", _has("uploadId"), Operation("UploadPart", multipart.upload_part, WRITE)),
    ("object", "PUT", _header("x-oss-copy-source"), Operation("CopyObject", objects.copy_object, WRITE)),
    ("object", "PUT", _always, Operation("PutObject", objects.put_object, WRITE)),
    ("object", "DELETE", _has("uploadId"), Operation("AbortMultipartUpload", multipart.abort, WRITE)),
    ("object", "DELETE", _always, Operation("DeleteObject", objects.delete_object, WRITE)),
    ("object", "POST", _has("uploads"), Operation("InitiateMultipartUpload", multipart.initiate, WRITE)),
    ("object", "POST", _has("uploadId"), Operation("CompleteMultipartUpload", multipart.complete, WRITE)),
]


def resolve(call: Call) -> Operation:
    """The operation for ``call``, or NotImplemented / MethodNotAllowed."""
    unknown = sorted(
        name
        for name, value in call.query
        if name not in _UNDERSTOOD and (name in V1_SUBRESOURCES or (not value and name not in _PARAMETERS))
    )
    if unknown:
        raise OssError("NotImplemented", f"The ?{unknown[0]} sub-resource is not emulated.")
    if call.request.method == "OPTIONS":
        raise OssError("NotImplemented", "CORS preflight (OPTIONS) is not emulated.")
    level = "service" if call.bucket is None else "bucket" if call.key is None else "object"
    method = call.request.method
    for rule_level, rule_method, condition, operation in _RULES:
        if rule_level in (level, "*") and rule_method in (method, "*") and condition(call):
            if operation.handler is _not_emulated:
                raise OssError("NotImplemented", f"{operation.name} is not emulated.")
            return operation
    raise OssError("MethodNotAllowed", f"{method} is not supported on this resource.")
