"""The local FC runner's durable async queue: one JSON file per pending invocation under the data dir.

FC persists an asynchronous invocation before it answers the caller; the local runner writes the event
here before queueing it, rewrites it with its retry state after each failed attempt, and removes it once
it succeeded or was handed on (dropped, or delivered to its onFailure destination). What is left after a
stop or a crash is delivered again at the next start: at least once, as FC does.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass
class PendingEvent:
    """One asynchronous invocation and its retry state (times are epoch seconds: they outlive a restart)."""

    request_id: str
    function: str  # s.yaml resource id
    payload: bytes
    label: str
    born: float
    attempt: int = 0
    not_before: float = 0.0  # a retry waits until then

    def to_json(self) -> dict[str, object]:
        document = asdict(self)
        document["payload"] = base64.b64encode(self.payload).decode()
        return document

    @classmethod
    def from_json(cls, document: dict[str, object]) -> PendingEvent:
        values = dict(document)
        values["payload"] = base64.b64decode(str(values["payload"]))
        return cls(**values)  # type: ignore[arg-type]


class Spool:
    """Pending invocations as ``<directory>/<request id>.json``, each written atomically."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def put(self, event: PendingEvent) -> None:
        """Write (or rewrite) ``event``; durable when this returns."""
        path = self._path(event.request_id)
        partial = path.with_suffix(".tmp")
        with partial.open("w", encoding="utf-8") as out:
            json.dump(event.to_json(), out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)

    def remove(self, request_id: str) -> None:
        """Forget ``request_id`` (no error if it is already gone)."""
        self._path(request_id).unlink(missing_ok=True)

    def load(self) -> list[PendingEvent]:
        """Every pending event, oldest first; unreadable files are logged and set aside as ``.bad``."""
        events = []
        for path in self.directory.glob("*.json"):
            try:
                events.append(PendingEvent.from_json(json.loads(path.read_text(encoding="utf-8"))))
            except (OSError, ValueError, TypeError, KeyError) as exc:
                log.error("pending event %s is unreadable (%s): kept as %s.bad", path.name, exc, path.stem)
                path.replace(path.with_suffix(".bad"))
        return sorted(events, key=lambda event: event.born)

    def _path(self, request_id: str) -> Path:
        return self.directory / f"{request_id}.json"
