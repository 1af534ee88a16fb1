"""An in-memory object store: the ``store.ObjectStore`` protocol kept in a dict, for state tests that
need no OSS at all."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import IO

from outpaint.errors import AlreadyExists, NotFound


class MemoryStorage:
    """Objects in a dict; the same answers as the OSS adapter for what the state layer uses."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(
        self,
        key: str,
        data: bytes | IO[bytes],
        *,
        content_type: str | None = None,
        user_meta: Mapping[str, str] | None = None,
        forbid_overwrite: bool = False,
    ) -> str:
        if forbid_overwrite and key in self.objects:
            raise AlreadyExists(key)
        self.objects[key] = data if isinstance(data, bytes) else data.read()
        return "ETAG"

    def get_bytes(self, key: str, byte_range: tuple[int, int] | None = None) -> bytes:
        if key not in self.objects:
            raise NotFound(key)
        data = self.objects[key]
        return data if byte_range is None else data[byte_range[0] : byte_range[1] + 1]

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    def list_keys(self, prefix: str, start_after: str = "") -> Iterator[str]:
        return iter(sorted(k for k in self.objects if k.startswith(prefix) and k > start_after))
