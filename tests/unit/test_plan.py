"""Worked examples of the metadata language: API priority table, output sizes, every refusal code."""

from __future__ import annotations

from pathlib import Path

import pytest

from outpaint.errors import PlanError
from outpaint.naming import outpaint_meta as user_metadata
from outpaint.plan import (
    ERROR_CODES,
    KEYS,
    Finish,
    ImageFacts,
    PlanDefaults,
    Variant,
    plan_upload,
)

SQUARE = ImageFacts(width=1000, height=1000, format="JPEG", size_bytes=500_000)
PHOTO = ImageFacts(width=1600, height=1200, format="JPEG", size_bytes=1_000_000)
DEFAULTS = PlanDefaults()
FLAGS = {"best_quality": False, "add_watermark": True, "limit_image_size": True}


def only(meta, facts=PHOTO, defaults=DEFAULTS) -> Variant:
    [variant] = plan_upload(meta, facts, defaults).variants
    return variant


def refused(meta, facts=PHOTO, defaults=DEFAULTS) -> PlanError:
    with pytest.raises(PlanError) as info:
        plan_upload(meta, facts, defaults)
    assert info.value.code in ERROR_CODES
    return info.value


# --- reference §2.1: mode priority ------------------------------------------------------------------


def test_priority_ratio_beats_scale():
    variant = only({"outpaint-ratio": "4:3", "outpaint-scale": "2"}, SQUARE)
    assert variant.parameters == {"output_ratio": "4:3", **FLAGS}
    assert (variant.output_width, variant.output_height) == (1334, 1000)
    assert any("outpaint-scale ignored" in w for w in variant.warnings)


def test_priority_scale_beats_offsets():
    variant = only({"outpaint-scale": "2,1", "outpaint-left": "100"}, SQUARE)
    assert variant.parameters == {"x_scale": 2.0, **FLAGS}
    assert (variant.output_width, variant.output_height) == (2000, 1000)
    assert any("outpaint-left ignored" in w for w in variant.warnings)


def test_priority_angle_combines_with_scale():
    facts = ImageFacts(width=1600, height=900, format="PNG", size_bytes=1_000_000)
    variant = only({"outpaint-angle": "90", "outpaint-scale": "2,1"}, facts)
    assert variant.parameters == {"angle": 90, "x_scale": 2.0, **FLAGS}
    assert (variant.output_width, variant.output_height) == (1800, 1600)  # rotated width × 2


def test_priority_angle_with_everything_keeps_rotation_and_ratio():
    meta = {"outpaint-angle": "90", "outpaint-ratio": "4:3", "outpaint-scale": "2", "outpaint-left": "100"}
    variant = only(meta, SQUARE)
    assert variant.parameters == {"angle": 90, "output_ratio": "4:3", **FLAGS}
    dropped = " ".join(variant.warnings)
    assert "outpaint-scale ignored" in dropped
    assert "outpaint-left ignored" in dropped


# --- reference §4: output sizes on a 1000×1000 input ------------------------------------------------


@pytest.mark.parametrize(
    ("meta", "parameters", "size"),
    [
        ({"outpaint-scale": "2,1"}, {"x_scale": 2.0}, (2000, 1000)),
        ({"outpaint-scale": "1,2"}, {"y_scale": 2.0}, (1000, 2000)),
        ({"outpaint-scale": "1.5"}, {"x_scale": 1.5, "y_scale": 1.5}, (1500, 1500)),
        ({"outpaint-top": "500"}, {"top_offset": 500}, (1000, 1500)),
        ({"outpaint-offsets": "500,0,0,0"}, {"left_offset": 500}, (1500, 1000)),
        ({"outpaint-ratio": "16:9"}, {"output_ratio": "16:9"}, (1778, 1000)),
        ({"outpaint-ratio": "3:4"}, {"output_ratio": "3:4"}, (1000, 1334)),
    ],
)
def test_reference_output_sizes(meta, parameters, size):
    variant = only(meta, SQUARE)
    assert variant.parameters == {**parameters, **FLAGS}
    assert (variant.output_width, variant.output_height) == size
    assert variant.finish is None


