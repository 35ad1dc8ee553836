"""Issue 7, part 2: hostile input, walked through the real HTTP surface.

Every case in CASES is sent through the app's HTTP interface against a real SQLite file,
then (``assert_service_intact``) every feed is parsed strictly (RSS, Atom, JSON Feed for
the site, a category and a language; see tests/feeds_check.py), the feed shown as a page,
the index, the commentary pages and the embed views are parsed as HTML and must hold no
script, event handler or script URL, and /healthz answers. A refused case must end in its
documented 4xx with a JSON error naming the problem and nothing stored; an accepted case
(hostile HTML, odd characters) must store exactly one commentary, sanitised.

``python -m tests.test_hostile`` prints the table of cases and outcomes (the test asserts
each outcome, so the table is what the code does).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import lxml.html
import pytest
from lxml import etree

from feedsvc.config import Settings, load_settings
from feedsvc.render.embed import RESIZE_SCRIPT
from feedsvc.text import sanitize_html
from tests.conftest import PUBLIC_URL, assert_error, commentary
from tests.feeds_check import check_feed

API = "/api/v1/commentaries"
JSON = "application/json"
NO_RATE_LIMITS = {f"FEEDSVC_RATE_LIMIT_{k}": "0" for k in ("FEEDS", "READ", "SEARCH", "WRITE", "AUTH_FAILURES")}
SEED_TAG = "x%_y"
SEED_AUTHOR = "O'Brien; --"


@pytest.fixture
def settings(any_database_url: str) -> Settings:
    return load_settings(NO_RATE_LIMITS, database_url=any_database_url, public_url=PUBLIC_URL)


# --- the context a case runs in ---------------------------------------------------------------


@dataclass
class Ctx:
    client: Any
    http: Any  # an httpx client on the same event loop (truly concurrent, streams bodies)
    auth: dict[str, str]
    seed: dict[str, Any]
    rows: Any
    created: list[str] = field(default_factory=list)
    checked: set[str] = field(default_factory=set)
    """ETags of the feed documents already parsed."""

    async def cursor(self, params: str = "limit=1", path: str = API) -> str:
        r = await self.client.get(f"{path}?{params}")
        assert r.status_code == 200, r.text
        if path == API:
            value: str = r.json()["next_cursor"]
        else:
            value = re.search(r"cursor=([^&\"<>]+)", r.text).group(1)  # type: ignore[union-attr]
        assert value
        return value


Send = Callable[[Ctx], Awaitable[list[Any]]]
Check = Callable[[Ctx, list[Any]], Awaitable[None]]


@dataclass(frozen=True)
class Case:
    name: str
    send: Send
    status: int
    names: str | tuple[str, ...] | None = None
    """The field (or header) the JSON error must name; a tuple names one per response."""
    outcome: str = ""
    stores: int = 0
    """Commentaries the case adds (accepted content); refused cases add no row anywhere."""
    check: Check | None = None


def post(**fields: Any) -> Send:
    """POST a valid commentary with ``fields`` replaced (None removes a field)."""

    async def send(ctx: Ctx) -> list[Any]:
        return [await ctx.client.post(API, json=commentary(**fields), headers=ctx.auth)]

    return send


def post_html(html: str) -> Send:
    return post(body_markdown=None, body_html=html)


def post_raw(body: bytes, content_type: str | None = JSON, path: str = API) -> Send:
    async def send(ctx: Ctx) -> list[Any]:
        headers = dict(ctx.auth)
        if content_type is not None:
            headers["Content-Type"] = content_type
        return [await ctx.client.post(path, content=body, headers=headers)]

    return send


def raw_json(text: str) -> bytes:
    """A commentary body as JSON text with ``TITLE`` standing for the title's value."""
    base = json.dumps(commentary(title="TITLE"), ensure_ascii=False)
    return base.replace('"TITLE"', text).encode("utf-8", "surrogatepass")


def get(*paths: str) -> Send:
    async def send(ctx: Ctx) -> list[Any]:
        return [await ctx.client.get(path.format(seed=ctx.seed["id"])) for path in paths]

    return send


def get_each_filter(value: str, *, where: tuple[str, ...] = (API, "/feed.atom", "/embed")) -> Callable[[str], Send]:
    def for_param(param: str) -> Send:
        return get(*(f"{path}?{param}={quote(value, safe='')}" for path in where))

    return for_param


def with_cursor(make: Callable[[str], str], params: str = "limit=1", path: str = API) -> Send:
    async def send(ctx: Ctx) -> list[Any]:
        cursor = await ctx.cursor(params, path)
        return [await ctx.client.get(make(cursor))]

    return send


def tamper(cursor: str) -> str:
    i = len(cursor) // 3
    return cursor[:i] + ("A" if cursor[i] != "A" else "B") + cursor[i + 1 :]


def deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


async def chunked(ctx: Ctx, data: bytes, piece: int) -> Any:
    async def stream() -> AsyncIterator[bytes]:
        for i in range(0, len(data), piece):
            yield data[i : i + piece]

    return await ctx.http.post(API, content=stream(), headers={**ctx.auth, "Content-Type": JSON})


def send_chunked(data: bytes, piece: int) -> Send:
    async def send(ctx: Ctx) -> list[Any]:
        response = await chunked(ctx, data, piece)
        assert "content-length" not in response.request.headers
        assert response.request.headers["transfer-encoding"] == "chunked"
        return [response]

    return send


