"""Property tests of the planner: geometry, gravity placement, API limits and exactly-when refusals.

The limit predicates are restated here from the reference (§2, §3, §4) with Fractions, independently of
the planner's integer arithmetic.
"""

from __future__ import annotations

import math
from fractions import Fraction

from hypothesis import example, given, settings
from hypothesis import strategies as st
from PIL import Image

from outpaint.errors import PlanError
from outpaint.plan import GRAVITIES, ImageFacts, Plan, PlanDefaults, Variant, plan_upload, rotated_size

fast = settings(max_examples=80, deadline=None)  # per test, so other modules' profiles stay untouched

API_RATIOS = {"1:1", "3:4", "4:3", "9:16", "16:9"}
OFFSET_NAMES = ("left_offset", "right_offset", "top_offset", "bottom_offset")
ALLOWED_PARAMETERS = {
    "angle",
    "output_ratio",
    "x_scale",
    "y_scale",
    *OFFSET_NAMES,
    "best_quality",
    "limit_image_size",
    "add_watermark",
}

sides = st.integers(min_value=512, max_value=4096)
angles = st.one_of(st.just(0), st.integers(min_value=0, max_value=359))
ratios = st.tuples(st.integers(1, 21), st.integers(1, 21)).filter(
    lambda r: Fraction(1, 4) <= Fraction(*r) <= 4
)


def facts(width: int, height: int) -> ImageFacts:
    return ImageFacts(width=width, height=height, format="PNG", size_bytes=1_000_000)


def outcome(meta: dict[str, str], image: ImageFacts, limit: bool = True) -> Variant | PlanError:
    try:
        [variant] = plan_upload(meta, image, PlanDefaults(limit_image_size=limit)).variants
    except PlanError as exc:
        return exc
    return variant


def offsets(variant: Variant) -> tuple[int, int, int, int]:
    left, right, top, bottom = (variant.parameters.get(name, 0) for name in OFFSET_NAMES)
    return left, right, top, bottom


def assert_within_api_limits(variant: Variant, rw: int, rh: int) -> None:
    """Every documented parameter limit, stated directly from the reference."""
    params = variant.parameters
    assert set(params) <= ALLOWED_PARAMETERS
    assert 0 < params.get("angle", 1) <= 359
    assert params.get("output_ratio", "1:1") in API_RATIOS
    for name in ("x_scale", "y_scale"):
        assert 1.0 < params.get(name, 2.0) <= 3.0
    left, right, top, bottom = offsets(variant)
    assert all(isinstance(params.get(name, 0), int) for name in OFFSET_NAMES)
    assert min(left, right, top, bottom) >= 0
    assert all(params.get(name, 1) > 0 for name in OFFSET_NAMES)  # zero offsets are left out
    assert left + right < 3 * rw
    assert top + bottom < 3 * rh
    if params["limit_image_size"]:
        assert Fraction(1, 4) <= Fraction(variant.output_width, variant.output_height) <= 4


def within_one_pixel(width: int, height: int, a: int, b: int) -> bool:
    """Some side is within 1 px of what the other side needs for exactly a:b."""
    return abs(width - Fraction(height * a, b)) <= 1 or abs(height - Fraction(width * b, a)) <= 1


def smallest_canvas(width: int, height: int, a: int, b: int) -> tuple[int, int]:
    if Fraction(width, height) >= Fraction(a, b):
        return width, math.ceil(Fraction(width * b, a))
    return math.ceil(Fraction(height * a, b)), height


# --- rotation -----------------------------------------------------------------------------------------


@fast
@given(st.integers(1, 600), st.integers(1, 600), st.integers(0, 359))
@example(4096, 512, 45)
@example(4096, 4096, 1)
@example(1600, 1200, 30)
@example(513, 4095, 359)
def test_rotated_size_matches_pillow(width, height, angle):
    assert (
        rotated_size(width, height, angle) == Image.new("1", (width, height)).rotate(angle, expand=True).size
    )


# --- ratios -------------------------------------------------------------------------------------------


