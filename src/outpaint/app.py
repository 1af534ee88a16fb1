"""Composition root: settings + credentials → a Pipeline (cached per warm instance), and the two
entry points the FC handlers call."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from outpaint import log
from outpaint.config import Settings, get_settings
from outpaint.errors import ConfigError, EventError

if TYPE_CHECKING:
    from outpaint.pipeline import Pipeline
    from outpaint.runtime import Invocation
    from outpaint.storage import Credentials

_lock = threading.Lock()
_cached: dict[tuple[int, Credentials], Pipeline] = {}


def static_credentials(settings: Settings) -> Credentials | None:
    """Credentials from settings (local stack, CLI), when set."""
    from outpaint.storage import Credentials

    if settings.access_key_id is None or settings.access_key_secret is None:
        return None
    token = settings.security_token.get_secret_value() if settings.security_token else None
    return Credentials(
        settings.access_key_id.get_secret_value(), settings.access_key_secret.get_secret_value(), token
    )


def build_pipeline(settings: Settings, credentials: Credentials) -> Pipeline:
    """A fresh Pipeline wired to OSS and DashScope."""
    from outpaint.dashscope import DashScopeClient
    from outpaint.pipeline import Pipeline
    from outpaint.results import ResultFetcher
    from outpaint.storage import Storage
    from outpaint.store import JobStore

    if settings.dashscope_api_key is None:
        raise ConfigError("dashscope_api_key (OUTPAINT_DASHSCOPE_API_KEY or DASHSCOPE_API_KEY) is not set")
    storage = Storage(settings, credentials)
    client = DashScopeClient(
        settings.dashscope_base_url,
        settings.dashscope_api_key.get_secret_value(),
        connect_timeout=settings.connect_timeout_seconds,
        read_timeout=settings.read_timeout_seconds,
    )
    return Pipeline(
        settings, storage, JobStore(storage, settings.state_prefix), client, ResultFetcher(settings)
    )


def pipeline_for(settings: Settings, credentials: Credentials | None) -> Pipeline:
    """The instance's Pipeline for these credentials (STS credentials rotate: a change rebuilds it)."""
    credentials = credentials or static_credentials(settings)
    if credentials is None:
        raise ConfigError("no OSS credentials: neither the FC context nor OUTPAINT_ACCESS_KEY_ID/SECRET")
    key = (id(settings), credentials)
    with _lock:
        if key not in _cached:
            _cached.clear()
            _cached[key] = build_pipeline(settings, credentials)
        return _cached[key]


def _begin(invocation: Invocation, settings: Settings | None) -> Settings:
    settings = settings or get_settings()
    log.configure(settings.log_level)
    log.set_request_id(invocation.request_id)
    return settings


def handle_upload(event: Any, invocation: Invocation, settings: Settings | None = None) -> dict[str, Any]:
    """on_upload: intake every record, then, if this instance can take the poller lease, submit and
    follow the new jobs right away instead of waiting for the next timer tick."""
    from outpaint.events import parse_oss_event

    settings = _begin(invocation, settings)
    try:
        records = parse_oss_event(event)
    except EventError as exc:
        # A malformed event never gets better: answering an error would only make FC retry it.
        log.event("event.malformed", logging.ERROR, code=exc.code, reason=exc.message)
        return {"error": exc.code, "message": exc.message}
    pipeline = pipeline_for(settings, invocation.credentials)
    outcomes = pipeline.intake(records)
    result: dict[str, Any] = {"outcomes": [o.__dict__ for o in outcomes]}
    if settings.upload_polls and any(o.action == "created" for o in outcomes):
        deadline = invocation.deadline(settings.tick_safety_margin_seconds)
        result["poller"] = pipeline.poll(deadline, hard_end=invocation.deadline(0)).as_dict()
    return result


def handle_tick(event: Any, invocation: Invocation, settings: Settings | None = None) -> dict[str, Any]:
    """on_tick: wait for the poller lease (another holder may be finishing) and work until the deadline."""
    from outpaint.events import parse_timer_event

    settings = _begin(invocation, settings)
    try:
        timer = parse_timer_event(event)
        log.event("tick.start", trigger=timer.trigger_name)
    except EventError as exc:
        log.event("event.malformed", logging.WARNING, code=exc.code, reason=exc.message)
    pipeline = pipeline_for(settings, invocation.credentials)
    deadline = invocation.deadline(settings.tick_safety_margin_seconds, settings.tick_budget_seconds)
    return pipeline.poll(deadline, hard_end=invocation.deadline(0), wait_for_lease=True).as_dict()
