"""How the local FC runner calls a function: in this process, or over HTTP through the custom-runtime shim.

Both build the same ``x-fc-*`` headers (:func:`fc_headers`); in-process the context is made from them by
the shim's own :func:`outpaint.runtime.context_from_headers`, so both modes hand the handler one shape.
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from outpaint.local.logs import LogSink, current_component, render_json_line
from outpaint.local.slsyaml import FunctionSpec

START_TIMEOUT_SECONDS = 30.0


class InvocationFailed(Exception):
    """The function ran and failed (raised, or answered an error): FC retries such async invocations."""


class RunnerError(RuntimeError):
    """The runner cannot start a function (bad environment, shim did not come up)."""


@dataclass(frozen=True)
class Identity:
    """What FC knows about the caller: account, region and the function role's credentials."""

    account_id: str
    region: str
    access_key_id: str
    access_key_secret: str
    security_token: str = ""


def fc_headers(
    function: FunctionSpec, identity: Identity, request_id: str, *, path: str, retry: int = 0
) -> dict[str, str]:
    """The custom-runtime request headers FC sends (reference §A4), for ``/invoke`` or ``/initialize``."""
    headers = {
        "x-fc-request-id": request_id,
        "x-fc-function-name": function.name,
        "x-fc-function-handler": function.handler,
        "x-fc-function-memory": str(function.memory),
        "x-fc-function-timeout": str(function.timeout),
        "x-fc-region": identity.region,
        "x-fc-account-id": identity.account_id,
        "x-fc-access-key-id": identity.access_key_id,
        "x-fc-access-key-secret": identity.access_key_secret,
        "x-fc-security-token": identity.security_token,
        "x-fc-qualifier": "LATEST",
        "x-fc-control-path": path,
        "x-fc-retry-count": str(retry),
    }
    if function.initializer:
        headers["x-fc-function-initializer"] = function.initializer
    return {name: value for name, value in headers.items() if value}


def system_environment(function: FunctionSpec, identity: Identity, code_root: Path) -> dict[str, str]:
    """The variables FC sets in every instance (reference §A3), for this function."""
    return {
        "FC_FUNC_CODE_PATH": str(code_root),
        "FC_ACCOUNT_ID": identity.account_id,
        "FC_REGION": identity.region,
        "FC_FUNCTION_NAME": function.name,
        "FC_FUNCTION_HANDLER": function.handler,
        "FC_FUNCTION_MEMORY_SIZE": str(function.memory),
        "ALIBABA_CLOUD_ACCESS_KEY_ID": identity.access_key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": identity.access_key_secret,
        **({"ALIBABA_CLOUD_SECURITY_TOKEN": identity.security_token} if identity.security_token else {}),
    }


class Invoker(Protocol):
    def start(self, functions: Mapping[str, FunctionSpec]) -> None: ...

    def invoke(self, function: FunctionSpec, event: bytes, headers: dict[str, str]) -> Any: ...

    def stop(self) -> None: ...


class InProcessInvoker:
    """Imports the handler module from ``code_root`` and calls it on the runner's worker threads.

    One process has one environment: the functions' variables must agree (per-function ``FC_*`` names
    come from the context instead). Functions whose environments differ need ``--runtime custom``.
    """

    def __init__(
        self,
        identity: Identity,
        code_root: Path,
        environment: Callable[[FunctionSpec], Mapping[str, str]],
    ) -> None:
        self.identity = identity
        self.code_root = code_root
        self.environment = environment
        self._handlers: dict[str, Callable[[bytes, Any], Any]] = {}
        self._saved_environment: dict[str, str | None] = {}

    def start(self, functions: Mapping[str, FunctionSpec]) -> None:
        from outpaint.runtime import context_from_headers

        shared = self._shared_environment(functions)
        self._saved_environment = {name: os.environ.get(name) for name in shared}
        os.environ.update(shared)
        from outpaint.config import get_settings

        get_settings.cache_clear()  # settings are read once per instance: this process is the instance
        if str(self.code_root) not in sys.path:
            sys.path.insert(0, str(self.code_root))
        for function in functions.values():
            self._handlers[function.handler] = self._resolve(function.handler)
            if function.initializer:
                headers = fc_headers(function, self.identity, f"init-{function.name}", path="/initialize")
                token = current_component.set(function.resource_id)
                try:
                    self._resolve(function.initializer)(context_from_headers(headers))
                except Exception as exc:
                    raise RunnerError(f"{function.resource_id}: initializer failed: {exc}") from exc
                finally:
                    current_component.reset(token)

    def _shared_environment(self, functions: Mapping[str, FunctionSpec]) -> dict[str, str]:
        shared: dict[str, str] = {}
        owner: dict[str, str] = {}
        for function in functions.values():
            for name, value in self.environment(function).items():
                if name in shared and shared[name] != value:
                    raise RunnerError(
                        f"{owner[name]} and {function.resource_id} set {name} differently; in-process "
                        "invocation shares one environment: use --runtime custom"
                    )
                shared[name], owner[name] = value, function.resource_id
        # Per-function FC_FUNCTION_* names differ between functions; the context carries them instead.
        instance = system_environment(next(iter(functions.values())), self.identity, self.code_root)
        shared.update({k: v for k, v in instance.items() if not k.startswith("FC_FUNCTION")})
        return shared

    def _resolve(self, handler: str) -> Callable[..., Any]:
        module_name, _, attribute = handler.rpartition(".")
        try:
            return getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as exc:
            raise RunnerError(f"handler {handler!r} not found under {self.code_root}: {exc}") from None

    def invoke(self, function: FunctionSpec, event: bytes, headers: dict[str, str]) -> Any:
        from outpaint.runtime import context_from_headers

        try:
            return self._handlers[function.handler](event, context_from_headers(headers))
        except Exception as exc:
            raise InvocationFailed(f"{type(exc).__name__}: {exc}") from exc

    def stop(self) -> None:
        """Forget the handlers and give the process its environment back."""
        self._handlers.clear()
        for name, value in self._saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_environment = {}


