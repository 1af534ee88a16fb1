"""Expiring signed result URLs in the real service's form: an OSS V1 signed URL
(``?Expires=…&OSSAccessKeyId=…&Signature=…``, HMAC-SHA1 with a per-process secret)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from urllib.parse import urlencode

from starlette.responses import Response

from .wire import new_id

# The access key id the result URLs carry (a real one names DashScope's own result bucket account).
RESULT_ACCESS_KEY_ID = "LTAI5tDashScopeEmulator"


class UrlSigner:
    """Signs ``/results/<name>`` paths until an absolute Unix ``Expires`` time."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)

    def sign(self, name: str, expires: int) -> str:
        """The path and query of a result URL (prefix it with the server's origin)."""
        query = urlencode(
            {
                "Expires": expires,
                "OSSAccessKeyId": RESULT_ACCESS_KEY_ID,
                "Signature": self._signature(name, expires),
            }
        )
        return f"/results/{name}?{query}"

    def refusal(
        self, name: str, expires: str | None, signature: str | None, access_key_id: str | None = None
    ) -> Response | None:
        """``None`` when the URL is genuine and current, else the OSS-style 403 to answer with."""
        if not expires or not expires.isdigit() or not signature:
            return oss_error(403, "AccessDenied", "Request has no valid signature or expiry.")
        if access_key_id != RESULT_ACCESS_KEY_ID:
            return oss_error(403, "InvalidAccessKeyId", "The OSS Access Key Id you provided does not exist")
        if not hmac.compare_digest(signature, self._signature(name, int(expires))):
            return oss_error(
                403, "SignatureDoesNotMatch", "The request signature we calculated does not match."
            )
        if int(expires) < time.time():
            return oss_error(403, "AccessDenied", "Request has expired.")
        return None

    def _signature(self, name: str, expires: int) -> str:
        digest = hmac.new(
            self._secret, f"GET\n\n\n{expires}\n/results/{name}".encode(), hashlib.sha1
        ).digest()
        return base64.b64encode(digest).decode()


def oss_error(status: int, code: str, message: str) -> Response:
    """An OSS-style XML error document."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error>\n  <Code>{code}</Code>\n  <Message>{message}</Message>\n"
        f"  <RequestId>{new_id()}</RequestId>\n  <HostId>dashscope-emulator</HostId>\n</Error>\n"
    )
    return Response(body, status_code=status, media_type="application/xml")
