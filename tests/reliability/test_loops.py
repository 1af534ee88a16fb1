"""A trigger misconfigured to the whole bucket must not make the pipeline feed on its own writes."""

from __future__ import annotations

import threading

import oss2

from outpaint.job import State
from tests.support.images import photo
from tests.support.stack import running_stack


def test_whole_bucket_trigger_creates_no_job_from_outputs_or_state(tmp_path):
    with running_stack(tmp_path, task_seconds=(0.1, 0.1)) as stack:
        every_event: list[bytes] = []
        lock = threading.Lock()

        def record(event: bytes) -> None:
            with lock:
                every_event.append(event)

        stack.oss.subscribe(record, events=["oss:ObjectCreated:*"], prefix="")
        stack.on_upload(stack.upload("inbox/loop.jpg", photo(), ratio="16:9"))
        # Deliver everything the bucket emitted (outputs, job records, markers, lease) until quiet.
        delivered = 0
        while True:
            stack.oss.drain_notifications(2.0)
            with lock:
                pending = every_event[delivered:]
            if not pending:
                break
            for event in pending:
                stack.on_upload(event)
            delivered += len(pending)
        # A user copying an output back into the inbox keeps its provenance: ignored, not looped.
        stack.bucket().copy_object(stack.bucket().bucket_name, "outpainted/loop.jpg", "inbox/copied-back.jpg")
        stack.oss.drain_notifications(2.0)
        result = stack.on_upload(stack.events[-1])

        store = stack.pipeline().store
        jobs = [store.load(job_id) for job_id in store.all_job_ids()]
        keys = [o.key for o in oss2.ObjectIteratorV2(stack.bucket(), prefix="outpainted/")]
        accepted = stack.dashscope.stats()["submits_accepted"]
    assert delivered > 5
    assert [job.source_key for job in jobs] == ["inbox/loop.jpg"]
    assert [job.state for job in jobs] == [State.DONE]
    assert keys == ["outpainted/loop.jpg"]
    assert accepted == 1
    assert result["outcomes"][0]["reason"] == "own_output"
