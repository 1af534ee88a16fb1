"""The bad-input corpus: every hostile file, value, key and event, with the outcome it must have.

Each row states the outcome: REJECTED with a code (a job record says why, nothing is submitted),
DONE (accepted and processed), or IGNORED with the logged reason. The corpus is generated here with
Pillow, so it stays small and license-clean.
"""

from __future__ import annotations

import io
import json
import os

import oss2
import pytest
from PIL import Image

from outpaint.app import handle_upload
from outpaint.job import State
from tests.support.images import photo
from tests.support.stack import running_stack


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (600, 600), (i * 40, 0, 0)) for i in range(3)]
    return encoded(frames[0], "GIF", save_all=True, append_images=frames[1:])


def noisy_png(megabytes: float) -> bytes:
    side = int((megabytes * 1024 * 1024 / 3) ** 0.5) + 1
    return encoded(Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)), "PNG", compress_level=0)


FILES = {
    # name: (bytes factory, expected state, expected code)
    "zero-bytes.jpg": (lambda: b"", State.REJECTED, "source.not_an_image"),
    "text-named.jpg": (
        lambda: b"just some text, not a picture\n" * 20,
        State.REJECTED,
        "source.not_an_image",
    ),
    "notes.txt": (
        lambda: "plain text, 图片 named as it is\n".encode() * 9,
        State.REJECTED,
        "source.not_an_image",
    ),
    "report.pdf": (lambda: b"%PDF-1.7\n" + os.urandom(3000), State.REJECTED, "source.not_an_image"),
    "clip.heic": (lambda: b"\0\0\0\x20ftypisom" + os.urandom(3000), State.REJECTED, "source.not_an_image"),
    "noise.png": (lambda: b"\0" + os.urandom(300_000), State.REJECTED, "source.not_an_image"),
    "bmp-named.jpg": (
        lambda: encoded(Image.new("RGB", (700, 600)), "BMP"),
        State.REJECTED,
        "plan.unsupported_format",
    ),
    "upper-case.PNG": (lambda: photo(800, 600, fmt="PNG"), State.DONE, None),
    "mixed-case.Jpg": (lambda: photo(800, 600), State.DONE, None),
    "no-extension": (lambda: photo(800, 600), State.DONE, None),
    "truncated.jpg": (lambda: photo(800, 800)[:-4000], State.REJECTED, "image.truncated"),
    "truncated.png": (lambda: photo(800, 800, fmt="PNG")[:-100], State.REJECTED, "image.truncated"),
    "tiny-100.png": (lambda: photo(100, 100, fmt="PNG"), State.REJECTED, "plan.image_too_small"),
    "huge-5000x3000.jpg": (lambda: photo(5000, 3000), State.REJECTED, "plan.image_too_large"),
    "eleven-mb.png": (lambda: noisy_png(11), State.REJECTED, "plan.file_too_large"),
    "animated.gif": (animated_gif, State.REJECTED, "plan.unsupported_format"),
    "cmyk.jpg": (lambda: encoded(Image.new("CMYK", (700, 600), (0, 80, 160, 0)), "JPEG"), State.DONE, None),
    "sixteen-bit.png": (
        lambda: encoded(Image.linear_gradient("L").resize((640, 640)).convert("I;16"), "PNG"),
        State.DONE,
        None,
    ),
    "photo.webp": (lambda: photo(800, 600, fmt="WEBP"), State.DONE, None),
}

METADATA = {
    # metadata: expected code
    (("ratio", "banana"),): "plan.bad_ratio",
    (("ratio", "0:9"),): "plan.bad_ratio",
    (("ratio", "99:1"),): "plan.ratio_out_of_range",
    (("scale", "4"),): "plan.scale_out_of_range",
    (("scale", "-1"),): "plan.scale_out_of_range",
    (("offsets", "a,b"),): "plan.bad_offsets",
    (("angle", "400"),): "plan.angle_out_of_range",
    (("angle", "90"),): "plan.rotation_only_right_angle",
    (("ratoi", "16:9"),): "plan.unknown_keys",  # message: "... (did you mean outpaint-ratio?) ..."
}

KEYS = [
    "inbox/with space.jpg",
    "inbox/plus+sign.jpg",
    "inbox/percent%20sign.jpg",
    "inbox/unicode-图片-ü.jpg",
    "inbox/dots/../escape.jpg",
    "inbox//double-slash.jpg",
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("bad"), task_seconds=(0.1, 0.1)) as stack:
        yield stack


def jobs_of(stack, key):
    store = stack.pipeline().store
    return [store.load(job_id) for job_id in store.job_ids_for_source(key)]


@pytest.mark.parametrize("name", list(FILES))
def test_bad_file(stack, name):
    make, state, code = FILES[name]
    key = f"inbox/corpus/{name}"
    submits = stack.dashscope.stats()["submits_accepted"]
    stack.on_upload(stack.upload(key, make(), ratio="16:9"))
    [job] = jobs_of(stack, key)
    assert (job.state, job.error_code) == (state, code), job.error_message
    if state is State.REJECTED:
        assert stack.dashscope.stats()["submits_accepted"] == submits
        assert job.error_message


