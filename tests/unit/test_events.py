"""Typed trigger events: every sample parses; every malformation names its field."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from outpaint.errors import EventError
from outpaint.events import ObjectRecord, TimerEvent, parse_oss_event, parse_timer_event

EVENTS = Path(__file__).resolve().parents[2] / "events"
OSS_SAMPLES = {
    "oss-put.json": "ObjectCreated:PutObject",
    "oss-post.json": "ObjectCreated:PostObject",
    "oss-multipart-complete.json": "ObjectCreated:CompleteMultipartUpload",
    "oss-copy.json": "ObjectCreated:CopyObject",
    "oss-delete.json": "ObjectRemoved:DeleteObject",
    "eventbridge-oss-put.json": "ObjectCreated:PutObject",
}


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def test_every_sample_file_is_covered():
    assert {p.name for p in EVENTS.glob("*.json")} == {*OSS_SAMPLES, "timer.json"}


@pytest.mark.parametrize(("name", "event_name"), OSS_SAMPLES.items())
def test_oss_samples_parse_from_bytes_str_and_mapping(name, event_name):
    raw = (EVENTS / name).read_bytes()
    from_bytes = parse_oss_event(raw)
    assert from_bytes == parse_oss_event(raw.decode()) == parse_oss_event(json.loads(raw))
    [record] = from_bytes
    assert record.event_name == event_name
    assert record.bucket == "outpaint-local"
    assert record.region == "cn-beijing"
    assert record.key.startswith("inbox/")
    assert record.etag == record.etag.upper()
    assert '"' not in record.etag
    assert record.event_time.tzinfo is not None
    assert record.is_created == event_name.startswith("ObjectCreated:")


def test_put_sample_fields():
    [record] = parse_oss_event((EVENTS / "oss-put.json").read_bytes())
    assert record == ObjectRecord(
        event_name="ObjectCreated:PutObject",
        event_time=datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc),
        region="cn-beijing",
        bucket="outpaint-local",
        key="inbox/cat.jpg",
        etag="0CC175B9C0F1B6A831C399E269772661",
        size=1843211,
        request_id="67C2B0A1E4F5A6B7C8D9E0F1",
        user_meta={"x-oss-meta-outpaint-ratio": "16:9", "x-oss-meta-outpaint-gravity": "center"},
        mime_type="image/jpeg",
    )


def test_keys_are_never_unquoted():
    [post] = parse_oss_event(load("oss-post.json"))
    assert post.key == "inbox/表单 上传.png"
    event = load("oss-put.json")
    event["events"][0]["oss"]["object"]["key"] = "inbox/a%20b+c.jpg"
    assert parse_oss_event(event)[0].key == "inbox/a%20b+c.jpg"


def test_object_meta_is_optional():
    [copy_record] = parse_oss_event(load("oss-copy.json"))
    assert copy_record.user_meta is None
    assert copy_record.mime_type is None


def test_several_records_per_event_and_etag_normalised():
    event = load("oss-put.json")
    second = copy.deepcopy(event["events"][0])
    second["oss"]["object"]["key"] = "inbox/second.jpg"
    second["oss"]["object"]["eTag"] = '"5b3c1a2e053d763e1b002cc607c5a0fe-3"'
    event["events"].append(second)
    records = parse_oss_event(event)
    assert [r.key for r in records] == ["inbox/cat.jpg", "inbox/second.jpg"]
    assert records[1].etag == "5B3C1A2E053D763E1B002CC607C5A0FE-3"


def test_eventbridge_envelope_strips_oss_prefix():
    envelope = load("eventbridge-oss-put.json")
    envelope["data"]["eventName"] = "oss:ObjectCreated:PostObject"
    [record] = parse_oss_event(envelope)
    assert record.event_name == "ObjectCreated:PostObject"
    assert record.key == "inbox/dog.jpg"
    assert record.user_meta == {"x-oss-meta-outpaint-ratio": "21:9"}


def test_record_is_frozen():
    [record] = parse_oss_event(load("oss-put.json"))
    with pytest.raises(ValueError, match="frozen"):
        record.key = "other"


def _drop(event: dict, path: list) -> dict:
    event = copy.deepcopy(event)
    node = event
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return event


def _set(event: dict, path: list, value: object) -> dict:
    event = copy.deepcopy(event)
    node = event
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return event


REQUIRED = [
    ["events", 0, "eventName"],
    ["events", 0, "eventTime"],
    ["events", 0, "region"],
    ["events", 0, "oss"],
    ["events", 0, "oss", "bucket"],
    ["events", 0, "oss", "bucket", "name"],
    ["events", 0, "oss", "object"],
    ["events", 0, "oss", "object", "key"],
    ["events", 0, "oss", "object", "size"],
    ["events", 0, "oss", "object", "eTag"],
]


def _dotted(path: list) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


@pytest.mark.parametrize("path", REQUIRED, ids=_dotted)
def test_missing_field_is_named(path):
    with pytest.raises(EventError) as info:
        parse_oss_event(_drop(load("oss-put.json"), path))
    assert info.value.code == "event.malformed"
    assert f"{_dotted(path)}: field required" in info.value.message


MISTYPED = [
    (["events", 0, "oss", "object", "size"], "20480"),
    (["events", 0, "oss", "object", "size"], -1),
    (["events", 0, "oss", "object", "key"], 42),
    (["events", 0, "oss", "object", "key"], ""),
    (["events", 0, "eventTime"], 1740816000),
    (["events", 0, "eventTime"], "yesterday"),
    (["events", 0, "oss", "object", "objectMeta", "userMeta"], ["a"]),
    (["events", 0, "responseElements"], "67C2"),
    (["events"], {}),
    (["events"], []),
]


@pytest.mark.parametrize(("path", "value"), MISTYPED, ids=lambda v: repr(v)[:30])
def test_mistyped_field_is_named(path, value):
    with pytest.raises(EventError) as info:
        parse_oss_event(_set(load("oss-put.json"), path, value))
    assert info.value.message.startswith(_dotted(path) + ":")


def test_envelope_errors_name_the_data_path():
    envelope = _drop(load("eventbridge-oss-put.json"), ["data", "oss", "object", "key"])
    with pytest.raises(EventError, match=r"data\.oss\.object\.key: field required"):
        parse_oss_event(envelope)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"events": [{"eventName"', "event: not valid JSON"),
        (b"\xff\xfe", "event: not UTF-8"),
        ("[1, 2]", "event: expected a JSON object, got list"),
        ("null", "event: expected a JSON object, got NoneType"),
        ('{"Records": []}', "event: unknown shape"),
        (42, "event: expected bytes, str or a mapping"),
    ],
)
def test_unparseable_events(raw, message):
    with pytest.raises(EventError, match=message):
        parse_oss_event(raw)


def test_timer_sample():
    event = parse_timer_event((EVENTS / "timer.json").read_bytes())
    assert event.trigger_time == datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc)
    assert event.trigger_name == "outpaint-tick"
    assert event.payload_json() == {"source": "timer"}


@pytest.mark.parametrize("raw", [None, b"", "  ", {}, b"{}"])
def test_timer_defaults(raw):
    assert parse_timer_event(raw) == TimerEvent()
    assert parse_timer_event(raw).payload_json() == {}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"triggerTime": 5}, "triggerTime: expected an ISO-8601 timestamp string"),
        ({"triggerName": ["x"]}, "triggerName: input should be a valid string"),
        ({"payload": {"task": "x"}}, "payload: input should be a valid string"),
        ("{", "event: not valid JSON"),
    ],
)
def test_timer_malformed(raw, message):
    with pytest.raises(EventError, match=message):
        parse_timer_event(raw)


@pytest.mark.parametrize(
    ("payload", "message"), [("{nope", "payload: not valid JSON"), ("[1]", "payload: expected a JSON object")]
)
def test_timer_payload_json_errors(payload, message):
    with pytest.raises(EventError, match=message):
        TimerEvent(payload=payload).payload_json()