async def same_slug_ten_times(ctx: Ctx) -> list[Any]:
    body = commentary(slug="one-slug-only", title="Racing")
    return list(await asyncio.gather(*(ctx.http.post(API, json=body, headers=ctx.auth) for _ in range(10))))


def patch_seed(body: bytes, content_type: str) -> Send:
    async def send(ctx: Ctx) -> list[Any]:
        headers = {**ctx.auth, "Content-Type": content_type, "If-Match": "*"}
        return [await ctx.client.patch(f"{API}/{ctx.seed['id']}", content=body, headers=headers)]

    return send


# --- checks on accepted content -----------------------------------------------------------------

SCRIPT_SCHEMES = ("javascript", "vbscript", "data", "livescript", "mocha")
URL_ATTRIBUTES = {"href", "src", "cite", "action", "formaction", "xlink:href", "data", "poster", "background",
                  "lowsrc", "dynsrc", "srcset", "longdesc", "usemap", "codebase", "manifest", "ping", "icon"}
FORBIDDEN_ELEMENTS = {"script", "iframe", "frame", "frameset", "object", "embed", "applet", "base", "form", "input",
                      "button", "textarea", "select", "svg", "math", "noscript", "template", "portal", "video",
                      "audio", "source", "track", "param", "xmp", "plaintext", "noembed", "isindex", "keygen"}


def is_search_form(element: Any) -> bool:
    """The page's own search box (docs/pages.md): one GET form in the masthead whose action
    is this site's search page, or the input and button inside it."""
    form = next((e for e in element.iterancestors("form")), element) if element.tag != "form" else element
    if form.tag != "form" or element.tag not in ("form", "input", "button", "label"):
        return False
    header = next(form.iterancestors("header"), None)
    action = form.get("action") or ""
    return (
        header is not None and "masthead" in (header.get("class") or "")
        and (form.get("method") or "").lower() == "get"
        and re.fullmatch(re.escape(PUBLIC_URL) + r"/[a-z]{2}/search", action) is not None
    )


def scheme_of(url: str) -> str:
    """A URL's scheme as a browser reads it: control characters and spaces removed."""
    cleaned = re.sub(r"[\x00-\x20\x7f]", "", url).lower()
    return cleaned.split(":", 1)[0] if ":" in cleaned else ""


def assert_html_harmless(text: str | bytes, what: str, *, page: bool = False) -> None:
    """No element that runs or embeds anything, no event handler, no script URL, no CSS
    beyond a page's own <style>."""
    if not text.strip():
        return
    doc = lxml.html.document_fromstring(text) if page else lxml.html.fragment_fromstring(text, create_parent="div")
    styles = data_blocks = resize_scripts = 0
    for element in doc.iter():
        if not isinstance(element.tag, str):
            continue
        tag = element.tag.lower().rsplit("}", 1)[-1]
        if tag == "script" and page and dict(element.attrib) == {"type": "application/ld+json"}:
            # A data block browsers never run: one per page, in the head, and JSON to the end
            # (a hostile string that closed it early would leave broken JSON or markup after it).
            data_blocks += 1
            assert data_blocks == 1 and element.getparent().tag == "head", (what, "a second or misplaced data block")
            json.loads(element.text or "")
            continue
        if tag == "script" and page and not element.attrib and element.text == RESIZE_SCRIPT:
            # The embed views' own script (it posts the page's height), once, last in the
            # body; the CSP allows it by its hash and nothing else.
            resize_scripts += 1
            assert resize_scripts == 1 and element.getparent().tag == "body", (what, "a second resize script")
            assert element.getnext() is None, (what, "markup after the resize script")
            continue
        if page and is_search_form(element):
            continue
        assert tag not in FORBIDDEN_ELEMENTS, (what, tag, text[:300])
        if tag == "style":
            styles += 1
            css = (element.text or "").lower()
            assert page and styles == 1, (what, "a <style> element that is not the page's own")
            assert "@import" not in css and "expression(" not in css and "javascript:" not in css, what
        if tag == "meta":
            assert (element.get("http-equiv") or "").lower() != "refresh", what
        if tag == "link":
            rels = set((element.get("rel") or "").lower().split())
            loaders = {"stylesheet", "import", "preload", "modulepreload", "prefetch", "prerender"}
            assert not rels & loaders, (what, rels)
        for name, value in element.attrib.items():
            name = name.lower()
            assert not name.startswith("on"), (what, tag, name)
            assert name != "style" or not page or "url(" not in value.lower(), (what, tag, value)
            if not page:
                assert name != "style", (what, tag, value)
            if name in URL_ATTRIBUTES or name.endswith("}href"):
                for url in value.split(",") if name == "srcset" else [value]:
                    assert scheme_of(url) not in SCRIPT_SCHEMES, (what, tag, name, value)


def stored_body(ctx: Ctx, id: str) -> str:
    (doc,) = ctx.rows("SELECT doc FROM commentaries WHERE id = ?", id)[0]
    body: str = json.loads(doc)["body_html"]
    return body


def sanitised(*absent: str) -> Check:
    """The stored and served body is harmless, sanitising it again changes nothing, and
    none of ``absent`` survives (case-insensitively)."""

    async def check(ctx: Ctx, responses: list[Any]) -> None:
        item = responses[0].json()
        body = stored_body(ctx, item["id"])
        assert sanitize_html(body) == body, "sanitising twice changed the body"
        for html in (body, item["body_html"]):
            assert_html_harmless(html, "body_html")
            for text in absent:
                assert text.lower() not in html.lower(), (text, html)

    return check


