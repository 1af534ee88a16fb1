"""The demo's sample images, drawn with Pillow at run time (no bundled files, nothing to license).

Scenes with structure the out-painter has to continue: a mountain lake, a studio product shot, a city
skyline, a fruit bowl, a lighthouse coast. Each sample carries the metadata that exercises one part of
the plan language; one carries a deliberately bad value and must be refused. ``own_samples`` reads a
user's folder of images instead.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

Color = tuple[int, int, int]


@dataclass(frozen=True)
class Sample:
    """One upload of the demo: object name, encoded image, ``outpaint-*`` metadata and what it shows."""

    name: str
    data: bytes
    metadata: dict[str, str]
    shows: str
    rejected_code: str | None = None  # the refusal expected instead of a result
    size: tuple[int, int] = field(default=(0, 0))
    own: bool = False  # a user's image (--images): a refusal is a result to show, not a demo failure


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif")


def own_samples(folder: Path, metadata: Mapping[str, str]) -> list[Sample]:
    """Every image file of ``folder`` (by name), each with ``metadata``; ValueError when there is none.

    Files Pillow cannot read are kept: the pipeline refuses them, and the gallery shows why."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in the folder")
    samples = []
    for path in files:
        data = path.read_bytes()
        try:
            with Image.open(io.BytesIO(data)) as image:
                size = image.size
        except (OSError, ValueError):
            size = (0, 0)
        samples.append(Sample(path.name, data, dict(metadata), "your image", None, size, own=True))
    return samples


