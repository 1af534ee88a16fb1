"""The naive approach, as peers build it: one function does everything for one upload.

On each OSS event: sign a GET URL for the object, submit the task at once, wait for it in-process
with the official SDK's ``wait()`` cadence, download the result and write it next to the input. Any
error (a 429 on submit included) is raised, so FC's asynchronous retry policy re-runs the whole
invocation; there is no admission control and no shared state. Plain httpx stands in for the SDK:
the wire calls and the polling cadence are the SDK's, the import cost is not.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from urllib.parse import unquote

import httpx
import oss2

SUBMIT_PATH = "/services/aigc/image2image/out-painting"
FINAL_STATUSES = ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN")
REPEATABLE_STATUSES = (503, 504)  # the only statuses the SDK's wait() polls through


class NaiveError(RuntimeError):
    """A call answered with an error: the invocation fails and FC retries it."""


def sdk_wait_intervals() -> Iterator[float]:
    """The SDK's ``BaseAsyncApi.wait`` sleeps: 1 s, doubled after every third poll, capped at 5 s
    (1, 1, 2, 2, 2, 4, 4, 4, 5, 5, …)."""
    wait, step = 1.0, 0
    while True:
        step += 1
        if step % 3 == 0:
            wait = min(wait * 2, 5.0)
        yield wait


class NaiveHandler:
    """``handler(event)``: the whole job for the uploads in one OSS event, raising on any error."""

    def __init__(
        self,
        bucket: oss2.Bucket,
        base_url: str,
        api_key: str,
        parameters: dict[str, object],
        *,
        input_prefix: str = "inbox/",
        output_prefix: str = "outpainted/",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.bucket = bucket
        self.parameters = parameters
        self.input_prefix, self.output_prefix = input_prefix, output_prefix
        self.sleep = sleep
        self.http = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=120.0
        )

    def close(self) -> None:
        self.http.close()

    def __call__(self, event: bytes) -> None:
        for record in json.loads(event)["events"]:
            key = unquote(record["oss"]["object"]["key"])
            output_url = self.wait(self.submit(self.bucket.sign_url("GET", key, 3600)))
            result = self.http.get(output_url)
            if result.status_code != 200:
                raise NaiveError(f"result download answered HTTP {result.status_code}")
            self.bucket.put_object(self.output_key(key), result.content)

    def output_key(self, key: str) -> str:
        """Where the result of ``key`` goes (the same naming as the pipeline's)."""
        return self.output_prefix + key[len(self.input_prefix) :]

    def submit(self, image_url: str) -> str:
        """POST the task (``X-DashScope-Async: enable``); the task id, or NaiveError."""
        body = {
            "model": "image-out-painting",
            "input": {"image_url": image_url},
            "parameters": self.parameters,
        }
        response = self.http.post(SUBMIT_PATH, json=body, headers={"X-DashScope-Async": "enable"})
        data = response.json()
        if response.status_code != 200:
            raise NaiveError(f"submit answered HTTP {response.status_code} {data.get('code')}")
        return str(data["output"]["task_id"])

    def wait(self, task_id: str) -> str:
        """Poll the task like the SDK's ``wait()`` and return its result URL, or raise NaiveError."""
        intervals = sdk_wait_intervals()
        while True:
            response = self.http.get(f"/tasks/{task_id}")
            if response.status_code not in REPEATABLE_STATUSES:
                if response.status_code != 200:
                    raise NaiveError(f"query answered HTTP {response.status_code}")
                output = response.json()["output"]
                if output["task_status"] == "SUCCEEDED":
                    return str(output["output_image_url"])
                if output["task_status"] in FINAL_STATUSES:
                    raise NaiveError(f"task ended {output['task_status']} {output.get('code')}")
            self.sleep(next(intervals))
