"""Function Compute entry points (built-in Python runtime: ``handler.on_upload``, ``handler.on_tick``,
``handler.on_dead_letter``).

Kept deliberately thin and cheap to import: everything heavy is imported on the first invocation.
"""

from __future__ import annotations

import os
import sys
from typing import Any

# In the deployed package the dependencies sit beside this file; in a checkout the package is in src/.
_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "src")
if os.path.isdir(os.path.join(_SRC, "outpaint")) and _SRC not in sys.path:
    sys.path.insert(0, _SRC)


def initialize(context: Any) -> None:
    """FC initializer hook: read settings once per instance so bad settings fail at start."""
    from outpaint.config import get_settings

    get_settings()


def on_upload(event: bytes, context: Any) -> dict[str, Any]:
    """OSS trigger: plan and queue (and when possible submit) each uploaded image."""
    from outpaint.app import handle_upload
    from outpaint.runtime import invocation_from_context

    return handle_upload(event, invocation_from_context(context))


def on_tick(event: bytes, context: Any) -> dict[str, Any]:
    """Timer trigger: poll tasks, write results back, admit queued jobs within the quota."""
    from outpaint.app import handle_tick
    from outpaint.runtime import invocation_from_context

    return handle_tick(event, invocation_from_context(context))


def on_dead_letter(event: bytes, context: Any) -> dict[str, Any]:
    """On-failure destination of on_upload: keep the upload event FC gave up on, for status and backfill."""
    from outpaint.app import handle_dead_letter
    from outpaint.runtime import invocation_from_context

    return handle_dead_letter(event, invocation_from_context(context))
