"""Composition root: settings + credentials → a Pipeline (cached per warm instance), and the two
entry points the FC handlers call."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from outpaint import log
from outpaint.config import Settings, get_settings
from outpaint.errors import ConfigError, EventError

if TYPE_CHECKING:
    from outpaint.dashscope import DashScopeClient
    from outpaint.events import ObjectRecord
    from outpaint.handover import TemporaryStorage
    from outpaint.intake import Intake, IntakeOutcome
    from outpaint.job import Trigger
    from outpaint.lease import LeaseStore
    from outpaint.oss import Credentials, Storage
    from outpaint.poller import PollReport
    from outpaint.results import ResultFetcher
    from outpaint.runtime import Invocation
    from outpaint.store import JobStore

_lock = threading.Lock()
_cached: dict[tuple[int, Credentials], Pipeline] = {}


class Pipeline:
    """The wired collaborators of one bucket, and the two things done with them: intake and poll.

    Each call builds its workers from the current collaborators (cheap, no I/O), so a test may swap
    ``storage``, ``client``, ``fetcher``, ``clock`` or ``sleep`` between calls.
    """

    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        client: DashScopeClient,
        fetcher: ResultFetcher,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        handover: TemporaryStorage | None = None,
    ) -> None:
        self.settings = settings
        self.handover = handover
        self.storage = storage
        self.client = client
        self.fetcher = fetcher
        self.clock = clock
        self.sleep = sleep

    @property
    def store(self) -> JobStore:
        from outpaint.store import JobStore

        return JobStore(self.storage, self.settings.state_prefix)

    @property
    def leases(self) -> LeaseStore:
        from outpaint.lease import LeaseStore

        return LeaseStore(self.storage, self.settings.state_prefix)

    def intake(self, records: Iterable[ObjectRecord]) -> list[IntakeOutcome]:
        """Turn each upload event record into job records."""
        return self._intake().intake(records)

    def offer(self, key: str, trigger: Trigger) -> IntakeOutcome:
        """Turn the object at ``key`` into job records (backfill)."""
        return self._intake().offer(key, trigger)

    def poll(
        self,
        deadline: float,
        *,
        hard_end: float | None = None,
        wait_for_lease: bool = False,
        on_round: Callable[[PollReport], None] | None = None,
    ) -> PollReport:
        """Hold the lease and work until ``deadline`` or until nothing is queued or in flight.

        ``hard_end`` (default, for callers without a platform timeout: late enough to finish a submit
        begun at the deadline) is when the platform may stop this process.
        """
        from outpaint.journal import Journal
        from outpaint.poller import Collaborators, poll
        from outpaint.publish import OutputLayout, Publisher
        from outpaint.submit import Submitter

        s, limits = self.settings, self.settings.poller_limits()
        if hard_end is None:
            hard_end = deadline + max(s.tick_safety_margin_seconds, limits.submit_seconds)
        journal = Journal(self.store, self.clock)
        parts = Collaborators(
            journal=journal,
            store=journal.store,
            leases=self.leases,
            client=self.client,
            submitter=Submitter(
                self.storage, self.client, journal, limits, self.clock, handover=self.handover
            ),
            publisher=Publisher(
                self.storage, self.fetcher, OutputLayout(s.input_prefix, s.output_prefix), self.clock
            ),
            limits=limits,
            clock=self.clock,
            sleep=self.sleep,
        )
        return poll(parts, deadline, hard_end, wait_for_lease=wait_for_lease, on_round=on_round)

    def _intake(self) -> Intake:
        from outpaint.intake import BucketLayout, Intake
        from outpaint.journal import Journal

        s = self.settings
        layout = BucketLayout(s.bucket, s.input_prefix, (s.output_prefix, s.state_prefix))
        return Intake(self.storage, Journal(self.store, self.clock), layout, s.plan_defaults(), self.clock)


def static_credentials(settings: Settings) -> Credentials | None:
    """Credentials from settings (local stack, CLI), when set."""
    from outpaint.oss import Credentials

    if settings.access_key_id is None or settings.access_key_secret is None:
        return None
    token = settings.security_token.get_secret_value() if settings.security_token else None
    return Credentials(
        settings.access_key_id.get_secret_value(), settings.access_key_secret.get_secret_value(), token
    )


def open_storage(settings: Settings, credentials: Credentials) -> Storage:
    """The bucket of ``settings``, through the OSS adapter."""
    from outpaint.oss import Storage

    return Storage(settings, credentials)


def open_store(settings: Settings, credentials: Credentials) -> JobStore:
    """The job records of the bucket of ``settings`` (no DashScope key needed)."""
    from outpaint.store import JobStore

    return JobStore(open_storage(settings, credentials), settings.state_prefix)


def open_leases(settings: Settings, credentials: Credentials) -> LeaseStore:
    """The poller lease of the bucket of ``settings``."""
    from outpaint.lease import LeaseStore

    return LeaseStore(open_storage(settings, credentials), settings.state_prefix)


def build_pipeline(settings: Settings, credentials: Credentials) -> Pipeline:
    """A fresh Pipeline wired to OSS and DashScope."""
    from outpaint.dashscope import DashScopeClient
    from outpaint.results import ResultFetcher

    if settings.dashscope_api_key is None:
        raise ConfigError("dashscope_api_key (OUTPAINT_DASHSCOPE_API_KEY or DASHSCOPE_API_KEY) is not set")
    key = settings.dashscope_api_key.get_secret_value()
    client = DashScopeClient(
        settings.dashscope_base_url,
        key,
        connect_timeout=settings.connect_timeout_seconds,
        read_timeout=settings.read_timeout_seconds,
    )
    return Pipeline(
        settings,
        open_storage(settings, credentials),
        client,
        ResultFetcher(settings.fetch_policy()),
        handover=open_handover(settings, key),
    )


def open_handover(settings: Settings, api_key: str) -> TemporaryStorage | None:
    """The temporary-storage hand-over when ``input_handover`` asks for it (else: signed URLs)."""
    if settings.input_handover != "temporary_storage":
        return None
    from outpaint.handover import TemporaryStorage

    # Uploads go only to hosts the result allow-list admits (the real storage is on *.aliyuncs.com).
    return TemporaryStorage(settings.dashscope_base_url, api_key, settings.fetch_policy())


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
        log.event("tick.start", logging.DEBUG, trigger=timer.trigger_name)  # idle: poller.finished only
    except EventError as exc:
        log.event("event.malformed", logging.WARNING, code=exc.code, reason=exc.message)
    pipeline = pipeline_for(settings, invocation.credentials)
    deadline = invocation.deadline(settings.tick_safety_margin_seconds, settings.tick_budget_seconds)
    return pipeline.poll(deadline, hard_end=invocation.deadline(0), wait_for_lease=True).as_dict()


def handle_dead_letter(
    event: Any, invocation: Invocation, settings: Settings | None = None
) -> dict[str, Any]:
    """on_dead_letter (on-upload's on-failure destination): keep the event FC gave up on, and say so."""
    from outpaint.deadletters import DeadLetters
    from outpaint.events import parse_failed_invocation

    settings = _begin(invocation, settings)
    failed = parse_failed_invocation(event)
    credentials = invocation.credentials or static_credentials(settings)
    if credentials is None:
        raise ConfigError("no OSS credentials: neither the FC context nor OUTPAINT_ACCESS_KEY_ID/SECRET")
    letters = DeadLetters(open_storage(settings, credentials), settings.state_prefix)
    key, letter, new = letters.keep(failed, time.time())
    log.event(
        "upload.dead_letter",
        logging.ERROR if new else logging.INFO,
        stored=key,
        new=new,
        keys=letter.keys,
        request=failed.request_id,
        condition=failed.condition,
        error=(failed.error or "")[:300] or None,
        fix="outpaint backfill --dead-letters",
    )
    return {"stored": key, "new": new}
