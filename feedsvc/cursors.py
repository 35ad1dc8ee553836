"""Every cursor feedsvc issues: how it is made, signed and checked.

A cursor is opaque to clients: ``base64url(payload) + "." + base64url(mac)``, both without
padding, where the payload is a JSON array whose first element names the kind and the mac
is the first 16 bytes of HMAC-SHA256 of the payload under a key kept in the database, so
every node accepts every other node's cursors. An altered cursor, one of another kind, or
one made for other filters raises InvalidCursorError (a 400 naming the parameter).

The kinds:

* ``["list", fingerprint, published_us, id]``: the position after a commentary in a list
  (``GET /api/v1/commentaries?cursor=``, a feed's ``prev-archive`` pages); ``fingerprint``
  pins the filters (``Query.fingerprint``, hashed).
* ``["changes", seq]``: a position in the change log (``GET /api/v1/changes?since=``).
* ``["digests", lang, start, last_lang]``: the position after a digest in the list of
  digests of ``lang`` ("" for every language).

Mirrors and readers hold cursors for as long as they like: a format here never changes.
A new kind gets a new first element. The functions are pure: the key is passed in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import date

import msgspec

from feedsvc.errors import InvalidCursorError
from feedsvc.query import Query

OTHER_QUERY = "this cursor belongs to another query; keep the same filters"


def sign(key: bytes, payload: bytes) -> str:
    """``payload`` and its mac under ``key``, as one URL-safe string."""
    mac = hmac.new(key, payload, hashlib.sha256).digest()[:16]
    return _b64(payload) + "." + _b64(mac)


def unsign(key: bytes, cursor: str, field: str) -> bytes:
    """The payload of a cursor ``sign`` made with ``key``.

    Raises:
        InvalidCursorError: malformed or altered (``field`` names the parameter it came in).
    """
    try:
        body, mac = cursor.split(".", 1)
        payload = _unb64(body)
        given = _unb64(mac)
    except (ValueError, TypeError):
        raise InvalidCursorError(field=field) from None
    expected = hmac.new(key, payload, hashlib.sha256).digest()[:16]
    if not hmac.compare_digest(given, expected):
        raise InvalidCursorError(field=field)
    return payload


# --- list: a position in the results of a Query ----------------------------------------


def list_cursor(key: bytes, query: Query, after: tuple[int, str]) -> str:
    """A cursor for the position ``after`` (published_at in µs, id) in the results of ``query``."""
    return sign(key, msgspec.json.encode(["list", _fingerprint(query), after[0], after[1]]))


def read_list_cursor(key: bytes, cursor: str, query: Query) -> Query:
    """``query`` positioned after the cursor.

    Raises:
        InvalidCursorError: altered, of another kind, or made for other filters (``cursor``).
    """
    payload = unsign(key, cursor, "cursor")
    try:
        kind, fp, pub_us, id = msgspec.json.decode(payload, type=tuple[str, str, int, str])
    except msgspec.DecodeError:
        raise InvalidCursorError(field="cursor") from None
    if kind != "list" or fp != _fingerprint(query):
        raise InvalidCursorError(OTHER_QUERY, field="cursor")
    return msgspec.structs.replace(query, after=(pub_us, id))


# --- changes: a position in the change log --------------------------------------------


def change_cursor(key: bytes, seq: int) -> str:
    """A cursor for the change log after sequence number ``seq``."""
    return sign(key, msgspec.json.encode(["changes", seq]))


def read_change_cursor(key: bytes, cursor: str) -> int:
    """The sequence number in a change cursor.

    Raises:
        InvalidCursorError: altered or of another kind (``since``).
    """
    payload = unsign(key, cursor, "since")
    try:
        kind, seq = msgspec.json.decode(payload, type=tuple[str, int])
    except msgspec.DecodeError:
        raise InvalidCursorError(field="since") from None
    if kind != "changes":
        raise InvalidCursorError("this is not a changes cursor", field="since")
    return seq


# --- digests: a position in the list of weekly digests --------------------------------


def digest_cursor(key: bytes, lang: str | None, start: date, last_lang: str) -> str:
    """A cursor for the position after the digest (``start``, ``last_lang``) in the digests
    of ``lang`` (None: every language)."""
    return sign(key, msgspec.json.encode(["digests", lang or "", start.isoformat(), last_lang]))


def read_digest_cursor(key: bytes, cursor: str, lang: str | None) -> tuple[date, str]:
    """The (start, language) of the digest a digest cursor is positioned after.

    Raises:
        InvalidCursorError: altered, of another kind, or made for another ``lang`` (``cursor``).
    """
    payload = unsign(key, cursor, "cursor")
    try:
        kind, fp, start, last_lang = msgspec.json.decode(payload, type=tuple[str, str, date, str])
    except msgspec.DecodeError:
        raise InvalidCursorError(field="cursor") from None
    if kind != "digests" or fp != (lang or ""):
        raise InvalidCursorError(OTHER_QUERY, field="cursor")
    return start, last_lang


def _fingerprint(query: Query) -> str:
    return hashlib.sha256(query.fingerprint().encode()).hexdigest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
