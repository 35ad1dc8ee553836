"""Conditional GET in one place: ETags, Last-Modified, 304s, for the API, the pages and the
feeds (the feed validators are also what the fast path and the front send)."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from litestar import Request, Response

from feedsvc.config import Settings
from feedsvc.feeds.documents import Rendered
from feedsvc.feeds.views import FORMATS, FeedFormat
from feedsvc.http.common import JSON


def make_etag(body: bytes, version: int | None = None) -> str:
    """A strong ETag from the bytes; single items lead with their version so that If-Match
    can be checked against the stored version atomically (see Service._expected_version)."""
    digest = hashlib.blake2b(body, digest_size=10).hexdigest()
    return f'"v{version}-{digest}"' if version is not None else f'"{digest}"'


def etag_matches(header: str | None, etag: str) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 §13.1.2): W/ prefixes are ignored."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == bare for tag in header.split(","))


def not_modified_since(request: Request[Any, Any, Any], last_modified: datetime | None) -> bool:
    """True when If-Modified-Since covers ``last_modified`` and If-None-Match is absent."""
    if "if-none-match" in request.headers:
        return False
    return modified_since_covers(request.headers.get("if-modified-since"), last_modified)


def modified_since_covers(header: str | None, last_modified: datetime | None) -> bool:
    """True when the If-Modified-Since value ``header`` covers ``last_modified``."""
    if not header or last_modified is None:
        return False
    try:
        since = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return False
    if since.tzinfo is None:
        return False
    return last_modified.replace(microsecond=0) <= since


def conditional(
    request: Request[Any, Any, Any],
    body: bytes,
    *,
    media_type: str = JSON,
    etag: str | None = None,
    last_modified: datetime | None = None,
    cache_control: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    """A 200 with validators, or a 304 with the same validators and no body."""
    etag = etag or make_etag(body)
    out = {"ETag": etag, **(headers or {})}
    if cache_control:
        out["Cache-Control"] = cache_control
    if last_modified is not None:
        out["Last-Modified"] = http_date(last_modified)
    if etag_matches(request.headers.get("if-none-match"), etag) or not_modified_since(request, last_modified):
        return Response(content=b"", status_code=304, headers=out, media_type=media_type)
    return Response(content=body, status_code=200, headers=out, media_type=media_type)


def http_date(value: datetime) -> str:
    return format_datetime(value.astimezone(UTC), usegmt=True)


_SUFFIX = re.compile(r'(-page)?(-gzip|-br)?"$')


def _bare(etag: str) -> str:
    return _SUFFIX.sub('"', etag.strip().removeprefix("W/"))


# Every request header a feed's answer depends on, for caches (RFC 9110 section 12.5.5): the
# coding (Accept-Encoding), and for RSS and Atom whether a browser navigates to it, which
# shows the HTML page (is_browser_navigation reads all three). A JSON Feed is never a page.
# CORS headers are the same on every read (feedsvc.http.middleware.harden): no Origin here.
_NAVIGATION = "Sec-Fetch-Dest, Sec-Fetch-Mode, Accept"
VARY: dict[FeedFormat, str] = {
    fmt: "Accept-Encoding" if fmt == "json" else f"Accept-Encoding, {_NAVIGATION}" for fmt in FORMATS
}


def validators(doc: Rendered, etag: str, settings: Settings, fmt: FeedFormat) -> dict[str, str]:
    """The headers of every answer about a feed document in ``fmt``, 200 and 304 alike."""
    headers = {
        "ETag": etag,
        "Vary": VARY[fmt],
        "Cache-Control": f"public, max-age={settings.cache_max_age}, "
        f"stale-while-revalidate={settings.stale_while_revalidate}",
    }
    if doc.last_modified is not None:
        headers["Last-Modified"] = http_date(doc.last_modified)
    return headers


def is_fresh(doc: Rendered, if_none_match: str | None, if_modified_since: str | None, *, page: bool) -> bool:
    """Whether the client's copy is current: any coding of the same document (or of its
    page) matches If-None-Match; without it, If-Modified-Since covers Last-Modified."""
    if if_none_match is not None:
        return if_none_match.strip() == "*" or any(
            _bare(tag) == doc.etag and ("-page" in tag) == page for tag in if_none_match.split(",")
        )
    return modified_since_covers(if_modified_since, doc.last_modified)
