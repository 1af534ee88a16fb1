"""Every documented error code of the emulator, produced by the input that should produce it."""

# Fixtures come in by import (no conftest.py here), so pytest sees them and ruff must not flag them.
# ruff: noqa: F401, F811
from __future__ import annotations

import base64
import io
import socket

import httpx
import pytest
from dashscope.client.base_api import BaseAsyncApi
from dashscope_fixtures import (
    KEY,
    SUBMIT_PATH,
    client,
    emulator,
    emulator_factory,
    images,
    make_image,
    run_task,
    shared_emulator,
    submit,
)
from PIL import Image

JSON = "application/json"


def expect_error(response: httpx.Response, status: int, code: str, *words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(JSON)
    body = response.json()
    assert set(body) == {"request_id", "code", "message"}
    assert body["code"] == code
    for word in words:
        assert word in body["message"]


def expect_failed(answer: dict, code: str, *words: str) -> None:
    output = answer["output"]
    assert output["task_status"] == "FAILED", answer
    assert output["code"] == code
    assert "usage" not in answer
    for word in words:
        assert word in output["message"]


def test_missing_and_wrong_api_key(emulator, images):
    body = {"model": "image-out-painting", "input": {"image_url": images.url("/square.jpg")}}
    url = emulator.base_url + SUBMIT_PATH
    response = httpx.post(url, json=body, headers={"X-DashScope-Async": "enable"}, trust_env=False)
    expect_error(response, 401, "InvalidApiKey", "No API-key provided.")
    wrong = {"X-DashScope-Async": "enable", "Authorization": "Bearer sk-wrong"}
    expect_error(httpx.post(url, json=body, headers=wrong, trust_env=False), 401, "InvalidApiKey", "Invalid")
    query = httpx.get(emulator.base_url + "/tasks/x", headers={"Authorization": "Bearer no"}, trust_env=False)
    expect_error(query, 401, "InvalidApiKey")


def test_wrong_key_through_the_sdk(emulator, images):
    answer = BaseAsyncApi.async_call(
        model="image-out-painting",
        input={"image_url": images.url("/square.jpg")},
        task_group="aigc",
        task="image2image",
        function="out-painting",
        api_key="sk-wrong",
        base_address=emulator.base_url,
        x_scale=2.0,
    )
    assert (answer.status_code, answer.code) == (401, "InvalidApiKey")


def test_synchronous_call_is_refused(client, images):
    body = {"model": "image-out-painting", "input": {"image_url": images.url("/square.jpg")}}
    response = client.post(SUBMIT_PATH, json=body, headers={"X-DashScope-Async": "disable"})
    expect_error(response, 403, "AccessDenied", "does not support synchronous calls")


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_malformed_json(client, raw):
    expect_error(
        client.post(SUBMIT_PATH, content=raw), 400, "InvalidParameter.JsonPhrase", "input json error"
    )


@pytest.mark.parametrize(
    ("body", "status", "code", "word"),
    [
        ({"input": {"image_url": "http://x/a.jpg"}}, 400, "BadRequest.EmptyModel", "model"),
        # The real service answers a wrong model with 400 InvalidParameter "Model not exist."
        (
            {"model": "wanx-v1", "input": {"image_url": "http://x/a.jpg"}},
            400,
            "InvalidParameter",
            "Model not exist",
        ),
        ({"model": "image-out-painting"}, 400, "BadRequest.EmptyInput", "input"),
        ({"model": "image-out-painting", "input": {}}, 400, "BadRequest.EmptyInput", "input"),
        ({"model": "image-out-painting", "input": {"x": 1}}, 400, "InvalidParameter", "input.image_url"),
        ({"model": "image-out-painting", "input": {"image_url": ""}}, 400, "InvalidParameter", "image_url"),
        (
            {"model": "image-out-painting", "input": {"image_url": "ftp://h/a"}},
            400,
            "InvalidParameter",
            "image_url",
        ),
        ({"model": "image-out-painting", "input": "http://x"}, 400, "InvalidParameter", "input"),
        (
            {"model": "image-out-painting", "input": {"image_url": "http://x/a"}, "parameters": []},
            400,
            "InvalidParameter",
            "parameters",
        ),
    ],
)
def test_request_shape(client, body, status, code, word):
    expect_error(client.post(SUBMIT_PATH, json=body), status, code, word)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("angle", 360),
        ("angle", -1),
        ("angle", 1.5),
        ("angle", "90"),
        ("angle", True),
        ("output_ratio", "2:1"),
        ("output_ratio", "4:3 "),
        ("output_ratio", 1.33),
        ("x_scale", 0.99),
        ("x_scale", 3.01),
        ("x_scale", "2"),
        ("y_scale", 4),
        ("y_scale", False),
        ("top_offset", -1),
        ("bottom_offset", 2.5),
        ("left_offset", "10"),
        ("right_offset", -100),
        ("best_quality", "true"),
        ("limit_image_size", 1),
        ("add_watermark", "no"),
    ],
)
def test_every_parameter_is_validated_at_submit(client, images, field, value):
    response = submit(client, images.url("/square.jpg"), **{field: value})
    expect_error(
        response, 400, "InvalidParameter", f"parameters.{field}", "must conform to the specification"
    )


@pytest.mark.parametrize("angle", [90, 180, 270])
def test_rotation_only_right_angles_are_refused(client, images, angle):
    expect_error(submit(client, images.url("/square.jpg"), angle=angle), 400, "InvalidParameter", "angle")


