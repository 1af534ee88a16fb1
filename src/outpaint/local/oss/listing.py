"""One page of a ListObjects listing over a bucket's sorted keys (prefix, delimiter, marker, max-keys)."""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .storage import ObjectRecord


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