# --- ratios, sizes, gravity -----------------------------------------------------------------------------


def test_computed_ratio_centre_splits_floor_ceil():
    variant = only({"outpaint-ratio": "21:9"}, PHOTO)
    assert variant.name == "7x3"
    assert variant.parameters == {"left_offset": 600, "right_offset": 600, **FLAGS}
    assert (variant.output_width, variant.output_height) == (2800, 1200)
    odd = only({"outpaint-ratio": "2:1"}, ImageFacts(1001, 1000, "PNG", 1))
    assert (odd.parameters["left_offset"], odd.parameters["right_offset"]) == (499, 500)


@pytest.mark.parametrize(
    ("gravity", "offsets"),
    [
        ("center", {"output_ratio": "9:16"}),
        ("north", {"bottom_offset": 778}),
        ("south", {"top_offset": 778}),
        ("northwest", {"bottom_offset": 778}),
        ("east", {"top_offset": 389, "bottom_offset": 389}),
    ],
)
def test_api_ratio_honours_gravity_via_offsets(gravity, offsets):
    variant = only({"outpaint-ratio": "9:16", "outpaint-gravity": gravity.upper()}, SQUARE)
    assert variant.parameters == {**offsets, **FLAGS}
    assert (variant.output_width, variant.output_height) == (1000, 1778)


def test_horizontal_gravity_on_a_wide_expansion():
    west = only({"outpaint-ratio": "2:1", "outpaint-gravity": "southwest"}, SQUARE)
    east = only({"outpaint-ratio": "2:1", "outpaint-gravity": "northeast"}, SQUARE)
    assert west.parameters == {"right_offset": 1000, **FLAGS}
    assert east.parameters == {"left_offset": 1000, **FLAGS}


def test_ratio_list_makes_variants_reduced_and_deduplicated():
    plan = plan_upload({"outpaint-ratio": "16:9, 32:18 ,1:1,"}, PHOTO, DEFAULTS)
    assert [v.name for v in plan.variants] == ["16x9", "1x1"]
    assert plan.variants[0].parameters["output_ratio"] == "16:9"


def test_size_expands_then_finishes_locally():
    variant = only({"outpaint-size": "1200x628"}, PHOTO)
    assert variant.name == "1200x628"
    assert variant.parameters == {"left_offset": 346, "right_offset": 347, **FLAGS}
    assert (variant.output_width, variant.output_height) == (2293, 1200)
    assert variant.finish == Finish(width=1200, height=628)


def test_size_equal_to_canvas_needs_no_finish():
    variant = only({"outpaint-size": "1000X1500"}, SQUARE)
    assert variant.parameters == {"top_offset": 250, "bottom_offset": 250, **FLAGS}
    assert variant.finish is None


def test_ratios_and_sizes_combine_and_names_stay_unique():
    plan = plan_upload({"outpaint-ratio": "3:1", "outpaint-size": "3x1,1080x1920"}, PHOTO, DEFAULTS)
    assert [v.name for v in plan.variants] == ["3x1", "3x1-2", "1080x1920"]
    assert plan.variants[1].finish == Finish(width=3, height=1)


# --- rotation -------------------------------------------------------------------------------------------


def test_rotation_only():
    variant = only({"outpaint-angle": "30"}, PHOTO)
    assert variant.name == "rotate-30"
    assert variant.parameters == {"angle": 30, **FLAGS}
    assert (variant.output_width, variant.output_height) == (1986, 1840)


def test_rotation_applies_before_computed_offsets():
    variant = only({"outpaint-angle": "270", "outpaint-ratio": "2:1"}, PHOTO)  # rotated: 1200×1600
    assert variant.parameters == {"angle": 270, "left_offset": 1000, "right_offset": 1000, **FLAGS}
    assert (variant.output_width, variant.output_height) == (3200, 1600)


def test_angle_zero_alone_requests_nothing():
    assert plan_upload({"outpaint-angle": "0"}, PHOTO, DEFAULTS).skipped == "no expansion requested"


# --- flags, skip, defaults, warnings ----------------------------------------------------------------


