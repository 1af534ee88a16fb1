"""``python -m outpaint.local.dashscope``."""

from .cli import main

main()
