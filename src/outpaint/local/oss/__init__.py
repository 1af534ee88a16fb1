"""A local Alibaba Cloud OSS emulator with FC-style event notifications.

An independent program that shares only the wire protocol with the rest of outpaint: it imports
nothing from it. Run it with ``python -m outpaint.local.oss`` or embed it::

    with OssEmulator(data_dir=path, buckets=["b"]) as emu:
        bucket = oss2.Bucket(oss2.Auth(ak, sk), emu.endpoint, "b")
        emu.subscribe(handler, events=["oss:ObjectCreated:PutObject"], prefix="inbox/")

See docs/oss-emulator.md.
"""

from .emulator import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    DEFAULT_ACCOUNT_ID,
    DEFAULT_REGION,
    OssEmulator,
)
from .notify import Subscription
from .storage import DataDirInUse

__all__ = [
    "DEFAULT_ACCESS_KEY_ID",
    "DEFAULT_ACCESS_KEY_SECRET",
    "DEFAULT_ACCOUNT_ID",
    "DEFAULT_REGION",
    "DataDirInUse",
    "OssEmulator",
    "Subscription",
]