def test_boolean_flags_override_defaults():
    meta = {"outpaint-ratio": "1:1", "outpaint-best-quality": "YES", "outpaint-watermark": "0"}
    variant = only({**meta, "outpaint-limit-size": "False"}, PHOTO, PlanDefaults(best_quality=False))
    assert variant.parameters == {
        "output_ratio": "1:1",
        "best_quality": True,
        "add_watermark": False,
        "limit_image_size": False,
    }


def test_skip_and_nothing_requested():
    assert plan_upload({"outpaint-skip": "true", "outpaint-ratio": "bad"}, PHOTO, DEFAULTS).skipped
    assert plan_upload({"outpaint-skip": "no", "outpaint-ratio": "1:1"}, PHOTO, DEFAULTS).variants
    plan = plan_upload({"x-oss-meta-other": "1"}, ImageFacts(10, 10, "GIF", 1, frames=3), DEFAULTS)
    assert plan.variants == ()
    assert plan.skipped == "no expansion requested"


def test_only_typod_keys_are_rejected_with_the_suggestion():
    for defaults in (DEFAULTS, PlanDefaults(ratio="1:1")):  # a default is not what the upload asked for
        with pytest.raises(PlanError) as refused:
            plan_upload({"outpaint-ratoi": "16:9", "outpaint-colour": "red"}, PHOTO, defaults)
        assert refused.value.code == "plan.unknown_keys"
        assert refused.value.message == (
            "outpaint-colour='red': unknown key; outpaint-ratoi='16:9': unknown key (did you mean "
            "outpaint-ratio?); nothing else was asked, so nothing is made"
        )
    # Other metadata (not outpaint-*) is not a request: still "no expansion requested".
    assert plan_upload({"x-oss-meta-colour": "red"}, PHOTO, DEFAULTS).skipped == "no expansion requested"
    # A known key beside the typo: planned, with the typo as a warning.
    variant = only({"outpaint-ratio": "16:9", "outpaint-gravty": "north"}, PHOTO)
    assert any("unknown key outpaint-gravty" in w for w in variant.warnings)


def test_default_ratio_used_without_metadata():
    defaults = PlanDefaults(ratio="16:9", gravity="south", add_watermark=False)
    variant = only({}, SQUARE, defaults)
    # 16:9 widens a square, so "south" only decides the (zero) vertical split.
    assert variant.parameters == {"left_offset": 389, "right_offset": 389, **FLAGS, "add_watermark": False}
    assert variant.name == "16x9"


def test_default_ratio_already_met_is_skipped_not_refused():
    defaults = PlanDefaults(ratio="4:3,1:1")
    plan = plan_upload({}, PHOTO, defaults)
    assert [v.name for v in plan.variants] == ["1x1"]
    assert (
        plan_upload({}, PHOTO, PlanDefaults(ratio="4:3")).skipped == "image already has the default ratio 4:3"
    )


def test_blank_values_count_as_absent():
    assert plan_upload({"outpaint-ratio": "  "}, PHOTO, DEFAULTS).skipped == "no expansion requested"


def test_offsets_forms_combine_per_side_keys_win():
    variant = only({"outpaint-offsets": "100,0,0,50", "outpaint-top": "7", "outpaint-bottom": "0"}, PHOTO)
    assert variant.parameters == {"left_offset": 100, "top_offset": 7, **FLAGS}
    assert any("per-side value wins" in w for w in variant.warnings)


def test_gravity_is_reported_as_unused_for_scale():
    variant = only({"outpaint-scale": "1.2", "outpaint-gravity": "north"}, PHOTO)
    assert any("outpaint-gravity has no effect" in w for w in variant.warnings)


def test_mpo_is_sent_as_jpeg_with_a_warning():
    variant = only({"outpaint-ratio": "1:1"}, ImageFacts(1600, 1200, "MPO", 1_000_000, frames=2))
    assert any("MPO" in w for w in variant.warnings)


