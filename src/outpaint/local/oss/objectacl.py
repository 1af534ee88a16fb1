"""Object ACLs: ``x-oss-object-acl`` on writes, GetObjectAcl and PutObjectAcl."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from .buckets import owner, xml_response
from .context import Call
from .errors import OssError
from .storage import ACLS

OBJECT_ACLS = ("default", *ACLS)  # "default": the object follows its bucket's ACL


def header_acl(call: Call) -> str:
    """The ``x-oss-object-acl`` a write asks for (``default`` when absent)."""
    acl = call.headers.get("x-oss-object-acl", "default")
    if acl not in OBJECT_ACLS:
        raise OssError(
            "InvalidArgument",
            f"x-oss-object-acl must be one of {', '.join(OBJECT_ACLS)}.",
            ArgumentName="x-oss-object-acl",
        )
    return acl


async def get_object_acl(call: Call) -> Response:
    record = await run_in_threadpool(call.storage.head_object, call.bucket_name, call.object_key)
    return xml_response(
        "AccessControlPolicy", [("Owner", owner(call)), ("AccessControlList", [("Grant", record.acl)])]
    )


async def put_object_acl(call: Call) -> Response:
    if "x-oss-object-acl" not in call.headers:
        raise OssError(
            "InvalidArgument", "PutObjectAcl needs x-oss-object-acl.", ArgumentName="x-oss-object-acl"
        )
    acl = header_acl(call)
    await run_in_threadpool(lambda: call.storage.update_object(call.bucket_name, call.object_key, acl=acl))
    return Response()
