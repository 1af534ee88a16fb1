"""What the oss2 SDK's own tests showed wrong, each pinned with the official clients (issue 13)."""

# Fixtures come in by import (no conftest.py here), so pytest sees them and ruff must not flag them.
# ruff: noqa: F401, F811
from __future__ import annotations

import json

import alibabacloud_oss_v2 as oss
import httpx
import oss2
import pytest
from oss_fixtures import AK, BUCKET, SK, bucket, client, emulator, v1_bucket, v2_client

CHINESE = "测试 ✓"


def error_of(call) -> oss2.exceptions.OssError:
    with pytest.raises(oss2.exceptions.OssError) as info:
        call()
    return info.value


def as_text(header_value: str) -> str:
    """A response header as the UTF-8 text it carries (HTTP clients decode header bytes as Latin-1)."""
    return header_value.encode("latin-1").decode("utf-8")


def test_non_ascii_metadata_is_signed_and_round_trips(bucket):
    bucket.put_object("meta.txt", b"x", headers={"x-oss-meta-note": CHINESE.encode()})
    assert as_text(bucket.head_object("meta.txt").headers["x-oss-meta-note"]) == CHINESE
    copied = {"x-oss-meta-note": "副本".encode(), "x-oss-metadata-directive": "REPLACE"}
    bucket.copy_object(BUCKET, "meta.txt", "copy.txt", headers=copied)
    assert as_text(bucket.get_object("copy.txt").headers["x-oss-meta-note"]) == "副本"


def test_upload_listing_pages_through_several_uploads_of_one_key(bucket):
    ids = {bucket.init_multipart_upload("same").upload_id for _ in range(3)}
    ids.add(bucket.init_multipart_upload("other").upload_id)
    listed = [(u.key, u.upload_id) for u in oss2.MultipartUploadIterator(bucket, max_uploads=1)]
    assert sorted(i for _, i in listed) == sorted(ids)
    assert [k for k, _ in listed] == ["other", "same", "same", "same"]
    for key, upload_id in listed:  # the SDK's clean-up idiom leaves nothing behind
        bucket.abort_multipart_upload(key, upload_id)
    assert not list(oss2.MultipartUploadIterator(bucket, max_uploads=1))


def test_upload_listing_rolls_up_at_delimiter(bucket):
    for key in ["a/1", "a/2", "a/b/3", "b"]:
        bucket.init_multipart_upload(key)
    page = bucket.list_multipart_uploads(delimiter="/")
    assert page.prefix_list == ["a/"]
    assert [u.key for u in page.upload_list] == ["b"]
    first = bucket.list_multipart_uploads(delimiter="/", max_uploads=1)
    assert (first.is_truncated, first.prefix_list, first.next_key_marker) == (True, ["a/"], "a/")
    rest = bucket.list_multipart_uploads(delimiter="/", key_marker=first.next_key_marker)
    assert [u.key for u in rest.upload_list] == ["b"]
    assert not rest.prefix_list
    inside = bucket.list_multipart_uploads(prefix="a/", delimiter="/")
    assert [u.key for u in inside.upload_list] == ["a/1", "a/2"]
    assert inside.prefix_list == ["a/b/"]


def test_v2_paginator_lists_every_upload(client):
    for _ in range(3):
        client.initiate_multipart_upload(oss.InitiateMultipartUploadRequest(bucket=BUCKET, key="k"))
    paginator = client.list_multipart_uploads_paginator(limit=2)
    pages = list(paginator.iter_page(oss.ListMultipartUploadsRequest(bucket=BUCKET)))
    assert sum(len(p.uploads or []) for p in pages) == 3
    assert len(pages) == 2


@pytest.mark.parametrize("key", ["line\nfeed", "form\x0cfeed", "start\x01of", "cr\rlf\r\n", "tab\tx"])
def test_keys_with_control_characters(bucket, key):
    bucket.put_object(key, b"body")
    assert bucket.get_object(key).read() == b"body"
    assert [o.key for o in oss2.ObjectIterator(bucket)] == [key]
    result = bucket.batch_delete_objects([key, "absent"])
    assert sorted(result.deleted_keys) == sorted([key, "absent"])
    assert not bucket.object_exists(key)


def test_unknown_sub_resources_answer_not_implemented(emulator):
    bucket = v1_bucket(emulator, "fresh-bucket")
    error = error_of(lambda: bucket.put_bucket_public_access_block(True))
    assert (error.status, error.code) == (501, "NotImplemented")
    assert "publicAccessBlock" in error.message
    assert error_of(bucket.get_bucket_info).code == "NoSuchBucket"  # nothing was created
    service = oss2.Service(oss2.Auth(AK, SK), emulator.endpoint)
    assert error_of(service.describe_regions).code == "NotImplemented"


def test_missing_bucket_is_reported_before_a_bad_key(emulator):
    stranger = oss2.Bucket(oss2.Auth("unknown-ak", SK), emulator.endpoint, "no-such-bucket")
    error = error_of(lambda: stranger.get_object("k"))
    assert (error.status, error.code, error.ec) == (404, "NoSuchBucket", "0015-00000101")
    assert error.headers["x-oss-ec"] == "0015-00000101"
    existing = oss2.Bucket(oss2.Auth("unknown-ak", SK), emulator.endpoint, BUCKET)
    assert error_of(lambda: existing.get_object("k")).code == "InvalidAccessKeyId"
    bad_key = v2_client(emulator, key_id="unknown-ak")
    assert bad_key.is_bucket_exist("no-such-bucket") is False
    assert bad_key.is_bucket_exist(BUCKET) is True