def test_user_metadata_picks_outpaint_keys_case_insensitively():
    headers = {
        "X-OSS-Meta-Outpaint-Ratio": " 16:9 ",
        "x-oss-meta-outpaint-skip": "no",
        "x-oss-meta-owner": "me",
        "Content-Type": "image/jpeg",
        "outpaint-scale": "2",
    }
    assert user_metadata(headers) == {"outpaint-ratio": "16:9", "outpaint-skip": "no", "outpaint-scale": "2"}


def test_digest_is_stable_and_covers_parameters_and_finish():
    a = only({"outpaint-size": "1200x628"}, PHOTO)
    b = Variant(
        name="other",
        parameters=dict(reversed(list(a.parameters.items()))),
        output_width=0,
        output_height=0,
        finish=a.finish,
    )
    assert a.digest() == b.digest()
    assert len(a.digest()) == 64
    assert a.digest() != b.model_copy(update={"finish": Finish(width=1200, height=627)}).digest()
    assert a.digest() != only({"outpaint-size": "1200x629"}, PHOTO).digest()


def test_plan_defaults_validate_gravity():
    assert PlanDefaults(gravity=" NorthEast ").gravity == "northeast"
    with pytest.raises(ValueError, match="not one of"):
        PlanDefaults(gravity="up")


# --- refusals -------------------------------------------------------------------------------------------

REFUSALS = [
    ({"outpaint-ratio": "16/9"}, PHOTO, "plan.bad_ratio", ["outpaint-ratio", "16/9", "W:H"]),
    ({"outpaint-ratio": "0:1"}, PHOTO, "plan.bad_ratio", ["'0:1'", "positive"]),
    ({"outpaint-ratio": "9:2"}, PHOTO, "plan.ratio_out_of_range", ["'9:2'", "1:4 … 4:1"]),
    ({"outpaint-size": "5000x1000"}, PHOTO, "plan.ratio_out_of_range", ["outpaint-size", "5:1"]),
    ({"outpaint-ratio": "8:6"}, PHOTO, "plan.already_at_ratio", ["'8:6'", "1600×1200", "4:3"]),
    ({"outpaint-size": "1601x1200"}, PHOTO, "plan.already_at_ratio", ["outpaint-size", "within 1 px"]),
    ({"outpaint-size": "12x"}, PHOTO, "plan.bad_size", ["outpaint-size", "'12x'", "WxH"]),
    ({"outpaint-size": "20000x10000"}, PHOTO, "plan.bad_size", ["16384"]),
    ({"outpaint-scale": "3.01"}, PHOTO, "plan.scale_out_of_range", ["outpaint-scale", "3.01", "[1.0, 3.0]"]),
    ({"outpaint-scale": "0.5,2"}, PHOTO, "plan.scale_out_of_range", ["'0.5,2'"]),
    ({"outpaint-scale": "nan"}, PHOTO, "plan.scale_out_of_range", ["'nan'"]),
    ({"outpaint-scale": "1,1.0"}, PHOTO, "plan.scale_out_of_range", ["above 1.0"]),
    ({"outpaint-offsets": "1,2,3"}, PHOTO, "plan.bad_offsets", ["outpaint-offsets", "left,right,top,bottom"]),
    ({"outpaint-left": "-5"}, PHOTO, "plan.bad_offsets", ["outpaint-left", "'-5'", "≥ 0"]),
    ({"outpaint-offsets": "0,0,0,0"}, PHOTO, "plan.bad_offsets", ["above 0"]),
    ({"outpaint-left": "2400", "outpaint-right": "2400"}, PHOTO, "plan.offsets_too_large", ["4800", "< 3"]),
    ({"outpaint-ratio": "4:1"}, SQUARE, "plan.offsets_too_large", ["outpaint-ratio", "'4:1'", "3000"]),
    (
        {"outpaint-scale": "1.5,1"},
        ImageFacts(2000, 600, "PNG", 1),
        "plan.aspect_out_of_range",
        ["outpaint-scale", "'1.5,1'", "3000×600", "1:4 … 4:1"],
    ),
    ({"outpaint-angle": "360"}, PHOTO, "plan.angle_out_of_range", ["outpaint-angle", "'360'", "0 … 359"]),
    ({"outpaint-angle": "-30"}, PHOTO, "plan.angle_out_of_range", ["'-30'"]),
    ({"outpaint-angle": "180"}, PHOTO, "plan.rotation_only_right_angle", ["'180'", "90/180/270"]),
    ({"outpaint-ratio": "1:1", "outpaint-watermark": "maybe"}, PHOTO, "plan.bad_boolean", ["'maybe'"]),
    ({"outpaint-skip": "y"}, PHOTO, "plan.bad_boolean", ["outpaint-skip", "true/false"]),
    ({"outpaint-ratio": "1:1", "outpaint-gravity": "top"}, PHOTO, "plan.bad_gravity", ["'top'", "northwest"]),
    ({"outpaint-ratoi": "1:1"}, PHOTO, "plan.unknown_keys", ["did you mean outpaint-ratio?"]),
    ({"outpaint-ratio": ",".join(f"{n}:1" for n in (2, 3, 4))}, PHOTO, None, []),  # 3 variants: fine
    (
        {"outpaint-size": ",".join(f"{w}x1000" for w in range(1001, 1012))},
        PHOTO,
        "plan.too_many_variants",
        ["at most 10"],
    ),
    ({"outpaint-ratio": "1:1"}, ImageFacts(1000, 800, "GIF", 1), "plan.unsupported_format", ["GIF", "WEBP"]),
    ({"outpaint-ratio": "1:1"}, ImageFacts(1000, 800, "WEBP", 1, frames=4), "plan.animated", ["4"]),
    (
        {"outpaint-ratio": "1:1"},
        ImageFacts(1000, 800, "PNG", 10_000_001),
        "plan.file_too_large",
        ["10000001", "10000000"],
    ),
    ({"outpaint-ratio": "1:1"}, ImageFacts(511, 800, "PNG", 1), "plan.image_too_small", ["511x800", "512"]),
    ({"outpaint-ratio": "1:1"}, ImageFacts(600, 4097, "HEIF", 1), "plan.image_too_large", ["4096"]),
]


