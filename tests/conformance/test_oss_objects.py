"""Object operations through oss2 (V1 and V4) and alibabacloud-oss-v2 against the emulator."""

# Fixtures come in by import (no conftest.py here), so pytest sees them and ruff must not flag them.
# ruff: noqa: F401, F811
from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import re
from email.utils import formatdate

import alibabacloud_oss_v2 as oss
import httpx
import oss2
import pytest
from oss_fixtures import BUCKET, ODD_KEYS, bucket, client, emulator, v1_bucket
from PIL import Image

from outpaint.local.oss.checksums import crc64

RFC1123 = re.compile(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$")


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest().upper()


def error_of(call) -> oss2.exceptions.OssError:
    with pytest.raises(oss2.exceptions.OssError) as info:
        call()
    return info.value


@pytest.mark.parametrize("key", ODD_KEYS)
def test_keys_round_trip_byte_for_byte(bucket, key):
    body = key.encode() * 3
    bucket.put_object(key, body)
    assert bucket.get_object(key).read() == body
    assert bucket.head_object(key).content_length == len(body)
    assert key in [o.key for o in oss2.ObjectIteratorV2(bucket)]


def test_put_answers_like_oss(bucket):
    result = bucket.put_object("a.txt", b"hello")
    assert result.etag == "5D41402ABC4B2A76B9719D911017C592"
    assert result.resp.headers["ETag"] == '"5D41402ABC4B2A76B9719D911017C592"'
    assert re.fullmatch(r"[0-9A-F]{24}", result.request_id)
    assert result.crc == 11177612005948864433  # oss2 also compared it with its own CRC
    assert result.resp.headers["Content-MD5"] == base64.b64encode(hashlib.md5(b"hello").digest()).decode()


def test_get_and_head_carry_metadata_and_standard_headers(bucket):
    headers = {
        "Content-Type": "image/png",
        "x-oss-meta-Origin": "Upload-Form",
        "Cache-Control": "max-age=60",
        "Content-Disposition": "attachment",
    }
    bucket.put_object("m.bin", b"12345", headers=headers)
    for result in (bucket.get_object("m.bin"), bucket.head_object("m.bin")):
        h = result.headers
        assert h["Content-Type"] == "image/png"
        assert h["x-oss-meta-origin"] == "Upload-Form"
        assert h["Cache-Control"] == "max-age=60"
        assert h["Content-Disposition"] == "attachment"
        assert h["x-oss-object-type"] == "Normal"
        assert h["x-oss-storage-class"] == "Standard"
        assert h["x-oss-hash-crc64ecma"] == str(crc64(b"12345"))
        assert RFC1123.match(h["Last-Modified"])
        assert result.etag == md5_hex(b"12345")
    assert bucket.get_object_meta("m.bin").content_length == 5


def test_default_content_type_and_empty_body(bucket):
    bucket.put_object("empty", b"")  # oss2 sends an empty body chunked, with no Content-Type
    result = bucket.get_object("empty")
    assert result.read() == b""
    assert result.headers["Content-Type"] == "application/octet-stream"
    assert result.headers["x-oss-hash-crc64ecma"] == "0"


def test_crc_is_checked_by_get_object_to_file(bucket, tmp_path):
    body = bytes(range(256)) * 4000
    bucket.put_object("crc.bin", body)
    target = tmp_path / "out.bin"
    bucket.get_object_to_file("crc.bin", str(target))  # raises InconsistentError on a CRC mismatch
    assert target.read_bytes() == body


def test_content_md5_is_verified(bucket):
    good = base64.b64encode(hashlib.md5(b"data").digest()).decode()
    bucket.put_object("md5", b"data", headers={"Content-MD5": good})
    bad = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    error = error_of(lambda: bucket.put_object("md5", b"data", headers={"Content-MD5": bad}))
    assert (error.status, error.code) == (400, "InvalidDigest")
    assert bucket.get_object("md5").read() == b"data"


def test_forbid_overwrite(bucket):
    bucket.put_object("once", b"first", headers={"x-oss-forbid-overwrite": "true"})
    error = error_of(lambda: bucket.put_object("once", b"second", headers={"x-oss-forbid-overwrite": "true"}))
    assert (error.status, error.code) == (409, "FileAlreadyExists")
    assert bucket.get_object("once").read() == b"first"
    bucket.put_object("once", b"third", headers={"x-oss-forbid-overwrite": "false"})
    assert bucket.get_object("once").read() == b"third"
    error = error_of(lambda: bucket.put_object("once", b"x", headers={"x-oss-forbid-overwrite": "maybe"}))
    assert (error.status, error.code) == (400, "InvalidArgument")


@pytest.mark.parametrize(
    ("header", "standard", "expected"),
    [
        ("bytes=0-3", False, (206, b"0123", "bytes 0-3/10")),
        ("bytes=7-", False, (206, b"789", "bytes 7-9/10")),
        ("bytes=-2", False, (206, b"89", "bytes 8-9/10")),
        ("bytes=5-20", False, (200, b"0123456789", None)),  # end past the object: ignored
        ("bytes=5-20", True, (206, b"56789", "bytes 5-9/10")),  # standard: truncated
        ("bytes=20-30", False, (200, b"0123456789", None)),
        ("bytes=-20", True, (206, b"0123456789", "bytes 0-9/10")),
        ("bytes=3-1", False, (200, b"0123456789", None)),
        ("bytes=0-1,4-5", False, (200, b"0123456789", None)),
        ("items=0-1", False, (200, b"0123456789", None)),
    ],
)
def test_range_semantics(emulator, header, standard, expected):
    bucket = v1_bucket(emulator)
    bucket.put_object("digits", b"0123456789")
    headers = {"Range": header}
    if standard:
        headers["x-oss-range-behavior"] = "standard"
    result = bucket.get_object("digits", headers=headers)
    assert (result.status, result.read(), result.headers.get("Content-Range")) == expected


def test_range_past_end_with_standard_behavior_is_416(bucket):
    bucket.put_object("digits", b"0123456789")
    headers = {"Range": "bytes=20-30", "x-oss-range-behavior": "standard"}
    error = error_of(lambda: bucket.get_object("digits", headers=headers))
    assert (error.status, error.code) == (416, "InvalidRange")


def test_byte_range_argument_of_oss2(bucket):
    bucket.put_object("digits", b"0123456789")
    assert bucket.get_object("digits", byte_range=(2, 4)).read() == b"234"
    assert bucket.get_object("digits", byte_range=(None, 3)).read() == b"789"


def test_conditional_get(bucket):
    etag = bucket.put_object("c", b"cond").etag
    later = formatdate(usegmt=True, timeval=2**31)
    with pytest.raises(oss2.exceptions.NotModified):
        bucket.get_object("c", headers={"If-None-Match": f'"{etag}"'})
    with pytest.raises(oss2.exceptions.NotModified):
        bucket.get_object("c", headers={"If-Modified-Since": later})
    with pytest.raises(oss2.exceptions.PreconditionFailed):
        bucket.get_object("c", headers={"If-Match": '"0000"'})
    assert bucket.get_object("c", headers={"If-Match": f'"{etag}"'}).read() == b"cond"


def test_response_header_overrides(bucket):
    bucket.put_object("o.txt", b"x")
    result = bucket.get_object("o.txt", params={"response-content-type": "text/csv"})
    assert result.headers["Content-Type"] == "text/csv"


def test_missing_objects_and_buckets(emulator, bucket):
    error = error_of(lambda: bucket.get_object("missing/key.jpg"))
    assert isinstance(error, oss2.exceptions.NoSuchKey)
    assert error.details["Key"] == "missing/key.jpg"
    assert error.details["RequestId"] == error.request_id
    assert error.details["HostId"]
    head_error = error_of(lambda: bucket.head_object("missing"))
    assert isinstance(head_error, oss2.exceptions.NoSuchKey)  # decoded from the x-oss-err header
    assert not bucket.object_exists("missing")
    other = oss2.Bucket(bucket.auth, emulator.endpoint, "no-such-bucket", region="cn-hangzhou")
    assert isinstance(error_of(lambda: other.get_object("k")), oss2.exceptions.NoSuchBucket)


def test_error_body_shape(emulator):
    response = httpx.get(f"{emulator.endpoint}/{BUCKET}/nothing")
    assert response.status_code == 403
    assert response.headers["Content-Type"] == "application/xml"
    text = response.text
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>')
    assert f"<RequestId>{response.headers['x-oss-request-id']}</RequestId>" in text
    assert "xmlns" not in text


def test_delete(bucket):
    bucket.put_object("d", b"1")
    assert bucket.delete_object("d").status == 204
    assert bucket.delete_object("d").status == 204  # deleting nothing is still 204
    assert not bucket.object_exists("d")


def test_copy_with_metadata_directives(bucket):
    bucket.put_object("src.jpg", b"pixels", headers={"Content-Type": "image/jpeg", "x-oss-meta-a": "1"})
    bucket.copy_object(BUCKET, "src.jpg", "copy.jpg")
    copied = bucket.get_object("copy.jpg")
    assert copied.read() == b"pixels"
    assert copied.headers["x-oss-meta-a"] == "1"
    assert copied.headers["Content-Type"] == "image/jpeg"
    assert copied.etag == md5_hex(b"pixels")
    bucket.copy_object(
        BUCKET,
        "src.jpg",
        "replaced.jpg",
        headers={"x-oss-metadata-directive": "REPLACE", "x-oss-meta-b": "2", "Content-Type": "image/png"},
    )
    replaced = bucket.head_object("replaced.jpg")
    assert replaced.headers["Content-Type"] == "image/png"
    assert replaced.headers["x-oss-meta-b"] == "2"
    assert "x-oss-meta-a" not in replaced.headers
    bucket.update_object_meta("src.jpg", {"x-oss-meta-c": "3"})
    assert bucket.head_object("src.jpg").headers["x-oss-meta-c"] == "3"


def test_copy_honours_forbid_overwrite_and_missing_source(bucket):
    bucket.put_object("s", b"1")
    bucket.put_object("t", b"2")
    error = error_of(lambda: bucket.copy_object(BUCKET, "s", "t", headers={"x-oss-forbid-overwrite": "true"}))
    assert (error.status, error.code) == (409, "FileAlreadyExists")
    assert bucket.get_object("t").read() == b"2"
    assert isinstance(error_of(lambda: bucket.copy_object(BUCKET, "nope", "u")), oss2.exceptions.NoSuchKey)


def test_copy_of_odd_keys(bucket):
    for key in ODD_KEYS:
        bucket.put_object(key, key.encode())
        bucket.copy_object(BUCKET, key, "copies/" + key)
        assert bucket.get_object("copies/" + key).read() == key.encode()


def test_image_info(bucket):
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), "red").save(buffer, "JPEG")
    bucket.put_object("img/cat.jpg", buffer.getvalue())
    info = json.loads(bucket.get_object("img/cat.jpg", process="image/info").read())
    assert info["ImageWidth"] == {"value": "640"}
    assert info["ImageHeight"] == {"value": "480"}
    assert info["Format"] == {"value": "jpg"}
    assert info["FileSize"] == {"value": str(len(buffer.getvalue()))}
    bucket.put_object("img/not-an-image.jpg", b"text")
    assert error_of(lambda: bucket.get_object("img/not-an-image.jpg", process="image/info")).status == 400
    error = error_of(lambda: bucket.get_object("img/cat.jpg", process="image/resize,w_10"))
    assert (error.status, error.code) == (501, "NotImplemented")


