"""The pipeline end to end on loopback: real oss2 against the OSS emulator, real httpx against the
DashScope emulator, the real handlers' entry points."""

from __future__ import annotations

import io
import json
import logging
import threading
from urllib.parse import unquote

import pytest
from PIL import Image

from outpaint.job import State
from outpaint.store import JobStore
from tests.support.images import photo, size_of
from tests.support.stack import running_stack


@pytest.fixture
def stack(tmp_path):
    with running_stack(tmp_path) as stack:
        yield stack


def records(stack, **overrides):
    pipeline = stack.pipeline(**overrides)
    store: JobStore = pipeline.store
    return [store.load(job_id) for job_id in store.all_job_ids()]


def output_of(stack, key):
    result = stack.bucket().get_object(key)
    return result.read(), {k.lower(): v for k, v in result.headers.items()}


def test_ratio_upload_becomes_a_16_9_output_with_provenance(stack):
    source = photo(1000, 800)
    event = stack.upload("inbox/shoes/red.jpg", source, ratio="16:9")

    result = stack.on_upload(event)

    assert result["outcomes"][0]["action"] == "created"
    assert result["poller"]["done"] == 1
    [job] = records(stack)
    assert job.state is State.DONE
    assert job.output_key == "outpainted/shoes/red.jpg"
    data, headers = output_of(stack, job.output_key)
    width, height = size_of(data)
    assert abs(width / height - 16 / 9) * height <= 1
    assert (width, height) == (1423, 800)
    # The original sits unchanged (up to JPEG noise) in the middle of the canvas.
    with Image.open(io.BytesIO(data)) as out, Image.open(io.BytesIO(source)) as src:
        left = (width - 1000) // 2
        crop = out.convert("L").crop((left + 50, 50, left + 950, 750))
        original = src.convert("L").crop((50, 50, 950, 750))
        diff = sum(abs(a - b) for a, b in zip(crop.tobytes(), original.tobytes(), strict=True)) / (900 * 700)
    assert diff < 6
    assert headers["x-oss-meta-outpaint-job-id"] == job.job_id
    assert unquote(headers["x-oss-meta-outpaint-source"]) == "inbox/shoes/red.jpg"
    assert headers["x-oss-meta-outpaint-source-etag"] == job.source_etag
    assert headers["x-oss-meta-outpaint-task-id"] == job.tasks[-1].task_id
    assert headers["x-oss-meta-outpaint-generated-by"].startswith("outpaint/")
    assert "Signature" not in json.dumps(job.model_dump(mode="json"))


def test_multi_variant_upload_yields_each_variant_and_exact_size(stack):
    event = stack.upload("inbox/banner.png", photo(900, 900, fmt="PNG"), ratio="16:9,4:5", size="1200x628")

    result = stack.on_upload(event)

    jobs = {job.variant_name: job for job in records(stack)}
    assert result["poller"]["done"] == 3
    assert set(jobs) == {"16x9", "4x5", "1200x628"}
    assert all(job.state is State.DONE for job in jobs.values())
    # The emulator answers an opaque PNG with a JPEG: the extension follows the result's real format.
    assert {job.output_key for job in jobs.values()} == {
        "outpainted/banner.16x9.jpg",
        "outpainted/banner.4x5.jpg",
        "outpainted/banner.1200x628.jpg",
    }
    assert size_of(output_of(stack, "outpainted/banner.1200x628.jpg")[0]) == (1200, 628)
    assert size_of(output_of(stack, "outpainted/banner.16x9.jpg")[0]) == (1600, 900)
    assert size_of(output_of(stack, "outpainted/banner.4x5.jpg")[0]) == (900, 1125)


