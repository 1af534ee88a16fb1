"""Progress checkpoints of long operator runs (``outpaint backfill``), kept under the state prefix."""

from __future__ import annotations

import json
from typing import Any

from outpaint.errors import NotFound
from outpaint.naming import StateLayout
from outpaint.store import ObjectStore


class Checkpoints:
    """Named JSON checkpoints (any name, e.g. a backfill prefix)."""

    def __init__(self, storage: ObjectStore, state_prefix: str) -> None:
        self.storage = storage
        self.layout = StateLayout(state_prefix)

    def load(self, name: str) -> dict[str, Any] | None:
        """The checkpoint saved under ``name``, or None."""
        try:
            return json.loads(self.storage.get_bytes(self.layout.checkpoint_key(name)))
        except NotFound:
            return None

    def save(self, name: str, data: dict[str, Any]) -> None:
        """Overwrite the checkpoint ``name`` with the JSON object ``data``."""
        body = json.dumps(data, ensure_ascii=False).encode()
        self.storage.put(self.layout.checkpoint_key(name), body, content_type="application/json")

    def delete(self, name: str) -> None:
        self.storage.delete(self.layout.checkpoint_key(name))
