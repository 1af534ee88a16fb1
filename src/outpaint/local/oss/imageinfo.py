"""``x-oss-process=image/info``: image facts as OSS reports them, every value ``{"value": "<string>"}``."""

from __future__ import annotations

import json
from typing import BinaryIO

from .errors import OssError

# Pillow format name -> OSS's lower-case format name.
_FORMATS = {
    "JPEG": "jpg",
    "MPO": "jpg",
    "PNG": "png",
    "GIF": "gif",
    "BMP": "bmp",
    "WEBP": "webp",
    "TIFF": "tiff",
}
# EXIF tags OSS reports when present (tag id -> name).
_EXIF_TAGS = {0x0112: "Orientation", 0x0128: "ResolutionUnit", 0x011A: "XResolution", 0x011B: "YResolution"}


def describe(body: BinaryIO, size: int) -> bytes:
    """The image/info JSON document for an image body (400 for anything Pillow cannot identify)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(body) as image:
            facts = {
                "FileSize": size,
                "Format": _FORMATS.get(image.format or "", (image.format or "").lower()),
                "FrameCount": getattr(image, "n_frames", 1),
                "ImageHeight": image.height,
                "ImageWidth": image.width,
            }
            exif = image.getexif()
            facts.update({name: exif[tag] for tag, name in _EXIF_TAGS.items() if tag in exif})
    except (UnidentifiedImageError, OSError) as exc:
        raise OssError("InvalidArgument", "The object is not an image that can be processed.") from exc
    return json.dumps({name: {"value": _text(value)} for name, value in sorted(facts.items())}).encode()


def _text(value: object) -> str:
    # EXIF rationals (IFDRational) render as "72/1" the way OSS writes them.
    numerator, denominator = getattr(value, "numerator", None), getattr(value, "denominator", None)
    if numerator is not None and denominator is not None and not isinstance(value, int):
        return f"{numerator}/{denominator}"
    return str(value)
