"""Build and read the namespace-free XML bodies OSS uses."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeAlias
from xml.etree import ElementTree

from .errors import OssError

# A child is (tag, value); value None omits the element, a list nests children, bool renders true/false.
Value: TypeAlias = "str | int | bool | list[Node] | None"
Node: TypeAlias = "tuple[str, Value]"

_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


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
    try:
        return ElementTree.fromstring(body)  # noqa: S314 - DTDs rejected above
    except ElementTree.ParseError as exc:
        raise OssError("MalformedXML") from exc


def text(element: ElementTree.Element, path: str, default: str = "") -> str:
    """Text of the first ``path`` match (empty when the element is empty), or ``default`` when absent."""
    found = element.find(path)
    if found is None:
        return default
    return found.text or ""