def kept_as_text(*texts: str) -> Check:
    async def check(ctx: Ctx, responses: list[Any]) -> None:
        item = responses[0].json()
        assert sanitize_html(stored_body(ctx, item["id"])) == stored_body(ctx, item["id"])
        blob = json.dumps(item, ensure_ascii=False)
        for text in texts:
            assert text in blob, (text, blob[:400])

    return check


def stripped(*chars: str) -> Check:
    async def check(ctx: Ctx, responses: list[Any]) -> None:
        item = responses[0].json()
        (doc,) = ctx.rows("SELECT doc FROM commentaries WHERE id = ?", item["id"])[0]
        for text in (json.dumps(item), doc.decode() if isinstance(doc, bytes) else doc):
            decoded = json.loads(text)
            flat = json.dumps(decoded, ensure_ascii=False)
            for char in chars:
                assert char not in flat, repr(char)

    return check


def found(count: int) -> Check:
    async def check(ctx: Ctx, responses: list[Any]) -> None:
        assert len(responses[0].json()["items"]) == count, responses[0].text[:300]

    return check


async def one_wins(ctx: Ctx, responses: list[Any]) -> None:
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 9, statuses
    for r in responses:
        if r.status_code == 409:
            assert_error(r, 409)
            assert "slug" in r.json()["detail"]
    assert ctx.rows("SELECT count(*) FROM commentaries WHERE slug = 'one-slug-only'")[0][0] == 1


# --- the table --------------------------------------------------------------------------------

BIG = json.dumps(commentary(body_markdown="x" * 1_100_000)).encode()
SMALL = json.dumps(commentary(title="Sent in chunks")).encode()
BAD = "'%_--;\"\\"
CYRILLIC_A = "\u0430"
FTS_SYNTAX = 'NEAR(a b) title:x * " AND OR -'

CONTROLS = "".join(chr(c) for c in (0, 1, 8, 0x0B, 0x0C, 0x1F, 0xFFFE, 0xFFFF))

