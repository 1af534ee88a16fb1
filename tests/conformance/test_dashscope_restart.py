"""A restarted emulator on the same data dir still knows its tasks and results; forgetting is a fault."""

# Fixtures come in by import (no conftest.py here), so pytest sees them and ruff must not flag them.
# ruff: noqa: F401, F811
from __future__ import annotations

import httpx
from dashscope.client.base_api import BaseAsyncApi
from dashscope_fixtures import FAST, KEY, images, submit, wait

from outpaint.local.dashscope import DashScopeEmulator


def sdk(emu: DashScopeEmulator) -> dict[str, str]:
    return {"api_key": KEY, "base_address": emu.base_url}


def raw(emu: DashScopeEmulator) -> httpx.Client:
    headers = {"Authorization": f"Bearer {KEY}", "X-DashScope-Async": "enable"}
    return httpx.Client(base_url=emu.base_url, headers=headers, trust_env=False, timeout=10)


def test_a_restart_on_the_same_data_dir_is_invisible_to_the_client(tmp_path, images):
    url = images.url("/square.jpg")
    with DashScopeEmulator(**{**FAST, "concurrency": 1, "task_seconds": 0.8}, data_dir=tmp_path) as first:
        with raw(first) as c:
            done, running, pending = (
                submit(c, url, output_ratio="16:9").json()["output"]["task_id"] for _ in range(3)
            )
            finished = wait(c, done)["output"]
            assert c.get(f"/tasks/{running}").json()["output"]["task_status"] == "RUNNING"
            assert c.get(f"/tasks/{pending}").json()["output"]["task_status"] == "PENDING"
        before = httpx.get(finished["output_image_url"], trust_env=False).content

    with DashScopeEmulator(**{**FAST, "concurrency": 1}, data_dir=tmp_path) as second:
        again = BaseAsyncApi.fetch(done, **sdk(second))
        assert again.status_code == 200
        assert again.output["task_status"] == "SUCCEEDED"
        assert again.output["end_time"] == finished["end_time"]
        # The URL signed before the restart is still genuine (the signing key is kept too).
        old_url = finished["output_image_url"].replace(first.origin, second.origin)
        assert httpx.get(old_url, trust_env=False).content == before
        for task_id in (running, pending):
            answer = BaseAsyncApi.wait(task_id, **sdk(second))
            assert answer.output["task_status"] == "SUCCEEDED", answer
            assert answer.output["task_id"] == task_id
        assert second.stats()["submits_accepted"] == 0  # nothing was submitted again
        assert second.stats()["tasks"]["SUCCEEDED"] == 3


def test_forgetting_every_task_is_an_explicit_fault_that_outlives_a_restart(tmp_path, images):
    with DashScopeEmulator(**FAST, data_dir=tmp_path) as first, raw(first) as c:
        task_id = submit(c, images.url("/square.jpg")).json()["output"]["task_id"]
        assert wait(c, task_id)["output"]["task_status"] == "SUCCEEDED"
        forgotten = httpx.post(first.origin + "/_emulator/forget", trust_env=False)
        assert forgotten.status_code == 200
        assert forgotten.json()["tasks"]["SUCCEEDED"] == 0
        assert BaseAsyncApi.fetch(task_id, **sdk(first)).output["task_status"] == "UNKNOWN"

    with DashScopeEmulator(**FAST, data_dir=tmp_path) as second:
        assert BaseAsyncApi.fetch(task_id, **sdk(second)).output["task_status"] == "UNKNOWN"
        assert list((tmp_path / "tasks").iterdir()) == list((tmp_path / "results").iterdir()) == []


def test_without_a_data_dir_a_restart_forgets_as_before(images):
    with DashScopeEmulator(**FAST) as first, raw(first) as c:
        task_id = submit(c, images.url("/square.jpg")).json()["output"]["task_id"]
        assert wait(c, task_id)["output"]["task_status"] == "SUCCEEDED"
    with DashScopeEmulator(**FAST) as second:
        assert BaseAsyncApi.fetch(task_id, **sdk(second)).output["task_status"] == "UNKNOWN"
