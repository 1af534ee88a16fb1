"""Real images for tests, made with Pillow."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw


def photo(width: int = 1000, height: int = 800, fmt: str = "JPEG", mode: str = "RGB") -> bytes:
    """A deterministic picture with structure (gradient, shapes) encoded as ``fmt``."""
    image = Image.linear_gradient("L").resize((width, height)).convert(mode if mode != "RGB" else "L")
    image = (
        Image.merge("RGB", (image, image.transpose(Image.Transpose.ROTATE_180), image))
        if mode == "RGB"
        else image
    )
    draw = ImageDraw.Draw(image)
    draw.ellipse(
        (width // 4, height // 4, 3 * width // 4, 3 * height // 4),
        outline=(200, 30, 30) if mode == "RGB" else 0,
        width=12,
    )
    out = io.BytesIO()
    image.save(out, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return out.getvalue()


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size
