"""Task lifecycle, cancel, retention, result URLs, determinism, logging and the command line."""

# Fixtures come in by import (no conftest.py here), so pytest sees them and ruff must not flag them.
# ruff: noqa: F401, F811
from __future__ import annotations

import logging
import re
import socket
import subprocess
import sys
import time

import httpx
import pytest
from dashscope.client.base_api import BaseAsyncApi
from dashscope_fixtures import (
    FAST,
    KEY,
    client,
    emulator,
    emulator_factory,
    http,
    images,
    shared_emulator,
    submit,
    wait,
)

from outpaint.local.dashscope import DashScopeEmulator

STAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$")


def test_pending_running_succeeded(http, images):
    _, c = http(concurrency=1, task_seconds=0.4)
    url = images.url("/square.jpg")
    first = submit(c, url, x_scale=2.0).json()
    second = submit(c, url, x_scale=2.0).json()
    assert set(first) == {"request_id", "output"}
    assert first["output"]["task_status"] == "PENDING"
    running = c.get(f"/tasks/{first['output']['task_id']}").json()
    assert running["output"]["task_status"] == "RUNNING"
    assert running["output"]["task_metrics"] == {"TOTAL": 1, "SUCCEEDED": 0, "FAILED": 0}
    assert STAMP.match(running["output"]["scheduled_time"])
    assert "usage" not in running
    pending = c.get(f"/tasks/{second['output']['task_id']}").json()["output"]
    assert pending["task_status"] == "PENDING"
    assert "scheduled_time" not in pending
    done = wait(c, first["output"]["task_id"])
    output = done["output"]
    assert output["task_status"] == "SUCCEEDED"
    assert all(STAMP.match(output[k]) for k in ("submit_time", "scheduled_time", "end_time"))
    assert output["submit_time"] <= output["scheduled_time"] <= output["end_time"]
    assert done["usage"] == {"image_count": 1}
    assert "code" not in output


def test_task_time_follows_the_draw(http, images):
    _emu, c = http(task_seconds=0.3)
    started = time.monotonic()
    wait(c, submit(c, images.url("/square.jpg"), x_scale=2.0).json()["output"]["task_id"])
    assert 0.3 <= time.monotonic() - started < 2.0


def test_cancel_pending_only(http, images):
    emu, c = http(concurrency=1, task_seconds=2)
    url = images.url("/square.jpg")
    running = submit(c, url, x_scale=2.0).json()["output"]["task_id"]
    queued = submit(c, url, x_scale=2.0).json()["output"]["task_id"]
    answer = BaseAsyncApi.cancel(queued, api_key=KEY, base_address=emu.base_url)
    assert answer.status_code == 200
    output = c.get(f"/tasks/{queued}").json()["output"]
    assert (output["task_status"], "end_time" in output) == ("CANCELED", True)
    refused = c.post(f"/tasks/{running}/cancel")
    assert (refused.status_code, refused.json()["code"]) == (400, "UnsupportedOperation")
    assert c.post("/tasks/no-such-task/cancel").status_code == 400
    assert emu.stats()["tasks"]["CANCELED"] == 1


def test_retention_turns_tasks_unknown_and_results_404(http, images):
    emu, c = http(retention_seconds=0.4, result_url_seconds=60)
    done = wait(c, submit(c, images.url("/square.jpg"), x_scale=2.0).json()["output"]["task_id"])
    url = done["output"]["output_image_url"]
    time.sleep(0.45)
    answer = c.get(f"/tasks/{done['output']['task_id']}")
    assert answer.status_code == 200
    assert answer.json()["output"] == {"task_id": done["output"]["task_id"], "task_status": "UNKNOWN"}
    result = httpx.get(url, trust_env=False)
    assert result.status_code == 404
    assert "<Code>NoSuchKey</Code>" in result.text
    assert emu.stats()["tasks_expired"] == 1


def test_result_url_expires_and_signature_is_checked(http, images):
    emu, c = http(result_url_seconds=1)
    done = wait(c, submit(c, images.url("/square.jpg"), x_scale=2.0).json()["output"]["task_id"])
    url = done["output"]["output_image_url"]
    assert url.startswith(emu.origin + "/results/")
    assert httpx.get(url, trust_env=False).status_code == 200
    tampered = httpx.get(url[:-3] + "AAA", trust_env=False)
    assert (tampered.status_code, "SignatureDoesNotMatch" in tampered.text) == (403, True)
    assert httpx.get(url.split("?")[0], trust_env=False).status_code == 403
    time.sleep(1.1)
    expired = httpx.get(url, trust_env=False)
    assert expired.status_code == 403
    assert expired.headers["content-type"].startswith("application/xml")
    assert "<Code>AccessDenied</Code>" in expired.text
    assert "expired" in expired.text
    # The task itself is still retained and still reports the (now useless) URL.
    assert c.get(f"/tasks/{done['output']['task_id']}").json()["output"]["output_image_url"] == url
    stats = emu.stats()
    assert (stats["result_downloads"], stats["result_downloads_refused"]) == (1, 3)


def test_sdk_wait_reaches_the_end(emulator, images):
    kwargs = {"api_key": KEY, "base_address": emulator.base_url}
    task = BaseAsyncApi.async_call(
        model="image-out-painting",
        input={"image_url": images.url("/square.jpg")},
        task_group="aigc",
        task="image2image",
        function="out-painting",
        output_ratio="16:9",
        **kwargs,
    )
    answer = BaseAsyncApi.wait(task, **kwargs)
    assert answer.output["task_status"] == "SUCCEEDED"
    assert answer.usage["image_count"] == 1


