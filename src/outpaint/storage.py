"""Thin oss2 wrapper: the only module that talks to OSS.

I/O goes through the internal endpoint; URLs handed to DashScope are signed against the public one.
oss2 and Pillow are imported on first use so that importing the handler stays cheap.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from outpaint.errors import ImageProbeError, StorageError

if TYPE_CHECKING:
    import oss2

    from outpaint.config import Settings
    from outpaint.plan import ImageFacts

USER_META_PREFIX = "x-oss-meta-"
PROBE_BYTES = 256 * 1024
# Inputs above the API's 10 MB limit are refused by the plan; the probe never reads more than this.
PROBE_MAX_BYTES = 10 * 1024 * 1024 + 1
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
JPEG_END = b"\xff\xd9"
_OSS_FORMATS = {"jpg": "JPEG", "jpeg": "JPEG", "heic": "HEIF", "heif": "HEIF"}


@dataclass(frozen=True)
class Credentials:
    """OSS credentials: static keys, or the function role's STS triple."""

    access_key_id: str
    access_key_secret: str
    security_token: str | None = None

    def __repr__(self) -> str:
        return f"Credentials(access_key_id={self.access_key_id[:4]}…, secret=***)"


@dataclass(frozen=True)
class ObjectHead:
    """What HeadObject says about an object."""

    key: str
    etag: str
    size: int
    content_type: str | None
    user_meta: dict[str, str] = field(default_factory=dict)


class NotFound(StorageError):
    """The object does not exist."""

    code = "storage.not_found"


class AlreadyExists(StorageError):
    """A create-if-absent write found the object already there."""

    code = "storage.already_exists"


class Storage:
    """One bucket, reached through the internal endpoint; signs URLs against the public endpoint."""

    def __init__(self, settings: Settings, credentials: Credentials) -> None:
        import oss2

        self._settings = settings
        self._session = oss2.Session()
        auth = _make_auth(settings.oss_signature_version, credentials)
        region = settings.region
        self._bucket = oss2.Bucket(
            auth,
            settings.internal_endpoint,
            settings.bucket,
            session=self._session,
            region=region,
            connect_timeout=settings.connect_timeout_seconds,
        )
        self._public = oss2.Bucket(auth, settings.public_endpoint, settings.bucket, region=region)

    @property
    def bucket_name(self) -> str:
        return self._settings.bucket

    # --- reads ---------------------------------------------------------------------------------
    def head(self, key: str) -> ObjectHead:
        """HeadObject; raise NotFound when the object is gone."""
        import oss2

        try:
            result = self._bucket.head_object(key)
        except oss2.exceptions.NotFound as exc:
            raise NotFound(f"{key!r} does not exist") from exc
        except oss2.exceptions.OssError as exc:
            raise _storage_error("head", key, exc) from exc
        return ObjectHead(
            key=key,
            etag=(result.etag or "").upper(),
            size=int(result.content_length or 0),
            content_type=result.content_type,
            user_meta=user_meta_of(result.headers),
        )

    def get_bytes(self, key: str, byte_range: tuple[int, int] | None = None) -> bytes:
        """The object's bytes (or the inclusive ``byte_range``)."""
        import oss2

        try:
            return self._bucket.get_object(key, byte_range=byte_range).read()
        except oss2.exceptions.NotFound as exc:
            raise NotFound(f"{key!r} does not exist") from exc
        except oss2.exceptions.OssError as exc:
            raise _storage_error("get", key, exc) from exc

    def probe_image(self, key: str, size: int) -> ImageFacts:
        """Width, height, format and frame count, from the first bytes; a bounded full read if needed.

        Formats Pillow cannot decode (HEIF without a plugin) are asked of OSS's own ``image/info``.
        A file cut short (an interrupted upload) is refused here, before any money is spent.
        """
        facts = None
        read = b""  # the object's first bytes, as far as they were fetched
        if size > PROBE_BYTES:
            read = self.get_bytes(key, (0, PROBE_BYTES - 1))
            # A header larger than the probe window falls through to the bounded full read.
            with contextlib.suppress(ImageProbeError):
                facts = image_facts(read, size)
        if facts is None:
            read = self.get_bytes(key, (0, PROBE_MAX_BYTES - 1) if size > PROBE_MAX_BYTES else None)
            try:
                facts = image_facts(read, size)
            except ImageProbeError as pillow_error:
                facts = self._image_info(key, size)
                if facts is None:
                    raise pillow_error from None
        if size <= PROBE_MAX_BYTES:
            self._check_complete(key, facts, read)
        return facts

    def _check_complete(self, key: str, facts: ImageFacts, read: bytes) -> None:
        """Raise ImageProbeError (image.truncated) when the file ends before its image data does.

        ``read`` is what the probe already fetched from the start of the object; only what it lacks is
        fetched again.
        """
        whole = len(read) >= facts.size_bytes
        tail = (
            read[-16:]
            if whole
            else self.get_bytes(key, (max(facts.size_bytes - 16, 0), facts.size_bytes - 1))
        )
        if facts.format == "PNG" and not tail.endswith(PNG_END):
            raise ImageProbeError(
                "PNG ends before its IEND chunk: the upload was cut short", code="image.truncated"
            )
        if facts.format in ("JPEG", "MPO") and not tail.rstrip(b"\0").endswith(JPEG_END):
            # Some cameras append trailers after the image: decode (at 1/8 scale) to be sure.
            decode_check(read if whole else self.get_bytes(key))
        if facts.format == "WEBP" and int.from_bytes(read[4:8], "little") + 8 > facts.size_bytes:
            raise ImageProbeError(
                "WEBP is shorter than its RIFF header says: the upload was cut short", code="image.truncated"
            )

    def _image_info(self, key: str, size: int) -> ImageFacts | None:
        """OSS ``x-oss-process=image/info`` as ImageFacts, or None when OSS cannot read it either."""
        import json

        import oss2

        from outpaint.plan import ImageFacts

        try:
            info = json.loads(self._bucket.get_object(key, process="image/info").read())
            return ImageFacts(
                width=int(info["ImageWidth"]["value"]),
                height=int(info["ImageHeight"]["value"]),
                format=_OSS_FORMATS.get(info["Format"]["value"].lower(), info["Format"]["value"].upper()),
                size_bytes=size,
                frames=int(info.get("FrameCount", {}).get("value", 1)),
            )
        except (oss2.exceptions.OssError, ValueError, KeyError, TypeError):
            return None

    def list_keys(self, prefix: str, start_after: str = "") -> Iterator[str]:
        """Every key under ``prefix`` in lexicographic order (paginated ListObjectsV2)."""
        import oss2

        try:
            for info in oss2.ObjectIteratorV2(
                self._bucket, prefix=prefix, start_after=start_after, max_keys=1000
            ):
                yield info.key
        except oss2.exceptions.OssError as exc:
            raise _storage_error("list", prefix, exc) from exc

    # --- writes --------------------------------------------------------------------------------
    def put(
        self,
        key: str,
        data: bytes | IO[bytes],
        *,
        content_type: str | None = None,
        user_meta: Mapping[str, str] | None = None,
        forbid_overwrite: bool = False,
    ) -> str:
        """PutObject; return the new ETag. With ``forbid_overwrite`` raise AlreadyExists on conflict."""
        import oss2

        headers = {USER_META_PREFIX + name: value for name, value in (user_meta or {}).items()}
        if content_type:
            headers["Content-Type"] = content_type
        if forbid_overwrite:
            headers["x-oss-forbid-overwrite"] = "true"
        try:
            return (self._bucket.put_object(key, data, headers=headers).etag or "").upper()
        except oss2.exceptions.OssError as exc:
            if exc.status == 409 and exc.code == "FileAlreadyExists":
                raise AlreadyExists(f"{key!r} already exists") from exc
            raise _storage_error("put", key, exc) from exc

    def delete(self, key: str) -> None:
        """DeleteObject (succeeds when the object is already gone)."""
        import oss2

        try:
            self._bucket.delete_object(key)
        except oss2.exceptions.OssError as exc:
            raise _storage_error("delete", key, exc) from exc

    # --- URLs ----------------------------------------------------------------------------------
    def sign_get_url(self, key: str, seconds: int) -> str:
        """A GET URL for ``key`` signed against the public endpoint, valid for ``seconds``.

        ``/`` stays literal in the path (some fetchers re-encode ``%2F`` and break the signature),
        except for keys with ``.``/``..``/empty segments, which a fetcher would normalise away.
        """
        segments = key.split("/")
        slash_safe = not any(part in ("", ".", "..") for part in segments[:-1]) and segments[-1] not in (
            ".",
            "..",
        )
        return self._public.sign_url("GET", key, seconds, slash_safe=slash_safe)