def test_errors_carry_ec(bucket):
    error = error_of(lambda: bucket.get_object("missing"))
    assert (error.ec, error.headers["x-oss-ec"]) == ("0026-00000001", "0026-00000001")
    head = error_of(lambda: bucket.get_object_meta("missing"))
    assert (head.status, head.ec) == (404, "0026-00000001")


def test_upload_part_answers_content_md5(bucket):
    upload_id = bucket.init_multipart_upload("mp").upload_id
    result = bucket.upload_part("mp", upload_id, 1, b"part one")
    assert result.resp.headers["Content-MD5"] == oss2.utils.content_md5(b"part one")


def test_copy_replace_without_content_type_keeps_the_source_type(bucket):
    bucket.put_object("src.png", b"png", headers={"Content-Type": "image/png"})
    headers = {"x-oss-metadata-directive": "REPLACE", "x-oss-meta-new": "1"}
    bucket.copy_object(BUCKET, "src.png", "dst.png", headers=headers)
    head = bucket.head_object("dst.png")
    assert (head.content_type, head.headers["x-oss-meta-new"]) == ("image/png", "1")
    bucket.copy_object(BUCKET, "src.png", "txt", headers={**headers, "Content-Type": "text/plain"})
    assert bucket.head_object("txt").content_type == "text/plain"


def test_bucket_info_has_comment_resource_group_and_block_public_access(bucket, client):
    info = bucket.get_bucket_info()
    assert (info.comment, info.resource_group_id) == ("", "rg-default-id")
    v2_info = client.get_bucket_info(oss.GetBucketInfoRequest(bucket=BUCKET)).bucket_info
    assert v2_info.block_public_access is False
    assert v2_info.resource_group_id == "rg-default-id"


def test_methods_outside_the_protocol_are_oss_errors(emulator):
    response = httpx.request("PATCH", f"{emulator.endpoint}/{BUCKET}/k")
    assert response.status_code == 405
    assert "<Code>MethodNotAllowed</Code>" in response.text


def test_uploads_of_one_key_list_in_initiation_order(bucket):
    ids = [bucket.init_multipart_upload("k").upload_id for _ in range(5)]
    assert ids == sorted(ids)  # OSS's ids sort by time; oss2's own tests rely on it
    assert [u.upload_id for u in oss2.MultipartUploadIterator(bucket, max_uploads=2)] == ids


def test_text_is_gzipped_for_clients_that_ask(bucket):
    body = b"line of text\n" * 200
    bucket.put_object("notes.txt", body, headers={"Content-Type": "text/plain"})
    result = bucket.get_object("notes.txt", headers={"Accept-Encoding": "gzip"})
    assert result.read() == body  # decompressed by the HTTP client; oss2 checked the CRC of the whole
    assert result.headers["Content-Encoding"] == "gzip"
    assert result.headers["Transfer-Encoding"] == "chunked"
    assert result.content_length is None
    plain = bucket.get_object("notes.txt", headers={"Accept-Encoding": "identity"})
    assert plain.content_length == len(body)
    ranged = bucket.get_object("notes.txt", byte_range=(0, 9), headers={"Accept-Encoding": "gzip"})
    assert (ranged.read(), "Content-Encoding" in ranged.headers) == (body[:10], False)
    bucket.put_object("small.txt", b"short", headers={"Content-Type": "text/plain"})
    small = bucket.get_object("small.txt", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in small.headers  # below 1 KB OSS sends it as it is


def test_presigned_url_with_a_wrong_region_says_so(emulator):
    signer = oss2.Bucket(oss2.AuthV4(AK, SK), emulator.endpoint, BUCKET, region="cn-shanghai")
    response = httpx.get(signer.sign_url("GET", "k", 60))
    assert response.status_code == 400
    assert "<Message>The signing region in credential is invalid.</Message>" in response.text


def test_encryption_and_storage_class_round_trip_or_are_refused(bucket):
    aes = {"x-oss-server-side-encryption": "AES256"}
    assert bucket.put_object("enc", b"x", headers=aes).headers["x-oss-server-side-encryption"] == "AES256"
    assert bucket.head_object("enc").headers["x-oss-server-side-encryption"] == "AES256"
    kms = {"x-oss-server-side-encryption": "KMS"}
    assert error_of(lambda: bucket.put_object("kms", b"x", headers=kms)).code == "NotImplemented"
    wrong = {"x-oss-server-side-encryption": "ROT13"}
    assert error_of(lambda: bucket.put_object("bad", b"x", headers=wrong)).code == "InvalidArgument"
    archive = {"x-oss-storage-class": "Archive"}
    assert error_of(lambda: bucket.put_object("cold", b"x", headers=archive)).code == "NotImplemented"
    assert not bucket.object_exists("cold")


def test_bucket_with_another_storage_class_is_refused(emulator):
    cold = v1_bucket(emulator, "cold-bucket")
    config = oss2.models.BucketCreateConfig(oss2.BUCKET_STORAGE_CLASS_ARCHIVE)
    assert error_of(lambda: cold.create_bucket(input=config)).code == "NotImplemented"
    v1_bucket(emulator, "warm-bucket").create_bucket(input=oss2.models.BucketCreateConfig("Standard"))


def test_events_carry_non_ascii_metadata_as_text(emulator):
    seen: list[bytes] = []
    emulator.subscribe(seen.append, events=["oss:ObjectCreated:PutObject"])
    v1_bucket(emulator).put_object("m", b"x", headers={"x-oss-meta-note": CHINESE.encode()})
    assert emulator.drain_notifications(5)
    event = json.loads(seen[0])["events"][0]
    assert event["oss"]["object"]["objectMeta"]["userMeta"] == {"x-oss-meta-note": CHINESE}
