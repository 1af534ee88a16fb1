"""The oss2 adapter: one bucket's objects, and the only module that talks to OSS.

I/O goes through the internal endpoint; URLs handed to DashScope are signed against the public one.
Every oss2 exception is mapped to ours in one place (``_mapped``). oss2 is imported on first use so
that importing the handler stays cheap.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from outpaint.errors import AlreadyExists, NotFound, StorageError
from outpaint.naming import USER_META_HEADER, user_meta

if TYPE_CHECKING:
    from outpaint.config import Settings


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


class Storage:
    """One bucket, reached through the internal endpoint; signs URLs against the public endpoint."""

    def __init__(self, settings: Settings, credentials: Credentials) -> None:
        import oss2

        self.bucket_name = settings.bucket
        auth = _make_auth(settings.oss_signature_version, credentials)
        region = settings.region
        self._bucket = oss2.Bucket(
            auth,
            settings.internal_endpoint,
            settings.bucket,
            session=oss2.Session(),
            region=region,
            connect_timeout=settings.connect_timeout_seconds,
        )
        self._public = oss2.Bucket(auth, settings.public_endpoint, settings.bucket, region=region)

    # --- reads ---------------------------------------------------------------------------------
    def head(self, key: str) -> ObjectHead:
        """HeadObject; raise NotFound when the object is gone."""
        with _mapped("head", key, object_read=True):
            result = self._bucket.head_object(key)
        return ObjectHead(
            key=key,
            etag=(result.etag or "").upper(),
            size=int(result.content_length or 0),
            content_type=result.content_type,
            user_meta=user_meta(result.headers),
        )

    def head_or_none(self, key: str) -> ObjectHead | None:
        """HeadObject, or None when the object is gone."""
        try:
            return self.head(key)
        except NotFound:
            return None

    def get_bytes(self, key: str, byte_range: tuple[int, int] | None = None) -> bytes:
        """The object's bytes (or the inclusive ``byte_range``)."""
        with _mapped("get", key, object_read=True):
            return self._bucket.get_object(key, byte_range=byte_range).read()

    def image_info(self, key: str) -> dict[str, Any] | None:
        """OSS's own ``x-oss-process=image/info`` answer, or None when OSS cannot read the image either."""
        try:
            with _mapped("image/info", key, object_read=True):
                info = json.loads(self._bucket.get_object(key, process="image/info").read())
        except (StorageError, ValueError):
            return None
        return info if isinstance(info, dict) else None

    def list_keys(self, prefix: str, start_after: str = "") -> Iterator[str]:
        """Every key under ``prefix`` in lexicographic order (paginated ListObjectsV2)."""
        import oss2

        with _mapped("list", prefix):
            for info in oss2.ObjectIteratorV2(
                self._bucket, prefix=prefix, start_after=start_after, max_keys=1000
            ):
                yield info.key

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
        headers = {USER_META_HEADER + name: value for name, value in (user_meta or {}).items()}
        if content_type:
            headers["Content-Type"] = content_type
        if forbid_overwrite:
            headers["x-oss-forbid-overwrite"] = "true"
        with _mapped("put", key):
            return (self._bucket.put_object(key, data, headers=headers).etag or "").upper()

    def delete(self, key: str) -> None:
        """DeleteObject (succeeds when the object is already gone)."""
        with _mapped("delete", key):
            self._bucket.delete_object(key)

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


@contextmanager
def _mapped(operation: str, key: str, *, object_read: bool = False) -> Iterator[None]:
    """Map oss2's exceptions to ours: NotFound (reading a missing object), AlreadyExists (a refused
    create-if-absent), or a StorageError naming the call (a missing bucket among them)."""
    from urllib.parse import urlsplit

    import oss2

    try:
        yield
    except oss2.exceptions.NotFound as exc:
        if not object_read:
            raise _failed(operation, key, exc) from exc
        raise NotFound(f"{key!r} does not exist") from exc
    except oss2.exceptions.RequestError as exc:  # status -2: no HTTP answer at all
        cause = exc.exception
        url = urlsplit(str(getattr(getattr(cause, "request", None), "url", None) or ""))
        endpoint = f"{url.scheme}://{url.netloc}" if url.netloc else "the configured endpoint"
        raise StorageError(
            f"cannot reach OSS at {endpoint}: {type(cause).__name__} (during {operation} {key!r})",
            code="storage.unreachable",
        ) from exc
    except oss2.exceptions.OssError as exc:
        if exc.status == 409 and exc.code == "FileAlreadyExists":
            raise AlreadyExists(f"{key!r} already exists") from exc
        raise _failed(operation, key, exc) from exc


def _failed(operation: str, key: str, exc: Any) -> StorageError:
    return StorageError(
        f"OSS {operation} {key!r} failed: HTTP {exc.status} {exc.code or ''} {exc.message or ''}".strip(),
        code=f"storage.{(exc.code or 'http_' + str(exc.status)).lower()}",
    )