def _make_auth(version: str, credentials: Credentials) -> Any:
    import oss2
    from oss2.credentials import StaticCredentialsProvider

    if version == "v4":
        provider = StaticCredentialsProvider(
            credentials.access_key_id, credentials.access_key_secret, credentials.security_token or ""
        )
        return oss2.ProviderAuthV4(provider)
    if credentials.security_token:
        return oss2.StsAuth(
            credentials.access_key_id, credentials.access_key_secret, credentials.security_token
        )
    return oss2.Auth(credentials.access_key_id, credentials.access_key_secret)


def _storage_error(operation: str, key: str, exc: oss2.exceptions.OssError) -> StorageError:
    from urllib.parse import urlsplit

    import oss2

    if isinstance(exc, oss2.exceptions.RequestError):  # status -2: no HTTP answer at all
        cause = exc.exception
        url = urlsplit(str(getattr(getattr(cause, "request", None), "url", None) or ""))
        endpoint = f"{url.scheme}://{url.netloc}" if url.netloc else "the configured endpoint"
        return StorageError(
            f"cannot reach OSS at {endpoint}: {type(cause).__name__} (during {operation} {key!r})",
            code="storage.unreachable",
        )
    return StorageError(
        f"OSS {operation} {key!r} failed: HTTP {exc.status} {exc.code or ''} {exc.message or ''}".strip(),
        code=f"storage.{(exc.code or 'http_' + str(exc.status)).lower()}",
    )


def user_meta_of(headers: Mapping[str, str]) -> dict[str, str]:
    """The user metadata in response headers, keys lower-cased and without ``x-oss-meta-``."""
    return {
        name.lower()[len(USER_META_PREFIX) :]: value
        for name, value in headers.items()
        if name.lower().startswith(USER_META_PREFIX)
    }


def image_facts(data: bytes, size: int) -> ImageFacts:
    """Decode just enough of ``data`` (the object's first bytes) to learn its geometry and format."""
    from PIL import Image, UnidentifiedImageError

    from outpaint.plan import ImageFacts

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