def test_same_event_five_times_sequential_and_concurrent_makes_one_task(stack):
    event = stack.upload("inbox/dup.jpg", photo(800, 800), ratio="4:3")
    for _ in range(2):
        stack.on_upload(event, upload_polls=False)
    threads = [threading.Thread(target=stack.on_upload, args=(event,)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stack.on_tick()

    stats = stack.dashscope.stats()
    assert stats["submits_accepted"] == 1
    [job] = records(stack)
    assert job.state is State.DONE
    keys = [o.key for o in __import__("oss2").ObjectIteratorV2(stack.bucket(), prefix="outpainted/")]
    assert keys == ["outpainted/dup.jpg"]


def test_refusals_become_rejected_records_with_reasons(stack):
    stack.on_upload(stack.upload("inbox/small.jpg", photo(300, 300), ratio="16:9"))
    stack.on_upload(stack.upload("inbox/text.jpg", b"not an image at all", ratio="16:9"))
    stack.on_upload(stack.upload("inbox/banana.jpg", photo(800, 800), ratio="banana"))

    by_key = {job.source_key: job for job in records(stack)}
    assert {job.state for job in by_key.values()} == {State.REJECTED}
    assert by_key["inbox/small.jpg"].error_code == "plan.image_too_small"
    assert by_key["inbox/text.jpg"].error_code == "source.not_an_image"
    assert by_key["inbox/banana.jpg"].error_code == "plan.bad_ratio"
    assert stack.dashscope.stats()["submits_accepted"] == 0


def test_failing_task_is_retried_then_failed_with_the_provider_code(tmp_path):
    with running_stack(tmp_path, fail_rate=1.0) as stack:
        stack.on_upload(stack.upload("inbox/a.jpg", photo(), ratio="1:1"), max_attempts=2)
        [job] = records(stack)
        assert job.state is State.FAILED
        assert job.error_code == "InternalError.Algo"
        assert job.attempts == 2
        assert [t.code for t in job.tasks] == ["InternalError.Algo", "InternalError.Algo"]
        assert stack.dashscope.stats()["submits_accepted"] == 2


def test_a_result_lost_after_success_is_expired_not_bought_again(tmp_path):
    with running_stack(tmp_path, result_url_seconds=0.01) as stack:
        stack.on_upload(stack.upload("inbox/a.jpg", photo(), ratio="1:1"), max_attempts=3)
        [job] = records(stack)
        accepted = stack.dashscope.stats()["submits_accepted"]
    assert job.state is State.EXPIRED
    assert job.error_code == "result.lost"
    assert "outpaint retry" in job.error_message
    assert (job.attempts, accepted) == (1, 1)


def test_result_on_a_foreign_origin_is_refused(stack):
    event = stack.upload("inbox/a.jpg", photo(), ratio="1:1")
    stack.on_upload(event, allowed_result_hosts=["https://*.aliyuncs.com"])
    [job] = records(stack)
    assert job.state is State.FAILED
    assert job.error_code == "result.refused"
    assert stack.dashscope.stats()["result_downloads"] == 0


def test_burst_under_tight_quota_loses_nothing_and_never_exceeds_concurrency(tmp_path):
    with running_stack(tmp_path, concurrency=2, qps=2.0, task_seconds=(0.3, 0.3)) as stack:
        events = [stack.upload(f"inbox/burst/{i:02d}.jpg", photo(600, 600), ratio="16:9") for i in range(20)]
        threads = [
            threading.Thread(target=stack.on_upload, args=(e,), kwargs={"max_concurrent_tasks": 2})
            for e in events
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for _ in range(3):
            stack.on_tick(timeout=60, max_concurrent_tasks=2)
        jobs = records(stack)
        stats = stack.dashscope.stats()
        assert len(jobs) == 20
        assert {job.state for job in jobs} == {State.DONE}
        assert stats["peak_running"] <= 2
        assert stats["submits_accepted"] == 20
        assert stats["submits_throttled"] <= 2


class _Lines(logging.Handler):
    """The INFO+ events of the `outpaint` logger itself (not the emulators' child loggers)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.events: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "outpaint":
            self.events.append(record.getMessage())


def test_log_volume(stack):
    """One INFO line per job state reached, one per idle run: the numbers docs/operations.md gives."""
    uploads = [stack.upload(f"inbox/log/{i}.jpg", photo(700, 600), ratio="16:9") for i in range(7)]
    lines = _Lines()
    logging.getLogger("outpaint").addHandler(lines)
    try:
        for event in uploads:
            stack.on_upload(event, upload_polls=False, log_level="INFO")
        for _ in range(20):
            report = stack.on_tick(timeout=15, log_level="INFO")
            if not report["in_flight"] and not report["queued"]:
                break
        busy, lines.events = lines.events, []
        for _ in range(5):
            stack.on_tick(timeout=5, log_level="INFO")
        idle = lines.events
    finally:
        logging.getLogger("outpaint").removeHandler(lines)
    per_state = {name: busy.count(name) for name in ("job.created", "job.submitted", "job.done")}
    assert per_state == {"job.created": 7, "job.submitted": 7, "job.done": 7}
    assert len(busy) - 21 == busy.count("poller.finished")  # nothing else: no query or step lines
    assert idle == ["poller.finished"] * 5
