"""The OpenAPI document as client generators read it: one error schema referenced by every
error response, each enumeration one component, schema titles unique, feeds under their own
media types, operation ids after what they do. (tests/test_openapi_clients.py runs the
generators themselves; this checks the same promises in the document, in milliseconds.)"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from feedsvc.config import load_settings
from feedsvc.http.app import create_app


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    db = tmp_path_factory.mktemp("openapi") / "feedsvc.db"
    app = create_app(load_settings({}, database_url=f"sqlite:///{db}", public_url="http://127.0.0.1:8000"))
    doc: dict[str, Any] = app.openapi_schema.to_schema()
    return doc


def walk(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object in the document, with where it is."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for n, value in enumerate(node):
            yield from walk(value, f"{path}/{n}")


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                yield method.upper(), path, operation


def test_each_enumeration_is_one_component(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["Trend"] == {
        "type": "string", "enum": ["improved", "worsened", "unchanged"], "title": "Trend",
        "description": "Which way the situation moved in the commentary's period.",
    }
    for name, values in [("Status", ["draft", "published"]), ("ChangeOp", ["created", "updated", "deleted"]),
                         ("WebhookState", ["active", "disabled"])]:
        assert schemas[name]["type"] == "string" and schemas[name]["enum"] == values
    # No enumeration is written inline any more, with or without null among its values.
    inline = [path for path, node in walk(document) if "enum" in node and not path.startswith("/components/schemas/")]
    assert inline == []
    assert schemas["Commentary"]["properties"]["trend"] == {
        "oneOf": [{"$ref": "#/components/schemas/Trend"}, {"type": "null"}]
    }
    [trend] = [p for p in document["paths"]["/api/v1/commentaries"]["get"]["parameters"] if p["name"] == "trend"]
    assert trend["schema"]["oneOf"] == [{"$ref": "#/components/schemas/Trend"}, {"type": "null"}]


def test_every_error_response_is_the_one_error_schema(document: dict[str, Any]) -> None:
    errors = 0
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            errors += 1
            assert response["content"] == {
                "application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}
            }, (method, path, status)
    assert errors > 100
    extra = document["components"]["schemas"]["ErrorBody"]["properties"]["extra"]
    assert extra["oneOf"] == [
        {"items": {"$ref": "#/components/schemas/FieldProblem"}, "type": "array"},
        {"additionalProperties": {}, "type": "object"},
    ]
    assert document["components"]["schemas"]["FieldProblem"]["required"] == ["key", "message", "source"]


def test_schema_titles_are_unique(document: dict[str, Any]) -> None:
    """Generators name a class after each title: two "Author"s collide."""
    titles = Counter(s.get("title") for s in document["components"]["schemas"].values())
    assert [t for t, n in titles.items() if n > 1] == []
    assert {"JSONFeed", "JSONFeedItem", "JSONFeedAuthor", "Author"} <= set(titles)


@pytest.mark.parametrize(
    ("path", "media_type"),
    [
        ("/feed.rss", "application/rss+xml; charset=utf-8"),
        ("/categories/{slug}/feed.atom", "application/atom+xml; charset=utf-8"),
        ("/{language}/feed.json", "application/feed+json; charset=utf-8"),
        ("/digest.json", "application/feed+json; charset=utf-8"),
    ],
)
def test_feeds_are_described_with_their_media_types(document: dict[str, Any], path: str, media_type: str) -> None:
    [(media, content)] = document["paths"][path]["get"]["responses"]["200"]["content"].items()
    assert media == media_type
    if "json" in media:
        name = content["schema"]["$ref"].removeprefix("#/components/schemas/")
        assert document["components"]["schemas"][name]["title"] == "JSONFeed"
    else:
        assert content["schema"] == {"type": "string"}


def test_operation_ids_say_what_operations_do(document: dict[str, Any]) -> None:
    ids = {(method, path): op["operationId"] for method, path, op in operations(document)}
    assert len(set(ids.values())) == len(ids)
    assert ids[("GET", "/api/v1/commentaries")] == "list_commentaries"
    assert ids[("PATCH", "/api/v1/commentaries/{id}")] == "patch_commentary"
    assert ids[("GET", "/feed.json")] == "feed_json"

