"""Fetching a task's result image safely, and local finishing (exact size).

Results are only fetched from allowed origins, without our credentials, with a size cap, into a
spooled temporary file (memory first, disk past a few MB) so a 10 MB result never sits in memory twice.
"""

from __future__ import annotations

import fnmatch
import tempfile
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING
from urllib.parse import urlsplit

from outpaint.errors import ResultLost, ResultRefused, ResultUnavailable

if TYPE_CHECKING:
    import httpx

SPOOL_BYTES = 4 * 1024 * 1024
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}


@dataclass(frozen=True)
class FetchPolicy:
    """Where results may come from, how large they may be, how long a download may take."""

    allowed_result_hosts: tuple[str, ...]
    max_result_bytes: int
    connect_timeout_seconds: float
    read_timeout_seconds: float

    def origin_allowed(self, url: str) -> bool:
        """True when ``url``'s scheme, host and port match one of ``allowed_result_hosts``."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
            return False
        port = parts.port or (443 if parts.scheme == "https" else 80)
        for origin in self.allowed_result_hosts:
            allowed = urlsplit(origin)
            allowed_port = allowed.port or (443 if allowed.scheme == "https" else 80)
            if (
                allowed.scheme == parts.scheme
                and allowed_port == port
                and fnmatch.fnmatchcase(parts.hostname.lower(), (allowed.hostname or "").lower())
            ):
                return True
        return False


@dataclass
class ResultImage:
    """A downloaded (and possibly finished) result, ready to be written to OSS."""

    file: IO[bytes]
    size: int
    format: str
    width: int
    height: int

    @property
    def extension(self) -> str:
        return EXTENSIONS.get(self.format, self.format.lower())

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES.get(self.format, "application/octet-stream")


class ResultFetcher:
    """Downloads result images from allowed origins only."""

    def __init__(self, policy: FetchPolicy, transport: httpx.BaseTransport | None = None) -> None:
        import httpx

        self._policy = policy
        # A separate client: the DashScope key must never travel to a result host.
        self._http = httpx.Client(
            timeout=httpx.Timeout(policy.read_timeout_seconds, connect=policy.connect_timeout_seconds),
            follow_redirects=False,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def fetch(self, url: str) -> ResultImage:
        """Download ``url`` into a spooled file and identify it; raise ResultRefused/Lost/Unavailable."""
        import httpx

        if not self._policy.origin_allowed(url):
            raise ResultRefused("result URL is not on an allowed origin (allowed_result_hosts)")
        limit = self._policy.max_result_bytes
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - returned to the caller
        try:
            size = self._download(url, spool, limit)
        except httpx.DecodingError as exc:  # a body that ignored our identity encoding: same every time
            spool.close()
            raise ResultRefused(f"result body cannot be decoded: {type(exc).__name__}") from exc
        except httpx.HTTPError as exc:
            spool.close()
            raise ResultUnavailable(f"result download failed: {type(exc).__name__}") from exc
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return identify(spool, size)

    def _download(self, url: str, spool: IO[bytes], limit: int) -> int:
        # identity: a compressed body could expand far beyond the size cap before it is counted.
        with self._http.stream("GET", url, headers={"Accept-Encoding": "identity"}) as response:
            if 300 <= response.status_code < 400:
                raise ResultRefused("result URL redirects; redirects are not followed")
            if response.status_code in (401, 403, 404, 410):
                raise ResultLost(f"result download answered HTTP {response.status_code}")
            if response.status_code != 200:
                raise ResultUnavailable(f"result download answered HTTP {response.status_code}")
            declared = response.headers.get("content-length") or "0"
            if not declared.isdigit():
                raise ResultRefused(f"result has an invalid Content-Length {declared!r}")
            if int(declared) > limit:
                raise ResultRefused(f"result is {declared} bytes, over max_result_bytes={limit}")
            size = 0
            for chunk in response.iter_raw(64 * 1024):
                size += len(chunk)
                if size > limit:
                    raise ResultRefused(f"result exceeds max_result_bytes={limit}")
                spool.write(chunk)
        return size


def identify(file: IO[bytes], size: int) -> ResultImage:
    """Read the format and dimensions of the image in ``file`` (header only)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as image:
            result = ResultImage(
                file=file,
                size=size,
                format=(image.format or "").upper(),
                width=image.width,
                height=image.height,
            )
    except (UnidentifiedImageError, OSError) as exc:
        file.close()
        raise ResultRefused(f"result is not a readable image: {exc}", code="result.invalid") from exc
    file.seek(0)
    return result


def finish_exact(result: ResultImage, width: int, height: int) -> ResultImage:
    """Resize the result to exactly ``width``×``height``, keeping its format."""
    from PIL import Image

    try:
        with Image.open(result.file) as image:
            if result.format == "JPEG":
                image.draft("RGB", (width, height))  # decode at a reduced scale when shrinking: less memory
            resized = image.resize((width, height), Image.Resampling.LANCZOS)
    finally:
        result.file.close()
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - returned to the caller
    options = {"quality": 92} if result.format in ("JPEG", "WEBP") else {}
    try:
        resized.save(out, format=result.format, **options)
    except BaseException:
        out.close()
        raise
    size = out.tell()
    out.seek(0)
    return ResultImage(file=out, size=size, format=result.format, width=width, height=height)