@pytest.mark.parametrize("meta", list(METADATA), ids=lambda meta: ",".join(f"{k}={v}" for k, v in meta))
def test_bad_metadata(stack, meta):
    key = f"inbox/meta/{abs(hash(meta))}.jpg"
    stack.on_upload(stack.upload(key, photo(800, 800), **dict(meta)))
    [job] = jobs_of(stack, key)
    assert job.state is State.REJECTED
    assert job.error_code == METADATA[meta]
    # The message names the key and the offending value.
    name, value = meta[0]
    assert f"outpaint-{name}" in job.error_message
    assert value in job.error_message


@pytest.mark.parametrize("key", KEYS)
def test_awkward_keys_round_trip(stack, key):
    stack.on_upload(stack.upload(key, photo(700, 700), ratio="4:3"))
    [job] = jobs_of(stack, key)
    assert job.state is State.DONE, job.error_message
    expected = "outpainted/" + key[len("inbox/") :]
    assert job.output_key == expected
    assert stack.bucket().head_object(expected).headers["x-oss-meta-outpaint-job-id"] == job.job_id


def event_for(stack, key, **changes):
    record = json.loads(stack.upload(key, photo(700, 700), ratio="4:3"))
    target = record["events"][0]
    for path, value in changes.items():
        node = target
        *parents, leaf = path.split(".")
        for part in parents:
            node = node[part]
        if value is None:
            del node[leaf]
        else:
            node[leaf] = value
    return json.dumps(record).encode()


@pytest.mark.parametrize(
    ("case", "make", "expected"),
    [
        ("truncated JSON", lambda s: event_for(s, "inbox/ev/a.jpg")[:-7], "event.malformed"),
        (
            "missing key",
            lambda s: event_for(s, "inbox/ev/b.jpg", **{"oss.object.key": None}),
            "event.malformed",
        ),
        ("not JSON", lambda s: b"\x00\x01 binary", "event.malformed"),
        (
            "foreign bucket",
            lambda s: event_for(s, "inbox/ev/c.jpg", **{"oss.bucket.name": "elsewhere"}),
            "foreign_bucket",
        ),
        (
            "unknown event name",
            lambda s: event_for(s, "inbox/ev/d.jpg", eventName="Object:Teleported"),
            "not_a_creation_event",
        ),
        (
            "deletion",
            lambda s: event_for(s, "inbox/ev/e.jpg", eventName="ObjectRemoved:DeleteObject"),
            "not_a_creation_event",
        ),
        (
            "object gone",
            lambda s: event_for(s, "inbox/ev/f.jpg", **{"oss.object.key": "inbox/ev/never.jpg"}),
            "object.gone",
        ),
        (
            "leading slash",
            lambda s: event_for(s, "inbox/ev/g.jpg", **{"oss.object.key": "/inbox/ev/g.jpg"}),
            "outside_input_prefix",
        ),
    ],
)
def test_bad_events(stack, case, make, expected):
    result = handle_upload(make(stack), stack.invocation(), stack.settings())
    if expected == "event.malformed":
        assert result["error"] == expected
        assert result["message"]
    else:
        [outcome] = result["outcomes"]
        assert (outcome["action"], outcome["reason"]) == ("ignored", expected)


def test_a_truncated_upload_costs_nothing_and_says_why(stack):
    key = "inbox/corpus/cut.jpg"
    stack.on_upload(stack.upload(key, photo(1200, 900)[:-20000], ratio="16:9"))
    [job] = jobs_of(stack, key)
    assert "cut short" in job.error_message or "ends early" in job.error_message
    assert not list(oss2.ObjectIteratorV2(stack.bucket(), prefix="outpainted/corpus/cut"))


def test_same_bytes_resent_with_other_bad_metadata_get_their_own_verdict(stack):
    key = "inbox/meta/resent.jpg"
    image = photo(800, 800)
    stack.on_upload(stack.upload(key, image, ratio="banana"))
    stack.on_upload(stack.upload(key, image, ratio="99:1"))
    codes = sorted(job.error_code for job in jobs_of(stack, key))
    assert codes == ["plan.bad_ratio", "plan.ratio_out_of_range"]


def test_a_four_pixel_expansion_is_skipped_with_its_reason_and_costs_nothing(stack):
    key = "inbox/corpus/nearly-3x2.jpg"
    submits = stack.dashscope.stats()["submits_accepted"]
    stack.on_upload(stack.upload(key, photo(1086, 720), ratio="3:2"))
    [job] = jobs_of(stack, key)
    assert (job.state, job.error_code) == (State.SKIPPED, "plan.negligible_expansion")
    assert "adds only 0×4 px to 1086×720" in job.error_message
    assert stack.dashscope.stats()["submits_accepted"] == submits
