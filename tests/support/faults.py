"""Crash injection: make the process "die" at one chosen I/O step of the pipeline.

``Crash`` derives from BaseException, like the SIGKILL or timeout it stands for: the pipeline's
per-job guard (which catches Exception) cannot swallow it, so the invocation ends right there.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

from outpaint.app import Pipeline


class Crash(BaseException):
    """The process stops here."""


@dataclass
class FaultPoint:
    """Crash at the first call of ``target.method`` whose first argument matches ``pattern``,
    ``before`` the real call or ``after`` it (its side effect done, its answer lost)."""

    target: str  # "storage", "client" or "fetcher"
    method: str
    pattern: str = "*"
    when: str = "before"
    skip: int = 0  # matching calls to let through first
    fired: bool = False

    def matches(self, target: str, method: str, args: tuple[Any, ...]) -> bool:
        first = str(args[0]) if args else ""
        if self.fired or (target, method) != (self.target, self.method):
            return False
        if not fnmatch.fnmatchcase(first, self.pattern):
            return False
        if self.skip:
            self.skip -= 1
            return False
        return True


class _Proxy:
    def __init__(self, name: str, real: Any, point: FaultPoint) -> None:
        self._name, self._real, self._point = name, real, point

    def __getattr__(self, method: str) -> Any:
        attribute = getattr(self._real, method)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            point = self._point
            hit = point.matches(self._name, method, args)
            if hit and point.when == "before":
                point.fired = True
                raise Crash(f"{self._name}.{method} before")
            result = attribute(*args, **kwargs)
            if hit:
                point.fired = True
                raise Crash(f"{self._name}.{method} after")
            return result

        return call


def with_fault(pipeline: Pipeline, point: FaultPoint) -> Pipeline:
    """The same pipeline whose storage, DashScope client and result fetcher crash at ``point``."""
    pipeline.storage = _Proxy("storage", pipeline.storage, point)  # type: ignore[assignment]
    pipeline.client = _Proxy("client", pipeline.client, point)  # type: ignore[assignment]
    pipeline.fetcher = _Proxy("fetcher", pipeline.fetcher, point)  # type: ignore[assignment]
    return pipeline
