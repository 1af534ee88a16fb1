"""Output geometry of the DashScope emulator: documented examples, priority rules, our arithmetic."""

# Fixtures come in by import (no conftest.py here), so pytest sees them and ruff must not flag them.
# ruff: noqa: F401, F811
from __future__ import annotations

import io
import math

import pytest
from dashscope.client.base_api import BaseAsyncApi
from dashscope_fixtures import (
    KEY,
    client,
    download,
    emulator,
    emulator_factory,
    images,
    make_image,
    run_task,
    shared_emulator,
)
from PIL import Image

from outpaint.local.dashscope.geometry import plan_canvas
from outpaint.local.dashscope.validation import OutPaintParams


def sdk_run(emu, url: str, **parameters) -> dict:
    """Submit with the official SDK (extra kwargs become ``parameters``) and poll with ``fetch``."""
    kwargs = {"api_key": KEY, "base_address": emu.base_url}
    task = BaseAsyncApi.async_call(
        model="image-out-painting",
        input={"image_url": url},
        task_group="aigc",
        task="image2image",
        function="out-painting",
        **kwargs,
        **parameters,
    )
    assert task.status_code == 200, task
    for _ in range(500):
        answer = BaseAsyncApi.fetch(task, **kwargs)
        if answer.output["task_status"] in {"SUCCEEDED", "FAILED"}:
            return answer
    raise AssertionError("task did not finish")


@pytest.mark.parametrize(
    ("parameters", "size"),
    [
        ({"x_scale": 2.0}, (2000, 1000)),
        ({"left_offset": 500}, (1500, 1000)),
        ({"top_offset": 500}, (1000, 1500)),
        ({"y_scale": 2.0}, (1000, 2000)),
    ],
)
def test_documented_examples_with_the_official_sdk(emulator, images, parameters, size):
    answer = sdk_run(emulator, images.url("/square.jpg"), **parameters)
    assert answer.output["task_status"] == "SUCCEEDED", answer
    assert answer.usage["image_count"] == 1
    assert download(answer.output["output_image_url"]).size == size


@pytest.mark.parametrize(
    ("parameters", "size"),
    [
        ({"output_ratio": "4:3", "x_scale": 2.0}, (1000, 750)),  # ratio wins: 1000×600 is wider than 4:3
        ({"x_scale": 2.0, "left_offset": 100}, (2000, 600)),  # scale wins, offset ignored
        ({"angle": 90, "x_scale": 2.0}, (1200, 1000)),  # rotated to 600×1000, then width ×2
        ({"angle": 90, "output_ratio": "4:3", "x_scale": 2.0, "left_offset": 100}, (1334, 1000)),
    ],
)
def test_priority_examples(client, images, parameters, size):
    url = images.add("/wide.jpg", make_image(1000, 600))
    answer = run_task(client, url, **parameters)
    assert answer["output"]["task_status"] == "SUCCEEDED", answer
    assert download(answer["output"]["output_image_url"]).size == size


@pytest.mark.parametrize("ratio", ["1:1", "3:4", "4:3", "9:16", "16:9"])
@pytest.mark.parametrize(("w", "h"), [(1000, 1000), (1000, 600), (600, 1000), (777, 513)])
def test_ratio_arithmetic(ratio, w, h):
    a, b = (int(x) for x in ratio.split(":"))
    canvas = plan_canvas(w, h, OutPaintParams(output_ratio=ratio))
    if w * b >= h * a:
        assert (canvas.width, canvas.height) == (w, math.ceil(w * b / a))
    else:
        assert (canvas.width, canvas.height) == (math.ceil(h * a / b), h)
    assert (canvas.left, canvas.top) == ((canvas.width - w) // 2, (canvas.height - h) // 2)


@pytest.mark.parametrize(("xs", "ys"), [(1.5, 1.0), (1.0, 1.337), (2.345, 2.999), (3.0, 3.0)])
def test_scale_arithmetic(xs, ys):
    canvas = plan_canvas(777, 513, OutPaintParams(x_scale=xs, y_scale=ys))
    assert (canvas.width, canvas.height) == (math.floor(777 * xs + 0.5), math.floor(513 * ys + 0.5))
    assert (canvas.left, canvas.top) == ((canvas.width - 777) // 2, (canvas.height - 513) // 2)


def test_offsets_arithmetic():
    params = OutPaintParams(top_offset=1, bottom_offset=2, left_offset=3, right_offset=4)
    canvas = plan_canvas(600, 500, params)
    assert (canvas.width, canvas.height, canvas.left, canvas.top) == (607, 503, 3, 1)


def test_arbitrary_rotation_uses_pillow_expanded_size(client, images):
    url = images.add("/wide2.jpg", make_image(1000, 600))
    answer = run_task(client, url, angle=30, x_scale=1.5)
    rotated = Image.new("L", (1000, 600)).rotate(30, expand=True, resample=Image.Resampling.BICUBIC).size
    expected = (math.floor(rotated[0] * 1.5 + 0.5), rotated[1])
    assert download(answer["output"]["output_image_url"]).size == expected


def test_original_is_pasted_unchanged_and_alpha_gives_png(client, images):
    original = Image.open(io.BytesIO(make_image(600, 520, "PNG", "RGBA")))
    url = images.add("/alpha.png", make_image(600, 520, "PNG", "RGBA"))
    answer = run_task(client, url, left_offset=100, right_offset=7, top_offset=50, add_watermark=False)
    assert answer["output"]["output_image_url"].split("?")[0].endswith(".png")
    result = download(answer["output"]["output_image_url"])
    assert (result.format, result.mode, result.size) == ("PNG", "RGBA", (707, 570))
    assert result.crop((100, 50, 700, 570)).tobytes() == original.tobytes()
    assert result.getpixel((0, 0))[3] == 255  # the new area is filled, not transparent


def test_watermark_is_stamped_bottom_left_only(client, images):
    url = images.url("/square.jpg")
    plain = download(run_task(client, url, x_scale=1.5, add_watermark=False)["output"]["output_image_url"])
    marked = download(run_task(client, url, x_scale=1.5)["output"]["output_image_url"])
    assert plain.format == marked.format == "JPEG"
    box = plain.width // 3, plain.height * 9 // 10
    bottom_left = (0, box[1], box[0], plain.height)
    assert plain.crop(bottom_left).tobytes() != marked.crop(bottom_left).tobytes()
    rest = (box[0], 0, plain.width, box[1])
    assert plain.crop(rest).tobytes() == marked.crop(rest).tobytes()


def test_identity_request_returns_the_same_size(client, images):
    answer = run_task(client, images.url("/square.jpg"))
    assert download(answer["output"]["output_image_url"]).size == (1000, 1000)


def test_largest_input_finishes_quickly(client, images):
    url = images.add("/big.jpg", make_image(4096, 4096))
    answer = run_task(client, url, x_scale=2.0)
    assert answer["output"]["task_status"] == "SUCCEEDED", answer
    assert download(answer["output"]["output_image_url"]).size == (8192, 4096)
