"""DashScope's temporary file storage (reference S13): the upload policy, the OSS form upload, and the
resolution of the ``oss://`` URLs it yields.

The real flow: ``GET /api/v1/uploads?action=getPolicy&model=M`` answers an OSS PostObject policy; the
client posts the file as a form to ``upload_host`` under ``upload_dir``; it then sends
``oss://<upload_dir>/<name>`` with ``X-DashScope-OssResourceResolve: enable``. A file is kept for 48 h
and only the account (API key) and model that asked for the policy may use it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from email.parser import BytesParser
from email.policy import default as email_policy
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from .signing import oss_error
from .wire import invalid, new_id

UPLOAD_ACCESS_KEY_ID = "LTAI5tDashScopeEmulatorUpload"
POLICY_SECONDS = 300  # how long one policy may be used for uploads (the real one says 300)
MAX_FILE_MB = 100
UPLOAD_PATH = "/temporary-storage"


@dataclass(frozen=True)
class StoredFile:
    """One uploaded file and who may use it."""

    data: bytes
    content_type: str
    api_key: str
    model: str
    stored_at: float


class TemporaryStorage:
    """Upload directories handed out by policy, the files posted into them, and signed reads."""

    def __init__(self, lifetime_seconds: Callable[[], float], clock: Callable[[], float] = time.time) -> None:
        self._lifetime = lifetime_seconds
        self._clock = clock
        self._secret = secrets.token_bytes(32)
        self._dirs: dict[str, tuple[str, str]] = {}  # upload_dir -> (api key, model)
        self._files: dict[str, StoredFile] = {}

    def policy(self, api_key: str, model: str, origin: str) -> dict[str, object]:
        """A fresh upload directory and the signed PostObject policy for it (the answer's ``data``)."""
        day = datetime.fromtimestamp(self._clock(), timezone.utc).strftime("%Y-%m-%d")
        upload_dir = f"dashscope-instant/{hashlib.sha256(api_key.encode()).hexdigest()[:32]}/{day}/{new_id()}"
        self._dirs[upload_dir] = (api_key, model)
        expiration = datetime.fromtimestamp(self._clock() + POLICY_SECONDS, timezone.utc)
        document = {
            "expiration": expiration.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "conditions": [
                ["content-length-range", 0, MAX_FILE_MB * 1024 * 1024],
                ["starts-with", "$key", upload_dir],
                {"bucket": "dashscope-file-mgr"},
            ],
        }
        policy = base64.b64encode(json.dumps(document).encode()).decode()
        return {
            "policy": policy,
            "signature": self._sign(policy),
            "upload_dir": upload_dir,
            "upload_host": origin + UPLOAD_PATH,
            "expire_in_seconds": POLICY_SECONDS,
            "max_file_size_mb": MAX_FILE_MB,
            "capacity_limit_mb": 999_999_999,
            "oss_access_key_id": UPLOAD_ACCESS_KEY_ID,
            "x_oss_object_acl": "private",
            "x_oss_forbid_overwrite": "true",
        }

    def accept(self, fields: dict[str, str], data: bytes) -> Response:
        """Store a form upload, answering as OSS does (``success_action_status``, default 204)."""
        try:
            key, upload_dir = self._check(fields, data)
        except _Refused as refused:
            return refused.response
        api_key, model = self._dirs[upload_dir]
        content_type = fields.get("x-oss-content-type") or "application/octet-stream"
        self._files[key] = StoredFile(data, content_type, api_key, model, self._clock())
        status = int(fields.get("success_action_status") or 204)
        return Response(status_code=status if status in (200, 201, 204) else 204)

    def _check(self, fields: dict[str, str], data: bytes) -> tuple[str, str]:
        """The key and upload directory of an acceptable upload; ``_Refused`` with OSS's answer if not."""
        policy = fields.get("policy", "")
        if fields.get("OSSAccessKeyId") != UPLOAD_ACCESS_KEY_ID:
            raise _Refused(403, "InvalidAccessKeyId", "The OSS Access Key Id you provided does not exist")
        if not hmac.compare_digest(fields.get("Signature", ""), self._sign(policy)):
            raise _Refused(
                403, "SignatureDoesNotMatch", "The request signature we calculated does not match."
            )
        try:
            document = json.loads(base64.b64decode(policy, validate=True))
            expiration = datetime.strptime(document["expiration"], "%Y-%m-%dT%H:%M:%S.000Z")
            upload_dir = next(c[2] for c in document["conditions"] if isinstance(c, list) and c[1] == "$key")
        except (ValueError, KeyError, StopIteration, TypeError, IndexError):
            raise _Refused(
                400, "InvalidPolicyDocument", "The content of the form does not meet the conditions."
            ) from None
        if expiration.replace(tzinfo=timezone.utc).timestamp() < self._clock():
            raise _Refused(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
        key = fields.get("key", "")
        if not key.startswith(upload_dir + "/") or key == upload_dir + "/":
            raise _Refused(403, "AccessDenied", "Invalid according to Policy: Policy Condition failed: $key")
        if len(data) > MAX_FILE_MB * 1024 * 1024:
            raise _Refused(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.")
        if key in self._files and fields.get("x-oss-forbid-overwrite", "").lower() == "true":
            raise _Refused(409, "FileAlreadyExists", "The object you specified already exists.")
        return key, upload_dir

    def resolve(self, url: str, api_key: str, model: str, origin: str) -> str:
        """The signed HTTP URL the service downloads ``oss://<key>`` from; ApiError if not this account's."""
        key = url[len("oss://") :]
        stored = self._files.get(key)
        owner = (stored.api_key, stored.model) if stored else self._dirs.get(key.rpartition("/")[0])
        if owner != (api_key, model):
            raise invalid(f"input.image_url: {url!r} is not a temporary file of this account and model")
        expires = int(self._clock() + POLICY_SECONDS)
        query = urlencode({"Expires": expires, "Signature": self._sign(f"{key}\n{expires}")})
        return f"{origin}{UPLOAD_PATH}/{key}?{query}"

    def read(self, key: str, expires: str, signature: str) -> Response:
        """The file behind a resolved URL, or the OSS error (bad signature, expired URL or file)."""
        if not expires.isdigit() or not hmac.compare_digest(signature, self._sign(f"{key}\n{expires}")):
            return oss_error(
                403, "SignatureDoesNotMatch", "The request signature we calculated does not match."
            )
        now = self._clock()
        stored = self._files.get(key)
        if int(expires) < now:
            return oss_error(403, "AccessDenied", "Request has expired.")
        if stored is None or stored.stored_at + self._lifetime() < now:
            return oss_error(404, "NoSuchKey", "The specified key does not exist.")
        return Response(stored.data, media_type=stored.content_type)

    def listing(self) -> list[dict[str, object]]:
        """Every stored file: key, bytes, content type, model (``GET /_emulator/uploads``)."""
        return [
            {"key": key, "bytes": len(f.data), "content_type": f.content_type, "model": f.model}
            for key, f in self._files.items()
        ]

    def _sign(self, text: str) -> str:
        return base64.b64encode(hmac.new(self._secret, text.encode(), hashlib.sha1).digest()).decode()


class _Refused(Exception):
    """An upload OSS would refuse, with its answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(code)
        self.response = oss_error(status, code, message)


async def form_fields(request: Request) -> tuple[dict[str, str], bytes]:
    """The text fields and the ``file`` part of a multipart/form-data body (stdlib parser)."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        return {}, b""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=email_policy).parsebytes(head + await request.body())
    fields: dict[str, str] = {}
    data = b""
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if name == "file":
            data = payload
        elif isinstance(name, str):
            fields[name] = payload.decode("utf-8", "replace")
    return fields, data
