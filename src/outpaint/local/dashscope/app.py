"""The HTTP surface: DashScope API routes, signed result downloads and operator endpoints."""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .signing import oss_error
from .state import EmulatorState
from .tasks import UNKNOWN
from .uploads import UPLOAD_PATH, TemporaryStorage, form_fields
from .validation import MODEL, Submission, parse_submission
from .wire import (
    INVALID_API_KEY,
    INVALID_API_KEY_MISSING,
    NOT_FOUND,
    RATE_QUOTA,
    SYNC_NOT_SUPPORTED,
    TOO_LARGE,
    ApiError,
    error_response,
    invalid,
    new_id,
)

log = logging.getLogger("outpaint.local.dashscope")

SUBMIT_PATH = "/api/v1/services/aigc/image2image/out-painting"
MAX_BODY_BYTES = 64 * 1024 * 1024  # the documented whole-body cap with base64 data (reference §3)


def create_app(state: EmulatorState) -> Starlette:
    """A Starlette app serving one emulator ``state``."""
    api = _Api(state)
    routes = [
        Route(SUBMIT_PATH, api.submit, methods=["POST"]),
        Route("/api/v1/tasks/{task_id}", api.query, methods=["GET"]),
        Route("/api/v1/tasks/{task_id}/cancel", api.cancel, methods=["POST"]),
        Route("/api/v1/uploads", api.upload_policy, methods=["GET"]),
        Route(UPLOAD_PATH, api.upload, methods=["POST"]),
        Route(UPLOAD_PATH + "/{key:path}", api.temporary_file, methods=["GET"]),
        Route("/results/{name}", api.result, methods=["GET"]),
        Route("/_emulator/stats", api.stats, methods=["GET"]),
        Route("/_emulator/config", api.config, methods=["GET", "POST"]),
        Route("/_emulator/reset", api.reset, methods=["POST"]),
        Route("/_emulator/forget", api.forget, methods=["POST"]),
        Route("/_emulator/tasks", api.tasks, methods=["GET"]),
        Route("/_emulator/uploads", api.uploads, methods=["GET"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.scheduler.pump()  # tasks restored from the data dir run again
        yield

    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error}, lifespan=lifespan)
    app.add_middleware(_AccessLog)
    return app


class _Api:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.storage = TemporaryStorage(lambda: self.state.settings.temporary_storage_seconds)

    async def submit(self, request: Request) -> Response:
        state, request_id = self.state, new_id()
        await state.faults.delay(state.settings)
        try:
            self._authenticate(request)
            if request.headers.get("x-dashscope-async", "").lower() != "enable":
                raise ApiError(SYNC_NOT_SUPPORTED)
            if not state.submit_bucket.take():
                raise ApiError(RATE_QUOTA)
            submission = self._resolve(request, parse_submission(await _body(request)))
            state.scheduler.check_capacity()
            self._inject()
            state.faults.refuse_input(state.settings)
            task = state.scheduler.submit(submission, state.faults.task_failure(state.settings))
        except ApiError as error:
            counters = state.counters
            if error.error.status == 429:
                counters.submits_throttled += 1
            elif error.error.status < 500:
                counters.submits_rejected += 1
            return _fail(request, error, request_id)
        state.counters.submits_accepted += 1
        request.state.note = f"task={task.task_id}"
        output = {"task_id": task.task_id, "task_status": "PENDING"}
        return JSONResponse({"request_id": request_id, "output": output})

    def _resolve(self, request: Request, submission: Submission) -> Submission:
        """An ``oss://`` temporary file becomes the signed URL the task downloads, if the header asks."""
        if not submission.image_url.startswith("oss://"):
            return submission
        if request.headers.get("x-dashscope-ossresourceresolve", "").lower() != "enable":
            raise invalid(
                "input.image_url: an oss:// URL needs the header X-DashScope-OssResourceResolve: enable"
            )
        key = _api_key(request)
        url = self.storage.resolve(submission.image_url, key, MODEL, _origin(request))
        return dataclasses.replace(submission, image_url=url)

    async def upload_policy(self, request: Request) -> Response:
        request_id = new_id()
        try:
            self._authenticate(request)
            params = request.query_params
            if params.get("action") != "getPolicy":
                raise invalid("action must be getPolicy")
            if not params.get("model"):
                raise invalid("model is required")
        except ApiError as error:
            return _fail(request, error, request_id)
        data = self.storage.policy(_api_key(request), params["model"], _origin(request))
        request.state.note = f"dir={data['upload_dir']}"
        return JSONResponse({"request_id": request_id, "data": data})

    async def upload(self, request: Request) -> Response:
        fields, data = await form_fields(request)
        request.state.note = fields.get("key", "")
        return self.storage.accept(fields, data)

    async def temporary_file(self, request: Request) -> Response:
        params = request.query_params
        return self.storage.read(
            request.path_params["key"], params.get("Expires", ""), params.get("Signature", "")
        )

    async def query(self, request: Request) -> Response:
        request_id, task_id = new_id(), request.path_params["task_id"]
        try:
            await self._admit_read(request)
        except ApiError as error:
            return _fail(request, error, request_id)
        self.state.counters.queries += 1
        task = self.state.scheduler.get(task_id)
        if task is None:
            output: dict[str, Any] = {"task_id": task_id, "task_status": UNKNOWN}
            body: dict[str, Any] = {"request_id": request_id, "output": output}
        else:
            origin = self.state.settings.result_origin or str(request.base_url).rstrip("/")
            body = {"request_id": request_id, "output": task.output(origin)}
            if task.result is not None:
                body["usage"] = {"image_count": 1}
        request.state.note = body["output"]["task_status"]
        if self.state.faults.drop_status(self.state.settings):
            del body["output"]["task_status"]
            request.state.note += " (status dropped)"
        return JSONResponse(body)

    async def cancel(self, request: Request) -> Response:
        request_id, task_id = new_id(), request.path_params["task_id"]
        try:
            await self._admit_read(request)
            self.state.scheduler.cancel(task_id)
        except ApiError as error:
            return _fail(request, error, request_id)
        self.state.counters.cancels += 1
        request.state.note = f"task={task_id}"
        return JSONResponse({"request_id": request_id})

    async def result(self, request: Request) -> Response:
        state, name = self.state, request.path_params["name"]
        await state.faults.delay(state.settings)
        params = request.query_params
        refusal = state.signer.refusal(
            name, params.get("Expires"), params.get("Signature"), params.get("OSSAccessKeyId")
        )
        task = None if refusal else state.scheduler.get(name.partition(".")[0])
        if task is None or task.result is None:
            state.counters.result_downloads_refused += 1
            return refusal or oss_error(404, "NoSuchKey", "The specified key does not exist.")
        state.counters.result_downloads += 1
        return Response(task.result.data, media_type=task.result.content_type)

    async def stats(self, request: Request) -> Response:
        _require_loopback(request)
        return JSONResponse(self.state.stats())

    async def config(self, request: Request) -> Response:
        _require_loopback(request)
        if request.method == "GET":
            return JSONResponse(self.state.settings.public())
        try:
            knobs = json.loads(await request.body() or b"{}")
            if not isinstance(knobs, dict):
                raise ValueError("expected a JSON object of settings")
            return JSONResponse(self.state.configure(**knobs))
        except (ValueError, TypeError) as exc:
            return JSONResponse({"code": "InvalidConfig", "message": str(exc)}, status_code=400)

    async def reset(self, request: Request) -> Response:
        _require_loopback(request)
        self.state.reset()
        return JSONResponse(self.state.stats())

    async def forget(self, request: Request) -> Response:
        _require_loopback(request)
        self.state.forget_tasks()
        return JSONResponse(self.state.stats())

    async def tasks(self, request: Request) -> Response:
        _require_loopback(request)
        return JSONResponse({"tasks": self.state.scheduler.draws()})

    async def uploads(self, request: Request) -> Response:
        _require_loopback(request)
        return JSONResponse({"uploads": self.storage.listing()})

    async def _admit_read(self, request: Request) -> None:
        """Latency, key, query QPS and injected faults, in that order (queries and cancels)."""
        state = self.state
        await state.faults.delay(state.settings)
        self._authenticate(request)
        if not state.query_bucket.take():
            state.counters.queries_throttled += 1
            raise ApiError(RATE_QUOTA)
        try:
            self._inject()
        except ApiError as error:
            if error.error.status == 429:
                state.counters.queries_throttled += 1
            raise

    def _inject(self) -> None:
        try:
            self.state.faults.inject(self.state.settings)
        except ApiError as error:
            if error.error.status >= 500:
                self.state.counters.injected_errors += 1
            raise

    def _authenticate(self, request: Request) -> None:
        key = _api_key(request)
        if not key:
            raise ApiError(INVALID_API_KEY_MISSING)
        keys = self.state.settings.api_keys
        if keys and key not in keys:
            raise ApiError(INVALID_API_KEY)


def _api_key(request: Request) -> str:
    """The bearer key of ``request`` ("" when there is none)."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


def _origin(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(TOO_LARGE)
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise ApiError(TOO_LARGE)
    return body


def _fail(request: Request, error: ApiError, request_id: str) -> Response:
    request.state.note = error.error.code
    return error_response(error, request_id)


def _require_loopback(request: Request) -> None:
    """Operator endpoints answer loopback clients only, whatever address the server listens on."""
    host = request.client.host if request.client else ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise HTTPException(403, "operator endpoints are loopback-only")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(ApiError(NOT_FOUND, request.url.path), new_id())
    body = {"request_id": new_id(), "code": f"HTTP{exc.status_code}", "message": str(exc.detail)}
    return JSONResponse(body, status_code=exc.status_code)


class _AccessLog:
    """One line per request: method, path (no query: it carries signatures), status, note, time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 0

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, record)
        note = scope.get("state", {}).get("note", "")
        elapsed = (time.perf_counter() - started) * 1000
        log.info("%s %s -> %d %s (%.0f ms)", scope["method"], scope["path"], status, note, elapsed)
