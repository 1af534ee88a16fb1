"""OSS emulator notifications: FC OSS-trigger event JSON, trigger-style filters, at-least-once delivery."""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import oss2
import pytest

from outpaint.local.oss import OssEmulator

AK, SK, REGION, ACCOUNT = "notify-ak", "notify-sk", "cn-beijing", "1999888877776666"
BUCKET = "events"
PART = 100 * 1024


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[OssEmulator]:
    emu = OssEmulator(
        data_dir=tmp_path,
        buckets=[BUCKET, "other-bucket"],
        access_key_id=AK,
        access_key_secret=SK,
        region=REGION,
        account_id=ACCOUNT,
        notify_backoff=(0.05, 0.2),
    ).start()
    yield emu
    emu.stop()


@pytest.fixture
def bucket(emulator: OssEmulator) -> oss2.Bucket:
    return oss2.Bucket(oss2.Auth(AK, SK), emulator.endpoint, BUCKET)


class Collector:
    """A callable subscriber: keeps every event it is handed (FC hands handlers bytes)."""

    def __init__(self) -> None:
        self.payloads: list[bytes] = []

    def __call__(self, payload: bytes) -> None:
        assert isinstance(payload, bytes)
        self.payloads.append(payload)

    @property
    def records(self) -> list[dict]:
        return [record for payload in self.payloads for record in json.loads(payload)["events"]]

    @property
    def names(self) -> list[str]:
        return [record["eventName"] for record in self.records]


def event_time(last_modified: str) -> str:
    stamp = calendar.timegm(parsedate_to_datetime(last_modified).utctimetuple())
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(stamp))


def expected_event(name, key, *, size, delta, etag, request_id, rule_id, last_modified, mime, user_meta):
    return {
        "events": [
            {
                "eventName": name,
                "eventSource": "acs:oss",
                "eventTime": event_time(last_modified),
                "eventVersion": "1.0",
                "oss": {
                    "bucket": {
                        "arn": f"acs:oss:{REGION}:{ACCOUNT}:{BUCKET}",
                        "name": BUCKET,
                        "ownerIdentity": ACCOUNT,
                        "virtualBucket": "",
                    },
                    "object": {
                        "deltaSize": delta,
                        "eTag": etag,
                        "key": key,
                        "size": size,
                        "objectMeta": {"mimeType": mime, "userMeta": user_meta},
                    },
                    "ossSchemaVersion": "1.0",
                    "ruleId": rule_id,
                },
                "region": REGION,
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"requestId": request_id},
                "userIdentity": {"principalId": ACCOUNT},
            }
        ]
    }


def test_put_object_event_is_the_documented_json(emulator, bucket):
    collector = Collector()
    sub = emulator.subscribe(
        collector, events=["oss:ObjectCreated:PutObject"], prefix="inbox/", suffix=".jpg"
    )
    key = "inbox/a b+c/猫.jpg"  # the event carries the raw key, not URL-encoded
    result = bucket.put_object(key, b"x" * 2048, headers={"x-oss-meta-Origin": "upload-form"})
    assert emulator.drain_notifications(5)
    head = bucket.head_object(key)
    assert json.loads(collector.payloads[0]) == expected_event(
        "ObjectCreated:PutObject",
        key,
        size=2048,
        delta=2048,
        etag=hashlib.md5(b"x" * 2048).hexdigest().upper(),
        request_id=result.request_id,
        rule_id=sub.rule_id,
        last_modified=head.headers["Last-Modified"],
        mime="image/jpeg",
        user_meta={"x-oss-meta-origin": "upload-form"},
    )
    bucket.put_object(key, b"y" * 48)  # an overwrite: deltaSize is new size minus old size
    assert emulator.drain_notifications(5)
    assert collector.records[1]["oss"]["object"]["deltaSize"] == 48 - 2048
    assert len(collector.payloads) == 2