CASES: list[Case] = [
    # bodies and transport
    Case("body over 1 MB (Content-Length)", post_raw(BIG), 413, outcome="413, JSON error; nothing stored"),
    Case(
        "body over 1 MB, chunked (no Content-Length)",
        send_chunked(BIG, 64 * 1024),
        413,
        outcome="413 once the stream passes the limit",
    ),
    Case(
        "valid body, chunked in 7-byte pieces",
        send_chunked(SMALL, 7),
        201,
        stores=1,
        outcome="201: chunking is transparent",
    ),
    Case(
        "JSON nested 100,000 deep",
        post_raw(deep(100_000)),
        400,
        "body",
        "400 'the body is nested too deeply' (was a 500)",
    ),
    Case("title nested 500 deep", post_raw(raw_json(deep(500).decode())), 400, "title", "400 naming title"),
    Case(
        "Content-Type text/plain", post_raw(SMALL, "text/plain"), 415, outcome="415, JSON error naming the content type"
    ),
    Case("no Content-Type", post_raw(SMALL, None), 415, outcome="415 (was accepted as JSON)"),
    Case(
        "Content-Type form-urlencoded (an HTML form)",
        post_raw(b"title=x&lang=en", "application/x-www-form-urlencoded"),
        415,
        outcome="415",
    ),
    Case("Content-Type multipart/form-data", post_raw(SMALL, "multipart/form-data; boundary=x"), 415, outcome="415"),
    Case(
        "application/json; charset=iso-8859-1",
        post_raw(SMALL, "application/json; charset=iso-8859-1"),
        415,
        outcome="415",
    ),
    Case(
        "application/merge-patch+json on PATCH",
        patch_seed(b'{"trend": "worsened"}', "application/merge-patch+json"),
        200,
        outcome="200: any application/*+json is JSON",
    ),
    Case("UTF-16 body labelled JSON", post_raw(SMALL.decode().encode("utf-16")), 400, "body", "400 naming body"),
    Case(
        "invalid UTF-8 byte (0xFF) in a string",
        post_raw(raw_json('"a\xffb"').replace("ÿ".encode(), b"\xff")),
        400,
        "body",
        "400 naming body (was a 500)",
    ),
    Case(
        "overlong UTF-8 ('<' as C0 BC)",
        post_raw(raw_json('"aXb"').replace(b"X", b"\xc0\xbc")),
        400,
        "body",
        "400 (was a 500)",
    ),
    Case(
        "UTF-8-encoded lone surrogate (ED A0 80)",
        post_raw(raw_json('"aXb"').replace(b"X", b"\xed\xa0\x80")),
        400,
        "body",
        "400 (was a 500)",
    ),
    Case("escaped lone surrogate \\ud800", post_raw(raw_json('"a\\ud800b"')), 400, "body", "400 naming body"),
    Case("escaped reversed surrogate pair \\udc00\\ud800", post_raw(raw_json('"\\udc00\\ud800"')), 400, "body", "400"),
    Case("UTF-8 byte-order mark before the JSON", post_raw(b"\xef\xbb\xbf" + SMALL), 400, "body", "400 naming body"),
    Case(
        "duplicate key (title twice)",
        post_raw(raw_json('"first", "title": "second"')),
        400,
        "title",
        "400 naming the key (msgspec alone keeps the last)",
    ),
    Case(
        "duplicate key inside authors[0]",
        post_raw(SMALL.replace(b'"name": ', b'"name": "x", "name": ', 1)),
        400,
        "name",
        "400 naming the key",
    ),
    Case("unknown field", post(evil=True), 400, "evil", "400 naming the field"),
    Case(
        "unknown field inside authors[0]", post(authors=[{"name": "A", "role": "admin"}]), 400, "role", "400 naming it"
    ),
    Case("wrong type (tags as a string)", post(tags="border"), 400, "tags", "400 naming tags"),
    # characters XML cannot carry, CDATA ends, entities
    Case(
        "NUL, C0 controls, U+FFFE/U+FFFF in every text field",
        post(
            title=f"T{CONTROLS}itle",
            summary=f"S{CONTROLS}",
            tags=[f"t{CONTROLS}g"],
            authors=[{"name": f"N{CONTROLS}", "affiliation": f"A{CONTROLS}"}],
            body_markdown=f"B{CONTROLS}ody",
            source={"name": f"S{CONTROLS}"},
            image={"url": "/media/a.png", "alt": f"a{CONTROLS}", "caption": f"c{CONTROLS}"},
        ),
        201,
        stores=1,
        outcome="201, the characters stripped everywhere",
        check=stripped(*CONTROLS),
    ),
    Case(
        "C1 controls and zero-width characters in the title",
        post(title="A\x85B\x9fC\u200bD\u200fE\ufeffF"),
        201,
        stores=1,
        outcome="201, kept as text; feeds stay valid",
        check=kept_as_text("C\u200bD\u200fE"),
    ),
    # An override (U+202E) reversed what pages showed after it in a title or name.
    Case(
        "bidi overrides, embeddings and isolates in single-line fields",
        post(
            title="A\u202eB\u202aC\u2066D\u2069",
            summary="S\u202dT",
            tags=["t\u2067g"],
            authors=[{"name": "N\u202eM", "affiliation": "A\u2068B"}],
            source={"name": "S\u202bU"},
            image={"url": "/media/a.png", "alt": "a\u202el", "caption": "c\u202ea", "credit": "c\u202cr"},
        ),
        201,
        stores=1,
        outcome="201, the controls stripped everywhere",
        check=stripped(*"\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"),
    ),
    Case(
        "]]> in title, summary, tag, body text and attribute",
        post(
            title="a ]]> b",
            summary="]]>",
            tags=["]]>"],
            body_markdown=None,
            body_html='<p title="]]>">]]&gt; ]]></p><![CDATA[ ]]> ]]>',
        ),
        201,
        stores=1,
        outcome="201; every feed parses",
        check=kept_as_text("a ]]> b"),
    ),
    Case(
        "entities: &#0; &#xD800; &bogus; &nbsp; &amp;lt;",
        post_html("<p>&#0; &#xD800; &#x1; &bogus; &nbsp; &amp;lt;script&amp;gt; &#x10FFFF;</p>"),
        201,
        stores=1,
        outcome="201, decoded to XML-safe text (&#x1; used to leave U+0001 in the body)",
        check=sanitised("<script", "\x01"),
    ),
    Case(
        "DOCTYPE with an external entity (XXE) and billion laughs",
        post_html(
            '<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd"><!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
            "<p>&xxe; &b;</p>"
        ),
        201,
        stores=1,
        outcome="201, entities stay text; nothing resolved",
        check=sanitised("<!doctype", "root:"),
    ),
    Case(
        "plain-text fields holding markup",
        post(
            title="<script>alert(1)</script>",
            summary='<img src=x onerror="alert(1)">',
            authors=[{"name": '"><svg onload=alert(1)>'}],
            tags=["<b>t</b>"],
        ),
        201,
        stores=1,
        outcome="201, shown as text in every view",
        check=kept_as_text("<script>alert(1)</script>"),
    ),
    # HTML an allow-list must stop (body_html unless noted)
    Case(
        "<script> and <script src>",
        post_html('<p>a</p><script>alert(1)</script><script src="//x.invalid/s.js"></script>'),
        201,
        stores=1,
        outcome="201, scripts removed",
        check=sanitised("<script", "alert"),
    ),
    Case(
        "<iframe srcdoc> and <frame>",
        post_html('<iframe srcdoc="<script>alert(1)</script>"></iframe><frameset><frame src="javascript:alert(1)">'),
        201,
        stores=1,
        outcome="201, removed",
        check=sanitised("iframe", "frame", "alert"),
    ),
    Case(
        "<object>, <embed>, <applet>",
        post_html('<object data="x.swf"></object><embed src="x.swf"><applet code="x"></applet><p>a</p>'),
        201,
        stores=1,
        outcome="201, removed",
        check=sanitised("object", "embed", "applet"),
    ),
    Case(
        "event handlers (onerror, onload, ontoggle, onfocus autofocus)",
        post_html(
            "<img src=x onerror=alert(1)><body onload=alert(1)><details open ontoggle=alert(1)>"
            "<p tabindex=1 autofocus onfocus=alert(1)>f</p>"
        ),
        201,
        stores=1,
        outcome="201, every on* attribute removed",
        check=sanitised("onerror", "onload", "ontoggle", "onfocus"),
    ),
    Case(
        "javascript: in href, obfuscated (case, entities, tab, NUL, leading space)",
        post_html(
            '<a href="JaVaScRiPt:alert(1)">a</a><a href="&#106;avascript:alert(1)">b</a>'
            '<a href="java&#x09;script:alert(1)">c</a>'
            '<a href="java\x00script:alert(1)">d</a><a href=" javascript:alert(1)">e</a>'
        ),
        201,
        stores=1,
        outcome="201, the hrefs dropped",
        check=sanitised("javascript", "alert"),
    ),
    Case(
        "data: and vbscript: URLs in href and src",
        post_html(
            '<a href="data:text/html,<script>alert(1)</script>">d</a>'
            '<img src="data:image/svg+xml;base64,PHN2Zz4="><a href="vbscript:msgbox(1)">v</a>'
        ),
        201,
        stores=1,
        outcome="201, the URLs dropped",
        check=sanitised("data:", "vbscript"),
    ),
    Case(
        "javascript: in cite (blockquote, q, del, ins)",
        post_html(
            '<blockquote cite="javascript:alert(1)">q</blockquote>'
            '<q cite="javascript:alert(1)">q</q><del cite="javascript:alert(1)">d</del><ins cite="data:x">i</ins>'
        ),
        201,
        stores=1,
        outcome="201, cite dropped (nh3 alone kept it)",
        check=sanitised("javascript", "data:"),
    ),
    Case(
        "formaction and form action",
        post_html(
            '<form action="javascript:alert(1)"><button formaction="javascript:alert(1)">go</button>'
            '<input type=image formaction="javascript:alert(1)"></form>'
        ),
        201,
        stores=1,
        outcome="201, forms and controls removed",
        check=sanitised("form", "javascript", "button"),
    ),
    Case(
        "xlink:href in SVG",
        post_html(
            '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a>'
            '<use xlink:href="data:image/svg+xml,<svg id=x onload=alert(1)>#x"/></svg>'
        ),
        201,
        stores=1,
        outcome="201, SVG removed",
        check=sanitised("xlink", "javascript", "svg"),
    ),
    Case(
        "CSS in style attributes",
        post_html(
            '<p style="background:url(javascript:alert(1))">a</p>'
            '<p style="behavior:url(x.htc);width:expression(alert(1))">b</p>'
        ),
        201,
        stores=1,
        outcome="201, style attributes removed",
        check=sanitised("style", "expression"),
    ),
    Case(
        "<style> with @import and expression()",
        post_html(
            '<style>@import "//x.invalid/a.css"; p{width:expression(alert(1))}</style>'
            '<link rel=stylesheet href="//x.invalid/b.css"><p>s</p>'
        ),
        201,
        stores=1,
        outcome="201, removed",
        check=sanitised("<style", "@import", "<link"),
    ),
    Case(
        "<svg><script> and <svg onload>",
        post_html(
            "<svg><script>alert(1)</script></svg><svg onload=alert(1)></svg>"
            "<svg><animate onbegin=alert(1) attributeName=x dur=1s>"
        ),
        201,
        stores=1,
        outcome="201, removed",
        check=sanitised("svg", "alert"),
    ),
    Case(
        'mXSS: <noscript><p title="</noscript><img onerror>">',
        post_html('<noscript><p title="</noscript><img src=x onerror=alert(1)>">'),
        201,
        stores=1,
        outcome="201, no live <img onerror> after re-parsing",
        check=sanitised("onerror"),
    ),
    Case(
        "mXSS: <math><mtext><table><mglyph><style><img onerror>",
        post_html("<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>"),
        201,
        stores=1,
        outcome="201, harmless and stable",
        check=sanitised("onerror", "<math"),
    ),
    Case(
        'mXSS: <svg></p><style><a title="</style><img onerror>">',
        post_html('<svg></p><style><a id="</style><img src=1 onerror=alert(1)>">'),
        201,
        stores=1,
        outcome="201, harmless and stable",
        check=sanitised("onerror"),
    ),
    Case(
        "comment and CDATA breakouts",
        post_html(
            "<!--><script>alert(1)</script>--><![CDATA[><script>alert(2)</script>]]><scr<script>ipt>alert(3)</script>"
        ),
        201,
        stores=1,
        outcome="201, nothing runs",
        check=sanitised("<script"),
    ),
    Case(
        "<base>, <meta refresh>, <template>, <textarea> breakout",
        post_html(
            '<base href="//x.invalid/"><meta http-equiv="refresh" content="0;url=javascript:alert(1)">'
            "<template><script>alert(1)</script></template><textarea></textarea><script>alert(2)</script>"
        ),
        201,
        stores=1,
        outcome="201, removed",
        check=sanitised("<base", "<meta", "<template", "<script"),
    ),
    Case(
        "srcset with javascript:",
        post_html('<img src="https://example.org/a.png" srcset="javascript:alert(1) 1x, data:x 2x">'),
        201,
        stores=1,
        outcome="201, srcset dropped",
        check=sanitised("srcset", "javascript"),
    ),
    Case(
        "Markdown: javascript: links, images, autolinks and raw HTML",
        post(
            body_markdown="[a](javascript:alert(1)) ![i](javascript:alert(2)) <javascript:alert(3)>\n\n"
            "[r][1]\n\n[1]: vbscript:msgbox(1)\n\n<div onclick=alert(4)>raw</div>"
        ),
        201,
        stores=1,
        outcome="201: such links stay text, raw HTML sanitised",
        check=sanitised('href="javascript', 'src="javascript', 'href="vbscript', "onclick", "<div"),
    ),
    Case(
        "script URLs in URL fields (canonical_url)",
        post(canonical_url="javascript:alert(1)"),
        400,
        "canonical_url",
        "400 naming it",
    ),
    Case(
        "data: image URL", post(image={"url": "data:image/png;base64,AAAA"}), 400, "image.url", "400 naming image.url"
    ),
    Case(
        "vbscript: author URL",
        post(authors=[{"name": "A", "url": "vbscript:msgbox(1)"}]),
        400,
        "authors",
        "400 naming authors[0].url",
    ),
    Case(
        "URL with a trailing newline",
        post(canonical_url="https://example.org/a\n"),
        400,
        "canonical_url",
        "400 (Python's $ let it through before)",
    ),
    # dates and offsets
    Case(
        "published_at 0000-01-01",
        post(published_at="0000-01-01T00:00:00Z"),
        400,
        "published_at",
        "400 naming published_at",
    ),
    Case("published_at 10000-01-01", post(published_at="10000-01-01T00:00:00Z"), 400, "published_at", "400"),
    Case("published_at 2026-02-30", post(published_at="2026-02-30T10:00:00Z"), 400, "published_at", "400"),
    Case("published_at 24:00:00", post(published_at="2026-03-07T24:00:00Z"), 400, "published_at", "400"),
    Case("published_at naive (no offset)", post(published_at="2026-03-07T10:00:00"), 400, "published_at", "400"),
    Case("published_at offset +24:00", post(published_at="2026-03-07T10:00:00+24:00"), 400, "published_at", "400"),
    Case(
        "published_at 9999-12-31T23:59:59-01:00 (year 10000 in UTC)",
        post(published_at="9999-12-31T23:59:59-01:00"),
        400,
        "published_at",
        "400 (was stored, then every public view was a 500)",
    ),
    Case(
        "published_at 0001-01-01T00:00:00+01:00 (year 0 in UTC)",
        post(published_at="0001-01-01T00:00:00+01:00"),
        400,
        "published_at",
        "400",
    ),
    Case("published_at offset +14:00", post(published_at="2026-03-07T10:00:00+14:00"), 201, stores=1, outcome="201"),
    Case("published_at offset -12:00", post(published_at="2026-03-07T10:00:00-12:00"), 201, stores=1, outcome="201"),
    Case(
        "published_at offset +23:59",
        post(published_at="2026-03-07T10:00:00+23:59"),
        201,
        stores=1,
        outcome="201 (RFC 3339 allows it); feeds valid",
    ),
    Case(
        "published_at in year 1",
        post(published_at="0001-01-02T00:00:00Z"),
        201,
        stores=1,
        outcome="201; feeds and pages still valid",
    ),
    Case(
        "period 2026-02-30",
        post(period={"start": "2026-02-30", "end": "2026-03-06"}),
        400,
        "period",
        "400 naming period",
    ),
    Case("period start after end", post(period={"start": "2026-03-07", "end": "2026-03-01"}), 400, "period", "400"),
    Case("from=0001-01-01 / to=9999-12-31 filters", get(f"{API}?from=0001-01-01", "/feed.atom?to=9999-12-31"), 400,
         ("from", "to"), "400 naming from / to (were 500s)"),
    Case("from=2026-02-30, to=naive datetime", get(f"{API}?from=2026-02-30", f"{API}?to=2026-03-07T10:00:00"), 400,
         ("from", "to"), "400 naming each"),
    # limit and cursor abuse
    Case(
        "limit -1, 0, 101, 10**30, abc, 1e3, empty",
        get(
            *(
                f"{path}?limit={v}"
                for v in ("-1", "0", "101", "1" + "0" * 30, "abc", "1e3", "")
                for path in (API, "/feed.json")
            ),
            "/embed?limit=21",
        ),
        400,
        "limit",
        "400 naming limit",
    ),
    Case(
        "cursor of 10 KB",
        get(f"{API}?cursor={'A' * 10_000}", f"/feed.atom?cursor={'A' * 10_000}"),
        400,
        "cursor",
        "400 naming cursor",
    ),
    Case(
        "cursor garbage (not base64, no signature)",
        get(f"{API}?cursor=%21%21.%21", f"{API}?cursor=abc", "/feed.rss?cursor=x.y"),
        400,
        "cursor",
        "400 naming cursor",
    ),
    Case(
        "cursor tampered (one character changed)",
        with_cursor(lambda c: f"{API}?limit=1&cursor={tamper(c)}"),
        400,
        "cursor",
        "400: the signature fails",
    ),
    Case(
        "cursor from another filter",
        with_cursor(lambda c: f"{API}?limit=1&tag=other&cursor={c}"),
        400,
        "cursor",
        "400: bound to its filters",
    ),
    Case(
        "archive cursor tampered",
        with_cursor(lambda c: f"/feed.atom?limit=1&cursor={tamper(c)}", path="/feed.atom"),
        400,
        "cursor",
        "400",
    ),
    Case(
        "list cursor used as a changes cursor",
        with_cursor(lambda c: f"/api/v1/changes?since={c}"),
        400,
        "since",
        "400 naming since",
    ),
    # SQL and LIKE metacharacters in every filter
    Case(
        f"tag={SEED_TAG} (LIKE metacharacters, exact)",
        get(f"{API}?tag={quote(SEED_TAG)}"),
        200,
        outcome="200, exactly the one tagged item",
        check=found(1),
    ),
    Case("tag=%", get(f"{API}?tag=%25"), 200, outcome="200, nothing: % is not a wildcard", check=found(0)),
    Case("tag=x__y", get(f"{API}?tag=x__y"), 200, outcome="200, nothing: _ is not a wildcard", check=found(0)),
    Case(
        f"author={SEED_AUTHOR} (quote, semicolon, comment)",
        get(f"{API}?author={quote(SEED_AUTHOR)}"),
        200,
        outcome="200, exactly the one item",
        check=found(1),
    ),
    Case(
        f"tag, author, q = {BAD}",
        get(*(f"{path}?{p}={quote(BAD)}" for p in ("tag", "author", "q") for path in (API, "/feed.rss"))),
        200,
        outcome="200, no error, nothing found",
    ),
    Case(
        "q with FTS5 syntax (NEAR, *, column:, unbalanced quote)",
        get(f"{API}?q={quote(FTS_SYNTAX)}"),
        200,
        outcome="200: words are quoted, operators not interpreted",
    ),
    Case(f"category={BAD}", get_each_filter(BAD)("category"), 400, "category", "400 naming category"),
    Case(f"lang={BAD}", get_each_filter(BAD)("lang"), 400, "lang", "400 naming lang"),
    Case(f"trend={BAD}", get_each_filter(BAD, where=(API, "/feed.atom"))("trend"), 400, "trend", "400 naming trend"),
    Case(
        f"from / to / updated_since = {BAD}",
        get(*(f"{API}?{p}={quote(BAD)}" for p in ("from", "to", "updated_since"))),
        400,
        ("from", "to", "updated_since"),
        "400 naming each",
    ),
    Case(
        "51 categories in one filter",
        get(f"{API}?category=" + ",".join(f"c{i}" for i in range(51))),
        400,
        "category",
        "400: at most 50 (bounds the query one request can cause; PostgreSQL takes at most 32767 parameters)",
    ),
    # paths and look-alike slugs
    Case(
        "../ and %2F in an id",
        get(f"{API}/..%2F..%2Fetc%2Fpasswd", f"{API}/%2e%2e%2f%2e%2e", "/commentaries/..%2Ffeed.rss"),
        404,
        outcome="404 JSON",
    ),
    Case(
        "encoded NUL, control character or invalid UTF-8 in ids and slugs",
        get(f"{API}/%00", f"{API}/%00/related", f"{API}/s%01eed?lang=en", "/categories/regional-security%00/feed.rss",
            "/%ff/feed.rss", "/commentaries/%c0%80"),
        400,
        ("id", "id", "id", "slug", "language", "id"),
        "400 naming the path parameter (on PostgreSQL a NUL in an id was a 500)",
    ),
    Case("encoded newline in an id", get(f"{API}/seed%0A?lang=en"), 404, outcome="404 JSON: no such slug"),
    Case(
        "traversal under /media",
        get("/media/..%2F..%2Fpyproject.toml", "/media/%2e%2e/%2e%2e/etc/passwd", "/media/../feedsvc.db"),
        404,
        outcome="404",
    ),
    Case(
        "PUT category whose slug is %2e%2e, has a look-alike letter or a newline",
        lambda ctx: put_category(ctx, "%2e%2e", f"regional-security{CYRILLIC_A}", "economy%0A"),
        400,
        "slug",
        "400 naming slug; nothing stored (the newline was accepted before)",
    ),
    Case("PUT category at ..%2Fadmin", lambda ctx: put_category(ctx, "..%2Fadmin"), 404, outcome="404: no such route"),
    Case(
        f"slug with a Cyrillic '{CYRILLIC_A}'",
        post(slug=f"region{CYRILLIC_A}l-security"),
        400,
        "slug",
        "400 naming slug",
    ),
    Case(
        "slug with fullwidth letters, ../, a newline",
        lambda ctx: posts(ctx, [{"slug": "\uff52\uff45\uff47"}, {"slug": "../x"}, {"slug": "seed\n"}]),
        400,
        "slug",
        "400 naming slug (the newline was accepted before)",
    ),
    Case(
        "category with a look-alike letter",
        lambda ctx: posts(ctx, [{"category": f"regional-securit{CYRILLIC_A}"}]),
        400,
        "category",
        "400 naming category",
    ),
    Case(
        "lang with a Cyrillic 'е' or a trailing newline",
        lambda ctx: posts(ctx, [{"lang": "\u0435n"}, {"lang": "en\n"}]),
        400,
        "lang",
        "400 naming lang (en\\n was accepted before)",
    ),
    Case(
        "feeds under look-alike paths",
        get(f"/categories/regional-securit{CYRILLIC_A}/feed.rss", "/\u0435n/feed.atom"),
        404,
        outcome="404 JSON",
    ),
    Case(
        "10 concurrent POSTs of one explicit slug",
        same_slug_ten_times,
        201,
        stores=1,
        outcome="one 201, nine 409 naming the slug",
        check=one_wins,
    ),
]


