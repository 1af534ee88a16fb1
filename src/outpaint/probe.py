"""Image facts of an uploaded object, read through a byte-range reader: geometry, format, frames, and
whether the file is complete (an interrupted upload is refused before any money is spent).

Pillow is imported on first use so that importing the handler stays cheap.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any, Protocol

from outpaint.errors import ImageProbeError
from outpaint.plan import MAX_FILE_BYTES, ImageFacts

PROBE_BYTES = 256 * 1024
# Inputs above the API's 10 MB limit are refused by the plan; the probe never reads more than this.
PROBE_MAX_BYTES = MAX_FILE_BYTES + 1
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
JPEG_END = b"\xff\xd9"
_OSS_FORMATS = {"jpg": "JPEG", "jpeg": "JPEG", "heic": "HEIF", "heif": "HEIF"}


class ByteRangeReader(Protocol):
    """What the probe reads objects with (``oss.Storage`` is one)."""

    def get_bytes(self, key: str, byte_range: tuple[int, int] | None = None) -> bytes: ...

    def image_info(self, key: str) -> dict[str, Any] | None: ...


def probe_image(reader: ByteRangeReader, key: str, size: int) -> ImageFacts:
    """Width, height, format and frame count, from the first bytes; a bounded full read if needed.

    Formats Pillow cannot decode (HEIF without a plugin) are asked of OSS's own ``image/info``.
    A file cut short (an interrupted upload) raises ImageProbeError (``image.truncated``).
    """
    if size == 0:
        raise ImageProbeError("the object is empty, not an image", code="source.not_an_image")
    facts = None
    read = b""  # the object's first bytes, as far as they were fetched
    if size > PROBE_BYTES:
        read = reader.get_bytes(key, (0, PROBE_BYTES - 1))
        check_signature(read)
        # A header larger than the probe window falls through to the bounded full read.
        with contextlib.suppress(ImageProbeError):
            facts = image_facts(read, size)
    if facts is None:
        read = reader.get_bytes(key, (0, PROBE_MAX_BYTES - 1) if size > PROBE_MAX_BYTES else None)
        check_signature(read)
        try:
            facts = image_facts(read, size)
        except ImageProbeError as pillow_error:
            facts = _from_image_info(reader.image_info(key), size)
            if facts is None:
                raise pillow_error from None
    if size <= PROBE_MAX_BYTES:
        _check_complete(reader, key, facts, read)
    return facts


# Image signatures (magic numbers) at the start of a file; the name of an object proves nothing.
_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
# ISO-BMFF brands of still images (HEIF, and AVIF which the plan then refuses as a format).
_IMAGE_BRANDS = {
    b"heic",
    b"heix",
    b"hevc",
    b"hevx",
    b"heim",
    b"heis",
    b"hevm",
    b"hevs",
    b"mif1",
    b"msf1",
    b"avif",
}
_LOOKS_LIKE = (
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"\x1f\x8b", "gzip data"),
    (b"<", "markup (HTML, XML or SVG)"),
    (b"{", "JSON text"),
)


def image_signature(head: bytes) -> str | None:
    """The image format the first bytes announce, or None when they are not an image's."""
    for magic, name in _SIGNATURES:
        if head.startswith(magic):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp" and head[8:12] in _IMAGE_BRANDS:
        return "HEIF" if head[8:12] != b"avif" else "AVIF"
    return None


def check_signature(head: bytes) -> None:
    """Raise ImageProbeError (``source.not_an_image``) unless ``head`` starts like an image file."""
    if image_signature(head) is not None:
        return
    looks = next((what for magic, what in _LOOKS_LIKE if head.lstrip().startswith(magic)), None)
    if looks is None and head[4:8] == b"ftyp":
        looks = "a video or other ISO media file"
    if looks is None:
        text = head[:4096].decode("utf-8", errors="replace")  # a cut multi-byte character may end it
        looks = (
            "plain text" if text.count("\ufffd") <= 1 and "\x00" not in text else "data of no image format"
        )
    raise ImageProbeError(
        f"not an image: the bytes are {looks}, whatever the name says (JPEG, PNG, HEIF or WEBP expected)",
        code="source.not_an_image",
    )


def _check_complete(reader: ByteRangeReader, key: str, facts: ImageFacts, read: bytes) -> None:
    """Raise ImageProbeError (image.truncated) when the file ends before its image data does.

    ``read`` is what the probe already fetched from the start of the object; only what it lacks is
    fetched again.
    """
    whole = len(read) >= facts.size_bytes
    tail = (
        read[-16:] if whole else reader.get_bytes(key, (max(facts.size_bytes - 16, 0), facts.size_bytes - 1))
    )
    if facts.format == "PNG" and not tail.endswith(PNG_END):
        raise ImageProbeError(
            "PNG ends before its IEND chunk: the upload was cut short", code="image.truncated"
        )
    if facts.format in ("JPEG", "MPO") and not tail.rstrip(b"\0").endswith(JPEG_END):
        # Some cameras append trailers after the image: decode (at 1/8 scale) to be sure.
        decode_check(read if whole else reader.get_bytes(key))
    if facts.format == "WEBP" and int.from_bytes(read[4:8], "little") + 8 > facts.size_bytes:
        raise ImageProbeError(
            "WEBP is shorter than its RIFF header says: the upload was cut short", code="image.truncated"
        )


def _from_image_info(info: dict[str, Any] | None, size: int) -> ImageFacts | None:
    """OSS's ``image/info`` answer as ImageFacts, or None when it is missing or malformed."""
    if info is None:
        return None
    try:
        return ImageFacts(
            width=int(info["ImageWidth"]["value"]),
            height=int(info["ImageHeight"]["value"]),
            format=_OSS_FORMATS.get(info["Format"]["value"].lower(), info["Format"]["value"].upper()),
            size_bytes=size,
            frames=int(info.get("FrameCount", {}).get("value", 1)),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def image_facts(data: bytes, size: int) -> ImageFacts:
    """Decode just enough of ``data`` (the object's first bytes) to learn its geometry and format."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            return ImageFacts(
                width=image.width,
                height=image.height,
                format=(image.format or "").upper(),
                size_bytes=size,
                frames=int(getattr(image, "n_frames", 1)),
                mode=image.mode,
            )
    except UnidentifiedImageError as exc:
        raise ImageProbeError("not an image in a format outpaint can read") from exc
    except (OSError, EOFError, SyntaxError, ValueError) as exc:
        raise ImageProbeError(f"not a decodable image: {type(exc).__name__}: {exc}") from exc


def decode_check(data: bytes) -> None:
    """Decode a JPEG at 1/8 scale (cheap in time and memory); raise image.truncated if it is cut short."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (max(image.width // 8, 1), max(image.height // 8, 1)))
            image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageProbeError(f"image data ends early: {exc}", code="image.truncated") from exc
