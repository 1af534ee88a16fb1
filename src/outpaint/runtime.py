"""Function Compute adapter: the FC context → an Invocation, and the custom-runtime HTTP shim.

The built-in Python runtime calls ``handler.on_upload(event, context)`` directly. The custom runtime
(used by the Funcraft template, whose runtime list stops at Python 3.6) starts ``python -m
outpaint.runtime``: functions-framework serves ``POST /invoke`` and ``POST /initialize``, and the shim
turns the ``x-fc-*`` headers into the same context object, so one code base serves both runtimes.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from outpaint.oss import Credentials

DEFAULT_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Invocation:
    """What the pipeline needs from FC's calling convention, and nothing more."""

    request_id: str | None
    function_name: str | None
    timeout_seconds: float
    credentials: Credentials | None
    started_at: float = field(default_factory=time.time)

    def deadline(self, margin: float, budget: float | None = None) -> float:
        """Wall-clock time by which work must stop: the FC timeout less ``margin``, within ``budget``."""
        end = self.started_at + self.timeout_seconds - margin
        return min(end, self.started_at + budget) if budget is not None else end


def invocation_from_context(context: Any) -> Invocation:
    """Read request id, function timeout and credentials from an FC context (any runtime version).

    python3.10 passes STS credentials in ``context.credentials``; python3.12 removed them in favour of
    the ``ALIBABA_CLOUD_*`` environment variables.
    """
    function = getattr(context, "function", None)
    timeout = getattr(function, "timeout", None) or os.environ.get("FC_FUNCTION_TIMEOUT")
    return Invocation(
        request_id=getattr(context, "request_id", None),
        function_name=getattr(function, "name", None) or os.environ.get("FC_FUNCTION_NAME"),
        timeout_seconds=float(timeout or DEFAULT_TIMEOUT_SECONDS),
        credentials=_credentials(getattr(context, "credentials", None)),
    )


def _credentials(creds: Any) -> Credentials | None:
    key_id = getattr(creds, "access_key_id", None) or getattr(creds, "accessKeyId", None)
    secret = getattr(creds, "access_key_secret", None) or getattr(creds, "accessKeySecret", None)
    token = getattr(creds, "security_token", None) or getattr(creds, "securityToken", None)
    if not key_id or not secret:
        key_id = os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID")
        secret = os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        token = os.environ.get("ALIBABA_CLOUD_SECURITY_TOKEN")
    if not key_id or not secret:
        return None
    return Credentials(key_id, secret, token or None)


# --------------------------------------------------------------------------- custom-runtime shim
def context_from_headers(headers: Any) -> SimpleNamespace:
    """An FC-like context object built from the custom runtime's ``x-fc-*`` request headers."""

    def header(name: str) -> str | None:
        return headers.get(name) or None

    return SimpleNamespace(
        request_id=header("x-fc-request-id"),
        credentials=SimpleNamespace(
            access_key_id=header("x-fc-access-key-id"),
            access_key_secret=header("x-fc-access-key-secret"),
            security_token=header("x-fc-security-token"),
        ),
        function=SimpleNamespace(
            name=header("x-fc-function-name"),
            handler=header("x-fc-function-handler"),
            memory=header("x-fc-function-memory"),
            timeout=int(header("x-fc-function-timeout") or 0) or None,
        ),
        region=header("x-fc-region"),
        account_id=header("x-fc-account-id"),
    )


HANDLERS = ("on_upload", "on_tick", "on_dead_letter", "initialize")


def resolve_handler(handler_name: str | None) -> Any:
    """``handler.on_upload`` → the callable; falls back to ``OUTPAINT_HANDLER``."""
    import importlib

    name = handler_name or os.environ.get("OUTPAINT_HANDLER") or ""
    module_name, _, attribute = name.rpartition(".")
    if module_name != "handler" or attribute not in HANDLERS:
        expected = ", ".join(f"handler.{h}" for h in HANDLERS)
        raise LookupError(f"unknown handler {name!r}; expected one of {expected}")
    return getattr(importlib.import_module(module_name), attribute)


def fc_invoke(request: Any) -> Any:
    """functions-framework target: FC's custom-runtime protocol on top of a Flask request."""
    import json

    path = request.headers.get("x-fc-control-path") or request.path
    context = context_from_headers(request.headers)
    headers = {"Content-Type": "application/json"}
    try:
        if path == "/initialize":
            resolve_handler("handler.initialize")(context)
            return "", 200
        if path != "/invoke":
            return json.dumps({"error": f"unsupported path {path}"}), 404, headers
        result = resolve_handler(context.function.handler)(request.get_data(), context)
    except Exception as exc:  # FC records the invocation as failed and applies its retry policy
        body = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
        return json.dumps(body), 500, {**headers, "x-fc-status": "404"}
    return json.dumps(result, default=str), 200, {**headers, "x-fc-status": "200"}


def main(argv: list[str] | None = None) -> int:
    """Serve the shim on 0.0.0.0:$FC_CUSTOM_LISTEN_PORT (FC refuses a server bound to 127.0.0.1)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m outpaint.runtime", description=main.__doc__)
    parser.add_argument("--host", default="0.0.0.0")  # noqa: S104 - FC requires it
    parser.add_argument("--port", type=int, default=int(os.environ.get("FC_CUSTOM_LISTEN_PORT", "9000")))
    args = parser.parse_args(argv)
    # handler.py lives beside the package in the code folder (FC's working directory).
    code_root = os.environ.get("FC_FUNC_CODE_PATH") or os.getcwd()
    if code_root not in sys.path:
        sys.path.insert(0, code_root)
    from functions_framework import create_app
    from functions_framework._http import create_server

    app = create_app(target="fc_invoke", source=__file__, signature_type="http")
    create_server(app, debug=False).run(args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
