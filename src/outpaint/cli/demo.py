"""`outpaint demo` (`make run`): the main job end to end on the local stack, no cloud account needed.

Starts the OSS emulator, the DashScope emulator and the FC runner on free ports, uploads the sample images
(drawn at run time, each with different ``outpaint-*`` metadata; or your own, ``--images DIR``) with plain
oss2, follows every job as the real handlers move it, then writes ``demo-output/``: the sources, the
results, ``index.html`` (a before/after gallery) and ``contact-sheet.png``. Exits 0 only when every good
upload is DONE with the planned geometry and the bad one is REJECTED with the expected reason.

``--dashscope real`` sends the tasks to the real, paid service (inputs through its temporary storage):
it prints the bill (tasks × price) first and buys nothing without ``--yes`` (exit 2).
"""

from __future__ import annotations

import argparse
import html
import io
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from outpaint.cli.local import PRICE_CNY, add_stack_arguments, config_from, parse_env, real_dashscope_url
from outpaint.local.logs import LogSink
from outpaint.local.samples import Sample, demo_samples, own_samples
from outpaint.local.stack import LocalStack

if TYPE_CHECKING:
    import oss2

    from outpaint.job import JobRecord
    from outpaint.plan import PlanDefaults
    from outpaint.store import JobStore

TERMINAL = ("DONE", "FAILED", "REJECTED", "EXPIRED", "SKIPPED")
LARGEST_TILE = 340  # pixels the largest image gets; every other image shares its scale
# What the demo writes under --out: the only entries it ever removes there.
OUTPUTS = ("sources", "results", "index.html", "contact-sheet.png", "stack.log")
MARKERS = ("index.html", "stack.log")  # a folder with one of these is an earlier demo's output
MAX_REAL_IMAGES = 10  # the hard cap of uploads per run against the real (paid) service


class OutDirError(Exception):
    """--out names a file, or a folder of other things the demo must not overwrite."""


def prepare_out(folder: Path) -> None:
    """Make ``folder`` ready for a run: remove what an earlier demo wrote there, and nothing else.

    A non-empty folder that does not look like a demo's output is refused (it is not ours to clear)."""
    if folder.exists() and not folder.is_dir():
        raise OutDirError(f"--out {folder} is a file, not a directory")
    if folder.is_dir() and any(folder.iterdir()) and not any((folder / m).exists() for m in MARKERS):
        raise OutDirError(
            f"--out {folder} is not empty and is not an earlier demo's output (no index.html or "
            "stack.log): choose a new or empty directory"
        )
    for name in OUTPUTS:
        path = folder / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    folder.mkdir(parents=True, exist_ok=True)


@dataclass
class Tracked:
    """One uploaded sample and the jobs the pipeline made of it."""

    sample: Sample
    key: str
    uploaded_at: float
    jobs: dict[str, JobRecord] = field(default_factory=dict)

    @property
    def settled(self) -> bool:
        return bool(self.jobs) and all(job.state.value in TERMINAL for job in self.jobs.values())


# --- following the jobs ---------------------------------------------------------------------------
def upload_all(bucket: oss2.Bucket, samples: list[Sample], prefix: str) -> list[Tracked]:
    tracked = []
    for sample in samples:
        key = f"{prefix}demo/{sample.name}"
        headers = {f"x-oss-meta-outpaint-{name}": value for name, value in sample.metadata.items()}
        bucket.put_object(key, sample.data, headers=headers)
        tracked.append(Tracked(sample, key, time.time()))
    return tracked


def refresh(store: JobStore, tracked: list[Tracked]) -> list[str]:
    """Reload every job of every source; returns one line per state change."""
    changes = []
    for item in tracked:
        for job_id in store.job_ids_for_source(item.key):
            before = item.jobs.get(job_id)
            if before is not None and before.state.value in TERMINAL:
                continue
            job = store.load(job_id)
            if job is None or (before is not None and before.state == job.state):
                continue
            item.jobs[job_id] = job
            was = before.state.value if before else "new"
            changes.append(
                f"  +{time.time() - item.uploaded_at:5.1f}s  {item.sample.name:<16} {job.variant_name:<9} "
                f"{was} -> {job.state.value}{_reason(job)}"
            )
    return changes


