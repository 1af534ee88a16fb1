"""The emulator's shared state and the per-request view that handlers work with."""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import unquote_to_bytes

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from .auth import SignedRequest, Verifier
from .errors import OssError
from .notify import Notifier, ObjectEvent
from .storage import BlobWriter, ObjectRecord, Storage
from .wire import header_text

MAX_KEY_BYTES = 1023
_WRITE_BATCH = 1 << 20  # hash and write received bodies in 1 MiB batches, off the event loop


@dataclass
class State:
    """Everything a request may touch."""

    storage: Storage
    verifier: Verifier
    notifier: Notifier
    region: str
    domains: tuple[str, ...]  # host names whose sub-domains are virtual-host bucket addresses
    auth: bool


@dataclass
class Call:
    """One request, addressed: bucket and key decoded exactly once from the raw path or the Host."""

    request: Request
    state: State
    request_id: str
    bucket: str | None
    key: str | None
    query: list[tuple[str, str]]
    headers: dict[str, str]  # lower-cased names

    @classmethod
    def parse(cls, request: Request, state: State, request_id: str) -> Call:
        headers: dict[str, str] = {}
        for raw_name, raw_value in request.scope["headers"]:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        query = _parse_query(request.scope.get("query_string", b""))
        host = headers.get("host", "").rsplit(":", 1)[0] if "]" not in headers.get("host", "") else ""
        raw_path: bytes = request.scope.get("raw_path") or request.scope["path"].encode()
        bucket, key = _address(raw_path, _virtual_host_bucket(host, state))
        return cls(request, state, request_id, bucket, key, query, headers)

    @property
    def bucket_name(self) -> str:
        """The addressed bucket (routing sends only bucket-level requests to handlers that use it)."""
        if self.bucket is None:
            raise OssError("InvalidArgument", "This operation needs a bucket.")
        return self.bucket

    @property
    def object_key(self) -> str:
        """The addressed object key (routing sends only object requests to handlers that use it)."""
        if self.key is None:
            raise OssError("InvalidArgument", "This operation needs an object key.")
        return self.key

    @property
    def storage(self) -> Storage:
        return self.state.storage

    def signed_view(self) -> SignedRequest:
        return SignedRequest(self.request.method, self.bucket, self.key, self.query, self.headers)

    def param(self, name: str, default: str | None = None) -> str | None:
        return next((value for key, value in self.query if key == name), default)

    def has(self, name: str) -> bool:
        return any(key == name for key, _ in self.query)

    def int_param(self, name: str, default: int, maximum: int) -> int:
        value = self.param(name) or str(default)
        if not value.isdigit() or int(value) > maximum:
            raise OssError("InvalidArgument", f"{name} must be an integer between 0 and {maximum}.")
        return int(value)

    def flag(self, header: str) -> bool:
        """A ``true``/``false`` header such as ``x-oss-forbid-overwrite`` (absent means false)."""
        value = self.headers.get(header, "false").lower()
        if value not in ("true", "false"):
            raise OssError("InvalidArgument", f"{header} must be true or false.", ArgumentName=header)
        return value == "true"

    @property
    def host_id(self) -> str:
        host = self.headers.get("host", "").rsplit(":", 1)[0]
        return f"{self.bucket}.{host}" if self.bucket and not host.startswith(f"{self.bucket}.") else host

    async def receive(self, prefix: BinaryIO | None = None) -> BlobWriter:
        """Stream the request body to a durable temp file, checking Content-MD5 when one is given.

        ``prefix`` (an open body, for AppendObject) is written first; Content-MD5 covers the request
        body alone."""
        writer = self.storage.new_writer()
        received = hashlib.md5() if prefix else None  # noqa: S324 - Content-MD5 is the protocol's check
        try:
            if prefix is not None:
                await run_in_threadpool(_copy, prefix, writer)
            batch = bytearray()
            async for chunk in self.request.stream():
                batch += chunk
                if len(batch) >= _WRITE_BATCH:
                    await run_in_threadpool(writer.write, bytes(batch))
                    if received:
                        received.update(batch)
                    batch.clear()
            if batch:
                await run_in_threadpool(writer.write, bytes(batch))
                if received:
                    received.update(batch)
            await run_in_threadpool(writer.finish)
            self.check_md5(received.digest() if received else writer.digest.md5)
        except BaseException:
            writer.discard()
            raise
        return writer

    async def read_body(self, limit: int) -> bytes:
        """A small request body (XML documents), refused beyond ``limit`` bytes."""
        body = bytearray()
        async for chunk in self.request.stream():
            body += chunk
            if len(body) > limit:
                raise OssError("InvalidArgument", f"The request body must not exceed {limit} bytes.")
        self.check_md5(_md5(bytes(body)))
        return bytes(body)

    def check_md5(self, actual: bytes) -> None:
        declared = self.headers.get("content-md5")
        if declared is None:
            return
        try:
            expected = base64.b64decode(declared, validate=True)
        except ValueError:
            raise OssError("InvalidDigest", "The Content-MD5 you specified is not valid base64.") from None
        if expected != actual:
            raise OssError("InvalidDigest", "The Content-MD5 you specified did not match what we received.")

    def publish_created(self, action: str, record: ObjectRecord, previous: ObjectRecord | None) -> None:
        """Notify ``ObjectCreated:<action>`` for a committed object."""
        self.state.notifier.publish(
            self._event(
                f"ObjectCreated:{action}",
                record.key,
                size=record.size,
                delta=record.size - (previous.size if previous else 0),
                etag=record.etag,
                when=record.last_modified,
                mime_type=record.attrs.content_type,
                user_meta=record.attrs.user_meta,
            )
        )

    def publish_removed(self, action: str, removed: ObjectRecord) -> None:
        """Notify ``ObjectRemoved:<action>`` for an object that existed."""
        self.state.notifier.publish(
            self._event(
                f"ObjectRemoved:{action}",
                removed.key,
                size=removed.size,
                delta=-removed.size,
                etag=removed.etag,
                when=time.time(),
            )
        )

    def publish_upload_step(self, action: str, key: str, size: int = 0, etag: str = "") -> None:
        """Notify a multipart step (``InitiateMultipartUpload``, ``UploadPart``, ``AbortMultipartUpload``)."""
        category = "ObjectRemoved" if action == "AbortMultipartUpload" else "ObjectCreated"
        self.state.notifier.publish(
            self._event(f"{category}:{action}", key, size=size, delta=0, etag=etag, when=time.time())
        )

    def _event(
        self,
        name: str,
        key: str,
        *,
        size: int,
        delta: int,
        etag: str,
        when: float,
        mime_type: str | None = None,
        user_meta: dict[str, str] | None = None,
    ) -> ObjectEvent:
        client = self.request.scope.get("client")
        return ObjectEvent(
            name=name,
            bucket=self.bucket or "",
            key=key,
            size=size,
            delta_size=delta,
            etag=etag,
            time=when,
            request_id=self.request_id,
            source_ip=client[0] if client else "",
            mime_type=mime_type,
            user_meta={k: header_text(v) for k, v in user_meta.items()} if user_meta else user_meta,
        )


