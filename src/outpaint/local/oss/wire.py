"""Small wire formats shared by the handlers: ids, dates, ETags and URL-encoding."""

from __future__ import annotations

import email.utils
import os
import time
from urllib.parse import quote

# RFC 3986 unreserved characters: what OSS (and its SDKs) never percent-encode.
UNRESERVED = "-_.~"


def new_request_id() -> str:
    """A 24-character uppercase-hex request id, the shape of ``x-oss-request-id``."""
    return os.urandom(12).hex().upper()


def http_date(timestamp: float) -> str:
    """RFC 1123 date (``Sat, 01 Mar 2025 08:00:00 GMT``), as in ``Last-Modified``."""
    return email.utils.formatdate(timestamp, usegmt=True)


def parse_http_date(value: str) -> float | None:
    """Seconds since the epoch for an RFC 1123 date, or None when it does not parse."""
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.timestamp() if parsed.tzinfo else None


def iso_time(timestamp: float) -> str:
    """ISO-8601 UTC with fixed ``.000`` milliseconds, the only form oss2 accepts in listings."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(timestamp))


def header_text(value: str) -> str:
    """A header value as the text the client meant: the SDKs send UTF-8, which ASGI hands over as Latin-1.

    A value that is not valid UTF-8 is kept as it came (one character per byte)."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def quoted_etag(etag: str) -> str:
    """The ETag header value: the stored uppercase ETag in double quotes."""
    return f'"{etag}"'


def url_encode(text: str) -> str:
    """Percent-encode everything but unreserved characters (``encoding-type=url`` and V4 canonical form)."""
    return quote(text, safe=UNRESERVED)
