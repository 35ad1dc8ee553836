"""Validation of commentaries and filters: the model's rules, checked on the types and through
HTTP. Every rejected request is a 400 in the one error shape, names the offending field, and
stores nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import msgspec
import pytest

from feedsvc.errors import InvalidInputError
from feedsvc.model import NewCommentary, normalize_lang
from feedsvc.query import Query
from tests.conftest import assert_error, commentary

API = "/api/v1/commentaries"


# --- language tags ------------------------------------------------------------------------

LANG_NORMALISATION = [
    ("en", "en"),
    ("EN", "en"),
    ("EN-gb", "en-GB"),
    ("pt-br", "pt-BR"),
    ("sr-latn", "sr-Latn"),
    ("ZH-hant-tw", "zh-Hant-TW"),
    ("es-419", "es-419"),
    ("be", "be"),
]


@pytest.mark.parametrize(("raw", "canonical"), LANG_NORMALISATION)
def test_normalize_lang_gives_canonical_bcp47_case(raw: str, canonical: str) -> None:
    assert normalize_lang(raw) == canonical


async def test_posted_lang_is_stored_in_canonical_case(
    client: Any, auth: dict[str, str], categories: Any, rows: Any
) -> None:
    for raw, canonical in LANG_NORMALISATION:
        r = await client.post(API, json=commentary(lang=raw), headers=auth)
        assert r.status_code == 201, r.text
        assert r.json()["lang"] == canonical
        assert rows("SELECT lang FROM commentaries WHERE id = ?", r.json()["id"]) == [(canonical,)]


# --- the NewCommentary type on its own ------------------------------------------------------


def decode(body: dict[str, Any]) -> NewCommentary:
    return msgspec.json.decode(msgspec.json.encode(body), type=NewCommentary)


def test_a_minimal_valid_body_decodes_with_defaults() -> None:
    new = decode(commentary())
    assert new.status == "published"
    assert new.slug is None and new.summary is None and new.trend is None
    assert new.published_at == datetime(2026, 3, 7, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("overrides", "message_part"),
    [
        ({"published_at": "2026-03-07T10:00:00"}, "timezone"),
        ({"period": {"start": "2026-03-07", "end": "2026-03-01"}}, "period start must not be after its end"),
        ({"body_html": "<p>x</p>"}, "not both"),
        ({"unexpected": 1}, "unknown field `unexpected`"),
    ],
)
def test_new_commentary_type_rejects(overrides: dict[str, Any], message_part: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=message_part):
        decode(commentary(**overrides))


# --- HTTP: invalid bodies are 400, name the field, store nothing ----------------------------

TOO_MANY_TAGS = [f"tag{i}" for i in range(21)]

# (case id, overrides of a valid body, the field the error must name)
INVALID_BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("empty title", {"title": ""}, "title"),
    ("blank title", {"title": "   \t  "}, "title"),
    ("title of control characters only", {"title": "\x00\x07\x1b"}, "title"),
    ("title of 301 characters", {"title": "x" * 301}, "title"),
    ("title is a number", {"title": 42}, "title"),
    ("slug with spaces", {"slug": "bad slug"}, "slug"),
    ("slug with capitals", {"slug": "Bad-Slug"}, "slug"),
    ("slug with an underscore", {"slug": "bad_slug"}, "slug"),
    ("slug of 121 characters", {"slug": "a" * 121}, "slug"),
    ("empty slug", {"slug": ""}, "slug"),
    ("lang one letter", {"lang": "e"}, "lang"),
    ("lang a word", {"lang": "english"}, "lang"),
    ("lang with underscore", {"lang": "en_US"}, "lang"),
    ("lang is a list", {"lang": ["en"]}, "lang"),
    ("naive published_at", {"published_at": "2026-03-07T10:00:00"}, "published_at"),
    ("impossible date in published_at", {"published_at": "2026-02-30T10:00:00+00:00"}, "published_at"),
    ("hour 25 in published_at", {"published_at": "2026-03-07T25:00:00+00:00"}, "published_at"),
    ("date only published_at", {"published_at": "2026-03-07"}, "published_at"),
    ("words as published_at", {"published_at": "yesterday"}, "published_at"),
    ("period start after end", {"period": {"start": "2026-03-07", "end": "2026-03-01"}}, "period"),
    ("impossible date in period", {"period": {"start": "2026-02-28", "end": "2026-02-30"}}, "period"),
    ("period missing its end", {"period": {"start": "2026-02-28"}}, "period"),
    ("period as a string", {"period": "2026-02-28/2026-03-06"}, "period"),
    ("unknown trend", {"trend": "better"}, "trend"),
    ("trend in capitals", {"trend": "Improved"}, "trend"),
    ("21 tags", {"tags": TOO_MANY_TAGS}, "tags"),
    ("empty tag", {"tags": [""]}, "tags"),
    ("tag of 65 characters", {"tags": ["t" * 65]}, "tags"),
    ("tags as a string", {"tags": "border"}, "tags"),
    ("tags as numbers", {"tags": [1, 2]}, "tags"),
    ("no authors", {"authors": []}, "authors"),
    ("authors as a string", {"authors": "Anna Kovalenko"}, "authors"),
    ("author without a name", {"authors": [{"affiliation": "Vistula Centre"}]}, "authors"),
    ("author with an empty name", {"authors": [{"name": ""}]}, "authors"),
    ("author with a blank name", {"authors": [{"name": "  \x00 "}]}, "authors"),
    ("author with a javascript url", {"authors": [{"name": "A", "url": "javascript:alert(1)"}]}, "authors"),
    ("author with an unknown field", {"authors": [{"name": "A", "email": "a@example.org"}]}, "email"),
    ("unknown top-level field", {"unexpected": 1}, "unexpected"),
    ("misspelt field", {"catgory": "economy"}, "catgory"),
    ("client-assigned id", {"id": "01J00000000000000000000000"}, "id"),
    ("both body_html and body_markdown", {"body_html": "<p>x</p>"}, "body_html"),
    ("no body at all", {"body_markdown": None}, "body_html"),
    ("summary of 1001 characters", {"summary": "s" * 1001}, "summary"),
    ("summary is a list", {"summary": ["s"]}, "summary"),
    ("category not a slug", {"category": "Regional Security"}, "category"),
    ("unknown category", {"category": "no-such-category"}, "category"),
    ("status not draft or published", {"status": "archived"}, "status"),
    ("canonical_url with ftp scheme", {"canonical_url": "ftp://example.org/a"}, "canonical_url"),
    ("image with a javascript url", {"image": {"url": "javascript:alert(1)"}}, "image"),
    ("source without a name", {"source": {"url": "https://example.org"}}, "source"),
    ("translation_key with spaces", {"translation_key": "week 10"}, "translation_key"),
]


async def test_post_with_an_invalid_body_is_400_naming_the_field_and_stores_nothing(
    client: Any, auth: dict[str, str], categories: Any, stored_counts: Any, subtests: Any
) -> None:
    before = stored_counts()
    for case, overrides, field in INVALID_BODIES:
        with subtests.test(case):
            r = await client.post(API, json=commentary(**overrides), headers=auth)
            assert_error(r, 400, field)
            assert stored_counts() == before


async def test_a_number_is_not_an_rfc3339_published_at(
    client: Any, auth: dict[str, str], categories: Any, stored_counts: Any
) -> None:
    before = stored_counts()
    r = await client.post(API, json=commentary(published_at=1772866800), headers=auth)
    assert_error(r, 400, "published_at")
    assert stored_counts() == before


async def test_put_with_an_invalid_body_is_400_naming_the_field_and_changes_nothing(
    client: Any, auth: dict[str, str], categories: Any, stored_counts: Any, rows: Any, subtests: Any
) -> None:
    """The same table as for POST, against one stored commentary."""
    created = await client.post(API, json=commentary(), headers=auth)
    id, if_match = created.json()["id"], {**auth, "If-Match": created.headers["etag"]}
    before, doc = stored_counts(), rows("SELECT doc, version FROM commentaries WHERE id = ?", id)
    for case, overrides, field in INVALID_BODIES:
        with subtests.test(case):
            r = await client.put(f"{API}/{id}", json=commentary(**overrides), headers=if_match)
            assert_error(r, 400, field)
            assert stored_counts() == before
            assert rows("SELECT doc, version FROM commentaries WHERE id = ?", id) == doc


INVALID_PATCHES: list[tuple[dict[str, Any], str]] = [
    ({"title": ""}, "title"),
    ({"title": None}, "title"),
    ({"lang": "english"}, "lang"),
    ({"published_at": "2026-03-07T10:00:00"}, "published_at"),
    ({"period": {"start": "2026-03-07", "end": "2026-03-01"}}, "period"),
    ({"trend": "better"}, "trend"),
    ({"tags": TOO_MANY_TAGS}, "tags"),
    ({"authors": []}, "authors"),
    ({"authors": None}, "authors"),
    ({"category": "no-such-category"}, "category"),
    ({"summary": "s" * 1001}, "summary"),
    ({"body_html": "<p>a</p>", "body_markdown": "b"}, "body_html"),
    ({"body_html": None}, "body_html"),
    ({"unexpected": True}, "unexpected"),
]


async def test_patch_with_an_invalid_value_is_400_naming_the_field_and_changes_nothing(
    client: Any, auth: dict[str, str], categories: Any, stored_counts: Any, rows: Any, subtests: Any
) -> None:
    created = await client.post(API, json=commentary(), headers=auth)
    id, if_match = created.json()["id"], {**auth, "If-Match": created.headers["etag"]}
    before, doc = stored_counts(), rows("SELECT doc, version FROM commentaries WHERE id = ?", id)
    for patch, field in INVALID_PATCHES:
        with subtests.test(str(patch)[:60]):
            r = await client.patch(f"{API}/{id}", json=patch, headers=if_match)
            assert_error(r, 400, field)
            assert stored_counts() == before
            assert rows("SELECT doc, version FROM commentaries WHERE id = ?", id) == doc


async def test_a_body_that_is_not_a_json_object_is_400_and_stores_nothing(
    client: Any, auth: dict[str, str], categories: Any, stored_counts: Any, subtests: Any
) -> None:
    before = stored_counts()
    for content in (b"{not json", b"[]", b'"a string"', b"null", b"", b'{"title": "x"'):
        with subtests.test(content.decode()):
            r = await client.post(API, content=content, headers={**auth, "Content-Type": "application/json"})
            assert_error(r, 400)
            assert stored_counts() == before


async def test_a_body_over_the_size_limit_is_413_and_stores_nothing(
    client: Any, auth: dict[str, str], categories: Any, stored_counts: Any
) -> None:
    before = stored_counts()
    r = await client.post(API, json=commentary(body_markdown="x" * 1_100_000), headers=auth)
    assert_error(r, 413)
    assert stored_counts() == before


# --- limits are inclusive: the largest allowed values are accepted ------------------------

VALID_EDGES: list[tuple[str, dict[str, Any]]] = [
    ("title of 300 characters", {"title": "x" * 300}),
    ("title of one character", {"title": "x"}),
    ("slug of 120 characters", {"slug": "a" * 120}),
    ("summary of 1000 characters", {"summary": "s" * 1000}),
    ("20 tags", {"tags": [f"tag{i}" for i in range(20)]}),
    ("no tags", {"tags": []}),
    ("period of one day", {"period": {"start": "2026-03-06", "end": "2026-03-06"}}),
    ("leap day", {"published_at": "2028-02-29T12:00:00+00:00"}),
    ("Z offset", {"published_at": "2026-03-07T07:00:00Z"}),
    ("negative offset", {"published_at": "2026-03-07T02:00:00-05:00"}),
    ("every trend", {"trend": "unchanged"}),
    ("draft", {"status": "draft"}),
    ("root-relative image", {"image": {"url": "/media/map.png", "credit": "Photo: Vistula Centre"}}),
    ("twenty authors", {"authors": [{"name": f"Author {i}"} for i in range(20)]}),
]


async def test_values_at_the_limits_are_accepted(
    client: Any, auth: dict[str, str], categories: Any, subtests: Any
) -> None:
    for case, overrides in VALID_EDGES:
        with subtests.test(case):
            r = await client.post(API, json=commentary(**overrides), headers=auth)
            assert r.status_code == 201, r.text
            for key, value in overrides.items():
                if key not in ("published_at", "image"):
                    assert r.json()[key] == value


async def test_each_trend_is_accepted_and_returned(client: Any, auth: dict[str, str], categories: Any) -> None:
    for trend in ("improved", "worsened", "unchanged"):
        r = await client.post(API, json=commentary(trend=trend), headers=auth)
        assert r.status_code == 201, r.text
        assert r.json()["trend"] == trend


async def test_published_at_keeps_the_offset_it_was_written_with(
    client: Any, auth: dict[str, str], categories: Any
) -> None:
    r = await client.post(API, json=commentary(published_at="2026-03-06T23:30:00+03:00"), headers=auth)
    assert r.json()["published_at"] == "2026-03-06T23:30:00+03:00"
    got = await client.get(f"{API}/{r.json()['id']}")
    assert got.json()["published_at"] == "2026-03-06T23:30:00+03:00"


# --- query strings: Query.from_params -----------------------------------------------------


def test_query_from_params_normalises_categories_lang_dates_and_text() -> None:
    query = Query.from_params(
        category=["economy,foreign-policy", " economy ", "regional-security,"],
        tag="  Border  ",
        lang="EN-gb",
        from_="2026-03-01",
        to="2026-03-07T12:00:00+03:00",
        updated_since="2026-03-05",
        q="  border   talks ",
    )
    assert query.categories == ("economy", "foreign-policy", "regional-security")
    assert query.tag == "Border"
    assert query.lang == "en-GB"
    assert (query.from_date, query.from_time) == (date(2026, 3, 1), None)
    assert (query.to_date, query.to_time) == (None, datetime(2026, 3, 7, 9, 0, tzinfo=UTC))
    assert query.updated_since == datetime(2026, 3, 5, tzinfo=UTC)
    assert query.q == "border talks"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"category": ["Economy"]}, "category"),
        ({"category": ["economy,bad slug"]}, "category"),
        ({"lang": "english"}, "lang"),
        ({"trend": "better"}, "trend"),
        ({"from_": "2026-02-30"}, "from"),
        ({"from_": "03/01/2026"}, "from"),
        ({"to": "2026-03-07T12:00:00"}, "to"),
        ({"updated_since": "soon"}, "updated_since"),
        ({"q": "x" * 201}, "q"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
    ],
)
def test_query_from_params_rejects_naming_the_field(params: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        Query.from_params(**params)
    assert [(p["key"], p["source"]) for p in info.value.extra["problems"]] == [(field, "query")]


def test_query_from_params_names_every_wrong_value_at_once() -> None:
    with pytest.raises(InvalidInputError) as info:
        Query.from_params(category=["Economy"], lang="english", trend="worse", from_="soon", limit=0)
    problems = info.value.extra["problems"]
    assert [p["key"] for p in problems] == ["category", "lang", "trend", "from", "limit"]
    trend = problems[2]
    assert trend["allowed"] == ["improved", "worsened", "unchanged"] and "worsened" in trend["message"]
    assert all(p["message"] in info.value.message for p in problems)


@pytest.mark.parametrize(
    ("from_", "to", "empty"),
    [
        ("2026-03-02", "2026-03-01", True),
        ("2026-03-01", "2026-03-01", False),
        ("2026-03-01T12:00:00+00:00", "2026-03-01T11:59:59+00:00", True),
        ("2026-03-01T12:00:00+03:00", "2026-03-01T10:00:00+00:00", False),  # the same instant
        # A date is the date written in published_at, in its own offset: a day either side
        # of an instant may still match something.
        ("2026-03-02", "2026-03-01T23:00:00+00:00", False),
        ("2026-03-04", "2026-03-01T23:00:00+00:00", True),
        ("2026-03-01T00:00:00+00:00", "2026-02-28", False),
    ],
)
def test_from_after_to_is_refused_when_nothing_could_match(from_: str, to: str, empty: bool) -> None:
    if not empty:
        Query.from_params(from_=from_, to=to)
        return
    with pytest.raises(InvalidInputError) as info:
        Query.from_params(from_=from_, to=to)
    assert [p["key"] for p in info.value.extra["problems"]] == ["from"]
    assert "after `to`" in info.value.message


def test_query_fingerprint_ignores_position_and_limit_but_not_filters() -> None:
    base = Query.from_params(category=["economy"], limit=7)
    assert base.fingerprint() == Query.from_params(category=["economy"], limit=50).fingerprint()
    assert base.fingerprint() == msgspec.structs.replace(base, after=(1, "X")).fingerprint()
    assert base.fingerprint() != Query.from_params(category=["foreign-policy"], limit=7).fingerprint()