def _reason(job: JobRecord) -> str:
    return f"  ({job.error_code}: {job.error_message})" if job.error_code else ""


def follow(store: JobStore, tracked: list[Tracked], deadline: float, out: TextIO) -> None:
    """Print progress until every source is settled or ``deadline`` passes."""
    live = out.isatty()
    drawn = 0
    while time.time() < deadline:
        changes = refresh(store, tracked)
        if live:
            table = render_table(tracked, header=False)
            out.write(f"\x1b[{drawn}F\x1b[J" if drawn else "")
            out.write(table + "\n")
            drawn = table.count("\n") + 1
        else:
            for line in changes:
                out.write(line + "\n")
        out.flush()
        if all(item.settled for item in tracked):
            return
        time.sleep(0.25)


# --- checking and reporting -----------------------------------------------------------------------
def expected_size(job: JobRecord) -> tuple[int, int] | None:
    """The plan's final geometry: the local finish size when there is one, else the API output size."""
    if job.finish:
        return job.finish["width"], job.finish["height"]
    if job.output_width and job.output_height:
        return job.output_width, job.output_height
    return None


def actual_size(data: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return image.size


def check(item: Tracked, outputs: dict[str, bytes]) -> list[str]:
    """What is wrong with one source's outcome (empty: as expected)."""
    name, jobs = item.sample.name, list(item.jobs.values())
    if not jobs:
        return [f"{name}: no job was created"]
    if item.sample.rejected_code:
        codes = [job.error_code for job in jobs if job.state.value == "REJECTED"]
        if codes != [item.sample.rejected_code] or len(jobs) != 1:
            states = ", ".join(f"{j.state.value} {j.error_code or ''}".strip() for j in jobs)
            return [f"{name}: expected REJECTED {item.sample.rejected_code}, got {states}"]
        return []
    problems = []
    for job in jobs:
        if item.sample.own and job.state.value in ("REJECTED", "SKIPPED"):
            continue  # your image, refused by the plan: shown as a card with its reason
        if job.state.value != "DONE":
            problems.append(f"{name} [{job.variant_name}]: {job.state.value}{_reason(job)}")
            continue
        want, data = expected_size(job), outputs.get(job.job_id)
        got = actual_size(data) if data else None
        if got is None or got != want:
            problems.append(f"{name} [{job.variant_name}]: output {got}, planned {want}")
    return problems


def _seconds(job: JobRecord) -> str:
    ends = [entry.at for entry in job.history if entry.state.value in TERMINAL]
    return f"{ends[-1] - job.created_at:.1f}s" if ends else "-"


def _request(item: Tracked) -> str:
    return " ".join(f"{name}={value}" for name, value in item.sample.metadata.items())


def render_table(tracked: list[Tracked], *, header: bool = True) -> str:
    """source | request | variant | state | output size | time, one row per job."""
    rows = [("source", "request", "variant", "state", "output", "time")]
    for item in tracked:
        jobs = sorted(item.jobs.values(), key=lambda j: j.variant_name) or [None]
        for job in jobs:
            if job is None:
                rows.append((item.sample.name, _request(item), "-", "uploaded", "-", "-"))
                continue
            size = expected_size(job)
            output = f"{size[0]}x{size[1]}" if size and job.state.value == "DONE" else (job.error_code or "-")
            rows.append(
                (item.sample.name, _request(item), job.variant_name, job.state.value, output, _seconds(job))
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    if header:
        lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def download(bucket: oss2.Bucket, tracked: list[Tracked], folder: Path) -> dict[str, bytes]:
    """Save sources and results under ``folder``; returns the result bytes by job id."""
    outputs: dict[str, bytes] = {}
    (folder / "sources").mkdir(parents=True)
    (folder / "results").mkdir()
    for item in tracked:
        (folder / "sources" / item.sample.name).write_bytes(item.sample.data)
        for job in item.jobs.values():
            if job.state.value == "DONE" and job.output_key:
                data = bucket.get_object(job.output_key).read()
                outputs[job.job_id] = data
                (folder / "results" / Path(job.output_key).name).write_bytes(data)
    return outputs


def display_scale(tracked: list[Tracked]) -> float:
    """One scale for every image of the gallery and the sheet, so expansions are seen at true size."""
    sides = [max(item.sample.size) for item in tracked]
    sides += [max(size) for item in tracked for job in item.jobs.values() if (size := expected_size(job))]
    return LARGEST_TILE / max([*sides, 1])


def _scaled(size: tuple[int, int], scale: float) -> tuple[int, int]:
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def write_gallery(tracked: list[Tracked], folder: Path, price: float | None) -> None:
    """index.html: each source beside its results at one common scale, every thumbnail a link to the
    full-size image; per result the parameters sent, the task time and the cost (``price`` per image;
    None: the emulator, which costs nothing and paints stand-in pictures)."""
    scale = display_scale(tracked)
    rows = []
    for item in tracked:
        w, h = item.sample.size
        source = f"sources/{item.sample.name}"
        cells = [
            _figure(source, f"source {w}x{h}", item.sample.shows, _scaled(item.sample.size, scale))
            if w and h
            else f'<div class="refused"><a href="{html.escape(source)}">source</a>: not an image</div>'
        ]
        for job in sorted(item.jobs.values(), key=lambda j: j.variant_name):
            size = expected_size(job)
            if job.state.value == "DONE" and job.output_key and size:
                cost = f"{price:.2f} CNY" if price is not None else "0 (emulated)"
                caption = f"{size[0]}x{size[1]} in {_seconds(job)}, cost {cost}"
                src = f"results/{Path(job.output_key).name}"
                sent = json.dumps(job.parameters, sort_keys=True, separators=(",", ":"))
                box = original_box(job, item.sample.size)
                if box:
                    caption += f", {1 - box[2] * box[3]:.0%} generated"
                before = f"sources/{item.sample.name}" if box and not job.parameters.get("angle") else ""
                cells.append(
                    _figure(
                        src,
                        job.variant_name,
                        caption,
                        _scaled(size, scale),
                        sent=sent,
                        box=box,
                        before=before,
                    )
                )
            else:
                cells.append(
                    f'<div class="refused"><b>{html.escape(job.state.value)}</b><br>'
                    f"{html.escape(job.error_code or '')}<br>{html.escape(job.error_message or '')}</div>"
                )
        rows.append(
            f"<section><h2>{html.escape(item.sample.name)} <code>{html.escape(_request(item))}</code>"
            f'</h2><div class="row">{"".join(cells)}</div></section>'
        )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>outpaint demo</title><link rel="icon" href="data:,">
<style>
body {{ font: 14px system-ui, sans-serif; background: #1d1f24; color: #e8e8e8; margin: 24px; }}
h1 {{ font-weight: 600; }} h2 {{ font-size: 15px; margin: 18px 0 8px; }}
code {{ color: #9fd3ff; font-weight: normal; margin-left: 8px; }}
.row {{ display: flex; gap: 16px; align-items: flex-end; flex-wrap: wrap; }}
figure {{ margin: 0; }} figure img {{ border: 1px solid #444; display: block; }}
figcaption {{ color: #aaa; font-size: 12px; max-width: 360px; }}
.refused {{ border: 1px dashed #d66; color: #f99; padding: 12px; max-width: 320px; }}
.sent {{ color: #8c8; font-size: 11px; word-break: break-all; display: block; }}
.frame {{ position: relative; display: inline-block; line-height: 0; }}
.box {{ position: absolute; outline: 2px dashed #ffd479; pointer-events: none; }}
.before {{ position: absolute; opacity: 0; transition: opacity .2s; border: 0 !important; }}
.frame:hover .before {{ opacity: 1; }}
.emulated {{ background: #4a3b12; color: #ffd479; padding: 8px 12px; }}
.real {{ background: #173a24; color: #9be7b4; padding: 8px 12px; }}
</style></head><body>
<h1>outpaint demo: before → after</h1>
<p class="{"real" if price is not None else "emulated"}">{_LABELS[price is not None]}</p>
<p>Each source on the left, its out-painted results on the right, all at the same scale, driven by the same
handlers that run in Function Compute. The dashed box is where the original sits (the rest was generated);
hover a result to see the original in place (before/after); click a picture for its full size.</p>
{"".join(rows)}
</body></html>
"""
    (folder / "index.html").write_text(page, encoding="utf-8")


_LABELS = {
    False: "EMULATED results: the DashScope emulator fills the new area with a mirrored, blurred copy of "
    "the picture (right geometry, stand-in pixels). Run `outpaint demo --dashscope real` for the real model.",
    True: "Results by the real DashScope image-out-painting model.",
}


Box = tuple[float, float, float, float]


def original_box(job: JobRecord, source: tuple[int, int]) -> Box | None:
    """Where the (rotated) source sits in the API's output: (left, top, width, height) as fractions.

    Offsets place it exactly; ratio and scale expansions centre it (the emulator's rule; the service does
    not document its placement). A local finish resizes the whole canvas, so fractions still hold."""
    from outpaint.plan import rotated_size

    p, out_w, out_h = job.parameters, job.output_width, job.output_height
    if not out_w or not out_h or 0 in source:
        return None
    w, h = rotated_size(source[0], source[1], int(p.get("angle", 0)))
    by_offsets = not p.get("output_ratio") and max(p.get("x_scale", 1), p.get("y_scale", 1)) <= 1
    left = p.get("left_offset", 0) if by_offsets else (out_w - w) / 2
    top = p.get("top_offset", 0) if by_offsets else (out_h - h) / 2
    return left / out_w, top / out_h, w / out_w, h / out_h


def _figure(
    src: str,
    title: str,
    caption: str,
    size: tuple[int, int],
    *,
    sent: str = "",
    box: Box | None = None,
    before: str = "",
) -> str:
    """One picture linking to its full size; with ``box``, the original's place drawn on it, and with
    ``before``, the source shown there on hover (before/after)."""
    link = html.escape(src)
    extra = f'<code class="sent">{html.escape(sent)}</code>' if sent else ""
    overlay = ""
    if box:
        place = "left:{:.2%};top:{:.2%};width:{:.2%};height:{:.2%}".format(*box)
        if before:
            overlay += f'<img class="before" src="{html.escape(before)}" alt="before" style="{place}">'
        overlay += f'<span class="box" style="{place}" title="the original"></span>'
    return (
        f'<figure><a class="frame" href="{link}"><img src="{link}" alt="{html.escape(title)}" '
        f'width="{size[0]}" height="{size[1]}">{overlay}</a><figcaption><b>{html.escape(title)}</b> '
        f"{html.escape(caption)}{extra}</figcaption></figure>"
    )


def write_contact_sheet(tracked: list[Tracked], outputs: dict[str, bytes], path: Path) -> None:
    """One PNG: a row per source, the source first, then its results, labelled, at one common scale."""
    from PIL import Image, ImageDraw, ImageFont

    scale, pad, label_h = display_scale(tracked), 12, 24
    font = ImageFont.load_default(size=14)
    rows = []
    for item in tracked:
        readable = item.sample.data if item.sample.size != (0, 0) else b""
        tiles = [(readable, f"{item.sample.name} (source)", _scaled(item.sample.size, scale))]
        for job in sorted(item.jobs.values(), key=lambda j: j.variant_name):
            size = _scaled(expected_size(job) or item.sample.size, scale)
            data = outputs.get(job.job_id, b"")
            label = f"{job.variant_name}: {job.state.value}" + ("" if data else f" {job.error_code}")
            tiles.append((data, label, size))
        rows.append(tiles)
    width = max(sum(size[0] + pad for _, _, size in tiles) for tiles in rows) + pad
    heights = [max(size[1] for _, _, size in tiles) + label_h + pad for tiles in rows]
    sheet = Image.new("RGB", (max(width, 420), sum(heights) + pad), "#1d1f24")
    draw = ImageDraw.Draw(sheet)
    y = pad
    for tiles, row_height in zip(rows, heights, strict=True):
        x, bottom = pad, y + row_height - label_h - pad
        for data, label, size in tiles:
            top = bottom - size[1]
            if data:
                with Image.open(io.BytesIO(data)) as image:
                    sheet.paste(image.convert("RGB").resize(size, Image.Resampling.LANCZOS), (x, top))
            else:
                draw.rectangle((x, top, x + size[0], bottom), outline="#d66")
            draw.text((x, bottom + 4), label, fill="#e8e8e8", font=font)
            x += size[0] + pad
        y += row_height
    sheet.save(path)


# --- command --------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="outpaint demo", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path("demo-output"), help="where to write (default %(default)s)"
    )
    parser.add_argument(
        "--timeout", type=float, help="give up after SECONDS (default 80; 600 with --dashscope real)"
    )
    parser.add_argument("--images", type=Path, metavar="DIR", help="upload your own images from DIR instead")
    parser.add_argument(
        "--meta",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="outpaint-* metadata for every --images upload (repeatable), e.g. ratio=16:9",
    )
    parser.add_argument("--limit", type=int, metavar="N", help="upload at most N images")
    parser.add_argument(
        "--price",
        type=float,
        default=PRICE_CNY,
        metavar="CNY",
        help="price per generated image for the bill (default %(default)s)",
    )
    parser.add_argument("--yes", action="store_true", help="with --dashscope real: buy the tasks of the bill")
    add_stack_arguments(parser)
    parser.set_defaults(task_seconds="1-3", tick_every=1.0)
    return parser


def run(args: argparse.Namespace, out: TextIO) -> int:
    import oss2

    from outpaint.app import open_store, static_credentials

    started = time.time()
    real = real_dashscope_url(args) is not None
    try:
        samples = choose_samples(args)
        if real:
            confirm_purchase(args, samples, out)
        prepare_out(args.out)
    except (OutDirError, DemoRefused) as exc:
        print(f"outpaint demo: {exc}", file=sys.stderr)
        return 2
    timeout = args.timeout or (600.0 if real else 80.0)
    with (
        # An invocation still running past the stop's grace may spool into the throwaway data dir while
        # it is removed: that must not turn a finished demo into a crash.
        tempfile.TemporaryDirectory(prefix="outpaint-demo-", ignore_cleanup_errors=True) as data_dir,
        (args.out / "stack.log").open("w", encoding="utf-8") as log_file,
    ):
        config = config_from(args, data_dir=Path(data_dir), oss_port=0, dashscope_port=0, seed=0)
        with LocalStack(config, LogSink(log_file)) as stack:
            settings = stack.settings()
            credentials = static_credentials(settings)
            assert credentials is not None
            store = open_store(settings, credentials)
            bucket = oss2.Bucket(
                oss2.Auth(credentials.access_key_id, credentials.access_key_secret),
                stack.oss_endpoint,
                settings.bucket,
            )
            service = "real DashScope" if real else "DashScope emulator"
            out.write(
                f"outpaint demo: local stack up in {time.time() - started:.1f}s (OSS {stack.oss_endpoint}, "
                f"{service} {stack.dashscope_base_url}, logs in {args.out / 'stack.log'})\n"
            )
            out.write(
                f"uploading {len(samples)} samples to {settings.bucket}/{settings.input_prefix}demo/ ...\n"
            )
            tracked = upload_all(bucket, samples, settings.input_prefix)
            follow(store, tracked, started + timeout, out)
            outputs = download(bucket, tracked, args.out)
    write_gallery(tracked, args.out, args.price if real else None)
    write_contact_sheet(tracked, outputs, args.out / "contact-sheet.png")
    out.write("\n" + render_table(tracked) + "\n\n")
    problems = [problem for item in tracked for problem in check(item, outputs)]
    gallery = (args.out / "index.html").resolve()
    out.write(f"wrote {args.out}/: sources/, results/, index.html (file://{gallery}), contact-sheet.png\n")
    if problems:
        out.write("demo FAILED:\n" + "".join(f"  - {p}\n" for p in problems))
        return 1
    good = sum(job.state.value == "DONE" for item in tracked for job in item.jobs.values())
    refused = sum(not any(job.state.value == "DONE" for job in item.jobs.values()) for item in tracked)
    out.write(
        f"demo OK in {time.time() - started:.1f}s: {good} results with the planned geometry, "
        f"{refused} upload(s) refused as expected\n"
    )
    return 0


class DemoRefused(Exception):
    """The run would not do what was asked (bad --images, over the cap, no key, no --yes)."""


def choose_samples(args: argparse.Namespace) -> list[Sample]:
    """The demo's own scenes, or the images of ``--images`` with ``--meta``; at most ``--limit``.

    Also refuses flags that make no sense together (DemoRefused)."""
    if args.limit is not None and args.limit < 1:
        raise DemoRefused(f"--limit must be at least 1, got {args.limit}")
    if args.price < 0:
        raise DemoRefused(f"--price must not be negative, got {args.price}")
    if args.meta and args.images is None:
        raise DemoRefused("--meta applies to --images only (the demo's own scenes carry their metadata)")
    if args.images is None:
        samples = demo_samples()
    else:
        try:
            samples = own_samples(args.images, parse_env(args.meta, flag="--meta"))
        except (OSError, ValueError) as exc:
            raise DemoRefused(f"--images {args.images}: {exc}") from None
    return samples[: args.limit] if args.limit else samples


def planned_tasks(samples: list[Sample], defaults: PlanDefaults) -> int:
    """How many DashScope tasks the uploads will create (the planner's variants; refusals buy none)."""
    from outpaint.errors import OutpaintError
    from outpaint.naming import outpaint_meta
    from outpaint.plan import plan_upload
    from outpaint.probe import image_facts

    tasks = 0
    for sample in samples:
        try:
            meta = outpaint_meta({f"outpaint-{name}": value for name, value in sample.metadata.items()})
            plan = plan_upload(meta, image_facts(sample.data, len(sample.data)), defaults)
        except OutpaintError:
            continue
        tasks += len(plan.variants)
    return tasks


def confirm_purchase(args: argparse.Namespace, samples: list[Sample], out: TextIO) -> None:
    """Print the bill of a real run; DemoRefused unless it is within the cap, a key is set and --yes."""
    from outpaint.config import load_settings

    if len(samples) > MAX_REAL_IMAGES:
        raise DemoRefused(
            f"{len(samples)} images: a run against the real service takes at most {MAX_REAL_IMAGES} "
            "(pass --limit)"
        )
    if not os.environ.get("DASHSCOPE_API_KEY"):
        raise DemoRefused("--dashscope real needs DASHSCOPE_API_KEY (a Model Studio key, Beijing)")
    env = {
        k.removeprefix("OUTPAINT_").lower(): v
        for k, v in parse_env(args.env).items()
        if k.startswith("OUTPAINT_")
    }
    defaults = load_settings(bucket="outpaint-local", **env).plan_defaults()
    tasks = planned_tasks(samples, defaults)
    out.write(
        f"bill: {len(samples)} image(s) -> {tasks} task(s) x {args.price:.2f} CNY = "
        f"{tasks * args.price:.2f} CNY at DashScope (image-out-painting); inputs go to its temporary "
        "storage (kept 48 h)\n"
    )
    out.flush()
    if not args.yes:
        raise DemoRefused("nothing was bought: pass --yes to buy these tasks")


def main(command: str, argv: Sequence[str]) -> int:
    """`outpaint demo [flags]`."""
    return run(build_parser().parse_args(argv), sys.stdout)
