"""Obtain the input image bytes from ``image_url`` (blocking: run it in a worker thread)."""

from __future__ import annotations

import base64
import binascii

import httpx

from .wire import FILE_DOWNLOAD, INVALID_PARAMETER, TaskFailure


def fetch_image(url: str, timeout: float, max_bytes: int) -> bytes:
    """The image bytes; ``TaskFailure``: ``FileDownload`` if unobtainable, ``InvalidParameter`` if too big."""
    data = _from_data_uri(url) if url.lower().startswith("data:") else _download(url, timeout, max_bytes)
    if len(data) > max_bytes:
        raise _too_big(max_bytes)
    return data


def _download(url: str, timeout: float, max_bytes: int) -> bytes:
    # trust_env=False: never route through a proxy from the environment; fetch exactly what was asked.
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=True, trust_env=False) as client,
            client.stream("GET", url) as response,
        ):
            if not response.is_success:
                raise TaskFailure(FILE_DOWNLOAD, f"HTTP {response.status_code}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise _too_big(max_bytes)
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise _too_big(max_bytes)
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError as exc:
        raise TaskFailure(FILE_DOWNLOAD, type(exc).__name__) from None


def _from_data_uri(url: str) -> bytes:
    header, sep, payload = url.partition(",")
    if not sep or not header.lower().endswith(";base64"):
        raise TaskFailure(FILE_DOWNLOAD, "data URI must be data:<mime>;base64,<data>")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise TaskFailure(FILE_DOWNLOAD, "invalid base64 data") from None


def _too_big(max_bytes: int) -> TaskFailure:
    return TaskFailure(INVALID_PARAMETER, f"input image file size exceeds {max_bytes} bytes")
