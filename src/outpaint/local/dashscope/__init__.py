"""A local emulator of DashScope's ``image-out-painting`` async API (independent of the pipeline).

Run it with ``python -m outpaint.local.dashscope`` or embed it::

    with DashScopeEmulator(api_keys=["sk-local"], task_seconds=(1.0, 2.0), seed=0) as emu:
        emu.base_url  # "http://127.0.0.1:PORT/api/v1"

See docs/dashscope-emulator.md.
"""

from .emulator import DashScopeEmulator
from .settings import Settings

__all__ = ["DashScopeEmulator", "Settings"]
