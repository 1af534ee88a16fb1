"""Synchronous validation of a create-task body (reference §2): every failure names its field."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from .wire import EMPTY_INPUT, EMPTY_MODEL, JSON_PHRASE, MODEL_NOT_EXIST, ApiError, invalid

MODEL = "image-out-painting"
RATIOS = ("", "1:1", "3:4", "4:3", "9:16", "16:9")
OFFSETS = ("top_offset", "bottom_offset", "left_offset", "right_offset")
RIGHT_ANGLES = (90, 180, 270)
URL_SCHEMES = ("http://", "https://", "data:", "oss://")


@dataclass(frozen=True)
class OutPaintParams:
    """The documented parameters with their defaults applied."""

    angle: int = 0
    output_ratio: str = ""
    x_scale: float = 1.0
    y_scale: float = 1.0
    top_offset: int = 0
    bottom_offset: int = 0
    left_offset: int = 0
    right_offset: int = 0
    best_quality: bool = False
    limit_image_size: bool = True
    add_watermark: bool = True

    @property
    def mode(self) -> str:
        """The winning expansion mode by the documented priority: ratio, scale, offsets, or none."""
        if self.output_ratio:
            return "ratio"
        if self.x_scale > 1 or self.y_scale > 1:
            return "scale"
        if any(getattr(self, name) > 0 for name in OFFSETS):
            return "offsets"
        return "none"


@dataclass(frozen=True)
class Submission:
    """A validated create-task request."""

    image_url: str
    params: OutPaintParams


def parse_submission(body: bytes) -> Submission:
    """Parse and validate a create-task body, raising ``ApiError`` with the documented code."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiError(JSON_PHRASE) from None
    if not isinstance(doc, dict):
        raise ApiError(JSON_PHRASE)
    model = doc.get("model")
    if model is None or model == "":
        raise ApiError(EMPTY_MODEL)
    if model != MODEL:
        raise ApiError(MODEL_NOT_EXIST)
    payload = doc.get("input")
    if not payload:
        raise ApiError(EMPTY_INPUT)
    if not isinstance(payload, dict):
        raise invalid("input must be an object")
    return Submission(_image_url(payload.get("image_url")), _params(doc.get("parameters")))


def _image_url(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise invalid("input.image_url is required and must be a non-empty string")
    if not value.lower().startswith(URL_SCHEMES):
        raise invalid(
            "input.image_url must be an http(s) URL, an oss:// temporary file or base64 data "
            "(data:<mime>;base64,...)"
        )
    return value


def _params(raw: Any) -> OutPaintParams:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise invalid("parameters must be an object")
    values = {name: value for name, value in raw.items() if value is not None}
    params = OutPaintParams(
        angle=_integer(values, "angle", 0, 359),
        output_ratio=_ratio(values),
        x_scale=_scale(values, "x_scale"),
        y_scale=_scale(values, "y_scale"),
        **{name: _integer(values, name, 0, None) for name in OFFSETS},
        best_quality=_boolean(values, "best_quality", False),
        limit_image_size=_boolean(values, "limit_image_size", True),
        add_watermark=_boolean(values, "add_watermark", True),
    )
    if params.mode == "none" and params.angle in RIGHT_ANGLES:
        raise invalid(
            f"parameters.angle: rotation-only requests must not use 90/180/270 (got {params.angle})"
        )
    return params


def _integer(values: dict[str, Any], name: str, low: int, high: int | None) -> int:
    value = values.get(name, 0)
    # JSON has one number type; an integral float (e.g. 90.0 from a JavaScript client) is an integer.
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value != int(value)
    ):
        raise invalid(f"parameters.{name} must be an integer, got {value!r}")
    value = int(value)
    if value < low or (high is not None and value > high):
        bounds = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise invalid(f"parameters.{name} must be {bounds}, got {value}")
    return value


def _scale(values: dict[str, Any], name: str) -> float:
    value = values.get(name, 1.0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(f"parameters.{name} must be a number, got {value!r}")
    if not 1.0 <= value <= 3.0:
        raise invalid(f"parameters.{name} must be within [1.0, 3.0], got {value}")
    return float(value)


def _ratio(values: dict[str, Any]) -> str:
    value = values.get("output_ratio", "")
    if value not in RATIOS or not isinstance(value, str):
        allowed = ", ".join(repr(r) for r in RATIOS)
        raise invalid(f"parameters.output_ratio must be one of {allowed}, got {value!r}")
    return value


def _boolean(values: dict[str, Any], name: str, default: bool) -> bool:
    value = values.get(name, default)
    if not isinstance(value, bool):
        raise invalid(f"parameters.{name} must be a boolean, got {value!r}")
    return value