def test_unemulated_subresource_is_refused_not_misserved(bucket):
    bucket.put_object("t", b"1")
    error = error_of(lambda: bucket.restore_object("t"))
    assert (error.status, error.code) == (501, "NotImplemented")
    assert error.message == "The ?restore sub-resource is not emulated."


def test_post_object_with_signed_policy(emulator):
    policy = base64.b64encode(
        json.dumps(
            {
                "expiration": "2099-01-01T00:00:00.000Z",
                "conditions": [
                    {"bucket": BUCKET},
                    ["starts-with", "$key", "inbox/"],
                    ["content-length-range", 1, 100],
                ],
            }
        ).encode()
    ).decode()
    signature = base64.b64encode(hmac_sha1(b"conformance-sk", policy.encode())).decode()
    fields = {
        "key": "inbox/${filename}",
        "OSSAccessKeyId": "conformance-ak",
        "policy": policy,
        "Signature": signature,
        "x-oss-meta-from": "form",
        "success_action_status": "201",
    }
    url = f"{emulator.endpoint}/{BUCKET}"
    response = httpx.post(url, data=fields, files={"file": ("photo one.jpg", b"jpeg-bytes", "image/jpeg")})
    assert response.status_code == 201, response.text
    assert "<Key>inbox/photo one.jpg</Key>" in response.text
    stored = v1_bucket(emulator).get_object("inbox/photo one.jpg")
    assert stored.read() == b"jpeg-bytes"
    assert stored.headers["x-oss-meta-from"] == "form"
    too_big = httpx.post(url, data={**fields, "key": "inbox/big"}, files={"file": ("b", b"x" * 200)})
    assert too_big.status_code == 403
    wrong = httpx.post(url, data={**fields, "Signature": "AAAA"}, files={"file": ("c", b"x")})
    assert (wrong.status_code, "SignatureDoesNotMatch" in wrong.text) == (403, True)


