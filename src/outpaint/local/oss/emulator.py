"""The embeddable emulator: storage, auth, notifications and the HTTP server behind one object."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType

import uvicorn

from .auth import Credential, Keyring, Verifier
from .context import State
from .notify import Notifier, Subscription
from .server import create_app
from .storage import Storage

log = logging.getLogger("outpaint.local.oss")

DEFAULT_ACCESS_KEY_ID = "test-access-key-id"
DEFAULT_ACCESS_KEY_SECRET = "test-access-key-secret"  # noqa: S105 - a well-known local-only default
DEFAULT_REGION = "cn-hangzhou"
DEFAULT_ACCOUNT_ID = "1234567890123456"


class OssEmulator:
    """A local OSS endpoint that real SDKs accept, with FC-style event notifications.

    ``start()`` serves in a background thread (tests, the local stack); ``run()`` serves in the
    foreground until SIGINT/SIGTERM (the command line). Also a context manager.
    """

    def __init__(
        self,
        data_dir: str | Path,
        buckets: Iterable[str] = (),
        *,
        access_key_id: str = DEFAULT_ACCESS_KEY_ID,
        access_key_secret: str = DEFAULT_ACCESS_KEY_SECRET,
        host: str = "127.0.0.1",
        port: int = 0,
        region: str = DEFAULT_REGION,
        sts_credentials: Iterable[tuple[str, str, str]] = (),
        public_read: Iterable[str] = (),
        account_id: str = DEFAULT_ACCOUNT_ID,
        auth: bool = True,
        domains: Sequence[str] = ("localhost",),
        notify_max_retries: int = 3,
        notify_retry_window: float = 3600.0,
        notify_backoff: tuple[float, float] = (0.5, 5.0),
    ) -> None:
        self.host = host
        self.region = region
        self._requested_port = port
        self._keyring = Keyring()
        self._keyring.add(Credential(access_key_id, access_key_secret))
        for sts in sts_credentials:
            self.add_sts_credentials(*sts)
        self.storage = Storage(Path(data_dir))
        self.notifier = Notifier(
            region=region,
            account_id=account_id,
            max_retries=notify_max_retries,
            retry_window=notify_retry_window,
            backoff=notify_backoff,
        )
        public = set(public_read)
        for name in [*buckets, *public]:
            self.create_bucket(name, public_read=name in public)
        self._state = State(
            storage=self.storage,
            verifier=Verifier(self._keyring, region),
            notifier=self.notifier,
            region=region,
            domains=tuple(domains),
            auth=auth,
        )
        self._socket: socket.socket | None = None
        self._port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # -- configuration ---------------------------------------------------------------------------

    def add_sts_credentials(self, access_key_id: str, access_key_secret: str, security_token: str) -> None:
        """Accept STS credentials; requests must carry ``security_token`` with them."""
        self._keyring.add(Credential(access_key_id, access_key_secret, security_token))

    def create_bucket(self, name: str, *, public_read: bool = False) -> None:
        """Create ``name`` if missing (idempotent); ``public_read`` lets anonymous callers read it."""
        self.storage.create_bucket(name, "public-read" if public_read else "private", exist_ok=True)

    def subscribe(
        self,
        target: Callable[[bytes], object] | str,
        events: Iterable[str] = ("oss:ObjectCreated:*",),
        prefix: str = "",
        suffix: str = "",
        bucket: str | None = None,
    ) -> Subscription:
        """Deliver matching events to ``target``: a callable taking the event bytes, or an HTTP URL
        that receives them as a POST body. ``events`` use trigger names (``oss:ObjectCreated:PutObject``,
        ``oss:ObjectCreated:*``); ``bucket`` None means every bucket."""
        return self.notifier.subscribe(target, events, prefix=prefix, suffix=suffix, bucket=bucket)

    def drain_notifications(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event is delivered or given up; False on timeout."""
        return self.notifier.drain(timeout)

    # -- serving ---------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the emulator is not started")
        return self._port

    @property
    def endpoint(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> OssEmulator:
        """Serve in a background thread; returns once the port answers."""
        server = self._prepare()
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [self._socket]}, name="oss-emulator", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the OSS emulator failed to start")
            time.sleep(0.01)
        log.info("OSS emulator listening on %s (data in %s)", self.endpoint, self.storage.root)
        return self

    def run(self) -> None:
        """Serve in the foreground until interrupted, then shut down cleanly."""
        server = self._prepare()
        log.info("OSS emulator listening on %s (data in %s)", self.endpoint, self.storage.root)
        try:
            server.run(sockets=[self._socket])
        finally:
            self._shutdown()

    def stop(self) -> None:
        """Stop serving, stop notification delivery and release the data directory."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10.0)
            self._thread = None
        self._shutdown()

    def __enter__(self) -> OssEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _prepare(self) -> uvicorn.Server:
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # proto must be IPPROTO_TCP for asyncio to set TCP_NODELAY on accepted connections; without it
        # every streamed response waits ~40 ms for a delayed ACK.
        self._socket = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((self.host, self._requested_port))
        self._port = self._socket.getsockname()[1]
        config = uvicorn.Config(
            create_app(self._state),
            log_level="warning",
            access_log=False,  # it would log signed query strings; the app logs its own line
            server_header=False,
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        return self._server

    def _shutdown(self) -> None:
        self.notifier.close()
        if self._socket is not None:
            self._socket.close()
        self._server = None
        self.storage.close()
