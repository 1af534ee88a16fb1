"""Write-back: a succeeded task's result into the bucket under its output key, with provenance, never
over another upload's output, and never buying the result twice on the way."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from outpaint import GENERATED_BY
from outpaint.errors import OutpaintError, ResultLost, ResultRefused, ResultUnavailable
from outpaint.job import JobRecord, State
from outpaint.naming import (
    META_GENERATED_BY,
    META_JOB_ID,
    META_SOURCE,
    META_SOURCE_ETAG,
    META_TASK_ID,
    META_VARIANT,
    output_key,
)
from outpaint.outcomes import Done, End, Outcome, WritebackFailed
from outpaint.results import finish_exact

if TYPE_CHECKING:
    from outpaint.oss import Storage
    from outpaint.results import ResultFetcher, ResultImage

MAX_WRITEBACK_FAILURES = 5
MAX_BACKOFF_SECONDS = 60.0


@dataclass(frozen=True)
class OutputLayout:
    """Where outputs go: the source's path under ``input_prefix``, moved under ``output_prefix``."""

    input_prefix: str
    output_prefix: str


class Publisher:
    """Fetches results and stores them as outputs."""

    def __init__(
        self,
        storage: Storage,
        fetcher: ResultFetcher,
        layout: OutputLayout,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.storage = storage
        self.fetcher = fetcher
        self.layout = layout
        self.clock = clock

    def write_back(self, job: JobRecord, output_url: str | None) -> Outcome:
        """Fetch the result at ``output_url``, finish it (exact size) and store it."""
        if not output_url:
            return End(State.FAILED, "result.missing", "the task succeeded without an output_image_url")
        result = self._fetch(job, output_url)
        if isinstance(result, Outcome):
            return result
        try:
            if job.finish:
                result = finish_exact(result, job.finish["width"], job.finish["height"])
            return self._store(job, result)
        except OutpaintError as exc:
            return self._failed(job, exc.code, exc.message)
        except Exception as exc:  # e.g. Pillow failing on the result: bounded like any write-back failure
            return self._failed(job, "result.write_error", type(exc).__name__)
        finally:
            result.file.close()

    def _fetch(self, job: JobRecord, url: str) -> ResultImage | Outcome:
        """The downloaded result, or what its failure means for the job."""
        try:
            return self.fetcher.fetch(url)
        except ResultLost as exc:
            return End(State.EXPIRED, exc.code, f"{exc.message}; `outpaint retry` buys the result again")
        except ResultUnavailable as exc:
            return self._failed(job, exc.code, exc.message)
        except ResultRefused as exc:
            return End(State.FAILED, exc.code, exc.message)
        except Exception as exc:  # a library error: bounded like any write-back failure
            return self._failed(job, "result.fetch_error", type(exc).__name__)

    def _failed(self, job: JobRecord, code: str, message: str) -> Outcome:
        """Back off (the failures are counted in the record, across runs); give up after a few."""
        failures = job.writeback_failures + 1
        if failures >= MAX_WRITEBACK_FAILURES:
            return WritebackFailed(code, message, retry_at=None)
        return WritebackFailed(code, message, retry_at=self.clock() + min(MAX_BACKOFF_SECONDS, 2.0**failures))

    def _store(self, job: JobRecord, result: ResultImage) -> Outcome:
        if not job.describes(self.storage.head_or_none(job.source_key)):
            # A newer upload has its own job; writing this older result could overwrite its output.
            return End(State.SKIPPED, "source.changed", "the source changed while the task ran")
        key = output_key(
            job.source_key,
            input_prefix=self.layout.input_prefix,
            output_prefix=self.layout.output_prefix,
            extension=result.extension,
            variant=job.variant_name if job.variants > 1 else None,
        )
        existing = self.storage.head_or_none(key)
        if existing is not None and existing.user_meta.get(META_JOB_ID) == job.job_id:
            etag = existing.etag  # written by a holder that stopped before recording DONE
        elif (
            existing is not None
            and unquote(existing.user_meta.get(META_SOURCE, job.source_key)) != job.source_key
        ):
            other = unquote(existing.user_meta[META_SOURCE])
            return End(
                State.FAILED,
                "output.key_conflict",
                f"{key} already holds the result of {other}; rename one of the two uploads",
            )
        else:
            etag = self.storage.put(
                key,
                result.file,
                content_type=result.content_type,
                user_meta={
                    META_SOURCE: quote(job.source_key, safe="/"),
                    META_SOURCE_ETAG: job.source_etag,
                    META_JOB_ID: job.job_id,
                    META_TASK_ID: job.task.task_id or "",
                    META_VARIANT: job.variant_name,
                    META_GENERATED_BY: GENERATED_BY,
                },
            )
        return Done(key, etag, result.size, result.format, result.width, result.height)