@fast
@given(sides, sides, ratios, st.sampled_from(GRAVITIES), angles)
@example(1600, 1200, (16, 9), "center", 0)
@example(1000, 1000, (4, 1), "west", 0)
def test_ratio_canvas_placement_and_refusals(width, height, ratio, gravity, angle):
    a, b = ratio
    rw, rh = rotated_size(width, height, angle)
    canvas_w, canvas_h = smallest_canvas(rw, rh, a, b)
    api = f"{a // math.gcd(a, b)}:{b // math.gcd(a, b)}" in API_RATIOS and gravity == "center"
    already = within_one_pixel(rw, rh, a, b)
    too_far = not api and (canvas_w - rw >= 3 * rw or canvas_h - rh >= 3 * rh)

    meta = {"outpaint-ratio": f"{a}:{b}", "outpaint-gravity": gravity, "outpaint-angle": str(angle)}
    result = outcome(meta, facts(width, height))

    if already or too_far:  # any angle combines with a ratio, right angles included
        assert isinstance(result, PlanError)
        assert result.code == ("plan.already_at_ratio" if already else "plan.offsets_too_large")
        return
    assert isinstance(result, Variant), result
    assert_within_api_limits(result, rw, rh)
    assert (result.output_width, result.output_height) == (canvas_w, canvas_h)
    assert within_one_pixel(result.output_width, result.output_height, a, b)
    assert result.output_width >= rw
    assert result.output_height >= rh
    assert result.parameters.get("angle", 0) == angle
    if api:
        assert "output_ratio" in result.parameters
        assert offsets(result) == (0, 0, 0, 0)
        return
    left, right, top, bottom = offsets(result)
    assert (left + rw + right, top + rh + bottom) == (canvas_w, canvas_h)
    assert_at_gravity(gravity, left, right, top, bottom)


def assert_at_gravity(gravity: str, left: int, right: int, top: int, bottom: int) -> None:
    """The original touches the edge(s) gravity names and is centred (floor left/top) otherwise."""
    if "west" in gravity:
        assert left == 0
    elif "east" in gravity:
        assert right == 0
    else:
        assert left == (left + right) // 2
    if "north" in gravity:
        assert top == 0
    elif "south" in gravity:
        assert bottom == 0
    else:
        assert top == (top + bottom) // 2


@fast
@given(sides, sides, st.integers(16, 8000), st.integers(16, 8000), st.sampled_from(GRAVITIES))
def test_size_finishes_to_exactly_the_request(width, height, out_w, out_h, gravity):
    if not Fraction(1, 4) <= Fraction(out_w, out_h) <= 4:
        assert outcome({"outpaint-size": f"{out_w}x{out_h}"}, facts(width, height)).code == (
            "plan.ratio_out_of_range"
        )
        return
    a, b = out_w // math.gcd(out_w, out_h), out_h // math.gcd(out_w, out_h)
    canvas_w, canvas_h = smallest_canvas(width, height, a, b)
    result = outcome({"outpaint-size": f"{out_w}x{out_h}", "outpaint-gravity": gravity}, facts(width, height))
    if within_one_pixel(width, height, a, b):
        assert result.code == "plan.already_at_ratio"
    elif canvas_w >= 4 * width or canvas_h >= 4 * height:
        assert result.code == "plan.offsets_too_large"
    else:
        assert isinstance(result, Variant), result
        assert_within_api_limits(result, width, height)
        assert "output_ratio" not in result.parameters
        api_output = (result.output_width, result.output_height)
        finished = (result.finish.width, result.finish.height) if result.finish else api_output
        assert finished == (out_w, out_h)
        assert (result.finish is None) == (api_output == (out_w, out_h))
        assert_at_gravity(gravity, *offsets(result))


# --- scale and offsets ----------------------------------------------------------------------------------

scales = st.decimals(min_value=1, max_value=3, places=2).map(float)


