"""Listings, buckets and addressing through oss2 and alibabacloud-oss-v2."""

# Fixtures come in by import (no conftest.py here), so pytest sees them and ruff must not flag them.
# ruff: noqa: F401, F811
from __future__ import annotations

import re

import alibabacloud_oss_v2 as oss
import httpx
import oss2
import pytest
from oss_fixtures import AK, BUCKET, ODD_KEYS, REGION, SK, bucket, client, emulator, v1_bucket

KEYS = ["a/1", "a/2", "a/b/3", "b/4", "c", "c/5", "d/6/7"]
LIST_TIME = re.compile(r"<LastModified>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000Z</LastModified>")


@pytest.fixture
def filled(bucket):
    for key in KEYS:
        bucket.put_object(key, key.encode())
    return bucket


def test_list_v1_and_v2_with_delimiter(filled):
    for result in (filled.list_objects(delimiter="/"), filled.list_objects_v2(delimiter="/")):
        assert [o.key for o in result.object_list] == ["c"]
        assert result.prefix_list == ["a/", "b/", "c/", "d/"]
    nested = filled.list_objects_v2(prefix="a/", delimiter="/")
    assert [o.key for o in nested.object_list] == ["a/1", "a/2"]
    assert nested.prefix_list == ["a/b/"]
    entry = filled.list_objects(prefix="c").object_list[0]
    assert (entry.key, entry.size, entry.type, entry.storage_class) == ("c", 1, "Normal", "Standard")
    assert entry.etag
    assert entry.last_modified > 0


@pytest.mark.parametrize("delimiter", ["", "/"])
def test_pagination_visits_everything_once(filled, delimiter):
    seen_v1, seen_v2 = [], []
    marker, token = "", ""
    while True:
        page = filled.list_objects(marker=marker, max_keys=2, delimiter=delimiter)
        seen_v1 += [o.key for o in page.object_list] + page.prefix_list
        if not page.is_truncated:
            break
        marker = page.next_marker
    while True:
        page = filled.list_objects_v2(continuation_token=token, max_keys=2, delimiter=delimiter)
        seen_v2 += [o.key for o in page.object_list] + page.prefix_list
        if not page.is_truncated:
            break
        token = page.next_continuation_token
    expected = KEYS if not delimiter else ["a/", "b/", "c", "c/", "d/"]
    assert seen_v1 == expected
    assert seen_v2 == expected


def test_start_after_and_iterators(filled):
    assert [o.key for o in filled.list_objects_v2(start_after="b/4").object_list] == ["c", "c/5", "d/6/7"]
    assert [o.key for o in oss2.ObjectIterator(filled, max_keys=1)] == KEYS
    assert [o.key for o in oss2.ObjectIteratorV2(filled, prefix="a/", max_keys=1)] == ["a/1", "a/2", "a/b/3"]


def test_odd_keys_are_url_encoded_in_listings(bucket):
    for key in ODD_KEYS:
        bucket.put_object(key, b"x")
    listed = [o.key for o in oss2.ObjectIteratorV2(bucket, max_keys=3)]
    assert listed == sorted(ODD_KEYS)


def test_list_xml_shape(emulator):
    emulator.create_bucket(BUCKET, public_read=True)
    v1_bucket(emulator).put_object("x y", b"1")
    query = "list-type=2&max-keys=1&encoding-type=url&prefix=&delimiter=&start-after=&continuation-token="
    body = httpx.get(f"{emulator.endpoint}/{BUCKET}/?{query}").text
    assert "<Key>x%20y</Key>" in body
    assert LIST_TIME.search(body)
    assert "<KeyCount>1</KeyCount>" in body
    assert "xmlns" not in body


def test_max_keys_limit(bucket):
    with pytest.raises(oss2.exceptions.ServerError) as info:
        bucket.list_objects(max_keys=1001)
    assert info.value.code == "InvalidArgument"