def test_multipart_upload_event(emulator, bucket):
    collector = Collector()
    sub = emulator.subscribe(collector, events=["oss:ObjectCreated:CompleteMultipartUpload"])
    key = "inbox/big.png"
    parts = [b"1" * PART, b"2" * 10]
    upload_id = bucket.init_multipart_upload(key, headers={"Content-Type": "image/png"}).upload_id
    infos = [
        oss2.models.PartInfo(n, bucket.upload_part(key, upload_id, n, data).etag)
        for n, data in enumerate(parts, 1)
    ]
    result = bucket.complete_multipart_upload(key, upload_id, infos)
    assert emulator.drain_notifications(5)
    joined = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest().upper()
    assert json.loads(collector.payloads[0]) == expected_event(
        "ObjectCreated:CompleteMultipartUpload",
        key,
        size=PART + 10,
        delta=PART + 10,
        etag=f"{joined}-2",
        request_id=result.request_id,
        rule_id=sub.rule_id,
        last_modified=bucket.head_object(key).headers["Last-Modified"],
        mime="image/png",
        user_meta={},
    )
    assert len(collector.payloads) == 1


def test_wildcard_also_fires_for_every_multipart_step(emulator, bucket):
    collector = Collector()
    emulator.subscribe(collector, events=["oss:ObjectCreated:*"])
    key = "steps.bin"
    upload_id = bucket.init_multipart_upload(key).upload_id
    infos = [oss2.models.PartInfo(n, bucket.upload_part(key, upload_id, n, b"p" * PART).etag) for n in (1, 2)]
    bucket.complete_multipart_upload(key, upload_id, infos)
    assert emulator.drain_notifications(5)
    assert sorted(collector.names) == sorted(
        [
            "ObjectCreated:InitiateMultipartUpload",
            "ObjectCreated:UploadPart",
            "ObjectCreated:UploadPart",
            "ObjectCreated:CompleteMultipartUpload",
        ]
    )


def test_copy_object_event(emulator, bucket):
    bucket.put_object("src/cat.jpg", b"meow", headers={"x-oss-meta-a": "1"})
    bucket.put_object("inbox/cat.jpg", b"a longer previous body")
    collector = Collector()
    sub = emulator.subscribe(collector, events=["oss:ObjectCreated:CopyObject"])
    result = bucket.copy_object(BUCKET, "src/cat.jpg", "inbox/cat.jpg")
    assert emulator.drain_notifications(5)
    assert json.loads(collector.payloads[0]) == expected_event(
        "ObjectCreated:CopyObject",
        "inbox/cat.jpg",
        size=4,
        delta=4 - len(b"a longer previous body"),
        etag=hashlib.md5(b"meow").hexdigest().upper(),
        request_id=result.request_id,
        rule_id=sub.rule_id,
        last_modified=bucket.head_object("inbox/cat.jpg").headers["Last-Modified"],
        mime="image/jpeg",
        user_meta={"x-oss-meta-a": "1"},
    )


def test_post_object_event(emulator):
    collector = Collector()
    emulator.subscribe(collector, events=["oss:ObjectCreated:PostObject"])
    policy = base64.b64encode(b'{"expiration": "2099-01-01T00:00:00Z", "conditions": []}').decode()
    signature = base64.b64encode(hmac.new(SK.encode(), policy.encode(), hashlib.sha1).digest()).decode()
    fields = {"key": "inbox/form.jpg", "OSSAccessKeyId": AK, "policy": policy, "Signature": signature}
    response = httpx.post(f"{emulator.endpoint}/{BUCKET}", data=fields, files={"file": ("f.jpg", b"form")})
    assert response.status_code == 204
    assert emulator.drain_notifications(5)
    (record,) = collector.records
    assert record["eventName"] == "ObjectCreated:PostObject"
    assert record["oss"]["object"]["key"] == "inbox/form.jpg"
    assert record["responseElements"]["requestId"] == response.headers["x-oss-request-id"]


