"""AppendObject, tagging, symlinks, object ACLs and UploadPartCopy through oss2 and alibabacloud-oss-v2."""

# Fixtures come in by import (no conftest.py here), so pytest sees them and ruff must not flag them.
# ruff: noqa: F401, F811
from __future__ import annotations

import hashlib
import json
import os

import alibabacloud_oss_v2 as oss
import httpx
import oss2
import pytest
from oss2.models import Tagging, TaggingRule
from oss_fixtures import BUCKET, bucket, client, emulator, v1_bucket

from outpaint.local.oss.checksums import crc64


def error_of(call) -> oss2.exceptions.OssError:
    with pytest.raises(oss2.exceptions.OssError) as info:
        call()
    return info.value


def tags_header(**tags: str) -> dict[str, str]:
    rule = TaggingRule()
    for key, value in tags.items():
        rule.add(key, value)
    return {"x-oss-tagging": rule.to_query_string()}


def test_append_grows_an_appendable_object(bucket):
    first = bucket.append_object("log", 0, b"hello ", init_crc=0)
    assert first.next_position == 6
    second = bucket.append_object("log", 6, b"world", init_crc=first.crc)  # oss2 checks the CRC chain
    assert (second.next_position, second.crc) == (11, crc64(b"hello world"))
    head = bucket.head_object("log")
    assert (head.object_type, head.content_length) == ("Appendable", 11)
    assert bucket.get_object("log").read() == b"hello world"


def test_append_at_the_wrong_position_or_to_a_normal_object(bucket):
    bucket.append_object("log", 0, b"abc")
    with pytest.raises(oss2.exceptions.PositionNotEqualToLength) as info:
        bucket.append_object("log", 0, b"x")
    assert info.value.next_position == 3
    bucket.put_object("plain", b"abc")
    with pytest.raises(oss2.exceptions.ObjectNotAppendable):
        bucket.append_object("plain", 3, b"x")
    with pytest.raises(oss2.exceptions.PositionNotEqualToLength):
        bucket.append_object("new", 5, b"x")


def test_append_checks_content_md5_of_the_appended_part(bucket):
    bucket.append_object("log", 0, b"abc")
    headers = {"Content-MD5": oss2.utils.content_md5(b"other")}
    assert error_of(lambda: bucket.append_object("log", 3, b"def", headers=headers)).code == "InvalidDigest"
    assert bucket.get_object("log").read() == b"abc"


def test_append_with_v2_client(client):
    client.append_object(oss.AppendObjectRequest(bucket=BUCKET, key="a", position=0, body=b"12"))
    result = client.append_object(oss.AppendObjectRequest(bucket=BUCKET, key="a", position=2, body=b"34"))
    assert result.next_position == 4


def test_object_tagging_round_trip(bucket):
    bucket.put_object("t", b"1", headers=tags_header(color="红", size="L"))
    assert bucket.get_object_tagging("t").tag_set.tagging_rule == {"color": "红", "size": "L"}
    assert bucket.head_object("t").headers["x-oss-tagging-count"] == "2"
    rule = TaggingRule()
    rule.add("only", "one")
    bucket.put_object_tagging("t", Tagging(rule))
    assert bucket.get_object_tagging("t").tag_set.tagging_rule == {"only": "one"}
    bucket.delete_object_tagging("t")
    assert bucket.get_object_tagging("t").tag_set.tagging_rule == {}
    assert error_of(lambda: bucket.get_object_tagging("missing")).code == "NoSuchKey"


def test_malformed_or_too_many_tags_are_refused(bucket):
    too_many = tags_header(**{f"k{i}": "v" for i in range(11)})
    error = error_of(lambda: bucket.put_object("t", b"1", headers=too_many))
    assert (error.status, error.code) == (400, "InvalidTag")
    assert error_of(lambda: bucket.put_object("t", b"1", headers={"x-oss-tagging": "a=1&&b"})).status == 400
    assert (
        error_of(lambda: bucket.put_object("t", b"1", headers={"x-oss-tagging": "=v"})).code == "InvalidTag"
    )
    assert not bucket.object_exists("t")


def test_copy_keeps_or_replaces_tags(bucket):
    bucket.put_object("src", b"1", headers=tags_header(a="1"))
    bucket.copy_object(BUCKET, "src", "kept")
    assert bucket.get_object_tagging("kept").tag_set.tagging_rule == {"a": "1"}
    replace = {**tags_header(b="2"), "x-oss-tagging-directive": "Replace"}
    bucket.copy_object(BUCKET, "src", "replaced", headers=replace)
    assert bucket.get_object_tagging("replaced").tag_set.tagging_rule == {"b": "2"}


def test_multipart_upload_carries_tags(bucket):
    upload_id = bucket.init_multipart_upload("mp", headers=tags_header(x="y")).upload_id
    part = bucket.upload_part("mp", upload_id, 1, b"data")
    bucket.complete_multipart_upload("mp", upload_id, [oss2.models.PartInfo(1, part.etag)])
    assert bucket.get_object_tagging("mp").tag_set.tagging_rule == {"x": "y"}