async def put_category(ctx: Ctx, *slugs: str) -> list[Any]:
    return [
        await ctx.client.put(
            f"/api/v1/categories/{quote(slug, safe='%')}", json={"names": {"en": "X"}}, headers=ctx.auth
        )
        for slug in slugs
    ]


async def posts(ctx: Ctx, variants: list[dict[str, Any]]) -> list[Any]:
    return [await ctx.client.post(API, json=commentary(**v), headers=ctx.auth) for v in variants]


# --- after every case ---------------------------------------------------------------------------

FEED_PATHS = ("/feed", "/categories/regional-security/feed", "/en/feed")
BROWSER = {"Sec-Fetch-Dest": "document", "Sec-Fetch-Mode": "navigate", "Accept": "text/html"}


def feed_contents(fmt: str, body: bytes) -> list[str]:
    """The HTML each item carries, as a reader would render it."""
    if fmt == "json":
        return [i.get("content_html", "") for i in json.loads(body)["items"]]
    root = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))
    texts = root.xpath("//*[local-name()='content' or local-name()='encoded' or local-name()='description']/text()")
    return [str(t) for t in texts]


async def assert_service_intact(ctx: Ctx, new_ids: list[str] | None = None, *, every_view: bool = False) -> None:
    """Every feed, page and embed view parses strictly and holds nothing that runs; the
    pages of ``new_ids`` (the commentaries the case stored) too. The site feeds hold every
    commentary of the walk, so the category and language feeds (the same items) are parsed
    with ``every_view``; a document already parsed (same bytes) is not parsed again."""
    client = ctx.client
    for fmt in ("rss", "atom", "json"):
        for path in FEED_PATHS if every_view else FEED_PATHS[:1]:
            r = await client.get(f"{path}.{fmt}")
            assert r.status_code == 200, (path, fmt, r.text[:300])
            if r.headers["etag"] in ctx.checked:
                continue
            check_feed(fmt, r.content)
            for html in feed_contents(fmt, r.content):
                assert_html_harmless(html, f"{path}.{fmt} content")
            ctx.checked.add(r.headers["etag"])
    for path in ("/feed.rss", "/feed.atom"):
        r = await client.get(path, headers=BROWSER)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert_html_harmless(r.content, f"{path} as a page", page=True)
    pages = ["/", "/embed", "/embed?theme=dark&limit=20"]
    for id in new_ids or [ctx.seed["id"]]:
        pages += [f"/commentaries/{id}", f"/embed?id={id}"]  # the first redirects to the page
    for path in pages:
        r = await client.get(path)
        assert r.status_code == 200, (path, r.text[:300])
        assert_html_harmless(r.content, path, page=True)
    r = await client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