def _copy(source: BinaryIO, writer: BlobWriter) -> None:
    while chunk := source.read(_WRITE_BATCH):
        writer.write(chunk)


def _md5(data: bytes) -> bytes:
    return hashlib.md5(data).digest()  # noqa: S324 - Content-MD5 is the protocol's integrity check


def _parse_query(query_string: bytes) -> list[tuple[str, str]]:
    """Split and percent-decode the query; ``+`` stays ``+`` (OSS clients encode spaces as %20)."""
    pairs = []
    for item in query_string.split(b"&"):
        if not item:
            continue
        name, _, value = item.partition(b"=")
        try:
            pairs.append((unquote_to_bytes(name).decode(), unquote_to_bytes(value).decode()))
        except UnicodeDecodeError:
            raise OssError("InvalidArgument", "The query string is not valid UTF-8.") from None
    return pairs


def _virtual_host_bucket(host: str, state: State) -> str | None:
    """The bucket named by a ``<bucket>.<domain>`` Host, or None for a path-style request."""
    if not host or host.replace(".", "").isdigit() or host in state.domains:
        return None
    for domain in state.domains:
        if host.endswith("." + domain):
            return host[: -len(domain) - 1]
    label, dot, _ = host.partition(".")
    if not dot:
        return None
    try:
        state.storage.bucket(label)
    except OssError:
        return None
    return label


def _address(raw_path: bytes, vhost_bucket: str | None) -> tuple[str | None, str | None]:
    """(bucket, key) from the undecoded path; the key is percent-decoded exactly once."""
    path = raw_path[1:] if raw_path.startswith(b"/") else raw_path
    if vhost_bucket is not None:
        bucket, raw_key = vhost_bucket, path
    else:
        raw_bucket, _, raw_key = path.partition(b"/")
        if not raw_bucket:
            return None, None
        bucket = unquote_to_bytes(raw_bucket).decode("utf-8", "replace")
    if not raw_key:
        return bucket, None
    try:
        key = unquote_to_bytes(raw_key).decode("utf-8")
    except UnicodeDecodeError:
        raise OssError("InvalidObjectName", "The object name is not valid UTF-8.") from None
    if len(key.encode()) > MAX_KEY_BYTES or key.startswith(("/", "\\")):
        raise OssError("InvalidObjectName", Key=key)
    return bucket, key
