"""Strict checks every served feed must pass: well-formed XML, feedparser without bozo,
JSON Feed 1.1 against the schema in tests/data. Shared by the feed and hostile-input tests."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import feedparser
import jsonschema
from lxml import etree

DATA = Path(__file__).parent / "data"


@cache
def jsonfeed_validator() -> jsonschema.protocols.Validator:
    schema = json.loads((DATA / "jsonfeed-1.1.schema.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)  # type: ignore[no-any-return]


def check_xml_feed(body: bytes) -> Any:
    """Parse strictly with lxml and feedparser; return feedparser's result."""
    etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))
    parsed = feedparser.parse(body)
    assert not parsed.bozo, f"feedparser: {parsed.get('bozo_exception')!r}"
    return parsed


def check_json_feed(body: bytes) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(body)
    errors = sorted(jsonfeed_validator().iter_errors(doc), key=str)
    assert not errors, "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
    return doc


def check_feed(fmt: str, body: bytes) -> Any:
    return check_json_feed(body) if fmt == "json" else check_xml_feed(body)