@pytest.mark.parametrize(("meta", "facts", "code", "fragments"), REFUSALS)
def test_refusals_name_key_value_and_limit(meta, facts, code, fragments):
    if code is None:
        assert len(plan_upload(meta, facts, DEFAULTS).variants) == 3
        return
    error = refused(meta, facts)
    assert error.code == code
    for fragment in fragments:
        assert fragment in error.message


def test_every_error_code_has_a_refusal_example():
    assert set(ERROR_CODES) == {code for _, _, code, _ in REFUSALS if code}


def test_docs_list_every_code_and_key():
    docs = (Path(__file__).resolve().parents[2] / "docs" / "metadata.md").read_text(encoding="utf-8")
    for code in ERROR_CODES:
        assert f"| `{code}` |" in docs, code
    for key in KEYS:
        assert key.removeprefix("outpaint-") in docs, key


def test_an_expansion_of_a_few_pixels_is_skipped_with_the_numbers():
    photo_3_2ish = ImageFacts(1086, 720, "JPEG", 200_000)
    plan = plan_upload({"outpaint-ratio": "3:2"}, photo_3_2ish, DEFAULTS)
    assert (plan.variants, plan.skip_code) == ((), "plan.negligible_expansion")
    assert plan.skipped == (
        "outpaint-ratio='3:2' adds only 0×4 px to 1086×720 (under 1 % of a side): variant 3x2 not made, "
        "a task costs the same however little it adds (OUTPAINT_MIN_EXPANSION_PERCENT)"
    )
    # Beside a real expansion only the negligible variant is dropped, and said so.
    [variant] = plan_upload({"outpaint-ratio": "3:2,16:9"}, photo_3_2ish, DEFAULTS).variants
    assert variant.name == "16x9"
    assert any("variant 3x2 not made" in warning for warning in variant.warnings)
    # 0 makes every one; an exact size is never negligible (the resize needs the expanded image).
    assert plan_upload(
        {"outpaint-ratio": "3:2"}, photo_3_2ish, PlanDefaults(min_expansion_percent=0)
    ).variants
    assert plan_upload({"outpaint-size": "1086x724"}, photo_3_2ish, DEFAULTS).variants
