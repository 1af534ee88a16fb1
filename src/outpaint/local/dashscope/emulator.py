"""Run the emulator in-process on a background thread (tests, the local stack)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import uvicorn

from .app import create_app
from .settings import Settings
from .state import EmulatorState

T = TypeVar("T")
START_TIMEOUT = 10.0


class DashScopeEmulator:
    """A DashScope out-painting emulator serving on ``host:port`` (``port=0``: a free port).

    Every keyword except ``host`` and ``port`` is a setting (see ``Settings``): ``api_keys``, ``qps``,
    ``concurrency``, ``query_qps``, ``task_seconds``, ``fail_rate``, ``seed``, ``retention_seconds``,
    ``result_url_seconds``, ``over_concurrency``, ``throttle_rate``, ``error_rate``, ``latency``,
    ``download_timeout``, ``max_download_bytes``. With ``data_dir`` tasks and results are kept there, so
    a restarted emulator on the same directory answers for them as the real service does for 24 h.
    """

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, data_dir: Path | None = None, **settings: Any
    ) -> None:
        self._settings = Settings(**settings)
        self._host, self._port = host, port
        self._data_dir = data_dir
        self._state: EmulatorState | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def origin(self) -> str:
        """``http://host:port``: results are served from here."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    @property
    def base_url(self) -> str:
        """The DashScope base URL (``base_address=`` / ``DASHSCOPE_HTTP_BASE_URL``)."""
        return f"{self.origin}/api/v1"

    def start(self) -> DashScopeEmulator:
        """Bind, serve on a daemon thread, and return once the port answers."""
        if self._thread is not None:
            raise RuntimeError("emulator already started")
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        # An explicit IPPROTO_TCP lets asyncio set TCP_NODELAY on accepted connections (no 40 ms stalls).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        self._port = sock.getsockname()[1]
        self._state = EmulatorState(self._settings, self._data_dir)
        config = uvicorn.Config(create_app(self._state), log_config=None, access_log=False, lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._serve, args=(sock,), name="dashscope-emulator", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not (self._server.started and self._loop is not None):
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("DashScope emulator failed to start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Shut the server down and release its threads."""
        if self._server is None or self._thread is None or self._state is None:
            return
        self._server.should_exit = True
        self._thread.join(START_TIMEOUT)
        self._state.close()
        self._server = self._thread = self._loop = None

    def stats(self) -> dict[str, Any]:
        """The same document as ``GET /_emulator/stats``."""
        return self._call(lambda state: state.stats())

    def configure(self, **knobs: Any) -> dict[str, Any]:
        """Change settings live (``ValueError`` on bad input); returns the new settings."""
        return self._call(lambda state: state.configure(**knobs))

    def reset(self) -> None:
        """Forget tasks, counters and tokens; restart the seeded draws."""
        self._call(lambda state: state.reset())

    def forget_tasks(self) -> None:
        """The lost-tasks fault: every task and result is forgotten (queries answer UNKNOWN)."""
        self._call(lambda state: state.forget_tasks())

    def _call(self, operation: Callable[[EmulatorState], T]) -> T:
        """Run ``operation`` on the server's event loop: the state is never touched from two threads."""
        if self._loop is None or self._state is None:
            raise RuntimeError("emulator is not running")
        state = self._state

        async def run() -> T:
            return operation(state)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(START_TIMEOUT)

    def _serve(self, sock: socket.socket) -> None:
        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            assert self._server is not None
            await self._server.serve(sockets=[sock])

        asyncio.run(serve())

    def __enter__(self) -> DashScopeEmulator:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
