"""One page of a listing: ListObjects over sorted keys, ListMultipartUploads over sorted uploads."""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .storage import ObjectRecord, UploadRecord


@dataclass
class Page:
    objects: list[ObjectRecord] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    truncated: bool = False
    last: str = ""  # the last key or common prefix on the page: where the next page starts after


def list_page(
    keys: Sequence[str],
    records: Mapping[str, ObjectRecord],
    *,
    prefix: str,
    delimiter: str,
    marker: str,
    max_keys: int,
) -> Page:
    """Keys greater than ``marker`` under ``prefix``, rolled up at ``delimiter`` into common prefixes.

    ``max_keys`` 0 answers an empty, untruncated page: a truncated one would have no next marker, and a
    client paging until IsTruncated is false would ask for the same empty page forever."""
    page = Page()
    if max_keys <= 0:
        return page
    index = max(bisect.bisect_right(keys, marker), bisect.bisect_left(keys, prefix))
    while index < len(keys) and keys[index].startswith(prefix):
        key = keys[index]
        common = _common_prefix(key, prefix, delimiter)
        # A marker inside a rolled-up group means that group was already returned.
        if common is not None and common <= marker:
            index = _end_of_group(keys, common, index)
            continue
        if len(page.objects) + len(page.prefixes) >= max_keys:
            page.truncated = True
            break
        if common is None:
            page.objects.append(records[key])
            page.last = key
            index += 1
        else:
            page.prefixes.append(common)
            page.last = common
            index = _end_of_group(keys, common, index)
    return page


@dataclass
class UploadPage:
    uploads: list[UploadRecord] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    truncated: bool = False
    next_key: str = ""  # NextKeyMarker: the last key or common prefix on the page
    next_upload_id: str = ""  # NextUploadIdMarker: the last upload's id ("" after a common prefix)


def upload_page(
    uploads: Sequence[UploadRecord],
    *,
    prefix: str,
    delimiter: str,
    key_marker: str,
    upload_id_marker: str,
    max_uploads: int,
) -> UploadPage:
    """Uploads (ordered by key, then initiation) after the (key, upload id) marker, rolled up at
    ``delimiter``. Without an upload id marker, listing resumes after every upload of ``key_marker``."""
    page = UploadPage()
    marker_ids = [u.upload_id for u in uploads if u.key == key_marker]
    # Uploads of the marker key still to list: those after the marker upload (by id if it is gone).
    if upload_id_marker in marker_ids:
        pending = set(marker_ids[marker_ids.index(upload_id_marker) + 1 :])
    else:
        pending = {i for i in marker_ids if upload_id_marker and i > upload_id_marker}
    for upload in uploads:
        if not upload.key.startswith(prefix) or upload.key < key_marker:
            continue
        if upload.key == key_marker and upload.upload_id not in pending:
            continue
        common = _common_prefix(upload.key, prefix, delimiter)
        if common is not None and (common <= key_marker or common in page.prefixes):
            continue
        if len(page.uploads) + len(page.prefixes) >= max_uploads:
            page.truncated = True
            break
        if common is None:
            page.uploads.append(upload)
            page.next_key, page.next_upload_id = upload.key, upload.upload_id
        else:
            page.prefixes.append(common)
            page.next_key, page.next_upload_id = common, ""
    return page


def _common_prefix(key: str, prefix: str, delimiter: str) -> str | None:
    if not delimiter:
        return None
    position = key.find(delimiter, len(prefix))
    return None if position < 0 else key[: position + len(delimiter)]


def _end_of_group(keys: Sequence[str], group: str, index: int) -> int:
    """Index of the first key after ``index`` that does not start with ``group``."""
    if group[-1] < "\U0010ffff":
        return bisect.bisect_left(keys, group[:-1] + chr(ord(group[-1]) + 1), index)
    while index < len(keys) and keys[index].startswith(group):
        index += 1
    return index
