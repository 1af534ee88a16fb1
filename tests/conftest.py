"""Suite-wide guard: no test's logs may contain a secret or a URL signature."""

from __future__ import annotations

import logging
import re

import pytest

from outpaint.local.oss import DEFAULT_ACCESS_KEY_SECRET
from tests.support.stack import ACCESS_KEY_SECRET, API_KEY

SECRETS = (API_KEY, ACCESS_KEY_SECRET, DEFAULT_ACCESS_KEY_SECRET)
SIGNATURE = re.compile(r"(Signature=|x-oss-signature=|security-token=|Bearer sk-)", re.IGNORECASE)


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.getMessage()} {getattr(record, 'fields', '')}")


@pytest.fixture(autouse=True)
def logs_hold_no_secrets():
    recorder = _Recorder()
    watched = [logging.getLogger(), logging.getLogger("outpaint")]
    for logger in watched:
        logger.addHandler(recorder)
    yield recorder
    for logger in watched:
        logger.removeHandler(recorder)
    leaks = [line for line in recorder.lines if SIGNATURE.search(line) or any(s in line for s in SECRETS)]
    assert not leaks, f"secrets or signatures in the logs: {leaks[:3]}"