def run_batch(emu: DashScopeEmulator, url: str) -> tuple[list, list]:
    headers = {"Authorization": f"Bearer {KEY}", "X-DashScope-Async": "enable"}
    with httpx.Client(base_url=emu.base_url, headers=headers, trust_env=False) as c:
        ids = [submit(c, url, angle=17, output_ratio="4:3").json()["output"]["task_id"] for _ in range(4)]
        outputs = [wait(c, task_id)["output"] for task_id in ids]
    draws = httpx.get(emu.origin + "/_emulator/tasks", trust_env=False).json()["tasks"]
    blobs = [
        httpx.get(o["output_image_url"], trust_env=False).content for o in outputs if "output_image_url" in o
    ]
    return [(d["seconds"], d["fails"]) for d in draws], blobs


def test_same_seed_same_draws_and_bytes(images):
    url = images.url("/square.jpg")
    knobs = {**FAST, "task_seconds": "0.05-0.15", "fail_rate": 0.5, "seed": 42}
    with DashScopeEmulator(**knobs) as one, DashScopeEmulator(**knobs) as two:
        draws_one, blobs_one = run_batch(one, url)
        draws_two, blobs_two = run_batch(two, url)
        one.reset()
        assert run_batch(one, url)[0] == draws_one  # reset restarts the sequence
    assert draws_one == draws_two
    assert {fails for _, fails in draws_one} == {True, False}
    assert blobs_one == blobs_two
    assert blobs_one
    assert len(set(blobs_one)) == 1  # same input, same parameters: byte-identical output
    with DashScopeEmulator(**{**knobs, "seed": 43}) as other:
        assert run_batch(other, url)[0] != draws_one


def test_logs_never_contain_the_api_key(http, images, caplog):
    caplog.set_level(logging.INFO, logger="outpaint.local.dashscope")
    _, c = http()
    wait(c, submit(c, images.url("/square.jpg"), x_scale=2.0).json()["output"]["task_id"])
    c.get("/tasks/x", headers={"Authorization": "Bearer sk-leaked-wrong-key"})
    assert "POST /api/v1/services/aigc/image2image/out-painting -> 200" in caplog.text
    assert "RUNNING -> SUCCEEDED" in caplog.text
    assert KEY not in caplog.text
    assert "sk-leaked" not in caplog.text


def test_command_line_serves_and_documents_choices():
    command = [sys.executable, "-m", "outpaint.local.dashscope"]
    help_text = subprocess.run([*command, "--help"], capture_output=True, text=True, check=True).stdout
    for flag in ("--over-concurrency", "--throttle-rate", "--result-url-seconds", "--max-download-bytes"):
        assert flag in help_text
    assert "Throttling.AllocationQuota" in help_text
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = ["--port", str(port), "--api-key", KEY, "--task-seconds", "0.1-0.2", "--seed", "1", "--qps", "5"]
    process = subprocess.Popen([*command, *args], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                stats = httpx.get(f"http://127.0.0.1:{port}/_emulator/stats", trust_env=False).json()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                assert process.poll() is None
                time.sleep(0.05)
        assert stats["seed"] == 1
        config = httpx.get(f"http://127.0.0.1:{port}/_emulator/config", trust_env=False).json()
        assert (config["qps"], config["task_seconds"], config["api_keys"]) == (5.0, [0.1, 0.2], 1)
    finally:
        process.terminate()
        process.wait(10)
    assert KEY not in process.stderr.read()


def test_bodies_carry_task_metrics_and_refusals_the_real_texts(http, images):
    _emu, c = http(concurrency=1, task_seconds=0.3)
    url = images.url("/square.jpg")
    first = submit(c, url, x_scale=2.0).json()["output"]["task_id"]
    second = submit(c, url, x_scale=2.0).json()["output"]["task_id"]
    pending = c.get(f"/tasks/{second}").json()["output"]
    assert (pending["task_status"], pending["task_metrics"]) == (
        "PENDING",
        {"TOTAL": 1, "SUCCEEDED": 0, "FAILED": 0},
    )
    done = wait(c, first)["output"]
    assert done["task_metrics"] == {"TOTAL": 1, "SUCCEEDED": 1, "FAILED": 0}
    refused = c.post(f"/tasks/{first}/cancel").json()
    assert (refused["code"], refused["message"]) == (
        "UnsupportedOperation",
        "please confirm if the task is in PENDING status",
    )
    wrong = c.post(
        "/services/aigc/image2image/out-painting",
        json={"model": "image-out-painting-v0", "input": {"image_url": url}},
        headers={"X-DashScope-Async": "enable"},
    )
    assert (wrong.status_code, wrong.json()["code"], wrong.json()["message"]) == (
        400,
        "InvalidParameter",
        "Model not exist.",
    )


def test_result_urls_have_the_real_services_oss_signed_form(http, images):
    emu, c = http(result_origin="http://localhost:1")
    done = wait(c, submit(c, images.url("/square.jpg"), x_scale=2.0).json()["output"]["task_id"])
    url = httpx.URL(done["output"]["output_image_url"])
    assert (url.scheme, url.host, url.port) == ("http", "localhost", 1)
    assert set(url.params) == {"Expires", "OSSAccessKeyId", "Signature"}
    served = httpx.URL(emu.origin).copy_with(path=url.path, query=url.query)
    assert httpx.get(served, trust_env=False).status_code == 200
    foreign = served.copy_set_param("OSSAccessKeyId", "LTAI-someone-else")
    answer = httpx.get(foreign, trust_env=False)
    assert (answer.status_code, "<Code>InvalidAccessKeyId</Code>" in answer.text) == (403, True)
