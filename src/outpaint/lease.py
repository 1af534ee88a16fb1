"""The poller lease: one holder at a time writes job records, fenced by terms, with the pacing state
(submit slot, learned task time, service pauses, last sweep) and the health handed from holder to
holder.

Each holder writes a new term object create-if-absent, so of two contenders exactly one wins. A lease
outlives its holder's process (hard end + slack): no second holder starts while the first may act.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator

from pydantic import BaseModel, Field

from outpaint.errors import AlreadyExists, NotFound
from outpaint.health import Health
from outpaint.naming import StateLayout
from outpaint.store import ObjectStore, dump_json

# A lease outlives its holder's process by this much, so no second holder starts while it may act.
LEASE_SLACK_SECONDS = 10.0
RETRY_EVERY_SECONDS = 1.0  # how often a waiting contender tries again
# What a new holder takes over from the previous term.
PACING_FIELDS = {"last_submit_at", "task_seconds", "last_sweep_at", "submits_paused_until", "health"}


class Lease(BaseModel):
    """The poller lease of one term, plus the pacing state handed from holder to holder."""

    term: int
    owner: str
    expires_at: float
    released: bool = False
    last_submit_at: float = 0.0
    task_seconds: float | None = None  # moving average of the service's task running times
    last_sweep_at: float = 0.0  # last search for records that lost their marker
    submits_paused_until: float = 0.0  # the service pushed back (429, account problem): wait until then
    health: Health = Field(default_factory=Health)  # what the poller runs saw (``outpaint status``)

    def live(self, now: float) -> bool:
        """Held by someone: not released and not expired."""
        return not self.released and self.expires_at > now

    # --- pacing --------------------------------------------------------------------------------
    def submits_open_at(self, submit_qps: float) -> float:
        """Earliest time of the next submit: the pacing slot, or later while the service pushes back
        (the pause is kept in the lease, so the next holder respects it too)."""
        # 5 % slack over the nominal spacing keeps us under a limiter that counts per window.
        return max(self.submits_paused_until, self.last_submit_at + 1.05 / submit_qps)

    def learn_task_seconds(self, seconds: float | None) -> None:
        """Moving average of the service's own running times (not our polling delay)."""
        if seconds is None or seconds < 0:
            return
        previous = self.task_seconds
        self.task_seconds = seconds if previous is None else 0.8 * previous + 0.2 * seconds

    def first_query_delay(self, poll_interval: float) -> float:
        """A task rarely ends before its usual running time: the first query goes out just before it,
        later ones every poll interval, so an ending is seen within about one interval."""
        learned = self.task_seconds
        return max(poll_interval, 0.9 * learned) if learned else poll_interval


class LeaseStore:
    """The lease terms of one bucket's state prefix."""

    def __init__(self, storage: ObjectStore, state_prefix: str) -> None:
        self.storage = storage
        self.layout = StateLayout(state_prefix)

    def current(self) -> Lease | None:
        """The latest lease term (live, expired or released), or None when no poller ever ran."""
        return self._latest()

    def acquire(self, seconds: float, now: float | None = None) -> Lease | None:
        """Take the lease for ``seconds`` unless a live holder has it."""
        now = time.time() if now is None else now
        try:
            previous = self._latest()
        except _Contended:
            return None
        if previous is not None and previous.live(now):
            return None
        pacing = previous.model_dump(include=PACING_FIELDS) if previous else {}
        term = previous.term + 1 if previous else 1
        lease = Lease(term=term, owner=uuid.uuid4().hex, expires_at=now + seconds, **pacing)
        try:
            self.storage.put(self.layout.lease_key(lease.term), dump_json(lease), forbid_overwrite=True)
        except AlreadyExists:
            return None
        if previous is not None:
            for key in self.storage.list_keys(self.layout.lease_prefix):
                if key != self.layout.lease_key(lease.term):
                    self.storage.delete(key)
        return lease

    def holds(self, lease: Lease, now: float | None = None) -> bool:
        """True while ``lease`` is unexpired and no later term exists (fencing before each round)."""
        now = time.time() if now is None else now
        try:
            latest = self._latest()
        except _Contended:
            return False
        return latest is not None and latest.term == lease.term and lease.expires_at > now

    def release(self, lease: Lease) -> None:
        """Hand the lease back, with the pacing state for the next holder."""
        lease.released = True
        self.storage.put(self.layout.lease_key(lease.term), dump_json(lease))

    def break_(self) -> None:
        """Void the current lease, keeping its pacing state. Only for when its holder is known to be
        gone (the local stack restarting: its pollers died with it); never from a function."""
        try:
            previous = self._latest()
        except _Contended:
            return  # someone is taking it right now: nothing stale to break
        if previous is None or previous.released:
            return
        voided = previous.model_copy(update={"term": previous.term + 1, "owner": "broken", "released": True})
        with contextlib.suppress(AlreadyExists):
            self.storage.put(self.layout.lease_key(voided.term), dump_json(voided), forbid_overwrite=True)

    @contextlib.contextmanager
    def hold(
        self,
        seconds: Callable[[float], float],
        *,
        wait_until: float | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Iterator[Lease | None]:
        """Take the lease for ``seconds(now)``, trying every second until ``wait_until`` (None: once);
        yield it (None when someone else keeps it) and release it afterwards if it is still ours."""
        while True:
            now = clock()
            lease = self.acquire(seconds(now), now=now)
            if lease is not None or wait_until is None or now >= wait_until:
                break
            sleep(RETRY_EVERY_SECONDS)
        try:
            yield lease
        finally:
            if lease is not None and self.holds(lease, now=clock()):
                self.release(lease)

    def _latest(self) -> Lease | None:
        """The newest term, or None when there never was one; raise _Contended when the newest listed
        term vanished meanwhile (a new holder won and cleaned up)."""
        keys = list(self.storage.list_keys(self.layout.lease_prefix))
        if not keys:
            return None
        try:
            return Lease.model_validate_json(self.storage.get_bytes(keys[-1]))
        except NotFound:
            raise _Contended from None


class _Contended(Exception):
    """Someone else is taking the lease right now."""