def test_delete_events(emulator, bucket):
    for key in ("a", "b", "c"):
        bucket.put_object(key, b"123")
    collector = Collector()
    emulator.subscribe(
        collector, events=["oss:ObjectRemoved:DeleteObject", "oss:ObjectRemoved:DeleteObjects"]
    )
    bucket.delete_object("a")
    bucket.delete_object("never-existed")
    bucket.batch_delete_objects(["b", "c"])
    assert emulator.drain_notifications(5)
    assert sorted((r["eventName"], r["oss"]["object"]["key"]) for r in collector.records) == [
        ("ObjectRemoved:DeleteObject", "a"),
        ("ObjectRemoved:DeleteObjects", "b"),
        ("ObjectRemoved:DeleteObjects", "c"),
    ]
    assert collector.records[0]["oss"]["object"]["deltaSize"] == -3


def test_filters_match_like_native_triggers(emulator, bucket):
    jpgs, anything, other = Collector(), Collector(), Collector()
    emulator.subscribe(jpgs, events=["oss:ObjectCreated:PutObject"], prefix="inbox/", suffix=".jpg")
    emulator.subscribe(anything, events=["oss:ObjectCreated:*"], bucket=BUCKET)
    emulator.subscribe(other, events=["oss:ObjectCreated:*"], bucket="other-bucket")
    for key in ("inbox/a.jpg", "inbox/a.png", "outbox/b.jpg", "inbox.jpg"):
        bucket.put_object(key, b"1")
    bucket.copy_object(BUCKET, "inbox/a.png", "inbox/c.jpg")  # CopyObject is not PutObject
    assert emulator.drain_notifications(5)
    assert [r["oss"]["object"]["key"] for r in jpgs.records] == ["inbox/a.jpg"]
    assert len(anything.records) == 5
    assert other.records == []
    with pytest.raises(ValueError, match="unknown OSS event"):
        emulator.subscribe(jpgs, events=["ObjectCreated:PutObject"])  # trigger names carry "oss:"


def test_unsubscribe_stops_delivery(emulator, bucket):
    collector = Collector()
    sub = emulator.subscribe(collector)
    bucket.put_object("one", b"1")
    assert emulator.drain_notifications(5)
    sub.unsubscribe()
    bucket.put_object("two", b"2")
    assert emulator.drain_notifications(5)
    assert [r["oss"]["object"]["key"] for r in collector.records] == ["one"]


def test_failing_callable_is_retried_then_given_up(emulator, bucket):
    calls: list[bytes] = []

    def flaky(payload: bytes) -> None:
        calls.append(payload)
        if len(calls) < 3:
            raise RuntimeError("handler crashed")

    def broken(payload: bytes) -> None:
        raise RuntimeError("always")

    emulator.subscribe(flaky, events=["oss:ObjectCreated:PutObject"])
    emulator.subscribe(broken, events=["oss:ObjectCreated:PutObject"])
    bucket.put_object("retry-me", b"1")
    assert emulator.drain_notifications(10)  # broken: 1 attempt + 3 retries, then given up
    assert len(calls) == 3
    assert len(set(calls)) == 1  # every retry carries the same event


class _Receiver(BaseHTTPRequestHandler):
    bodies: list[bytes]

    def do_POST(self) -> None:
        self.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_unreachable_http_subscriber_gets_the_event_once_it_comes_back(emulator, bucket):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    emulator.subscribe(f"http://127.0.0.1:{port}/invoke", events=["oss:ObjectCreated:PutObject"])
    result = bucket.put_object("inbox/late.jpg", b"late")
    assert not emulator.drain_notifications(0.6)  # nobody listening: still pending, being retried
    bodies: list[bytes] = []
    handler = type("Receiver", (_Receiver,), {"bodies": bodies})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert emulator.drain_notifications(5)
    finally:
        server.shutdown()
        server.server_close()
    assert len(bodies) == 1
    (record,) = json.loads(bodies[0])["events"]
    assert record["oss"]["object"]["key"] == "inbox/late.jpg"
    assert record["responseElements"]["requestId"] == result.request_id