def test_max_keys_zero_is_an_empty_untruncated_page(filled, emulator):
    for page in (filled.list_objects(max_keys=0), filled.list_objects_v2(max_keys=0)):
        assert (page.object_list, page.prefix_list, page.is_truncated) == ([], [], False)
    service = oss2.Service(oss2.Auth(AK, SK), emulator.endpoint)
    buckets = service.list_buckets(max_keys=0)
    assert (buckets.buckets, buckets.is_truncated) == ([], False)


def test_batch_delete(filled):
    result = filled.batch_delete_objects(["a/1", "c", "missing"])
    assert sorted(result.deleted_keys) == ["a/1", "c", "missing"]
    assert [o.key for o in oss2.ObjectIterator(filled)] == ["a/2", "a/b/3", "b/4", "c/5", "d/6/7"]


def test_buckets(emulator):
    service = oss2.Service(oss2.Auth(AK, SK), emulator.endpoint)
    created = oss2.Bucket(oss2.Auth(AK, SK), emulator.endpoint, "made-by-test")
    created.create_bucket(oss2.BUCKET_ACL_PRIVATE)
    assert [b.name for b in service.list_buckets().buckets] == [BUCKET, "made-by-test"]
    info = created.get_bucket_info()
    assert (info.name, info.acl.grant, info.location) == ("made-by-test", "private", f"oss-{REGION}")
    assert created.get_bucket_location().location == f"oss-{REGION}"
    assert created.get_bucket_acl().acl == "private"
    with pytest.raises(oss2.exceptions.ServerError) as info:
        created.create_bucket()
    assert info.value.code == "BucketAlreadyExists"
    created.put_object("k", b"1")
    with pytest.raises(oss2.exceptions.BucketNotEmpty):
        created.delete_bucket()
    created.delete_object("k")
    created.delete_bucket()
    assert [b.name for b in service.list_buckets().buckets] == [BUCKET]
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        created.get_bucket_info()


def test_bucket_acl_and_anonymous_reads(emulator):
    bucket = v1_bucket(emulator)
    bucket.put_object("pub.txt", b"hello")
    url = f"{emulator.endpoint}/{BUCKET}/pub.txt"
    assert httpx.get(url).status_code == 403
    bucket.put_bucket_acl(oss2.BUCKET_ACL_PUBLIC_READ)
    assert httpx.get(url).content == b"hello"
    assert httpx.put(url, content=b"x").status_code == 403  # public-read does not allow writes


def test_virtual_host_addressing(emulator):
    bucket = v1_bucket(emulator)
    bucket.put_object("dir/v.txt", b"vhost")
    # The path-style client used the same signature resource; here the bucket moves to the Host header.
    response = httpx.get(
        f"{emulator.endpoint}/dir%2Fv.txt", headers={"Host": f"{BUCKET}.localhost:{emulator.port}"}
    )
    assert response.status_code == 403  # reached the bucket (anonymous), not "NoSuchBucket"
    url = bucket.sign_url("GET", "dir/v.txt", 60)
    vhost_url = url.replace(f"/{BUCKET}/", "/")
    signed = httpx.get(vhost_url, headers={"Host": f"{BUCKET}.localhost:{emulator.port}"})
    assert signed.content == b"vhost"


def test_sdk_v2_listing_and_buckets(client):
    for key in KEYS:
        client.put_object(oss.PutObjectRequest(bucket=BUCKET, key=key, body=key.encode()))
    paginator = client.list_objects_v2_paginator(limit=2)
    keys = [
        o.key for page in paginator.iter_page(oss.ListObjectsV2Request(bucket=BUCKET)) for o in page.contents
    ]
    assert keys == KEYS
    v1 = client.list_objects(oss.ListObjectsRequest(bucket=BUCKET, prefix="a/", delimiter="/"))
    assert [o.key for o in v1.contents] == ["a/1", "a/2"]
    names = [b.name for b in client.list_buckets(oss.ListBucketsRequest()).buckets]
    assert names == [BUCKET]
    info = client.get_bucket_info(oss.GetBucketInfoRequest(bucket=BUCKET))
    assert info.bucket_info.name == BUCKET
