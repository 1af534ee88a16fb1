"""OSS's on-the-fly gzip: a whole text-like object of 1 KB or more, to a client sending Accept-Encoding: gzip.

The answer is chunked, without Content-Length; ETag and CRC-64 still describe the stored bytes."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

MIN_SIZE = 1024
_TYPES = frozenset(
    {
        "application/javascript",
        "application/json",
        "application/x-javascript",
        "application/xml",
        "application/xhtml+xml",
        "image/svg+xml",
    }
)


def wanted(accept_encoding: str, content_type: str, size: int, stored_encoding: str | None) -> bool:
    """Whether OSS would compress this object for this request."""
    codings = {coding.split(";")[0].strip().lower() for coding in accept_encoding.split(",")}
    media_type = content_type.split(";", maxsplit=1)[0].strip().lower()
    compressible = media_type.startswith("text/") or media_type in _TYPES
    return "gzip" in codings and size >= MIN_SIZE and stored_encoding is None and compressible


async def gzipped(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The chunks as one gzip stream."""
    compressor = zlib.compressobj(wbits=31)  # 31: the gzip container, not raw zlib
    async for chunk in chunks:
        if packed := compressor.compress(chunk):
            yield packed
    yield compressor.flush()
