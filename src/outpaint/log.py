"""Structured logs: one JSON line per event of interest.

Every line carries the invocation's request id (set once per invocation) and whatever identifiers the
caller passes (job id, object key, task id, state). Values that look like credentials are never
passed here; URLs are logged without their query string (`redact_url`).
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("outpaint_request_id", default=None)
logger = logging.getLogger("outpaint")


class _JsonLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "event": record.getMessage(),
        }
        request_id = _request_id.get()
        if request_id:
            line["request_id"] = request_id
        line.update(getattr(record, "fields", {}))
        if record.exc_info and record.exc_info[0] is not None:
            line["error_type"] = record.exc_info[0].__name__
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(level: str = "INFO") -> None:
    """Send outpaint's JSON lines to stderr (FC collects it); idempotent across warm invocations."""
    if not any(isinstance(h.formatter, _JsonLineFormatter) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_JsonLineFormatter())
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level)
    # httpx logs every request URL at INFO (result URLs carry signatures); oss2 logs request details.
    for noisy in ("httpx", "httpcore", "oss2"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def set_request_id(request_id: str | None) -> None:
    """Tag every following line of this invocation with ``request_id``."""
    _request_id.set(request_id)


def event(name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event line, e.g. ``event("job.submitted", job_id=..., task_id=...)``."""
    logger.log(level, name, extra={"fields": {k: v for k, v in fields.items() if v is not None}})


def redact_url(url: str) -> str:
    """The URL without query string or user info: safe to log and to keep in job records."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