def test_boundary_values_are_accepted(client, images):
    url = images.url("/square.jpg")
    for parameters in (
        {"angle": 359, "x_scale": 1.0},
        {"x_scale": 3.0, "y_scale": 1},
        {"angle": 90.0, "y_scale": 1.5},
    ):
        assert submit(client, url, **parameters).status_code == 200, parameters


def test_unreachable_input_fails_the_task_with_file_download(client, images):
    expect_failed(run_task(client, images.url("/missing.jpg"), x_scale=2.0), "InvalidParameter.FileDownload")
    images.add("/forbidden.jpg", b"no", status=403)
    expect_failed(
        run_task(client, images.url("/forbidden.jpg"), x_scale=2.0), "InvalidParameter.FileDownload"
    )
    with socket.socket() as sock:  # a port with no listener: connection refused
        sock.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{sock.getsockname()[1]}/a.jpg"
    expect_failed(run_task(client, refused, x_scale=2.0), "InvalidParameter.FileDownload", "download")


def test_undecodable_or_unsupported_input_fails_with_image_format(client, images):
    garbage = images.add("/garbage.jpg", b"definitely not an image" * 100)
    expect_failed(run_task(client, garbage, x_scale=2.0), "InvalidParameter.ImageFormat", "read image error")
    buffer = io.BytesIO()
    Image.new("RGB", (600, 600), "green").save(buffer, "GIF")
    gif = images.add("/image.gif", buffer.getvalue())
    expect_failed(run_task(client, gif, x_scale=2.0), "InvalidParameter.ImageFormat", "GIF")


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_other_documented_formats_are_accepted(client, images, fmt):
    url = images.add(f"/input.{fmt.lower()}", make_image(600, 600, fmt))
    assert run_task(client, url, x_scale=2.0)["output"]["task_status"] == "SUCCEEDED"


def test_base64_data_uri_input(client):
    data = base64.b64encode(make_image(600, 600, "PNG")).decode()
    answer = run_task(client, f"data:image/png;base64,{data}", y_scale=1.5)
    assert answer["output"]["task_status"] == "SUCCEEDED"


@pytest.mark.parametrize(("w", "h"), [(511, 600), (600, 511), (4097, 512)])
def test_input_resolution_limits(client, images, w, h):
    url = images.add(f"/size-{w}x{h}.png", make_image(w, h, "PNG", "L"))
    expect_failed(run_task(client, url, x_scale=2.0), "InvalidParameter", "512", f"{w}×{h}")


def test_input_file_size_limit(emulator_factory, images):
    emu = emulator_factory(max_download_bytes=50_000)
    headers = {"Authorization": f"Bearer {KEY}", "X-DashScope-Async": "enable"}
    with httpx.Client(base_url=emu.base_url, headers=headers, trust_env=False) as http:
        expect_failed(
            run_task(http, images.url("/square.jpg"), x_scale=2.0), "InvalidParameter", "50000 bytes"
        )


def test_offset_sum_limit(client, images):
    url = images.url("/square.jpg")
    expect_failed(run_task(client, url, left_offset=1500, right_offset=1500), "InvalidParameter", "3 × 1000")
    expect_failed(
        run_task(client, url, top_offset=3000, add_watermark=False), "InvalidParameter", "top_offset"
    )
    answer = run_task(client, url, left_offset=1500, right_offset=1499, limit_image_size=False)
    assert answer["output"]["task_status"] == "SUCCEEDED"


def test_limit_image_size_refuses_extreme_aspect(client, images):
    url = images.add("/strip.png", make_image(2048, 512, "PNG", "L"))  # 4:1 already
    expect_failed(run_task(client, url, x_scale=1.5), "InvalidParameter", "limit_image_size", "1:4")
    answer = run_task(client, url, x_scale=1.5, limit_image_size=False)
    assert answer["output"]["task_status"] == "SUCCEEDED"


def test_oversized_output_fails_data_inspection(client, images):
    buffer = io.BytesIO()
    Image.new("RGB", (4096, 4096), "gray").save(buffer, "JPEG")
    url = images.add("/huge.jpg", buffer.getvalue())
    answer = run_task(client, url, x_scale=3.0, y_scale=3.0, limit_image_size=False)
    expect_failed(answer, "InvalidParameter.DataInspection", "not supported for the data inspection")


def test_algorithm_failure_at_fail_rate(emulator_factory, images):
    emu = emulator_factory(fail_rate=1.0)
    headers = {"Authorization": f"Bearer {KEY}", "X-DashScope-Async": "enable"}
    with httpx.Client(base_url=emu.base_url, headers=headers, trust_env=False) as http:
        answer = run_task(http, images.url("/square.jpg"), x_scale=2.0)
    expect_failed(answer, "InternalError.Algo", "algorithm process error")
    assert "output_image_url" not in answer["output"]
    assert {"submit_time", "scheduled_time", "end_time"} <= set(answer["output"])


def test_payload_too_large(client):
    expect_error(client.post(SUBMIT_PATH, content=b" " * (64 * 1024 * 1024 + 1)), 413, "BadRequest.TooLarge")


def test_unknown_path_is_a_json_404(client):
    response = client.get("/services/aigc/nothing-here")
    assert response.status_code == 404
    assert response.json()["code"] == "NotFound"
