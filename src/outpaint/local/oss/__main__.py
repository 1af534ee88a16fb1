"""``python -m outpaint.local.oss``: run the OSS emulator."""

from .cli import main

raise SystemExit(main())
