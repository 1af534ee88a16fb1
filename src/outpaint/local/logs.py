"""One readable log stream for the local stack: ``[oss]``, ``[dashscope]``, ``[on-upload]``, ``[on-tick]``.

The pipeline logs JSON lines (what FC collects); here they are rendered as ``time level event k=v ...``
behind the name of the component that wrote them. In-process, the component is the emulator a logger
belongs to, or the function whose invocation is running on this thread (:data:`current_component`); a
custom-runtime subprocess's JSON lines go through :func:`render_json_line`.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import threading
import time
from typing import Any, TextIO

from outpaint.log import _JsonLineFormatter

current_component: contextvars.ContextVar[str] = contextvars.ContextVar("local_component", default="local")
_LOGGER_COMPONENTS = {"outpaint.local.oss": "oss", "outpaint.local.dashscope": "dashscope"}
_PREFIX_WIDTH = len("[dashscope]")


class LogSink:
    """Writes prefixed lines to one stream, whole lines only (many threads write at once)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()

    def emit(self, component: str, message: str) -> None:
        prefix = f"[{component}]".ljust(_PREFIX_WIDTH)
        text = "".join(f"{prefix} {line}\n" for line in message.splitlines() or [""])
        with self._lock:
            self.stream.write(text)
            self.stream.flush()


def render_fields(when: float, level: str, event: str, fields: dict[str, Any]) -> str:
    """``12:00:01 INFO  job.created key=inbox/a.jpg state=QUEUED``."""
    clock = time.strftime("%H:%M:%S", time.localtime(when))
    pairs = " ".join(f"{key}={_short(value)}" for key, value in fields.items())
    return f"{clock} {level:<5} {event} {pairs}".rstrip()


def render_json_line(line: str) -> str:
    """A pipeline JSON log line made readable; anything else is returned unchanged."""
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict) or "event" not in record:
        return line
    fields = {k: v for k, v in record.items() if k not in ("time", "level", "event", "request_id")}
    return render_fields(time.time(), str(record.get("level", "INFO")), str(record["event"]), fields)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


class _ReadableFormatter(_JsonLineFormatter):
    """A subclass of the pipeline's formatter, so ``outpaint.log.configure`` sees a handler in place
    and adds no JSON handler of its own."""

    def format(self, record: logging.LogRecord) -> str:
        fields = dict(getattr(record, "fields", {}))
        return render_fields(record.created, record.levelname, record.getMessage(), fields)


class _SinkHandler(logging.Handler):
    def __init__(self, sink: LogSink) -> None:
        super().__init__()
        self.sink = sink
        self.setFormatter(_ReadableFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        component = next(
            (name for prefix, name in _LOGGER_COMPONENTS.items() if record.name.startswith(prefix)),
            current_component.get(),
        )
        try:
            self.sink.emit(component, self.format(record))
        except Exception:  # logging must never break an invocation
            self.handleError(record)


class _QuietReads(logging.Filter):
    """Hides the emulators' routine request lines (reads, and the job records' own state traffic):
    the poller issues several a second. Warnings and errors always pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO or not record.name.startswith(tuple(_LOGGER_COMPONENTS)):
            return True
        message = record.getMessage()
        return not any(marker in message for marker in (" GET ", " HEAD ", "/.outpaint", "%2F.outpaint"))


def route_logging(sink: LogSink, level: str = "INFO", *, verbose: bool = False) -> None:
    """Send every ``outpaint`` log record (pipeline and emulators) to ``sink``, readable and prefixed;
    unless ``verbose``, without the emulators' routine request lines."""
    logger = logging.getLogger("outpaint")
    for handler in list(logger.handlers):
        if isinstance(handler, _SinkHandler):
            logger.removeHandler(handler)
    handler = _SinkHandler(sink)
    if not verbose:
        handler.addFilter(_QuietReads())
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
