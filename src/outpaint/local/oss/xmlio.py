"""Build and read the namespace-free XML bodies OSS uses."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TypeAlias
from xml.etree import ElementTree

from .errors import OssError

# A child is (tag, value); value None omits the element, a list nests children, bool renders true/false.
Value: TypeAlias = "str | int | bool | list[Node] | None"
Node: TypeAlias = "tuple[str, Value]"

_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'

# The SDKs write keys with control characters into XML as raw bytes (ElementTree does not refuse
# them), and OSS accepts such documents. XML 1.0 forbids them (and folds CR into LF), so before parsing
# each becomes a private-use stand-in, U+E000 + its code, turned back by text().
_CONTROL = re.compile(rb"[\x00-\x08\x0b-\x1f]")
_STAND_INS = b"\xee\x80"  # the UTF-8 lead bytes of U+E000..U+E01F
_FROM_STAND_IN = {0xE000 + c: c for c in range(32) if c not in (9, 10)}


def render(root: str, children: Iterable[Node], text: str | None = None) -> bytes:
    """Serialise ``<root>`` with its children (or ``text``), preceded by the XML declaration."""
    element = ElementTree.Element(root)
    element.text = text
    _append(element, children)
    return _DECLARATION + ElementTree.tostring(element, encoding="utf-8", xml_declaration=False)


def _append(parent: ElementTree.Element, children: Iterable[Node]) -> None:
    for tag, value in children:
        if value is None:
            continue
        child = ElementTree.SubElement(parent, tag)
        if isinstance(value, list):
            _append(child, value)
        elif isinstance(value, bool):
            child.text = "true" if value else "false"
        else:
            child.text = str(value)


def parse(body: bytes) -> ElementTree.Element:
    """Parse a request body; anything that is not plain well-formed XML is MalformedXML."""
    # A DTD is never part of an OSS request; refusing it rules out entity-expansion tricks.
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise OssError("MalformedXML")
    if _STAND_INS not in body:
        body = _CONTROL.sub(lambda match: chr(0xE000 + match[0][0]).encode(), body)
    try:
        return ElementTree.fromstring(body)  # noqa: S314 - DTDs rejected above
    except ElementTree.ParseError as exc:
        raise OssError("MalformedXML") from exc


def text(element: ElementTree.Element, path: str, default: str = "") -> str:
    """Text of the first ``path`` match (empty when the element is empty), or ``default`` when absent."""
    found = element.find(path)
    if found is None:
        return default
    return (found.text or "").translate(_FROM_STAND_IN)
