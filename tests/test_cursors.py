"""Cursors: the wire formats never change, because mirrors and readers keep cursors.

The strings below were made by feedsvc before its cursors moved into feedsvc.cursors
(``Service.make_cursor``, the change and digest cursors in service.py), with the key
``KEY``. Each must still be made byte for byte and still verify.
"""

from __future__ import annotations

from datetime import date

import pytest

from feedsvc import cursors
from feedsvc.errors import InvalidCursorError
from feedsvc.query import Query

KEY = b"k" * 32
FILTERED = Query(categories=("economy-and-energy",), tag="Oil", lang="en")

LIST_CURSORS = [
    (
        Query(), (1700000000000000, "01HF00000000000000000000AA"),
        (
            "WyJsaXN0IiwiMWQ2YWNlYTUyOTdmZTZhMSIsMTcwMDAwMDAwMDAwMDAwMCwiMDFIRjAwMDAwMDAwMDAwMDAwMDAwMDAwQUEiXQ"
            ".LyeXBtxZYBdT8_86gbibdw"
        ),
    ),
    (
        FILTERED, (1700000000123456, "01HF00000000000000000000AB"),
        (
            "WyJsaXN0IiwiODcyZTk5MTMwMDQ2MTc0NSIsMTcwMDAwMDAwMDEyMzQ1NiwiMDFIRjAwMDAwMDAwMDAwMDAwMDAwMDAwQUIiXQ"
            ".utH5K7rZdjfPxaxF4sDtiQ"
        ),
    ),
]
CHANGE_CURSORS = [
    (0, "WyJjaGFuZ2VzIiwwXQ.fpdKPzuO-fPJdKbpL7NEtA"),
    (123456, "WyJjaGFuZ2VzIiwxMjM0NTZd.2UcYPu290FsExVNn9NIk_Q"),
]
DIGEST_CURSORS = [
    (None, date(2026, 11, 30), "en", "WyJkaWdlc3RzIiwiIiwiMjAyNi0xMS0zMCIsImVuIl0.f9bj_k9db8daoR5qz8sDbQ"),
    ("be", date(2026, 11, 30), "be", "WyJkaWdlc3RzIiwiYmUiLCIyMDI2LTExLTMwIiwiYmUiXQ.rvPIRjzwsHux9FNK_dkGmw"),
]


@pytest.mark.parametrize(("query", "after", "issued"), LIST_CURSORS)
def test_list_cursors_issued_before_are_made_and_read_the_same(
    query: Query, after: tuple[int, str], issued: str
) -> None:
    assert cursors.list_cursor(KEY, query, after) == issued
    # The position is read into the query; the limit (a page size) is no filter.
    assert cursors.read_list_cursor(KEY, issued, Query(**{**_fields(query), "limit": 50})).after == after


@pytest.mark.parametrize(("seq", "issued"), CHANGE_CURSORS)
def test_change_cursors_issued_before_are_made_and_read_the_same(seq: int, issued: str) -> None:
    assert cursors.change_cursor(KEY, seq) == issued
    assert cursors.read_change_cursor(KEY, issued) == seq


@pytest.mark.parametrize(("lang", "start", "last_lang", "issued"), DIGEST_CURSORS)
def test_digest_cursors_issued_before_are_made_and_read_the_same(
    lang: str | None, start: date, last_lang: str, issued: str
) -> None:
    assert cursors.digest_cursor(KEY, lang, start, last_lang) == issued
    assert cursors.read_digest_cursor(KEY, issued, lang) == (start, last_lang)


def test_a_cursor_under_another_key_or_altered_is_refused_naming_its_parameter() -> None:
    issued = LIST_CURSORS[0][2]
    with pytest.raises(InvalidCursorError) as e:
        cursors.read_list_cursor(b"another key", issued, Query())
    assert e.value.extra["field"] == "cursor"
    body, mac = issued.split(".")
    for altered in (body[:-1] + "A." + mac, body + "." + mac[:-2], "no dot", "%%%.%%%"):
        with pytest.raises(InvalidCursorError):
            cursors.read_list_cursor(KEY, altered, Query())
    with pytest.raises(InvalidCursorError) as e:
        cursors.read_change_cursor(KEY, CHANGE_CURSORS[0][1][:-1] + "x")
    assert e.value.extra["field"] == "since"


def test_a_cursor_is_only_good_for_its_own_kind_and_filters() -> None:
    listed, changes, digests = LIST_CURSORS[1][2], CHANGE_CURSORS[1][1], DIGEST_CURSORS[1][3]
    with pytest.raises(InvalidCursorError, match="another query"):
        cursors.read_list_cursor(KEY, listed, Query())  # made for FILTERED
    with pytest.raises(InvalidCursorError):
        cursors.read_list_cursor(KEY, changes, Query())
    with pytest.raises(InvalidCursorError):
        cursors.read_change_cursor(KEY, digests)
    with pytest.raises(InvalidCursorError):
        cursors.read_change_cursor(KEY, listed)
    with pytest.raises(InvalidCursorError, match="another query"):
        cursors.read_digest_cursor(KEY, digests, None)  # made for lang=be
    with pytest.raises(InvalidCursorError):
        cursors.read_digest_cursor(KEY, listed, None)


def _fields(query: Query) -> dict[str, object]:
    return {name: getattr(query, name) for name in query.__struct_fields__}
