"""Multipart upload: oss2 resumable_upload of a large file, the raw calls, and their error cases."""

# Fixtures come in by import (no conftest.py here), so pytest sees them and ruff must not flag them.
# ruff: noqa: F401, F811
from __future__ import annotations

import hashlib
import os
import re

import alibabacloud_oss_v2 as oss
import oss2
import pytest
from oss_fixtures import BUCKET, bucket, client, emulator, v1_bucket

from outpaint.local.oss.checksums import crc64

PART = 256 * 1024


def multipart_etag(parts: list[bytes]) -> str:
    joined = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest().upper()
    return f"{joined}-{len(parts)}"


def test_resumable_upload_of_a_20mb_file(bucket, tmp_path):
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(20 * 1024 * 1024))
    result = oss2.resumable_upload(
        bucket,
        "large/file 20MB.bin",
        str(source),
        store=oss2.ResumableStore(root=str(tmp_path)),
        multipart_threshold=1024 * 1024,
        part_size=4 * 1024 * 1024,
        num_threads=4,
        headers={"x-oss-meta-kind": "big"},
    )
    assert re.fullmatch(r"[0-9A-F]{32}-5", result.etag)
    head = bucket.head_object("large/file 20MB.bin")
    assert head.content_length == 20 * 1024 * 1024
    assert head.headers["x-oss-object-type"] == "Multipart"
    assert head.headers["x-oss-meta-kind"] == "big"
    downloaded = tmp_path / "down.bin"
    bucket.get_object_to_file("large/file 20MB.bin", str(downloaded))  # CRC-checked by oss2
    assert downloaded.read_bytes() == source.read_bytes()


def test_raw_multipart_calls(bucket):
    parts = [b"a" * PART, b"b" * PART, b"tail"]
    upload_id = bucket.init_multipart_upload("mp/obj", headers={"Content-Type": "text/plain"}).upload_id
    infos = []
    for number, data in enumerate(parts, start=1):
        result = bucket.upload_part("mp/obj", upload_id, number, data)
        assert result.crc == crc64(data)
        infos.append(oss2.models.PartInfo(number, result.etag, size=len(data), part_crc=result.crc))
    listed = bucket.list_parts("mp/obj", upload_id)
    assert [(p.part_number, p.size) for p in listed.parts] == [(1, PART), (2, PART), (3, 4)]
    assert [u.key for u in oss2.MultipartUploadIterator(bucket)] == ["mp/obj"]
    done = bucket.complete_multipart_upload("mp/obj", upload_id, infos)  # oss2 checks the combined CRC
    assert done.etag == multipart_etag(parts)
    obj = bucket.get_object("mp/obj")
    assert obj.read() == b"".join(parts)
    assert obj.headers["Content-Type"] == "text/plain"
    assert list(oss2.MultipartUploadIterator(bucket)) == []


def test_abort_and_unknown_upload(bucket):
    upload_id = bucket.init_multipart_upload("mp/aborted").upload_id
    bucket.upload_part("mp/aborted", upload_id, 1, b"x")
    bucket.abort_multipart_upload("mp/aborted", upload_id)
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.upload_part("mp/aborted", upload_id, 2, b"y")
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.list_parts("mp/aborted", upload_id)
    assert not bucket.object_exists("mp/aborted")


def test_complete_validates_parts(bucket):
    upload_id = bucket.init_multipart_upload("mp/bad").upload_id
    first = bucket.upload_part("mp/bad", upload_id, 1, b"small")
    second = bucket.upload_part("mp/bad", upload_id, 2, b"end")
    with pytest.raises(oss2.exceptions.ServerError) as info:
        bucket.complete_multipart_upload("mp/bad", upload_id, [oss2.models.PartInfo(1, "0" * 32)])
    assert info.value.code == "InvalidPart"
    with pytest.raises(oss2.exceptions.ServerError) as info:
        bucket.complete_multipart_upload(
            "mp/bad", upload_id, [oss2.models.PartInfo(1, first.etag), oss2.models.PartInfo(2, second.etag)]
        )
    assert info.value.code == "EntityTooSmall"  # every part but the last must be >= 100 KB


def test_complete_honours_forbid_overwrite(bucket):
    bucket.put_object("mp/exists", b"original")
    upload_id = bucket.init_multipart_upload("mp/exists").upload_id
    part = bucket.upload_part("mp/exists", upload_id, 1, b"new")
    with pytest.raises(oss2.exceptions.ServerError) as info:
        bucket.complete_multipart_upload(
            "mp/exists",
            upload_id,
            [oss2.models.PartInfo(1, part.etag)],
            headers={"x-oss-forbid-overwrite": "true"},
        )
    assert (info.value.status, info.value.code) == (409, "FileAlreadyExists")
    assert bucket.get_object("mp/exists").read() == b"original"


def test_sdk_v2_multipart(emulator, client):
    parts = [os.urandom(PART), os.urandom(1000)]
    init = client.initiate_multipart_upload(oss.InitiateMultipartUploadRequest(bucket=BUCKET, key="v2/mp"))
    uploaded = []
    for number, data in enumerate(parts, start=1):
        result = client.upload_part(
            oss.UploadPartRequest(
                bucket=BUCKET, key="v2/mp", upload_id=init.upload_id, part_number=number, body=data
            )
        )
        uploaded.append(oss.UploadPart(part_number=number, etag=result.etag))
    client.complete_multipart_upload(
        oss.CompleteMultipartUploadRequest(
            bucket=BUCKET,
            key="v2/mp",
            upload_id=init.upload_id,
            complete_multipart_upload=oss.CompleteMultipartUpload(parts=uploaded),
        )
    )
    assert v1_bucket(emulator).get_object("v2/mp").read() == b"".join(parts)
    uploader = client.uploader(part_size=PART, parallel_num=2)
    data = os.urandom(3 * PART + 17)
    uploader.upload_from(oss.PutObjectRequest(bucket=BUCKET, key="v2/uploader"), _Reader(data))
    assert v1_bucket(emulator).get_object("v2/uploader").read() == data


class _Reader:
    """A minimal read()-only stream, so the v2 uploader cannot take the single-request shortcut."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)

    def read(self, size: int = -1) -> bytes:
        size = len(self._data) if size < 0 else size
        chunk, self._data = bytes(self._data[:size]), self._data[size:]
        return chunk
