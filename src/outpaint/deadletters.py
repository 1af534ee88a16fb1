"""Dead letters: upload events FC gave up on, kept under the state prefix until they are replayed.

The on-upload function's on-failure destination is the dead-letter function (``handler.on_dead_letter``),
which keeps each failed invocation here, one object per request (FC's retries of the dead-letter
function write the same object). ``outpaint status`` counts them and alerts; ``outpaint backfill
--dead-letters`` offers their objects to the same intake as uploads and discards each one it finished.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ValidationError

from outpaint.errors import AlreadyExists, EventError, NotFound
from outpaint.events import FailedInvocation
from outpaint.naming import StateLayout
from outpaint.store import ObjectStore, dump_json


class DeadLetter(BaseModel):
    """One kept failed invocation: when it arrived, why FC gave up, and the original event."""

    received_at: float
    invocation: FailedInvocation
    keys: list[str]  # the object keys of the original event ([] when it is not an OSS event)

    @property
    def reason(self) -> str:
        """FC's condition and the function's last error, in one line."""
        parts = [self.invocation.condition or "failed", (self.invocation.error or "").strip()]
        return ": ".join(part for part in parts if part)[:300]


class DeadLetters:
    """The dead letters of one bucket's state prefix."""

    def __init__(self, storage: ObjectStore, state_prefix: str) -> None:
        self.storage = storage
        self.layout = StateLayout(state_prefix)

    def keep(self, invocation: FailedInvocation, received_at: float) -> tuple[str, DeadLetter, bool]:
        """Store ``invocation``: its key, the letter, and False when the same request was kept before."""
        try:
            keys = [record.key for record in invocation.records()]
        except EventError:  # not an OSS event: kept all the same, to be looked at
            keys = []
        request = (
            invocation.request_id
            or hashlib.sha256(
                json.dumps(invocation.payload, sort_keys=True, default=str).encode()
            ).hexdigest()
        )
        key = self.layout.dead_letter_key(request)
        letter = DeadLetter(received_at=received_at, invocation=invocation, keys=keys)
        try:
            self.storage.put(key, dump_json(letter), content_type="application/json", forbid_overwrite=True)
        except AlreadyExists:
            return key, letter, False
        return key, letter, True

    def keys(self) -> list[str]:
        """Keys of the dead letters waiting (one LIST)."""
        return [k for k in self.storage.list_keys(self.layout.dead_letters_prefix) if k.endswith(".json")]

    def entries(self, keys: list[str] | None = None) -> list[tuple[str, DeadLetter | None]]:
        """The dead letters at ``keys`` (default: all waiting), oldest first; None for one that cannot
        be read (kept as it is, never guessed at); one gone meanwhile is left out."""
        found: list[tuple[str, DeadLetter | None]] = []
        for key in self.keys() if keys is None else keys:
            try:
                found.append((key, DeadLetter.model_validate_json(self.storage.get_bytes(key))))
            except NotFound:
                continue
            except ValidationError:
                found.append((key, None))
        found.sort(key=lambda item: item[1].received_at if item[1] else 0.0)
        return found

    def discard(self, key: str) -> None:
        """Remove a dead letter once its objects went through intake."""
        self.storage.delete(key)


def summary(letter: DeadLetter) -> dict[str, Any]:
    """What ``status`` and ``backfill`` show of one dead letter."""
    return {
        "received_at": letter.received_at,
        "request_id": letter.invocation.request_id,
        "keys": letter.keys,
        "reason": letter.reason,
    }