@fast
@given(sides, sides, scales, scales, angles, st.booleans())
@example(1000, 1000, 2.0, 1.0, 0, True)
@example(2000, 600, 1.5, 1.0, 0, True)
def test_scale_output_and_limits(width, height, sx, sy, angle, limit):
    meta = {"outpaint-scale": f"{sx},{sy}", "outpaint-angle": str(angle)}
    result = outcome(meta, facts(width, height), limit)
    if sx == sy == 1.0:
        assert result.code == "plan.scale_out_of_range"
        return
    rw, rh = rotated_size(width, height, angle)
    out_w, out_h = math.floor(rw * sx + 0.5), math.floor(rh * sy + 0.5)
    if limit and not Fraction(1, 4) <= Fraction(out_w, out_h) <= 4:
        assert result.code == "plan.aspect_out_of_range"
        return
    assert isinstance(result, Variant), result
    assert_within_api_limits(result, rw, rh)
    assert (result.output_width, result.output_height) == (out_w, out_h)


@fast
@given(sides, sides, st.lists(st.integers(0, 13000), min_size=4, max_size=4), angles, st.booleans())
def test_offsets_output_and_limits(width, height, sides4, angle, limit):
    left, right, top, bottom = sides4
    meta = {"outpaint-offsets": ",".join(map(str, sides4)), "outpaint-angle": str(angle)}
    result = outcome(meta, facts(width, height), limit)
    rw, rh = rotated_size(width, height, angle)
    out_w, out_h = rw + left + right, rh + top + bottom
    if not any(sides4):
        assert result.code == "plan.bad_offsets"
    elif left + right >= 3 * rw or top + bottom >= 3 * rh:
        assert result.code == "plan.offsets_too_large"
    elif limit and not Fraction(1, 4) <= Fraction(out_w, out_h) <= 4:
        assert result.code == "plan.aspect_out_of_range"
    else:
        assert isinstance(result, Variant), result
        assert_within_api_limits(result, rw, rh)
        assert (result.output_width, result.output_height) == (out_w, out_h)


# --- input image and robustness ---------------------------------------------------------------------------


@fast
@given(
    st.integers(1, 6000),
    st.integers(1, 6000),
    st.sampled_from(["JPEG", "jpg", "PNG", "WEBP", "HEIF", "MPO", "GIF", "BMP", "TIFF", "AVIF"]),
    st.integers(1, 12 * 1024 * 1024),
    st.integers(1, 3),
)
def test_input_image_refused_exactly_when_a_limit_is_broken(width, height, fmt, size_bytes, frames):
    image = ImageFacts(width=width, height=height, format=fmt, size_bytes=size_bytes, frames=frames)
    result = outcome({"outpaint-angle": "45"}, image, limit=False)
    supported = fmt.upper() in {"JPEG", "JPG", "PNG", "WEBP", "HEIF", "MPO"}
    animated = frames > 1 and fmt.upper() != "MPO"
    broken = (
        not supported
        or animated
        or size_bytes > 10_000_000
        or not (512 <= width <= 4096 and 512 <= height <= 4096)
    )
    assert isinstance(result, PlanError) == broken, result
    if isinstance(result, Variant):
        assert_within_api_limits(result, *rotated_size(width, height, 45))


KEY_NAMES = ("ratio", "size", "scale", "offsets", "left", "angle", "gravity", "watermark", "skip", "x")
metadata = st.dictionaries(
    st.sampled_from([f"outpaint-{name}" for name in KEY_NAMES]),
    st.text(alphabet="0123456789:x,.- trueafls", max_size=12),
    max_size=5,
)


def plan_or_error(meta: dict[str, str], image: ImageFacts) -> Plan | PlanError:
    try:
        return plan_upload(meta, image, PlanDefaults())
    except PlanError as exc:
        return exc


@fast
@given(metadata, sides, sides)
def test_any_metadata_gives_a_plan_or_a_plan_error(meta, width, height):
    result = plan_or_error(meta, facts(width, height))
    if isinstance(result, PlanError):
        assert result.code.startswith("plan.")
        assert result.message
        return
    assert bool(result.skipped) != bool(result.variants)
    for variant in result.variants:
        angle = variant.parameters.get("angle", 0)
        assert_within_api_limits(variant, *rotated_size(width, height, angle))