# --- the test -----------------------------------------------------------------------------------


@pytest.fixture
async def ctx(client: Any, concurrent_client: Any, auth: dict[str, str], categories: Any, rows: Any) -> Ctx:
    first = await client.post(
        API, json=commentary(title="Seed", tags=["border", SEED_TAG], authors=[{"name": SEED_AUTHOR}]), headers=auth
    )
    second = await client.post(
        API, json=commentary(title="Second", published_at="2026-03-01T10:00:00+03:00"), headers=auth
    )
    assert first.status_code == second.status_code == 201
    return Ctx(client=client, http=concurrent_client, auth=auth, seed=first.json(), rows=rows)


def test_the_table_has_at_least_40_cases_with_unique_names() -> None:
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)


async def test_hostile_inputs(ctx: Ctx, stored_counts: Any, subtests: Any) -> None:
    """The walk: the cases in order on one database, so that every feed ends up holding
    every accepted hostile commentary at once; each case is a subtest."""
    await assert_service_intact(ctx)
    for case in CASES:
        with subtests.test(case.name):
            await run_case(case, ctx, stored_counts)
    await assert_service_intact(ctx, ctx.created, every_view=True)
    assert len(ctx.created) == sum(c.stores for c in CASES)


async def run_case(case: Case, ctx: Ctx, stored_counts: Any) -> None:
    before = stored_counts()
    responses = await case.send(ctx)
    assert responses
    if case.check is one_wins:
        await one_wins(ctx, responses)
    else:
        names = case.names if isinstance(case.names, tuple) else (case.names,) * len(responses)
        assert len(names) == len(responses)
        for r, name in zip(responses, names, strict=True):
            assert r.status_code == case.status, (case.name, r.request.url, r.status_code, r.text[:400])
            if case.status >= 400:
                assert_error(r, case.status, name)
        if case.check is not None:
            await case.check(ctx, responses)
    after = stored_counts()
    if case.status >= 400:
        assert after == before, "a refused request stored something"
    else:
        assert after["commentaries"] == before["commentaries"] + case.stores
    new_ids = [r.json()["id"] for r in responses if r.status_code == 201] if case.stores else []
    ctx.created += new_ids
    await assert_service_intact(ctx, new_ids)


def table() -> str:
    lines = ["| # | hostile input | outcome |", "| --- | --- | --- |"]
    for n, case in enumerate(CASES, 1):
        outcome = case.outcome or str(case.status)
        if not outcome.startswith(str(case.status)) and case.check is not one_wins:
            outcome = f"{case.status}, {outcome}"
        name, outcome = case.name.replace("|", "\\|"), outcome.replace("|", "\\|")
        lines.append(f"| {n} | {name} | {outcome} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
