"""Output geometry (pure arithmetic): the contract the pipeline's planner reproduces independently."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .validation import OFFSETS, OutPaintParams
from .wire import INVALID_PARAMETER, TaskFailure

MIN_SIDE = 512
MAX_SIDE = 4096
MAX_ASPECT = 4.0  # limit_image_size keeps the output within 1:4 … 4:1


@dataclass(frozen=True)
class Canvas:
    """The output size and where the (rotated) original sits on it."""

    width: int
    height: int
    left: int
    top: int


def plan_canvas(width: int, height: int, params: OutPaintParams) -> Canvas:
    """Apply the winning expansion mode to a ``width``×``height`` image (already rotated, see imaging)."""
    mode = params.mode
    if mode == "ratio":
        a, b = (int(part) for part in params.output_ratio.split(":"))
        if width * b >= height * a:
            out_w, out_h = width, -(-width * b // a)  # ceil(w*b/a), exactly
        else:
            out_w, out_h = -(-height * a // b), height
    elif mode == "scale":
        out_w = math.floor(width * params.x_scale + 0.5)
        out_h = math.floor(height * params.y_scale + 0.5)
    elif mode == "offsets":
        return Canvas(
            width + params.left_offset + params.right_offset,
            height + params.top_offset + params.bottom_offset,
            params.left_offset,
            params.top_offset,
        )
    else:
        out_w, out_h = width, height
    return Canvas(out_w, out_h, (out_w - width) // 2, (out_h - height) // 2)


def check_input_size(width: int, height: int) -> None:
    """Each input side must be within [512, 4096] px (reference §3)."""
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise _param_failure(
            f"input image resolution must be within {MIN_SIDE}–{MAX_SIDE} px per side, got {width}×{height}"
        )


def check_offsets(width: int, height: int, params: OutPaintParams) -> None:
    """Offsets (when they win) must sum to less than 3× the rotated image's side."""
    if params.mode != "offsets":
        return
    top, bottom, left, right = (getattr(params, name) for name in OFFSETS)
    for names, total, side in (
        ("left_offset + right_offset", left + right, width),
        ("top_offset + bottom_offset", top + bottom, height),
    ):
        if total >= 3 * side:
            raise _param_failure(f"{names} must be < 3 × {side} = {3 * side}, got {total}")


def check_output_aspect(canvas: Canvas, params: OutPaintParams) -> None:
    """With ``limit_image_size`` (default), an output beyond 1:4 … 4:1 fails instead of being clamped."""
    if not params.limit_image_size:
        return
    long_side, short_side = max(canvas.width, canvas.height), min(canvas.width, canvas.height)
    if long_side > MAX_ASPECT * short_side:
        raise _param_failure(
            f"limit_image_size: output {canvas.width}×{canvas.height} is outside the aspect range 1:4 … 4:1"
        )


def _param_failure(detail: str) -> TaskFailure:
    return TaskFailure(INVALID_PARAMETER, detail)