def test_symlink_reads_as_its_target(bucket):
    bucket.put_object("目标 target", b"hello", headers={"Content-Type": "text/plain"})
    bucket.put_symlink("目标 target", "link", headers={"x-oss-meta-own": "1"})
    assert bucket.get_symlink("link").target_key == "目标 target"
    head = bucket.head_object("link")
    assert (head.object_type, head.content_length, head.etag) == (
        "Symlink",
        5,
        hashlib.md5(b"hello").hexdigest().upper(),
    )
    assert head.headers["x-oss-meta-own"] == "1"
    assert bucket.get_object("link").read() == b"hello"
    bucket.delete_object("目标 target")
    assert error_of(lambda: bucket.get_object("link")).code == "SymlinkTargetNotExist"
    bucket.put_object("plain", b"x")
    assert error_of(lambda: bucket.get_symlink("plain")).code == "NotSymlink"


def test_object_acl_round_trips_and_opens_the_object(emulator, bucket):
    bucket.put_object("doc", b"secret")
    assert bucket.get_object_acl("doc").acl == "default"
    assert httpx.get(f"{emulator.endpoint}/{BUCKET}/doc").status_code == 403
    bucket.put_object_acl("doc", oss2.OBJECT_ACL_PUBLIC_READ)
    assert bucket.get_object_acl("doc").acl == "public-read"
    assert httpx.get(f"{emulator.endpoint}/{BUCKET}/doc").content == b"secret"
    assert httpx.put(f"{emulator.endpoint}/{BUCKET}/doc", content=b"x").status_code == 403
    bucket.put_object("open", b"1", headers={"x-oss-object-acl": "public-read-write"})
    assert bucket.get_object_acl("open").acl == "public-read-write"
    bad = {"x-oss-object-acl": "everyone"}
    assert error_of(lambda: bucket.put_object("x", b"1", headers=bad)).code == "InvalidArgument"


def test_upload_part_copy_whole_and_ranges(bucket):
    body = os.urandom(300 * 1024)
    bucket.put_object("big", body)
    upload_id = bucket.init_multipart_upload("joined").upload_id
    first = bucket.upload_part_copy(BUCKET, "big", (0, 200 * 1024 - 1), "joined", upload_id, 1)
    second = bucket.upload_part_copy(BUCKET, "big", (200 * 1024, len(body) - 1), "joined", upload_id, 2)
    assert first.etag == hashlib.md5(body[: 200 * 1024]).hexdigest().upper()
    parts = [oss2.models.PartInfo(1, first.etag), oss2.models.PartInfo(2, second.etag)]
    bucket.complete_multipart_upload("joined", upload_id, parts)
    assert bucket.get_object("joined").read() == body
    missing = bucket.init_multipart_upload("m").upload_id
    error = error_of(lambda: bucket.upload_part_copy(BUCKET, "absent", None, "m", missing, 1))
    assert error.code == "NoSuchKey"


def test_v2_copier_copies_a_large_object_by_parts(client):
    body = os.urandom(700 * 1024)
    headers = {"x-oss-tagging": "k=v"}
    client.put_object(oss.PutObjectRequest(bucket=BUCKET, key="src", body=body, headers=headers))
    # No shallow copy (a CopyObject attempt): the copier must go through UploadPartCopy.
    copier = client.copier(
        part_size=256 * 1024, multipart_copy_threshold=300 * 1024, disable_shallow_copy=True
    )
    request = oss.CopyObjectRequest(bucket=BUCKET, key="dst", source_bucket=BUCKET, source_key="src")
    result = copier.copy(request)
    assert result.etag.strip('"').endswith("-3")  # three UploadPartCopy parts, then Complete
    got = client.get_object(oss.GetObjectRequest(bucket=BUCKET, key="dst")).body.content
    assert got == body
    tags = client.get_object_tagging(oss.GetObjectTaggingRequest(bucket=BUCKET, key="dst"))
    assert [(t.key, t.value) for t in tags.tag_set.tags] == [("k", "v")]


@pytest.mark.parametrize("tags", ["%@abc=1", "k=%25abc", "k=" + "v" * 257, "k" * 129 + "=v"])
def test_tags_outside_oss_rules_are_refused(bucket, tags):
    assert (
        error_of(lambda: bucket.put_object("t", b"1", headers={"x-oss-tagging": tags})).code == "InvalidTag"
    )


def test_tags_may_be_chinese_with_punctuation(bucket):
    bucket.put_object("t", b"1", headers=tags_header(**{"项目": "a+b=c.d_e:f/g@h i"}))
    assert bucket.get_object_tagging("t").tag_set.tagging_rule == {"项目": "a+b=c.d_e:f/g@h i"}


def test_new_operations_raise_their_trigger_events(emulator):
    bucket = v1_bucket(emulator)
    seen: list[bytes] = []
    names = [
        "oss:ObjectCreated:AppendObject",
        "oss:ObjectCreated:PutSymlink",
        "oss:ObjectCreated:UploadPartCopy",
    ]
    emulator.subscribe(seen.append, events=names)
    bucket.append_object("log", 0, b"abc")
    bucket.put_symlink("log", "link")
    upload_id = bucket.init_multipart_upload("mp").upload_id
    bucket.upload_part_copy(BUCKET, "log", None, "mp", upload_id, 1)
    assert emulator.drain_notifications(5)
    events = [json.loads(body)["events"][0] for body in seen]
    assert sorted((e["eventName"], e["oss"]["object"]["key"]) for e in events) == [
        ("ObjectCreated:AppendObject", "log"),
        ("ObjectCreated:PutSymlink", "link"),
        ("ObjectCreated:UploadPartCopy", "mp"),
    ]
