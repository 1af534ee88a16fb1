"""Memory: peak RSS of fresh processes running each function on 4096×4096, ~10 MB images.

1. on_upload, intake only (``upload_polls`` off): HEAD + probe of a ~9.6 MB noisy JPEG.
2. on_tick: submits a queued job whose result is a ~9.7 MB JPEG, follows it and writes the result.
3. on_upload as deployed (``upload_polls`` on): intake, then it takes the lease, submits both queued
   jobs, follows them and writes both results.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PIL import Image

from outpaint.app import handle_upload
from outpaint.config import load_settings
from tests.bench.cold import child_env, spawn
from tests.bench.common import TIMER_EVENT, invocation, progress, settings_values
from tests.support.stack import running_stack

SIDE = 4096
FC_MINIMUM_MIB = 128
TASK_SECONDS = 1.0  # the tasks' duration does not change what the functions hold in memory
# Noise strength and JPEG quality chosen so the input is ~9.6 MB (probe) or the out-painted output is
# ~9.7 MB (output_ratio 4:3, limit_image_size off: the emulator re-encodes at quality 90).
PROBE_NOISE, RESULT_NOISE, QUALITY = 40, 32, 85


def noisy_jpeg(side: int, sigma: float, quality: int) -> bytes:
    """A square RGB JPEG of Gaussian noise: large and incompressible, like a detailed photo."""
    noise = Image.effect_noise((side, side), sigma)
    image = Image.merge(
        "RGB",
        (noise, noise.transpose(Image.Transpose.ROTATE_90), noise.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
    )
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def run_memory(workdir: Path, *, qps: float, concurrency: int) -> dict[str, dict[str, Any]]:
    """The three children; each figure is the child's peak RSS against FC's 128 MB minimum."""
    probe_image = noisy_jpeg(SIDE, PROBE_NOISE, QUALITY)
    result_image = noisy_jpeg(SIDE, RESULT_NOISE, QUALITY)
    big_result = {"ratio": "4:3", "limit_size": "false"}
    knobs = {"qps": qps, "concurrency": concurrency, "task_seconds": (TASK_SECONDS, TASK_SECONDS)}
    with running_stack(workdir / "memory", **knobs) as stack:
        values = settings_values(stack, qps=qps, concurrency=concurrency)
        bucket = stack.bucket()
        results: dict[str, dict[str, Any]] = {}

        event = stack.upload("inbox/memory/result.jpg", result_image, **big_result)
        handle_upload(event, invocation("on-upload"), load_settings(**values, upload_polls=False))
        progress("memory: on_tick writing a ~10 MB result")
        run = spawn(["invoke", "on_tick"], child_env(values, "on-tick"), TIMER_EVENT)
        results["on_tick: follow task, write result"] = {
            "peak_rss_mib": run.peak_rss_mib,
            "input_bytes": len(result_image),
            "output_bytes": bucket.head_object("outpainted/memory/result.jpg").content_length,
            "done": run.report["result"]["done"],
        }

        event = stack.upload("inbox/memory/probe.jpg", probe_image, ratio="4:3")
        progress("memory: on_upload probing a ~10 MB image (intake only)")
        run = spawn(["invoke", "on_upload"], child_env({**values, "upload_polls": False}, "on-upload"), event)
        results["on_upload: intake only (probe)"] = {
            "peak_rss_mib": run.peak_rss_mib,
            "input_bytes": len(probe_image),
            "outcome": run.report["result"]["outcomes"][0]["action"],
        }

        event = stack.upload("inbox/memory/deployed.jpg", result_image, **big_result)
        progress("memory: on_upload as deployed (intake, then poller: two results, one ~10 MB)")
        run = spawn(["invoke", "on_upload"], child_env(values, "on-upload"), event)
        results["on_upload as deployed (+ poller)"] = {
            "peak_rss_mib": run.peak_rss_mib,
            "input_bytes": len(result_image),
            "output_bytes": bucket.head_object("outpainted/memory/deployed.jpg").content_length,
            "done": run.report["result"]["poller"]["done"],
        }
    for figures in results.values():
        figures["fits_128_mib"] = figures["peak_rss_mib"] <= FC_MINIMUM_MIB
    return results
