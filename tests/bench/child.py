"""A fresh process for cold-start and memory figures: ``python -m tests.bench.child MODE [FUNCTION]``.

Only the standard library is loaded before the measured work. Prints one JSON line on stdout with
``import_ms`` (in-process), ``call_ms`` (``invoke`` only) and the peak RSS: ``peak_rss_kib`` is the
kernel's high-water mark of this process image (``VmHWM``). ``ru_maxrss_kib`` is reported too, but on
Linux ``getrusage(RUSAGE_SELF).ru_maxrss`` carries the parent's high-water mark across fork + exec, so
it shows the bench process's size, not the child's.

Modes:
  import-bare       ``import oss2, httpx, pydantic`` (the dependency floor)
  import-handler    ``import handler``
  import-closure    ``import handler`` plus every module named on stdin (a JSON list, in order)
  invoke FUNCTION   ``handler.FUNCTION(stdin bytes, FC-like context)``; settings come from the
                    environment and the context's timeout from ``BENCH_FC_TIMEOUT``
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import time
from types import SimpleNamespace
from typing import Any


def _import_closure(names: list[str]) -> None:
    import handler  # noqa: F401

    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:  # aliases some packages register in sys.modules (six.moves …)
            continue


def _invoke(function: str, event: bytes) -> dict[str, Any]:
    before = list(sys.modules)
    started = time.perf_counter()
    import handler

    imported = time.perf_counter()
    context = SimpleNamespace(
        request_id="bench",
        function=SimpleNamespace(name=function, timeout=float(os.environ["BENCH_FC_TIMEOUT"])),
    )
    result = getattr(handler, function)(event, context)
    known = set(before)
    return {
        "import_ms": (imported - started) * 1000,
        "call_ms": (time.perf_counter() - imported) * 1000,
        "result": result,
        "modules": [name for name in sys.modules if name not in known],
    }


def _peak_rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def main(argv: list[str]) -> int:
    mode = argv[0]
    stdin = sys.stdin.buffer.read()
    started = time.perf_counter()
    if mode == "import-bare":
        import httpx  # noqa: F401
        import oss2  # noqa: F401
        import pydantic  # noqa: F401
    elif mode == "import-handler":
        import handler  # noqa: F401
    elif mode == "import-closure":
        _import_closure(json.loads(stdin))
    elif mode != "invoke":
        raise SystemExit(f"unknown mode {mode!r}")
    out = {"import_ms": (time.perf_counter() - started) * 1000}
    if mode == "invoke":
        out = _invoke(argv[1], stdin)
    out["peak_rss_kib"] = _peak_rss_kib()
    out["ru_maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