def _rng(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 - scenery, not secrets


def _gradient(size: tuple[int, int], top: Color, bottom: Color) -> Image.Image:
    height = size[1]
    column = Image.new("RGB", (1, height))
    for y in range(height):
        t = y / max(height - 1, 1)
        column.putpixel((0, y), tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    return column.resize(size)


def _ridge(rng: random.Random, width: int, base: int, amplitude: int, steps: int) -> list[tuple[int, int]]:
    points = [(0, base)]
    for i in range(1, steps + 1):
        points.append((width * i // steps, base - rng.randint(0, amplitude)))
    return points


def mountain_lake(width: int, height: int, seed: int = 1) -> Image.Image:
    """Dusk sky, sun, three mountain ranges, pines and their reflection in a lake."""
    rng = _rng(seed)
    horizon = int(height * 0.62)
    image = _gradient((width, horizon), (38, 64, 139), (250, 176, 110))
    draw = ImageDraw.Draw(image)
    sun = (int(width * 0.68), int(horizon * 0.62), int(height * 0.07))
    draw.ellipse((sun[0] - sun[2], sun[1] - sun[2], sun[0] + sun[2], sun[1] + sun[2]), fill=(255, 226, 150))
    for shade, base, amplitude in (
        ((96, 86, 130), 0.85, 0.55),
        ((64, 62, 98), 0.95, 0.4),
        ((34, 48, 52), 1.0, 0.2),
    ):
        ridge = _ridge(rng, width, int(horizon * base), int(horizon * amplitude), rng.randint(7, 12))
        draw.polygon([*ridge, (width, horizon), (0, horizon)], fill=shade)
    for _ in range(28):
        x, tall = rng.randint(0, width), rng.randint(height // 18, height // 8)
        draw.polygon(
            [(x, horizon - tall), (x - tall // 4, horizon), (x + tall // 4, horizon)], fill=(18, 38, 30)
        )
    scene = Image.new("RGB", (width, height))
    scene.paste(image, (0, 0))
    reflection = image.transpose(Image.Transpose.FLIP_TOP_BOTTOM).crop((0, 0, width, height - horizon))
    water = Image.blend(reflection, Image.new("RGB", reflection.size, (20, 40, 70)), 0.45)
    scene.paste(water.filter(ImageFilter.GaussianBlur(2)), (0, horizon))
    ripples = ImageDraw.Draw(scene)
    for _ in range(60):
        x, y = rng.randint(0, width), rng.randint(horizon + 4, height)
        ripples.line((x, y, x + rng.randint(20, 90), y), fill=(200, 210, 230), width=1)
    return scene


def product_shot(width: int, height: int, body: Color = (196, 120, 160), seed: int = 2) -> Image.Image:
    """A perfume bottle on a studio sweep: soft backdrop, floor shadow, glass highlight and a label."""
    image = _gradient((width, height), (236, 232, 228), (196, 190, 184))
    cx, floor = width // 2, int(height * 0.82)
    bottle_w, bottle_h = int(width * 0.26), int(height * 0.48)
    shadow = Image.new("L", (width, height), 0)
    ImageDraw.Draw(shadow).ellipse((cx - bottle_w, floor - 18, cx + bottle_w, floor + 26), fill=150)
    image.paste((90, 84, 80), (0, 0), shadow.filter(ImageFilter.GaussianBlur(18)))
    draw = ImageDraw.Draw(image)
    top = floor - bottle_h
    draw.rounded_rectangle(
        (cx - bottle_w // 2, top, cx + bottle_w // 2, floor), radius=bottle_w // 6, fill=body
    )
    draw.rounded_rectangle(
        (cx - bottle_w // 2 + 14, top + 14, cx - bottle_w // 2 + 30, floor - 20),
        radius=8,
        fill=(250, 236, 244),
    )
    neck_w = bottle_w // 4
    draw.rectangle((cx - neck_w // 2, top - bottle_h // 10, cx + neck_w // 2, top), fill=(210, 190, 140))
    draw.rounded_rectangle(
        (cx - neck_w, top - bottle_h // 4, cx + neck_w, top - bottle_h // 10), radius=10, fill=(40, 36, 40)
    )
    label = (cx - bottle_w // 3, top + bottle_h // 3, cx + bottle_w // 3, top + bottle_h // 2)
    draw.rectangle(label, fill=(248, 244, 236), outline=(120, 100, 60), width=3)
    draw.text((label[0] + 10, label[1] + 8), f"No.{seed}", fill=(80, 60, 40))
    return image


def city_skyline(width: int, height: int, seed: int = 3) -> Image.Image:
    """Towers with lit windows against a dusk sky, a moon and a river bank."""
    rng = _rng(seed)
    image = _gradient((width, height), (20, 24, 60), (232, 120, 90))
    draw = ImageDraw.Draw(image)
    draw.ellipse((width * 0.15, height * 0.08, width * 0.15 + 60, height * 0.08 + 60), fill=(246, 240, 220))
    ground = int(height * 0.86)
    x = -rng.randint(0, 40)
    while x < width:
        tower_w, tower_h = rng.randint(width // 10, width // 5), rng.randint(height // 4, int(height * 0.7))
        shade = rng.randint(24, 60)
        draw.rectangle((x, ground - tower_h, x + tower_w, ground), fill=(shade, shade, shade + 18))
        for wy in range(ground - tower_h + 12, ground - 12, 22):
            for wx in range(x + 8, x + tower_w - 10, 16):
                if rng.random() < 0.45:
                    draw.rectangle((wx, wy, wx + 7, wy + 10), fill=(255, 214, 120))
        x += tower_w + rng.randint(2, 12)
    draw.rectangle((0, ground, width, height), fill=(26, 30, 44))
    return image


def fruit_bowl(width: int, height: int, seed: int = 4) -> Image.Image:
    """A bowl of fruit on a wooden table against a wall."""
    rng = _rng(seed)
    table = int(height * 0.6)
    image = _gradient((width, height), (214, 200, 170), (150, 110, 70))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, table, width, height), fill=(120, 78, 44))
    for y in range(table + 10, height, 26):
        draw.line((0, y, width, y + rng.randint(-6, 6)), fill=(98, 62, 34), width=3)
    cx, cy, bw = width // 2, int(height * 0.68), int(width * 0.34)
    for _ in range(9):
        r = rng.randint(height // 14, height // 9)
        fx, fy = cx + rng.randint(-bw // 2, bw // 2), cy - rng.randint(r // 2, int(r * 1.6))
        color = rng.choice([(214, 40, 40), (240, 170, 30), (120, 170, 40), (150, 40, 110)])
        draw.ellipse((fx - r, fy - r, fx + r, fy + r), fill=color, outline=(60, 30, 20), width=2)
        draw.ellipse((fx - r // 2, fy - r // 2, fx - r // 5, fy - r // 5), fill=(255, 240, 220))
    draw.chord(
        (cx - bw, cy - bw // 3, cx + bw, cy + bw // 2), 0, 180, fill=(230, 232, 236), outline=(90, 90, 100)
    )
    return image


def lighthouse(width: int, height: int, seed: int = 5) -> Image.Image:
    """A striped lighthouse on a cliff above the sea."""
    rng = _rng(seed)
    horizon = int(height * 0.55)
    image = _gradient((width, height), (120, 180, 230), (210, 232, 246))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, horizon, width, height), fill=(34, 92, 140))
    for _ in range(50):
        x, y = rng.randint(0, width), rng.randint(horizon + 6, height)
        draw.arc((x, y, x + 40, y + 12), 200, 340, fill=(220, 236, 250), width=2)
    cliff = [
        (0, height),
        (0, int(height * 0.62)),
        (int(width * 0.5), int(height * 0.66)),
        (int(width * 0.62), height),
    ]
    draw.polygon(cliff, fill=(96, 82, 60))
    base_x, base_y, tower_h = int(width * 0.26), int(height * 0.64), int(height * 0.42)
    top_y = base_y - tower_h
    draw.polygon(
        [(base_x - 40, base_y), (base_x + 40, base_y), (base_x + 24, top_y), (base_x - 24, top_y)],
        fill=(245, 245, 240),
    )
    for i in range(1, 5, 2):
        y0, y1 = base_y - tower_h * i // 5, base_y - tower_h * (i + 1) // 5
        draw.rectangle((base_x - 40, y1, base_x + 40, y0), fill=(200, 40, 40))
    draw.rectangle(
        (base_x - 30, top_y - 34, base_x + 30, top_y), fill=(250, 230, 120), outline=(40, 40, 40), width=3
    )
    draw.polygon(
        [(base_x - 36, top_y - 34), (base_x + 36, top_y - 34), (base_x, top_y - 70)], fill=(40, 40, 40)
    )
    return image


def _encode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    options = {"JPEG": {"quality": 90}, "WEBP": {"quality": 90}}.get(fmt, {})
    image.save(out, format=fmt, **options)
    return out.getvalue()


def _sample(
    name: str,
    draw: Callable[[int, int], Image.Image],
    size: tuple[int, int],
    fmt: str,
    *,
    meta: dict[str, str],
    shows: str,
    rejected_code: str | None = None,
) -> Sample:
    return Sample(name, _encode(draw(*size), fmt), meta, shows, rejected_code, size)


def demo_samples() -> list[Sample]:
    """The demo's uploads: varied scenes, sizes, orientations and formats, one per metadata feature."""
    tilted = lambda w, h: mountain_lake(w, h, seed=9)  # noqa: E731
    gift = lambda w, h: product_shot(w, h, body=(90, 150, 200), seed=7)  # noqa: E731
    return [
        _sample(
            "alpine-lake.jpg",
            mountain_lake,
            (1024, 640),
            "JPEG",
            meta={"ratio": "16:9"},
            shows="API ratio 16:9",
        ),
        _sample(
            "perfume.png",
            product_shot,
            (768, 768),
            "PNG",
            meta={"ratio": "2:1", "gravity": "west"},
            shows="arbitrary ratio 2:1, original on the west side",
        ),
        _sample(
            "skyline.jpg",
            city_skyline,
            (640, 960),
            "JPEG",
            meta={"size": "1080x1350"},
            shows="exact size 1080x1350 from a portrait source",
        ),
        _sample(
            "fruit-bowl.webp",
            fruit_bowl,
            (900, 700),
            "WEBP",
            meta={"scale": "1.5"},
            shows="scale 1.5 (a WEBP upload)",
        ),
        _sample(
            "lighthouse.jpg",
            lighthouse,
            (720, 900),
            "JPEG",
            meta={"offsets": "160,160,360,0"},
            shows="offsets: sky above, room at the sides",
        ),
        _sample(
            "tilted-lake.jpg",
            tilted,
            (960, 720),
            "JPEG",
            meta={"angle": "6", "ratio": "4:3"},
            shows="rotate 6 degrees, then expand to 4:3",
        ),
        _sample(
            "gift.png",
            gift,
            (900, 600),
            "PNG",
            meta={"ratio": "16:9,1:1", "size": "1200x628"},
            shows="three variants: 16:9, 1:1 and 1200x628",
        ),
        _sample(
            "bad-scale.jpg",
            city_skyline,
            (800, 600),
            "JPEG",
            meta={"scale": "5"},
            shows="a deliberately bad value: scale 5 (the limit is 3)",
            rejected_code="plan.scale_out_of_range",
        ),
    ]
