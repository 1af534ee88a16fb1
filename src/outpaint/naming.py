"""Every object key and metadata name outpaint uses, in one place.

State layout under the state prefix (default ``.outpaint/``):

    jobs/<job_id>.json                   the record (created with x-oss-forbid-overwrite: the claim)
    state/<state>/<created-ms>-<job_id>  one empty marker per record: "what is queued" is one LIST,
                                         and FIFO order is key order
    sources/<sha(key)>/<job_id>          jobs of a source object (``outpaint jobs show KEY``)
    lease/<term>                         the poller lease; a new term is claimed create-if-absent
    backfill/<sha(name)>.json            progress checkpoint of one ``outpaint backfill`` run
    dead-letters/<sha(request)>.json     an upload event FC gave up on (``outpaint backfill --dead-letters``)

Outputs: ``<input_prefix>a/b/c.jpg`` → ``<output_prefix>a/b/c.<ext>`` (``c.<variant>.<ext>`` when the
upload asked for several variants), with the provenance metadata named below.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

USER_META_HEADER = "x-oss-meta-"  # OSS's header prefix of user metadata
META_PREFIX = "outpaint-"  # our user metadata: requests on uploads, provenance on outputs

# Provenance written on every output object.
META_SOURCE = "outpaint-source"  # the source key, percent-encoded
META_SOURCE_ETAG = "outpaint-source-etag"
META_JOB_ID = "outpaint-job-id"
META_TASK_ID = "outpaint-task-id"
META_VARIANT = "outpaint-variant"
META_GENERATED_BY = "outpaint-generated-by"  # present on everything outpaint wrote: never an input


def user_meta(headers: Mapping[str, str]) -> dict[str, str]:
    """The user metadata in response headers: keys lower-cased and without ``x-oss-meta-``."""
    return {
        _bare(name): value for name, value in headers.items() if name.lower().startswith(USER_META_HEADER)
    }


def outpaint_meta(meta: Mapping[str, str]) -> dict[str, str]:
    """The ``outpaint-*`` entries of user metadata or of ``x-oss-meta-*`` headers, values trimmed."""
    return {
        bare: value.strip() for name, value in meta.items() if (bare := _bare(name)).startswith(META_PREFIX)
    }


def _bare(name: str) -> str:
    """A metadata name lower-cased, without the ``x-oss-meta-`` header prefix."""
    return name.strip().lower().removeprefix(USER_META_HEADER)


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class StateLayout:
    """Keys of the job state kept under ``prefix``."""

    prefix: str

    def record_key(self, job_id: str) -> str:
        return f"{self.prefix}jobs/{job_id}.json"

    @property
    def records_prefix(self) -> str:
        return f"{self.prefix}jobs/"

    def job_id_of_record(self, key: str) -> str | None:
        """The job id of a record key, or None for anything else under the records prefix."""
        if not key.endswith(".json"):
            return None
        return key[len(self.records_prefix) : -len(".json")]

    @property
    def markers_prefix(self) -> str:
        return f"{self.prefix}state/"

    def marker_prefix(self, state: str) -> str:
        return f"{self.markers_prefix}{state.lower()}/"

    def marker_key(self, state: str, created_at: float, job_id: str) -> str:
        return self.marker_prefix(state) + marker_name(created_at, job_id)

    def source_prefix(self, key: str) -> str:
        return f"{self.prefix}sources/{_short_hash(key)}/"

    @property
    def lease_prefix(self) -> str:
        return f"{self.prefix}lease/"

    def lease_key(self, term: int) -> str:
        return f"{self.lease_prefix}{term:012d}"

    def checkpoint_key(self, name: str) -> str:
        return f"{self.prefix}backfill/{_short_hash(name)}.json"

    @property
    def dead_letters_prefix(self) -> str:
        return f"{self.prefix}dead-letters/"

    def dead_letter_key(self, request: str) -> str:
        """One key per failed request: FC's retries of the dead-letter function write the same object."""
        return f"{self.dead_letters_prefix}{_short_hash(request)}.json"


def marker_name(created_at: float, job_id: str) -> str:
    """``<created-ms>-<job_id>``: key order is creation order."""
    return f"{int(created_at * 1000):013d}-{job_id}"


def parse_marker(name: str) -> tuple[int | None, str]:
    """(created-ms, job id) of a marker's name or key. A key that is no marker (a "folder" object made
    in the console) gives (None, its last part): reconciliation removes it as a marker without a record."""
    created, _, job_id = name.rsplit("/", 1)[-1].rpartition("-")
    return (int(created) if created.isdigit() else None), job_id


def output_key(
    source_key: str, *, input_prefix: str, output_prefix: str, extension: str, variant: str | None
) -> str:
    """Where the result of ``source_key`` goes: the path under the input prefix is kept exactly (empty
    segments too), only the name changes; ``variant`` is added when the upload asked for several."""
    relative = source_key[len(input_prefix) :]
    folder, slash, name = relative.rpartition("/")
    stem = name.rsplit(".", 1)[0] if "." in name[1:] else name
    if variant is not None:
        stem = f"{stem}.{variant}"
    return f"{output_prefix}{folder}{slash}{stem}.{extension}"
