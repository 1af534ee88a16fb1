"""Object tagging: the ``x-oss-tagging`` header on writes and Get/Put/DeleteObjectTagging."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from . import xmlio
from .buckets import xml_response
from .context import Call
from .errors import OssError

MAX_TAGS = 10
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
_MAX_BODY = 64 * 1024
_TAG_TEXT = re.compile(r"[\w\s+\-=.:/@]*")


def header_tags(call: Call) -> dict[str, str] | None:
    """The tags of ``x-oss-tagging`` (``k1=v1&k2=v2``, URL-encoded), or None when absent."""
    header = call.headers.get("x-oss-tagging")
    if header is None:
        return None
    try:
        pairs = parse_qsl(header, keep_blank_values=True, strict_parsing=bool(header))
    except ValueError:
        raise OssError(
            "InvalidArgument",
            "x-oss-tagging must be key=value pairs joined by &.",
            ArgumentName="x-oss-tagging",
        ) from None
    return checked(pairs)


def checked(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Tags as OSS accepts them: at most 10, unique keys of 1-128 characters, values up to 256."""
    if len(pairs) > MAX_TAGS:
        raise OssError("InvalidTag", f"An object can have at most {MAX_TAGS} tags, not {len(pairs)}.")
    tags = dict(pairs)
    if len(tags) != len(pairs):
        raise OssError("InvalidTag", "Tag keys must be unique.")
    for key, value in tags.items():
        if not 1 <= len(key) <= MAX_TAG_KEY or len(value) > MAX_TAG_VALUE:
            raise OssError(
                "InvalidTag",
                f"Tag keys must have 1 to {MAX_TAG_KEY} characters and values at most {MAX_TAG_VALUE}.",
                TagKey=key,
            )
        if not (_TAG_TEXT.fullmatch(key) and _TAG_TEXT.fullmatch(value)):
            raise OssError(
                "InvalidTag", "Tags may hold letters, digits, spaces and + - = . _ : / @ only.", TagKey=key
            )
    return tags


async def get_object_tagging(call: Call) -> Response:
    record = await run_in_threadpool(call.storage.head_object, call.bucket_name, call.object_key)
    tags = [("Tag", [("Key", key), ("Value", value)]) for key, value in record.tags.items()]
    return xml_response("Tagging", [("TagSet", tags)])


async def put_object_tagging(call: Call) -> Response:
    root = xmlio.parse(await call.read_body(_MAX_BODY))
    if root.tag != "Tagging":
        raise OssError("MalformedXML", "The document must be <Tagging><TagSet>...</TagSet></Tagging>.")
    pairs = [(xmlio.text(tag, "Key"), xmlio.text(tag, "Value")) for tag in root.findall("TagSet/Tag")]
    await run_in_threadpool(
        lambda: call.storage.update_object(call.bucket_name, call.object_key, tags=checked(pairs))
    )
    return Response()


async def delete_object_tagging(call: Call) -> Response:
    await run_in_threadpool(lambda: call.storage.update_object(call.bucket_name, call.object_key, tags={}))
    return Response(status_code=204)
