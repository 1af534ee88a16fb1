"""`outpaint plan IMAGE_FILE --meta outpaint-ratio=21:9 [--meta ...] [--json]`: a dry run of the planner.

Reads the image with Pillow and prints the variants the pipeline would submit (API parameters, expected
output size, local finishing, warnings) or the refusal (code and message, exit status 1). Needs no bucket
or API key: plan defaults come from the flags, else from the OUTPAINT_* environment, else built-in.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from outpaint.cli.ops_common import fail
from outpaint.errors import ConfigError, ImageProbeError, PlanError
from outpaint.naming import META_PREFIX, USER_META_HEADER
from outpaint.plan import ImageFacts, Plan, PlanDefaults, plan_upload

if TYPE_CHECKING:
    pass


def _env_defaults() -> PlanDefaults:
    """Defaults from the OUTPAINT_* environment, parsed by Settings itself; no bucket is needed for that."""
    from outpaint.config import load_settings

    return load_settings(bucket=os.environ.get("OUTPAINT_BUCKET") or "unused-by-plan").plan_defaults()


class _FileReader:
    """A local file as the probe's byte-range reader (no OSS ``image/info`` fallback)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def get_bytes(self, key: str, byte_range: tuple[int, int] | None = None) -> bytes:
        with self.path.open("rb") as file:
            if byte_range is None:
                return file.read()
            file.seek(byte_range[0])
            return file.read(byte_range[1] - byte_range[0] + 1)

    def image_info(self, key: str) -> dict[str, Any] | None:
        return None


def probe_file(path: Path) -> ImageFacts:
    """Format, size, frame count and mode of an image file: the pipeline's own probe, on a local file."""
    from outpaint.probe import probe_image

    try:
        return probe_image(_FileReader(path), str(path), path.stat().st_size)
    except OSError as exc:
        raise ImageProbeError(f"{path}: {exc.strerror or exc}") from None
    except ImageProbeError as exc:
        raise ImageProbeError(f"{path}: {exc.message}", code=exc.code) from None


def _meta_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key = key.strip().lower()
    if not key.startswith((META_PREFIX, USER_META_HEADER)):
        key = META_PREFIX + key  # `--meta ratio=16:9` is shorthand for `--meta outpaint-ratio=16:9`
    return key, value


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Dry run: the variants (or the refusal) an image and its metadata produce."
    )
    parser.add_argument("image", type=Path, metavar="IMAGE_FILE")
    parser.add_argument(
        "--meta",
        type=_meta_pair,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="upload metadata, e.g. outpaint-ratio=21:9 (repeatable; the outpaint- prefix may be left out)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    defaults = parser.add_argument_group("plan defaults (override OUTPAINT_* environment variables)")
    defaults.add_argument("--default-ratio", help="ratio used when the metadata asks for no expansion")
    defaults.add_argument("--default-gravity", help="gravity used when the metadata names none")
    for flag, field in (
        ("best-quality", "best_quality"),
        ("watermark", "add_watermark"),
        ("limit-size", "limit_image_size"),
    ):
        defaults.add_argument(
            f"--{flag}", dest=field, action=argparse.BooleanOptionalAction, help=f"default API {field}"
        )
    return parser


def _report(image: Path, facts: ImageFacts, plan: Plan) -> dict[str, Any]:
    return {
        "image": {"path": str(image), **asdict(facts)},
        "skipped": plan.skipped,
        "variants": [
            {**variant.model_dump(mode="json"), "digest": variant.digest()} for variant in plan.variants
        ],
    }


def _print_text(report: dict[str, Any]) -> None:
    facts = report["image"]
    print(
        f"{facts['path']}: {facts['format']} {facts['width']}×{facts['height']}, "
        f"{facts['size_bytes']} bytes, {facts['frames']} frame(s)"
    )
    if report["skipped"]:
        print(f"skipped: {report['skipped']}")
    for variant in report["variants"]:
        print(f"\nvariant {variant['name']}")
        print(f"  parameters: {json.dumps(variant['parameters'], sort_keys=True)}")
        print(f"  API output: {variant['output_width']}×{variant['output_height']}")
        if variant["finish"]:
            print(f"  finish:     resize to {variant['finish']['width']}×{variant['finish']['height']}")
        for warning in variant["warnings"]:
            print(f"  warning:    {warning}")


def main(command: str, argv: Sequence[str]) -> int:
    """Run `outpaint plan`; 0 = planned or skipped, 1 = refused, 2 = bad usage, image or settings."""
    args = build_parser(f"outpaint {command}").parse_args(list(argv))
    try:
        defaults = _env_defaults()
        overrides = {
            "ratio": args.default_ratio,
            "gravity": args.default_gravity,
            "best_quality": args.best_quality,
            "add_watermark": args.add_watermark,
            "limit_image_size": args.limit_image_size,
        }
        defaults = PlanDefaults(
            **{**defaults.model_dump(), **{k: v for k, v in overrides.items() if v is not None}}
        )
        facts = probe_file(args.image)
    except (ConfigError, ImageProbeError) as exc:
        return fail(command, f"{exc.code}: {exc.message}", 2, code=exc.code, as_json=args.json)
    except ValueError as exc:  # PlanDefaults validation (a bad --default-gravity)
        return fail(command, f"invalid defaults: {exc}", 2, code="plan.bad_defaults", as_json=args.json)
    try:
        plan = plan_upload(dict(args.meta), facts, defaults)
    except PlanError as exc:
        return fail(command, f"refused: {exc.code}: {exc.message}", 1, code=exc.code, as_json=args.json)
    report = _report(args.image, facts, plan)
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        _print_text(report)
    return 0