def hmac_sha1(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha1).digest()


def test_sdk_v2_object_operations(client):
    key = "v2/dir/a b+c.txt"
    put = client.put_object(
        oss.PutObjectRequest(bucket=BUCKET, key=key, body=b"v2 body", metadata={"k": "v"})
    )
    assert put.etag == f'"{md5_hex(b"v2 body")}"'
    assert put.hash_crc64 == str(crc64(b"v2 body"))
    got = client.get_object(oss.GetObjectRequest(bucket=BUCKET, key=key))
    assert got.body.read() == b"v2 body"
    assert got.metadata == {"k": "v"}
    head = client.head_object(oss.HeadObjectRequest(bucket=BUCKET, key=key))
    assert head.content_length == 7
    assert client.is_object_exist(BUCKET, key)
    assert not client.is_object_exist(BUCKET, "v2/none")
    client.copy_object(
        oss.CopyObjectRequest(bucket=BUCKET, key="v2/copy", source_bucket=BUCKET, source_key=key)
    )
    listed = client.list_objects_v2(oss.ListObjectsV2Request(bucket=BUCKET, prefix="v2/", delimiter="/"))
    assert [o.key for o in listed.contents] == ["v2/copy"]
    assert [p.prefix for p in listed.common_prefixes] == ["v2/dir/"]
    client.delete_multiple_objects(
        oss.DeleteMultipleObjectsRequest(
            bucket=BUCKET, objects=[oss.DeleteObject(key=key), oss.DeleteObject(key="v2/copy")]
        )
    )
    assert not client.is_object_exist(BUCKET, key)
    with pytest.raises(oss.exceptions.OperationError) as info:
        client.get_object(oss.GetObjectRequest(bucket=BUCKET, key="v2/none"))
    assert "NoSuchKey" in str(info.value)
