"""Durability and concurrency: restarts, concurrent writers, the forbid-overwrite race, the CLI."""

# Fixtures come in by import (no conftest.py here), so pytest sees them and ruff must not flag them.
# ruff: noqa: F401, F811
from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import oss2
import pytest
from oss_fixtures import AK, BUCKET, SK, emulator, start_emulator, v1_bucket, v4_bucket


def test_restart_keeps_objects_metadata_buckets_and_uploads(tmp_path):
    emu = start_emulator(tmp_path)
    bucket = v1_bucket(emu)
    bucket.put_object("keep/a.txt", b"persisted", headers={"x-oss-meta-x": "1", "Content-Type": "text/plain"})
    bucket.put_object("keep/gone.txt", b"deleted")
    bucket.delete_object("keep/gone.txt")
    bucket.put_object("keep/over.txt", b"old")
    bucket.put_object("keep/over.txt", b"new")
    oss2.Bucket(bucket.auth, emu.endpoint, "second-bucket").create_bucket()
    upload_id = bucket.init_multipart_upload("keep/mp").upload_id
    part = bucket.upload_part("keep/mp", upload_id, 1, b"part one")
    etag = bucket.head_object("keep/a.txt").etag
    emu.stop()
    # Leftovers of a crash mid-write: a half-received body, an orphan body, an upload without record.
    (tmp_path / "tmp" / "half-received").write_bytes(b"partial")
    (tmp_path / "buckets" / BUCKET / "blobs" / "zz").mkdir()
    (tmp_path / "buckets" / BUCKET / "blobs" / "zz" / "zzorphan").write_bytes(b"orphan")
    (tmp_path / "buckets" / BUCKET / "uploads" / "HALF-INITIATED").mkdir()

    emu = start_emulator(tmp_path)
    try:
        bucket = v1_bucket(emu)
        result = bucket.get_object("keep/a.txt")
        assert result.read() == b"persisted"
        assert (result.etag, result.headers["x-oss-meta-x"], result.headers["Content-Type"]) == (
            etag,
            "1",
            "text/plain",
        )
        assert bucket.get_object("keep/over.txt").read() == b"new"
        assert not bucket.object_exists("keep/gone.txt")
        assert [o.key for o in oss2.ObjectIterator(bucket)] == ["keep/a.txt", "keep/over.txt"]
        assert "second-bucket" in [
            b.name for b in oss2.Service(bucket.auth, emu.endpoint).list_buckets().buckets
        ]
        bucket.complete_multipart_upload("keep/mp", upload_id, [oss2.models.PartInfo(1, part.etag)])
        assert bucket.get_object("keep/mp").read() == b"part one"
        # Nothing but live bodies is left on disk: one per object.
        bodies = list((tmp_path / "buckets" / BUCKET / "blobs").glob("*/*"))
        assert len(bodies) == 3
        assert list((tmp_path / "tmp").iterdir()) == []
        assert [u.key for u in oss2.MultipartUploadIterator(bucket)] == []
    finally:
        emu.stop()


def test_second_process_on_the_same_data_dir_is_refused(emulator, tmp_path):
    with pytest.raises(RuntimeError, match="in use"):
        start_emulator(tmp_path / "oss")


def test_concurrent_puts_to_distinct_keys(emulator):
    bucket = v4_bucket(emulator)
    bodies = {f"many/{i:03d}": os.urandom(1000 + i) for i in range(60)}
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda item: bucket.put_object(*item), bodies.items()))
    assert [o.key for o in oss2.ObjectIterator(bucket, prefix="many/")] == sorted(bodies)
    for key, body in bodies.items():
        assert bucket.get_object(key).read() == body


def test_concurrent_puts_and_reads_of_one_key_stay_consistent(emulator):
    bucket = v1_bucket(emulator)
    bodies = [bytes([i]) * (50_000 + i) for i in range(24)]
    bucket.put_object("hot", bodies[0])

    def read_once(_: int) -> None:
        result = bucket.get_object("hot")
        data = result.read()
        # Whatever version a reader sees, its body, length, ETag and CRC belong together.
        assert data in bodies
        assert result.etag == hashlib.md5(data).hexdigest().upper()
        assert result.server_crc == result.client_crc

    with ThreadPoolExecutor(8) as pool:
        writes = [pool.submit(bucket.put_object, "hot", body) for body in bodies]
        reads = [pool.submit(read_once, i) for i in range(40)]
        for future in writes + reads:
            future.result()
    final = bucket.get_object("hot").read()
    assert final in bodies
    assert bucket.head_object("hot").content_length == len(final)


def test_forbid_overwrite_race_has_exactly_one_winner(emulator):
    bucket = v1_bucket(emulator)
    contenders = 16

    def create(i: int) -> tuple[int, str]:
        try:
            bucket.put_object("race", f"writer {i}".encode(), headers={"x-oss-forbid-overwrite": "true"})
        except oss2.exceptions.ServerError as exc:
            return i, f"{exc.status} {exc.code}"
        return i, "created"

    with ThreadPoolExecutor(contenders) as pool:
        outcomes = list(pool.map(create, range(contenders)))
    winners = [i for i, outcome in outcomes if outcome == "created"]
    assert len(winners) == 1
    assert (
        sorted(outcome for _, outcome in outcomes if outcome != "created") == ["409 FileAlreadyExists"] * 15
    )
    assert bucket.get_object("race").read() == f"writer {winners[0]}".encode()


def test_command_line_serves_and_stops_cleanly(tmp_path):
    help_text = subprocess.run(
        [sys.executable, "-m", "outpaint.local.oss", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for flag in [
        "--host",
        "--port",
        "--data-dir",
        "--bucket",
        "--access-key-id",
        "--access-key-secret",
        "--notify",
    ]:
        assert flag in help_text
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable, "-m", "outpaint.local.oss", "--port", str(port), "--data-dir", str(tmp_path),
        "--bucket", "cli-bucket", "--access-key-id", AK, "--access-key-secret", SK,
    ]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(endpoint)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the emulator did not start"
                time.sleep(0.05)
        bucket = oss2.Bucket(oss2.Auth(AK, SK), endpoint, "cli-bucket")
        bucket.put_object("k", b"from the cli")
        assert bucket.get_object("k").read() == b"from the cli"
    finally:
        process.terminate()
        _, log = process.communicate(timeout=15)
    assert process.returncode == 0
    assert "PutObject PUT /cli-bucket/k -> 200" in log
    assert "Signature" not in log
    assert SK not in log
