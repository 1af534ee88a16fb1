"""The burst benchmark, tiny: sound invariants only (no timing), so ``make bench`` cannot rot unseen."""

from __future__ import annotations

import pytest

from tests.bench.burst import BurstConfig, run_burst

pytestmark = pytest.mark.slow
N = 6


@pytest.fixture(scope="module")
def sides(tmp_path_factory):
    config = BurstConfig(n=N, task_seconds=0.3, qps=2.0, concurrency=5, tick_every=60.0)
    return run_burst(config, tmp_path_factory.mktemp("bench"))


def test_ours_loses_nothing_and_submits_each_job_once(sides):
    ours = sides["ours"]
    assert not ours.timed_out
    assert (ours.jobs, ours.done, ours.lost) == (N, N, 0)
    assert ours.stats["submits_accepted"] == N
    assert ours.stats["tasks"]["SUCCEEDED"] == N
    assert ours.detail["failed_deliveries"] == 0
    assert sum(poller["done"] for poller in ours.detail["pollers"]) == N


def test_naive_counters_are_consistent(sides):
    naive = sides["naive"]
    stats = naive.stats
    assert not naive.timed_out
    assert naive.done + naive.lost == naive.jobs == N
    # Every naive attempt submits exactly once, accepted or refused.
    attempts = stats["submits_accepted"] + stats["submits_throttled"] + stats["submits_rejected"]
    assert naive.detail["attempts"] == attempts
    # One output written per delivered job, and each came from a task that succeeded.
    assert naive.done <= stats["tasks"]["SUCCEEDED"] <= stats["submits_accepted"]
    assert stats["result_downloads"] >= naive.done
    assert naive.detail["over_concurrency"] in ("queue", "reject")