class CustomRuntimeInvoker:
    """One ``python -m outpaint.runtime`` instance per function, on a free loopback port, with the
    function's environment; invocations are ``POST /invoke`` with FC's headers."""

    def __init__(
        self,
        identity: Identity,
        code_root: Path,
        environment: Callable[[FunctionSpec], Mapping[str, str]],
        sink: LogSink,
    ) -> None:
        self.identity = identity
        self.code_root = code_root
        self.environment = environment
        self.sink = sink
        self._instances: dict[str, tuple[subprocess.Popen[bytes], str]] = {}

    def start(self, functions: Mapping[str, FunctionSpec]) -> None:
        """One instance per function; if one fails to start, the ones already started are stopped."""
        try:
            for function in functions.values():
                self._start_instance(function)
        except BaseException:
            self.stop()
            raise

    def _start_instance(self, function: FunctionSpec) -> None:
        import httpx

        port = free_port()
        env = {
            "PATH": os.environ.get("PATH", ""),
            **self.environment(function),
            **system_environment(function, self.identity, self.code_root),
            "FC_CUSTOM_LISTEN_PORT": str(port),
            "GUNICORN_LOG_LEVEL": "warning",
        }
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "outpaint.runtime", "--host", "127.0.0.1", "--port", str(port)],
            cwd=self.code_root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._instances[function.resource_id] = (process, f"http://127.0.0.1:{port}")
        threading.Thread(
            target=self._pump, args=(function.resource_id, process), name=f"fc-log-{port}", daemon=True
        ).start()
        wait_for_port(port, process)
        if function.initializer:
            headers = fc_headers(function, self.identity, f"init-{function.name}", path="/initialize")
            answer = httpx.post(f"http://127.0.0.1:{port}/initialize", headers=headers, timeout=60)
            if answer.status_code != 200:
                raise RunnerError(f"{function.resource_id}: initializer failed: {answer.text[:500]}")

    def _pump(self, component: str, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            self.sink.emit(component, render_json_line(raw.decode("utf-8", "replace").rstrip()))

    def invoke(self, function: FunctionSpec, event: bytes, headers: dict[str, str]) -> Any:
        import httpx

        _, url = self._instances[function.resource_id]
        try:
            answer = httpx.post(
                f"{url}/invoke",
                content=event,
                headers={**headers, "Content-Type": "application/octet-stream"},
                timeout=function.timeout + 5.0,
            )
        except httpx.HTTPError as exc:
            raise InvocationFailed(f"{type(exc).__name__}: {exc}") from exc
        if answer.status_code != 200 or answer.headers.get("x-fc-status", "200") != "200":
            raise InvocationFailed(f"HTTP {answer.status_code}: {answer.text[:500]}")
        try:
            return answer.json()
        except json.JSONDecodeError:
            return answer.text

    def stop(self) -> None:
        for process, _ in self._instances.values():
            process.terminate()
        for process, _ in self._instances.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        self._instances.clear()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], host: str = "127.0.0.1") -> None:
    """Return once ``host:port`` accepts connections; :class:`RunnerError` if ``process`` exits first."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RunnerError(f"the runtime on port {port} exited with status {process.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RunnerError(f"the runtime on port {port} did not start within {START_TIMEOUT_SECONDS:.0f}s")
