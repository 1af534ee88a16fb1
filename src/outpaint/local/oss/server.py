"""The ASGI application: address, authenticate, dispatch, answer errors the OSS way, log one line."""

from __future__ import annotations

import base64
import logging
import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from . import xmlio
from .context import Call, State
from .errors import OssError
from .routing import OWNER, READ, SELF, Operation, resolve
from .wire import new_request_id

log = logging.getLogger("outpaint.local.oss")


def create_app(state: State) -> ASGIApp:
    """An ASGI app serving the OSS protocol from ``state``.

    Every path goes to the one endpoint: no router, whose patterns would not match a key holding a
    line feed, and whose own 404/405 answers are not OSS errors."""

    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        request_id = new_request_id()
        name = "-"
        call = None
        try:
            call = Call.parse(request, state, request_id)
            operation = resolve(call)
            name = operation.name
            await _authorize(state, call, operation)
            response = await operation.handler(call)
        except ClientDisconnect:
            log.info("%s %s: client disconnected", name, request.method)
            return Response(status_code=499)
        except Exception as exc:
            error = exc if isinstance(exc, OssError) else _internal(exc)
            await _discard_body(request)
            response = _error_response(error, request, request_id, call.host_id if call else "")
        response.headers["x-oss-request-id"] = request_id
        response.headers["Server"] = "AliyunOSS"
        log.info(
            "%s %s %s -> %d %.1fms",
            name,
            request.method,
            request.scope.get("raw_path", b"").decode("latin-1") or request.url.path,
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        return response

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            response = await endpoint(Request(scope, receive))
            await response(scope, receive, send)

    return app


async def _authorize(state: State, call: Call, operation: Operation) -> None:
    """Verify the signature; an anonymous caller passes only where the bucket ACL allows.

    A missing bucket is reported before any credential problem, as OSS does (SDKs' bucket-exists
    checks rely on NoSuchBucket whatever the key)."""
    if call.bucket is not None and operation.name != "PutBucket":
        await run_in_threadpool(call.storage.bucket, call.bucket)
    if not state.auth or operation.access == SELF:
        return
    if state.verifier.verify(call.signed_view()) is not None:
        return
    if operation.access == OWNER or call.bucket is None:
        raise OssError("AccessDenied", "Anonymous access is forbidden for this operation.")
    acl = await run_in_threadpool(_effective_acl, call)
    if acl == "public-read-write" or (acl == "public-read" and operation.access == READ):
        return
    raise OssError("AccessDenied", "You have no right to access this object because of bucket acl.")


def _effective_acl(call: Call) -> str:
    """The object's own ACL when it has one, else the bucket's."""
    if call.key is not None:
        try:
            record = call.storage.head_object(call.bucket_name, call.key)
        except OssError:
            pass
        else:
            if record.acl != "default":
                return record.acl
    return call.storage.bucket(call.bucket_name).acl


def _internal(exc: Exception) -> OssError:
    log.exception("internal error")
    return OssError("InternalError", f"{type(exc).__name__}: {exc}")


def _error_response(error: OssError, request: Request, request_id: str, host_id: str) -> Response:
    body = xmlio.render(
        "Error",
        [
            ("Code", error.code),
            ("Message", error.message),
            ("RequestId", request_id),
            ("HostId", host_id),
            *error.details.items(),
            ("EC", error.ec),
        ],
    )
    headers = {**error.headers, **({"x-oss-ec": error.ec} if error.ec else {})}
    if request.method == "HEAD":
        # HEAD answers carry no body; OSS puts the error document, base64-encoded, in x-oss-err.
        headers["x-oss-err"] = base64.b64encode(body).decode()
        return Response(status_code=error.status, headers=headers)
    return Response(body, status_code=error.status, media_type="application/xml", headers=headers)


async def _discard_body(request: Request) -> None:
    """Read what the client is still sending so it sees the error instead of a reset connection."""
    try:
        async for _ in request.stream():
            pass
    except (RuntimeError, ClientDisconnect):
        pass
