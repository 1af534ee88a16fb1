"""Metadata + defaults + image facts → Variants: the exact DashScope ``parameters`` to send per output.

Pure functions, no I/O. The metadata language is documented in ``docs/metadata.md``; the API facts it
enforces come from the DashScope ``image-out-painting`` reference (§2, §2.1, §3, §4).

Geometry (the local DashScope emulator computes the same independently):

* rotation first: expansion applies to the image rotated counter-clockwise by ``angle``, whose size is
  :func:`rotated_size` (Pillow's ``Image.rotate(angle, expand=True)``);
* ratio ``a:b`` on ``w×h``: if ``w*b >= h*a`` the canvas is ``w × ceil(w*b/a)``, else ``ceil(h*a/b) × h``;
* scale: ``floor(w*sx + 0.5) × floor(h*sy + 0.5)``;
* offsets: ``(w + left + right) × (h + top + bottom)``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from outpaint.errors import PlanError
from outpaint.naming import outpaint_meta

__all__ = [
    "ERROR_CODES",
    "GRAVITIES",
    "Finish",
    "ImageFacts",
    "Plan",
    "PlanDefaults",
    "Variant",
    "check_default_ratio",
    "near_ratio",
    "place",
    "plan_upload",
    "ratio_canvas",
    "rotated_size",
]

GRAVITIES = ("center", "north", "south", "east", "west", "northeast", "northwest", "southeast", "southwest")

API_RATIOS = frozenset({(1, 1), (3, 4), (4, 3), (9, 16), (16, 9)})
SUPPORTED_FORMATS = ("JPEG", "PNG", "HEIF", "WEBP")
FORMAT_ALIASES = {"JPG": "JPEG", "MPO": "JPEG"}  # MPO: a JPEG with extra (preview/stereo) images appended
MIN_SIDE, MAX_SIDE = 512, 4096
# The docs say "10 MB"; public clients read it as 10,000,000 bytes. The stricter reading: no upload between
# 10,000,000 and 10,485,760 bytes is paid for and then refused.
MAX_FILE_BYTES = 10_000_000
MIN_SCALE, MAX_SCALE = 1.0, 3.0
MAX_ASPECT = 4  # ratios and (with limit_image_size) outputs stay within 1:4 … 4:1
OFFSET_FACTOR = 3  # left+right < 3 × width, top+bottom < 3 × height (of the rotated image)
MAX_FINISH_SIDE = 16384  # local finishing only; keeps the resize's memory bounded
MAX_VARIANTS = 10  # every variant is a paid task
RIGHT_ANGLES = (90, 180, 270)

KEYS = {
    "outpaint-ratio": "W:H aspect ratio(s) to expand to, comma-separated",
    "outpaint-size": "WxH exact pixel size(s): expand to that aspect, then resize locally",
    "outpaint-scale": "S or SX,SY in [1.0, 3.0]",
    "outpaint-offsets": "left,right,top,bottom pixels to add",
    "outpaint-left": "pixels to add on the left",
    "outpaint-right": "pixels to add on the right",
    "outpaint-top": "pixels to add at the top",
    "outpaint-bottom": "pixels to add at the bottom",
    "outpaint-angle": "counter-clockwise rotation in degrees, 0-359, applied before expanding",
    "outpaint-gravity": "where the original sits for computed ratios and sizes",
    "outpaint-best-quality": "API best_quality",
    "outpaint-watermark": "API add_watermark",
    "outpaint-limit-size": "API limit_image_size",
    "outpaint-skip": "true: make no job for this upload",
}
SIDE_KEYS = ("outpaint-left", "outpaint-right", "outpaint-top", "outpaint-bottom")
GEOMETRY_KEYS = ("outpaint-ratio", "outpaint-size", "outpaint-scale", "outpaint-offsets", *SIDE_KEYS)

ERROR_CODES: dict[str, str] = {
    "plan.bad_ratio": "a ratio is not W:H with positive whole numbers",
    "plan.ratio_out_of_range": "a ratio or size aspect is outside 1:4 … 4:1",
    "plan.already_at_ratio": "the image already has the requested aspect (within 1 px): nothing to expand",
    "plan.bad_size": "a size is not WxH with whole numbers in 1 … 16384",
    "plan.scale_out_of_range": "a scale is not a number in [1.0, 3.0], or no scale is above 1.0",
    "plan.bad_offsets": "offsets are not whole numbers ≥ 0, or all of them are 0",
    "plan.offsets_too_large": "left+right ≥ 3 × width or top+bottom ≥ 3 × height of the (rotated) image",
    "plan.aspect_out_of_range": "with limit_image_size the output aspect would leave 1:4 … 4:1",
    "plan.angle_out_of_range": "the angle is not a whole number in 0 … 359",
    "plan.rotation_only_right_angle": "rotation alone by 90, 180 or 270 degrees (the API refuses it)",
    "plan.bad_boolean": "a boolean key is not one of true/false/1/0/yes/no",
    "plan.bad_gravity": "the gravity is not one of the nine compass names",
    "plan.unknown_keys": "every outpaint-* key of the upload is unknown (a typo?): what it asks is unclear",
    "plan.too_many_variants": "more than 10 ratios and sizes requested for one upload",
    "plan.unsupported_format": "the image is not JPEG, PNG, HEIF or WEBP",
    "plan.animated": "the image has more than one frame",
    "plan.file_too_large": "the file is larger than 10 MB (10,000,000 bytes: the stricter reading)",
    "plan.image_too_small": "a side of the image is below 512 px",
    "plan.image_too_large": "a side of the image is above 4096 px",
}

_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")
_RATIO = re.compile(r"(\d{1,6})\s*:\s*(\d{1,6})", re.ASCII)
_SIZE = re.compile(r"(\d{1,6})\s*[x×]\s*(\d{1,6})", re.ASCII | re.IGNORECASE)
_UINT = re.compile(r"\d{1,6}", re.ASCII)
_NUMBER = re.compile(r"\d{1,3}(\.\d{1,6})?", re.ASCII)


# --- public models ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageFacts:
    """What the probe found out about the uploaded object."""

    width: int
    height: int
    format: str  # Pillow format name: "JPEG", "PNG", "WEBP", "HEIF", "MPO", "GIF", ...
    size_bytes: int
    frames: int = 1
    mode: str | None = None


class PlanDefaults(BaseModel):
    """Bucket-wide defaults; callers build it from Settings (``default_ratio``, ``default_gravity``, ...)."""

    model_config = ConfigDict(frozen=True)

    ratio: str | None = None
    gravity: str = "center"
    best_quality: bool = False
    add_watermark: bool = True
    limit_image_size: bool = True
    min_expansion_percent: float = 1.0  # below this on both sides a task is not worth its price

    @field_validator("ratio")
    @classmethod
    def _blank_is_none(cls, ratio: str | None) -> str | None:
        if ratio is None:
            return None
        return ratio.strip() or None

    @field_validator("gravity")
    @classmethod
    def _known_gravity(cls, gravity: str) -> str:
        if gravity.strip().lower() not in GRAVITIES:
            raise ValueError(f"{gravity!r} is not one of {', '.join(GRAVITIES)}")
        return gravity.strip().lower()


class Finish(BaseModel):
    """Local finishing: resize the API result to exactly ``width × height``."""

    model_config = ConfigDict(frozen=True)

    width: int
    height: int


class Variant(BaseModel):
    """One output of an upload: one DashScope task plus optional local finishing."""

    model_config = ConfigDict(frozen=True)

    name: str
    parameters: dict[str, Any]
    output_width: int
    output_height: int
    finish: Finish | None = None
    warnings: tuple[str, ...] = ()

    def digest(self) -> str:
        """Stable SHA-256 hex digest of (parameters, finish); the same request always gives the same id."""
        body = {"parameters": self.parameters, "finish": self.finish.model_dump() if self.finish else None}
        return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class Plan(BaseModel):
    """The variants to make for one upload; ``skipped`` says why there are none."""

    model_config = ConfigDict(frozen=True)

    variants: tuple[Variant, ...]
    skipped: str | None = None
    skip_code: str = "plan.skipped"  # the SKIPPED record's code (plan.negligible_expansion, ...)


# --- geometry --------------------------------------------------------------------------------------


def rotated_size(width: int, height: int, angle: int) -> tuple[int, int]:
    """Size of ``Image.rotate(angle, expand=True)`` in Pillow (counter-clockwise, same float steps)."""
    angle %= 360
    if angle in (0, 180):
        return width, height
    if angle in (90, 270):
        return height, width
    rad = -math.radians(angle)
    a, b = round(math.cos(rad), 15), round(math.sin(rad), 15)
    d, e = round(-math.sin(rad), 15), round(math.cos(rad), 15)
    cx, cy = width / 2, height / 2
    # Same operation order as Pillow, so the float rounding (and thus ceil/floor) agrees exactly.
    c = a * -cx + b * -cy + 0.0 + cx
    f = d * -cx + e * -cy + 0.0 + cy
    xs = [a * x + b * y + c for x, y in ((0, 0), (width, 0), (width, height), (0, height))]
    ys = [d * x + e * y + f for x, y in ((0, 0), (width, 0), (width, height), (0, height))]
    return math.ceil(max(xs)) - math.floor(min(xs)), math.ceil(max(ys)) - math.floor(min(ys))


def ratio_canvas(width: int, height: int, a: int, b: int) -> tuple[int, int]:
    """The smallest ``a:b`` canvas (one side kept, the other rounded up) that contains ``width × height``."""
    if width * b >= height * a:
        return width, -(-width * b // a)
    return -(-height * a // b), height


def near_ratio(width: int, height: int, a: int, b: int) -> bool:
    """True when ``width × height`` is ``a:b`` to within 1 px on one side."""
    return abs(width * b - height * a) <= max(a, b)


def place(extra_w: int, extra_h: int, gravity: str) -> tuple[int, int, int, int]:
    """Split added width/height into (left, right, top, bottom) so the original sits at ``gravity``."""
    left = 0 if gravity.endswith("west") else extra_w if gravity.endswith("east") else extra_w // 2
    top = 0 if gravity.startswith("north") else extra_h if gravity.startswith("south") else extra_h // 2
    return left, extra_w - left, top, extra_h - top


# --- parsing ---------------------------------------------------------------------------------------


def _refuse(code: str, key: str, value: str, why: str) -> PlanError:
    return PlanError(f"{key}={value!r}: {why}", code=code)


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _reduce(a: int, b: int) -> tuple[int, int]:
    g = math.gcd(a, b)
    return a // g, b // g


def _check_aspect_bounds(key: str, value: str, a: int, b: int) -> None:
    if a > MAX_ASPECT * b or b > MAX_ASPECT * a:
        raise _refuse("plan.ratio_out_of_range", key, value, f"aspect {a}:{b} is outside 1:4 … 4:1")


def _parse_ratio(key: str, text: str) -> tuple[int, int]:
    match = _RATIO.fullmatch(text)
    if not match or int(match[1]) == 0 or int(match[2]) == 0:
        raise _refuse("plan.bad_ratio", key, text, "expected W:H with positive whole numbers, e.g. 16:9")
    a, b = _reduce(int(match[1]), int(match[2]))
    _check_aspect_bounds(key, text, a, b)
    return a, b


def check_default_ratio(text: str) -> None:
    """Raise the PlanError every upload without metadata would get from this default ratio (a list too)."""
    for item in _items(text):
        _parse_ratio("default_ratio", item)


def _parse_size(key: str, text: str) -> tuple[int, int]:
    match = _SIZE.fullmatch(text)
    if not match or not all(1 <= int(side) <= MAX_FINISH_SIDE for side in match.groups()):
        raise _refuse("plan.bad_size", key, text, f"expected WxH with whole numbers in 1 … {MAX_FINISH_SIDE}")
    width, height = int(match[1]), int(match[2])
    _check_aspect_bounds(key, text, *_reduce(width, height))
    return width, height


def _parse_scale(key: str, text: str) -> tuple[float, float]:
    parts = [part.strip() for part in text.split(",")]
    why = f"expected S or SX,SY with numbers in [{MIN_SCALE}, {MAX_SCALE}]"
    if len(parts) not in (1, 2) or not all(_NUMBER.fullmatch(part) for part in parts):
        raise _refuse("plan.scale_out_of_range", key, text, why)
    sx, sy = float(parts[0]), float(parts[-1])
    if not (MIN_SCALE <= sx <= MAX_SCALE and MIN_SCALE <= sy <= MAX_SCALE):
        raise _refuse("plan.scale_out_of_range", key, text, why)
    if sx == sy == MIN_SCALE:
        raise _refuse("plan.scale_out_of_range", key, text, "at least one scale must be above 1.0")
    return sx, sy


def _parse_uint(key: str, text: str, code: str, why: str) -> int:
    if not _UINT.fullmatch(text):
        raise _refuse(code, key, text, why)
    return int(text)


def _parse_offsets(meta: Mapping[str, str]) -> tuple[tuple[int, int, int, int], list[str]]:
    """(left, right, top, bottom) from ``outpaint-offsets`` and/or the per-side keys (which win)."""
    why = "expected a whole number of pixels ≥ 0"
    sides = [0, 0, 0, 0]
    warnings = []
    if "outpaint-offsets" in meta:
        text = meta["outpaint-offsets"]
        parts = [part.strip() for part in text.split(",")]
        if len(parts) != 4 or not all(_UINT.fullmatch(part) for part in parts):
            raise _refuse("plan.bad_offsets", "outpaint-offsets", text, "expected left,right,top,bottom ≥ 0")
        sides = [int(part) for part in parts]
    given = [key for key in SIDE_KEYS if key in meta]
    for key in given:
        sides[SIDE_KEYS.index(key)] = _parse_uint(key, meta[key], "plan.bad_offsets", why)
    if given and "outpaint-offsets" in meta:
        warnings.append(f"{', '.join(given)} given with outpaint-offsets: the per-side value wins")
    if not any(sides):
        key = "outpaint-offsets" if "outpaint-offsets" in meta else given[0]
        raise _refuse("plan.bad_offsets", key, meta[key], "at least one offset must be above 0")
    left, right, top, bottom = sides
    return (left, right, top, bottom), warnings


def _parse_bool(meta: Mapping[str, str], key: str, default: bool) -> bool:
    if key not in meta:
        return default
    value = meta[key].lower()
    if value not in _TRUE + _FALSE:
        raise _refuse("plan.bad_boolean", key, meta[key], "expected true/false/1/0/yes/no")
    return value in _TRUE


def _parse_angle(meta: Mapping[str, str]) -> int:
    if "outpaint-angle" not in meta:
        return 0
    text = meta["outpaint-angle"]
    if not _UINT.fullmatch(text) or int(text) > 359:
        raise _refuse("plan.angle_out_of_range", "outpaint-angle", text, "expected a whole number in 0 … 359")
    return int(text)


def _parse_gravity(meta: Mapping[str, str], default: str) -> str:
    gravity = meta.get("outpaint-gravity", default).lower()
    if gravity not in GRAVITIES:
        raise _refuse(
            "plan.bad_gravity", "outpaint-gravity", gravity, f"expected one of {', '.join(GRAVITIES)}"
        )
    return gravity


# --- planning --------------------------------------------------------------------------------------


@dataclass
class _Draft:
    """One variant before limits are checked and common parameters are added."""

    name: str
    key: str  # the metadata key (and value) that asked for it, for messages
    value: str
    expansion: dict[str, Any]
    width: int
    height: int
    finish: Finish | None = None
    warnings: list[str] = field(default_factory=list)


def _offsets(left: int, right: int, top: int, bottom: int) -> dict[str, int]:
    named = {"left_offset": left, "right_offset": right, "top_offset": top, "bottom_offset": bottom}
    return {name: value for name, value in named.items() if value}


def _aspect_draft(
    name: str, key: str, value: str, ratio: tuple[int, int], size: tuple[int, int], *, gravity: str, api: bool
) -> _Draft:
    """Expand ``size`` (the rotated image) to ``ratio``: ``output_ratio`` if ``api``, else gravity offsets."""
    a, b = ratio
    width, height = size
    if near_ratio(width, height, a, b):
        raise _refuse(
            "plan.already_at_ratio",
            key,
            value,
            f"the {width}×{height} image already is {a}:{b} (within 1 px)",
        )
    canvas_w, canvas_h = ratio_canvas(width, height, a, b)
    if api:
        expansion: dict[str, Any] = {"output_ratio": f"{a}:{b}"}
    else:
        expansion = _offsets(*place(canvas_w - width, canvas_h - height, gravity))
    return _Draft(name, key, value, expansion, canvas_w, canvas_h)


def _expansion_drafts(
    meta: Mapping[str, str], ratio_key: str, size: tuple[int, int], gravity: str
) -> tuple[list[_Draft], list[str]]:
    """Drafts for the winning expansion mode (API priority ratio/size > scale > offsets) + warnings."""
    width, height = size
    offset_keys = [key for key in ("outpaint-offsets", *SIDE_KEYS) if key in meta]
    if ratio_key in meta or "outpaint-size" in meta:
        winner, losers = "ratio/size", [key for key in ("outpaint-scale", *offset_keys) if key in meta]
        ratios, sizes = _items(meta.get(ratio_key, "")), _items(meta.get("outpaint-size", ""))
        if len(ratios) + len(sizes) > MAX_VARIANTS:
            key = ratio_key if ratio_key in meta else "outpaint-size"
            raise _refuse(
                "plan.too_many_variants", key, meta[key], f"at most {MAX_VARIANTS} variants per upload"
            )
        drafts = []
        for text in ratios:
            a, b = _parse_ratio(ratio_key, text)
            api = (a, b) in API_RATIOS and gravity == "center"
            drafts.append(_aspect_draft(f"{a}x{b}", ratio_key, text, (a, b), size, gravity=gravity, api=api))
        for text in sizes:
            w, h = _parse_size("outpaint-size", text)
            draft = _aspect_draft(
                f"{w}x{h}", "outpaint-size", text, _reduce(w, h), size, gravity=gravity, api=False
            )
            if (draft.width, draft.height) != (w, h):
                draft.finish = Finish(width=w, height=h)
            drafts.append(draft)
    elif "outpaint-scale" in meta:
        winner, losers = "outpaint-scale", offset_keys
        sx, sy = _parse_scale("outpaint-scale", meta["outpaint-scale"])
        expansion = {name: s for name, s in (("x_scale", sx), ("y_scale", sy)) if s != MIN_SCALE}
        name = f"scale-{sx:g}" if sx == sy else f"scale-{sx:g}x{sy:g}"
        out = math.floor(width * sx + 0.5), math.floor(height * sy + 0.5)
        drafts = [_Draft(name, "outpaint-scale", meta["outpaint-scale"], expansion, *out)]
    else:
        winner, losers = "offsets", []
        (left, right, top, bottom), warnings = _parse_offsets(meta)
        value = ",".join(str(side) for side in (left, right, top, bottom))
        out = width + left + right, height + top + bottom
        expansion = _offsets(left, right, top, bottom)
        drafts = [
            _Draft("offsets", "offsets left,right,top,bottom", value, expansion, *out, warnings=warnings)
        ]
    warnings = [
        f"{key} ignored: {winner} takes priority (API order: ratio > scale > offsets)" for key in losers
    ]
    if "outpaint-gravity" in meta and winner in ("outpaint-scale", "offsets"):
        warnings.append(f"outpaint-gravity has no effect on {winner} (the API places those itself)")
    return drafts, warnings


def _check_image(facts: ImageFacts) -> list[str]:
    """Refuse images the API cannot take; return warnings for the ones it takes with a caveat."""
    fmt = facts.format.upper()
    warnings = []
    if fmt == "MPO":
        warnings.append("MPO (multi-picture JPEG): sent as JPEG, only the primary image is used")
    elif fmt not in SUPPORTED_FORMATS + tuple(FORMAT_ALIASES):
        raise _refuse(
            "plan.unsupported_format", "image format", facts.format, "expected JPEG, PNG, HEIF or WEBP"
        )
    elif facts.frames > 1:
        raise _refuse("plan.animated", "image frames", str(facts.frames), "animated images are not supported")
    if facts.size_bytes > MAX_FILE_BYTES:
        raise _refuse("plan.file_too_large", "image bytes", str(facts.size_bytes), f"limit {MAX_FILE_BYTES}")
    size = f"{facts.width}x{facts.height}"
    if min(facts.width, facts.height) < MIN_SIDE:
        raise _refuse("plan.image_too_small", "image size", size, f"each side must be ≥ {MIN_SIDE} px")
    if max(facts.width, facts.height) > MAX_SIDE:
        raise _refuse("plan.image_too_large", "image size", size, f"each side must be ≤ {MAX_SIDE} px")
    return warnings


def _check_limits(draft: _Draft, size: tuple[int, int], limit_image_size: bool) -> None:
    """Refuse a draft whose offsets or output aspect break an API limit."""
    width, height = size
    ex = draft.expansion
    pairs = (("left", "right", width, "width"), ("top", "bottom", height, "height"))
    for first, second, side, side_name in pairs:
        total = ex.get(f"{first}_offset", 0) + ex.get(f"{second}_offset", 0)
        if total >= OFFSET_FACTOR * side:
            raise _refuse(
                "plan.offsets_too_large",
                draft.key,
                draft.value,
                f"needs {first}+{second} = {total} px on a {width}×{height} (rotated) image; "
                f"the API requires < {OFFSET_FACTOR} × {side_name} = {OFFSET_FACTOR * side}",
            )
    if limit_image_size and (
        draft.width > MAX_ASPECT * draft.height or draft.height > MAX_ASPECT * draft.width
    ):
        raise _refuse(
            "plan.aspect_out_of_range",
            draft.key,
            draft.value,
            f"gives a {draft.width}×{draft.height} output; with limit_image_size the API keeps outputs "
            "within 1:4 … 4:1 (set outpaint-limit-size=false to lift it)",
        )


def _unknown_keys(meta: Mapping[str, str]) -> dict[str, str]:
    """Each unknown key of ``meta`` → a "did you mean" hint ("" when nothing is close)."""
    import difflib  # only for typo suggestions: kept off the handler's import path

    hints = {}
    for key in sorted(set(meta) - set(KEYS)):
        close = difflib.get_close_matches(key, KEYS, n=1, cutoff=0.85)
        hints[key] = f" (did you mean {close[0]}?)" if close else ""
    return hints


def _requested_drafts(
    meta: Mapping[str, str], defaults: PlanDefaults, size: tuple[int, int], gravity: str, angle: int
) -> tuple[list[_Draft], list[str]]:
    """Drafts for what the upload asks for (or the default ratio) and the warnings that go with them."""
    if any(key in meta for key in GEOMETRY_KEYS):
        return _expansion_drafts(meta, "outpaint-ratio", size, gravity)
    if angle in RIGHT_ANGLES:
        raise _refuse(
            "plan.rotation_only_right_angle",
            "outpaint-angle",
            str(angle),
            "the API refuses rotating by 90/180/270 without an expansion; add a ratio, scale or offsets",
        )
    if angle:
        return [_Draft(f"rotate-{angle}", "outpaint-angle", str(angle), {}, *size)], []
    drafts = []
    for text in _items(defaults.ratio or ""):
        try:
            drafts += _expansion_drafts({"default_ratio": text}, "default_ratio", size, gravity)[0]
        except PlanError as exc:
            if exc.code != "plan.already_at_ratio":  # the default is a policy: images already there pass
                raise
    return drafts, []


def _variants(
    drafts: list[_Draft], warnings: list[str], size: tuple[int, int], common: dict[str, Any]
) -> tuple[Variant, ...]:
    """Check each draft against the limits and turn it into a uniquely named Variant."""
    variants: dict[str, Variant] = {}
    for draft in drafts:
        _check_limits(draft, size, bool(common["limit_image_size"]))
        variant = Variant(
            name=draft.name,
            parameters={**common, **draft.expansion},
            output_width=draft.width,
            output_height=draft.height,
            finish=draft.finish,
            warnings=tuple(warnings + draft.warnings),
        )
        if variant.name in variants and variants[variant.name].digest() == variant.digest():
            continue  # the same request listed twice (e.g. 16:9 and 32:18)
        name, n = variant.name, 1
        while name in variants:
            n += 1
            name = f"{variant.name}-{n}"
        variants[name] = variant.model_copy(update={"name": name})
    return tuple(variants.values())


def plan_upload(meta: Mapping[str, str], facts: ImageFacts, defaults: PlanDefaults) -> Plan:
    """Turn an upload's metadata, the bucket defaults and the image facts into variants; raise PlanError."""
    meta = {key: value for key, value in outpaint_meta(meta).items() if value}  # blank means "not given"
    if _parse_bool(meta, "outpaint-skip", False):
        return Plan(variants=(), skipped="outpaint-skip is set")

    angle = _parse_angle(meta)
    gravity = _parse_gravity(meta, defaults.gravity)
    common: dict[str, Any] = {"angle": angle} if angle else {}
    common |= {
        "best_quality": _parse_bool(meta, "outpaint-best-quality", defaults.best_quality),
        "add_watermark": _parse_bool(meta, "outpaint-watermark", defaults.add_watermark),
        "limit_image_size": _parse_bool(meta, "outpaint-limit-size", defaults.limit_image_size),
    }
    hints = _unknown_keys(meta)
    if hints and len(hints) == len(meta):
        # Only misspelt keys: the upload asked for something, and doing the default instead would be a guess.
        named = "; ".join(f"{key}={meta[key]!r}: unknown key{hint}" for key, hint in hints.items())
        raise PlanError(f"{named}; nothing else was asked, so nothing is made", code="plan.unknown_keys")
    unknown = [f"unknown key {key} ignored{hint}" for key, hint in hints.items()]
    if not angle and defaults.ratio is None and not any(key in meta for key in GEOMETRY_KEYS):
        return Plan(variants=(), skipped="; ".join(["no expansion requested", *unknown]))

    warnings = unknown + _check_image(facts)
    size = rotated_size(facts.width, facts.height, angle)
    drafts, mode_warnings = _requested_drafts(meta, defaults, size, gravity, angle)
    if not drafts:
        return Plan(variants=(), skipped=f"image already has the default ratio {defaults.ratio}")
    verdicts = [(draft, None if angle else _negligible(draft, size, defaults)) for draft in drafts]
    negligible = [why for _draft, why in verdicts if why]
    if len(negligible) == len(drafts):
        return Plan(variants=(), skipped="; ".join(negligible), skip_code="plan.negligible_expansion")
    drafts = [draft for draft, why in verdicts if why is None]
    return Plan(variants=_variants(drafts, warnings + mode_warnings + negligible, size, common))


def _negligible(draft: _Draft, size: tuple[int, int], defaults: PlanDefaults) -> str | None:
    """Why ``draft`` is not worth a task (it adds almost nothing), or None. An exact size is never
    negligible: it was asked for as such."""
    width, height = size
    added_w, added_h = draft.width - width, draft.height - height
    exact_size = draft.finish is not None or draft.key == "outpaint-size"
    if exact_size or max(added_w / width, added_h / height) * 100 >= defaults.min_expansion_percent:
        return None
    return (
        f"{draft.key}={draft.value!r} adds only {added_w}×{added_h} px to {width}×{height} (under "
        f"{defaults.min_expansion_percent:g} % of a side): variant {draft.name} not made, a task costs "
        "the same however little it adds (OUTPAINT_MIN_EXPANSION_PERCENT)"
    )
