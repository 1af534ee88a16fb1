"""Quota and fault injection: 429s exactly when a limit is exceeded, injected failures on demand."""

# Fixtures come in by import (no conftest.py here), so pytest sees them and ruff must not flag them.
# ruff: noqa: F401, F811
from __future__ import annotations

import time

import httpx
import pytest
from dashscope_fixtures import (
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


def codes(responses) -> list:
    return [r.json().get("code", r.status_code) if r.status_code != 200 else 200 for r in responses]


def test_submit_qps_is_a_token_bucket(http, images):
    emu, c = http(qps=2.0)
    url = images.url("/square.jpg")
    first = [submit(c, url, x_scale=2.0) for _ in range(3)]
    assert codes(first) == [200, 200, "Throttling.RateQuota"]
    assert first[2].status_code == 429
    time.sleep(0.55)  # one token back after 1/qps seconds
    assert codes([submit(c, url, x_scale=2.0) for _ in range(2)]) == [200, "Throttling.RateQuota"]
    stats = emu.stats()
    assert (stats["submits_accepted"], stats["submits_throttled"]) == (3, 2)


def test_invalid_submits_still_spend_tokens(http, images):
    _, c = http(qps=1.0)
    assert submit(c, images.url("/square.jpg"), angle=999).status_code == 400
    assert codes([submit(c, images.url("/square.jpg"))]) == ["Throttling.RateQuota"]


def test_query_qps(http):
    emu, c = http(query_qps=3.0)
    responses = [c.get("/tasks/nope") for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert responses[3].json()["code"] == "Throttling.RateQuota"
    assert responses[0].json()["output"] == {"task_id": "nope", "task_status": "UNKNOWN"}
    stats = emu.stats()
    assert (stats["queries"], stats["queries_throttled"]) == (3, 1)


def test_over_concurrency_queue_keeps_tasks_pending(http, images):
    emu, c = http(concurrency=2, task_seconds=0.3)
    ids = [submit(c, images.url("/square.jpg"), x_scale=2.0).json()["output"]["task_id"] for _ in range(5)]
    stats = emu.stats()
    assert (stats["running"], stats["tasks"]["PENDING"]) == (2, 3)
    assert c.get(f"/tasks/{ids[4]}").json()["output"]["task_status"] == "PENDING"
    assert all(wait(c, task_id)["output"]["task_status"] == "SUCCEEDED" for task_id in ids)
    assert emu.stats()["peak_running"] == 2


def test_over_concurrency_reject_answers_429(http, images):
    emu, c = http(concurrency=1, over_concurrency="reject", task_seconds=0.2)
    url = images.url("/square.jpg")
    first = submit(c, url, x_scale=2.0)
    refused = submit(c, url, x_scale=2.0)
    assert refused.status_code == 429
    assert refused.json()["code"] == "Throttling.AllocationQuota"
    wait(c, first.json()["output"]["task_id"])
    assert submit(c, url, x_scale=2.0).status_code == 200
    assert emu.stats()["submits_throttled"] == 1


def test_raising_concurrency_live_starts_waiting_tasks(http, images):
    emu, c = http(concurrency=1, task_seconds=5)
    for _ in range(3):
        submit(c, images.url("/square.jpg"), x_scale=2.0)
    assert emu.stats()["running"] == 1
    response = httpx.post(emu.origin + "/_emulator/config", json={"concurrency": 3}, trust_env=False)
    assert response.json()["concurrency"] == 3
    assert emu.stats()["running"] == 3


def test_bad_live_config_is_refused(emulator):
    for bad in ({"fail_rate": 2}, {"nope": 1}, {"task_seconds": "9-1"}, {"over_concurrency": "drop"}):
        response = httpx.post(emulator.origin + "/_emulator/config", json=bad, trust_env=False)
        assert response.status_code == 400, bad
    with pytest.raises(ValueError, match="concurrency"):
        emulator.configure(concurrency=0)


def test_throttle_rate_injects_429(http, images):
    emu, c = http(throttle_rate=1.0)
    response = submit(c, images.url("/square.jpg"), x_scale=2.0)
    assert (response.status_code, response.json()["code"]) == (429, "Throttling")
    assert c.get("/tasks/x").status_code == 429
    assert submit(c, images.url("/square.jpg"), angle=999).status_code == 400  # only valid calls
    stats = emu.stats()
    assert (stats["submits_throttled"], stats["queries_throttled"], stats["submits_accepted"]) == (1, 1, 0)


def test_error_rate_injects_500_or_503(http, images):
    emu, c = http(error_rate=1.0)
    seen = set()
    for _ in range(12):
        response = submit(c, images.url("/square.jpg"), x_scale=2.0)
        seen.add((response.status_code, response.json()["code"]))
    assert seen == {(500, "InternalError"), (503, "ModelUnavailable")}
    assert emu.stats()["injected_errors"] == 12


def test_partial_throttle_rate_is_seeded(http, images):
    outcomes = []
    for _ in range(2):
        _, c = http(throttle_rate=0.5, seed=3)
        outcomes.append([c.get("/tasks/x").status_code for _ in range(20)])
    assert outcomes[0] == outcomes[1]
    assert set(outcomes[0]) == {200, 429}


def test_latency_delays_answers(http):
    _, c = http(latency="0.2-0.25")
    started = time.perf_counter()
    c.get("/tasks/x")
    assert 0.2 <= time.perf_counter() - started < 1.0


def test_operator_reset_clears_everything(http, images):
    emu, c = http()
    task_id = submit(c, images.url("/square.jpg"), x_scale=2.0).json()["output"]["task_id"]
    stats = httpx.post(emu.origin + "/_emulator/reset", trust_env=False).json()
    assert stats["submits_accepted"] == 0
    assert sum(stats["tasks"].values()) == 0
    assert c.get(f"/tasks/{task_id}").json()["output"]["task_status"] == "UNKNOWN"
    assert httpx.get(emu.origin + "/_emulator/config", trust_env=False).json()["api_keys"] == 1
