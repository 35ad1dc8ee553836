"""Issue 7, parts 4 and 5: absolute URLs come only from FEEDSVC_PUBLIC_URL, unknown hosts can
be refused, and every response carries the security headers its kind needs.

Forged ``Host``, ``X-Forwarded-Host``, ``X-Forwarded-Proto`` and ``Forwarded`` headers are
sent to every kind of resource (feeds, archives, pages, the embed views, oEmbed, the API,
the ``Location`` of a write); then the same resources, and the rendered-feed cache itself,
are checked for the forged host after fetching them normally.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from feedsvc.config import Settings, load_settings
from feedsvc.http.app import create_app
from feedsvc.http.middleware import host_allowed
from feedsvc.render.embed import SCRIPT_HASH
from tests.conftest import PUBLIC_URL, assert_error, commentary

API = "/api/v1/commentaries"
FORGED = "attacker.invalid"
FORGED_HEADERS = {
    "Host": FORGED,
    "X-Forwarded-Host": FORGED,
    "X-Forwarded-Proto": "http",
    "X-Forwarded-Port": "8443",
    "X-Forwarded-Prefix": "/evil",
    "Forwarded": f"host={FORGED};proto=http",
    "X-Original-URL": f"http://{FORGED}/",
}
BROWSER = {"Sec-Fetch-Dest": "document", "Sec-Fetch-Mode": "navigate", "Accept": "text/html,application/xhtml+xml"}
NO_RATE_LIMITS = {f"FEEDSVC_RATE_LIMIT_{k}": "0" for k in ("FEEDS", "READ", "SEARCH", "WRITE", "AUTH_FAILURES")}


@pytest.fixture
def settings(db_path: Path) -> Settings:
    """Hosts and headers do not depend on the store: SQLite only (see ``sqlite_settings``)."""
    return load_settings(NO_RATE_LIMITS, database_url=f"sqlite:///{db_path}", public_url=PUBLIC_URL)


def every_resource(item_id: str) -> list[tuple[str, dict[str, str]]]:
    """(path, extra headers) of every kind of public resource that can hold a URL."""
    page = f"{PUBLIC_URL}/commentaries/{item_id}"
    paths = [
        "/", "/feeds.opml", "/embed", f"/embed?id={item_id}", "/embed.js",
        f"/oembed?url={quote(page, safe='')}", f"{API}?limit=1", f"{API}/{item_id}",
        f"{API}/{item_id}/translations", "/api/v1/changes", "/api/v1/categories", f"/commentaries/{item_id}",
        "/schema/openapi.json",
    ]
    for fmt in ("rss", "atom", "json"):
        paths += [
            f"/feed.{fmt}",
            f"/feed.{fmt}?limit=1",
            f"/categories/regional-security/feed.{fmt}",
            f"/en/feed.{fmt}",
        ]
    out: list[tuple[str, dict[str, str]]] = [(path, {}) for path in paths]
    out += [("/feed.rss", BROWSER), ("/feed.atom", BROWSER)]
    return out


def assert_clean(response: Any, what: str) -> None:
    assert FORGED not in response.text, f"{what}: the forged host is in the body"
    for name, value in response.headers.items():
        assert FORGED not in value, f"{what}: the forged host is in {name}"
        assert "/evil" not in value, f"{what}: the forged prefix is in {name}"


def absolute_urls(text: str) -> set[str]:
    return set(re.findall(r"https?://[^\s\"'<>)\\]+", text))


async def test_forged_host_headers_never_reach_a_link_a_header_or_the_cache(
    client: AsyncTestClient[Litestar], auth: dict[str, str], categories: Any
) -> None:
    # A write with forged headers: its Location and body use the public URL only.
    r = await client.post(API, json=commentary(body_markdown="See [the notes](/notes) and [more](#more)."),
                          headers={**auth, **FORGED_HEADERS})
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"{PUBLIC_URL}{API}/{r.json()['id']}"
    assert_clean(r, "POST")
    item_id = r.json()["id"]
    await client.post(API, json=commentary(title="An older one", published_at="2026-01-01T10:00:00Z"), headers=auth)

    # First fetches (cold caches) come with the forged headers.
    for path, extra in every_resource(item_id):
        r = await client.get(path, headers={**FORGED_HEADERS, **extra})
        assert r.status_code == 200, (path, r.text)
        assert_clean(r, f"forged GET {path}")
        if "link" in r.headers:
            assert r.headers["link"].startswith(f"<{PUBLIC_URL}/")
    # Then normal fetches, served from what the forged ones may have cached.
    for path, extra in every_resource(item_id):
        r = await client.get(path, headers=extra)
        assert r.status_code == 200, (path, r.text)
        assert_clean(r, f"GET {path}")
        for url in absolute_urls(r.text):
            assert not url.startswith(("http://testserver", "https://testserver")), (path, url)
    # Nothing in the rendered-bytes cache, in any coding or as a page, names the forged host.
    publisher = client.app.state.publisher
    cached = [*publisher._pinned.items(), *publisher._cache.items()]
    assert len(cached) >= 12
    for key, doc in cached:
        assert FORGED.encode() not in doc.body, key
        if key[0] != "json":
            assert FORGED.encode() not in doc.variant("identity", "page")[0], key


async def test_oembed_for_a_url_on_the_forged_host_is_404(
    client: AsyncTestClient[Litestar], auth: dict[str, str], categories: Any
) -> None:
    item_id = (await client.post(API, json=commentary(), headers=auth)).json()["id"]
    url = f"https://{FORGED}/commentaries/{item_id}"
    r = await client.get(f"/oembed?url={quote(url, safe='')}", headers={"Host": FORGED})
    assert_error(r, 404)
    assert_clean(r, "oembed")


async def test_a_put_category_location_uses_the_public_url(
    client: AsyncTestClient[Litestar], auth: dict[str, str]
) -> None:
    r = await client.put(
        "/api/v1/categories/arms-control", json={"names": {"en": "Arms control"}}, headers={**auth, **FORGED_HEADERS}
    )
    assert r.status_code == 201
    assert r.headers["location"] == f"{PUBLIC_URL}/api/v1/categories/arms-control"


# --- allowed hosts --------------------------------------------------------------------------

ALLOWED = "feeds.example.org, localhost:8000, *.example.net, [::1]"
ACCEPTED_HOSTS = [
    "feeds.example.org", "feeds.example.org:443", "feeds.example.org:8080", "FEEDS.Example.ORG", "feeds.example.org.",
    "localhost:8000", "news.example.net", "a.b.example.net:81", "[::1]", "[::1]:8000",
]
REFUSED_HOSTS = [
    FORGED, "localhost", "localhost:9000", "example.net", "evilexample.net", "feeds.example.org.attacker.invalid",
    "attacker.invalid:443", "feeds.example.org@attacker.invalid", "feeds.example.org:80:80", "[::2]", "[::1]x",
    "127.0.0.1", "", ".example.net", "feeds.example.org:abc", "feeds.example.org:",
]


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[AsyncTestClient[Litestar]]:
    environ = {**NO_RATE_LIMITS, "FEEDSVC_ALLOWED_HOSTS": ALLOWED}
    settings = load_settings(environ, database_url=f"sqlite:///{tmp_path / 'g.db'}", public_url=PUBLIC_URL)
    assert settings.allowed_hosts == ("feeds.example.org", "localhost:8000", "*.example.net", "[::1]")
    async with AsyncTestClient(create_app(settings), base_url="http://feeds.example.org") as c:
        yield c


async def test_allowed_hosts_accept_the_configured_names_on_any_or_the_given_port(
    guarded: AsyncTestClient[Litestar], subtests: Any
) -> None:
    for host in ACCEPTED_HOSTS:
        with subtests.test(host=host):
            for path in ("/healthz", "/feed.atom", API, "/embed"):
                r = await guarded.get(path, headers={"Host": host})
                assert r.status_code == 200, (host, path, r.text)


async def test_allowed_hosts_refuse_other_names_with_the_json_400(
    guarded: AsyncTestClient[Litestar], subtests: Any
) -> None:
    for host in REFUSED_HOSTS:
        with subtests.test(host=host):
            for path in ("/healthz", "/feed.atom", API, "/embed", "/"):
                r = await guarded.get(path, headers={"Host": host, "Origin": "https://partner.example"})
                body = assert_error(r, 400, "Host")
                assert "FEEDSVC_ALLOWED_HOSTS" in body["detail"]
                assert r.headers["x-content-type-options"] == "nosniff"
                assert FORGED not in r.text
            head = await guarded.head("/feed.atom", headers={"Host": host})
            assert head.status_code == 400 and head.content == b""


async def test_a_write_to_an_unknown_host_is_refused_before_anything_is_stored(
    guarded: AsyncTestClient[Litestar], tmp_path: Path
) -> None:
    service = guarded.app.state.service
    token, _ = await service.create_token("t", ["write"])
    auth = {"Authorization": f"Bearer {token}"}
    r = await guarded.put(
        "/api/v1/categories/economy", json={"names": {"en": "Economy"}}, headers={**auth, "Host": FORGED}
    )
    assert_error(r, 400, "Host")
    assert await service.get_categories() == []
    r = await guarded.put("/api/v1/categories/economy", json={"names": {"en": "Economy"}}, headers=auth)
    assert r.status_code == 201


async def test_forwarded_headers_do_not_bypass_allowed_hosts(guarded: AsyncTestClient[Litestar]) -> None:
    r = await guarded.get("/feed.atom", headers={"Host": "feeds.example.org", "X-Forwarded-Host": FORGED})
    assert r.status_code == 200 and FORGED not in r.text
    r = await guarded.get("/feed.atom", headers={"Host": FORGED, "X-Forwarded-Host": "feeds.example.org"})
    assert_error(r, 400, "Host")


def test_host_matching_rules() -> None:
    allowed = ("feeds.example.org", "localhost:8000", "*.example.net", "[::1]")
    for host in ACCEPTED_HOSTS:
        assert host_allowed(host, allowed), host
    for host in REFUSED_HOSTS:
        assert not host_allowed(host, allowed), host
    assert not host_allowed(None, allowed)
    assert host_allowed(FORGED, ("*",)) and host_allowed(None, ("*",))


async def test_without_allowed_hosts_any_host_is_served_and_still_never_echoed(
    client: AsyncTestClient[Litestar], auth: dict[str, str], categories: Any
) -> None:
    await client.post(API, json=commentary(), headers=auth)
    r = await client.get("/feed.atom", headers={"Host": FORGED})
    assert r.status_code == 200
    assert_clean(r, "feed")


# --- headers --------------------------------------------------------------------------------

REFERRER_POLICIES = {"no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin"}


def csp_directives(header: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            out[words[0].lower()] = words[1:]
    return out


def assert_strict_html_headers(r: Any, what: str) -> None:
    assert r.headers["content-type"].startswith("text/html"), what
    assert r.headers["x-content-type-options"] == "nosniff", what
    assert r.headers["referrer-policy"] in REFERRER_POLICIES, what
    csp = csp_directives(r.headers["content-security-policy"])
    assert csp["default-src"] == ["'none'"], (what, csp)
    # No script, except on the embed views the one that posts their height, allowed by its hash.
    scripts = [["'none'"], [SCRIPT_HASH]] if what.startswith("/embed") else [["'none'"]]
    assert "script-src" not in csp or csp["script-src"] in scripts, (what, csp)
    # Pages' one form (search, a GET) may go to this site; nothing else may be posted anywhere.
    assert csp["base-uri"] == ["'none'"] and csp["form-action"] in (["'none'"], ["'self'"]), (what, csp)
    assert "frame-ancestors" in csp, (what, csp)
    for directive, sources in csp.items():
        assert "'unsafe-eval'" not in sources and "'strict-dynamic'" not in sources, (what, directive)
        if directive != "style-src":
            assert "'unsafe-inline'" not in sources, (what, directive)
        assert not any(s in ("http:", "https:", "javascript:") for s in sources if directive != "img-src"), (
            what,
            directive,
        )


async def test_every_html_response_has_a_strict_csp_nosniff_and_a_referrer_policy(
    client: AsyncTestClient[Litestar], auth: dict[str, str], categories: Any
) -> None:
    item_id = (await client.post(API, json=commentary(), headers=auth)).json()["id"]
    pages = ["/", f"/commentaries/{item_id}", "/embed", f"/embed?id={item_id}", "/embed?theme=dark&limit=3"]
    for path in pages:
        assert_strict_html_headers(await client.get(path), path)
    for path in (
        "/feed.rss",
        "/feed.atom",
        "/categories/regional-security/feed.rss",
        "/en/feed.atom",
        "/feed.rss?limit=1",
    ):
        assert_strict_html_headers(await client.get(path, headers=BROWSER), f"{path} as a page")
        # Conditional and compressed variants of the page keep the headers.
        r = await client.get(path, headers={**BROWSER, "Accept-Encoding": "br"})
        assert_strict_html_headers(r, f"{path} as a brotli page")
    # Pages may never be framed by others; the embed views may (frame-ancestors * by default).
    assert csp_directives((await client.get("/")).headers["content-security-policy"])["frame-ancestors"] == ["'none'"]
    assert csp_directives((await client.get(f"/commentaries/{item_id}")).headers["content-security-policy"])[
        "frame-ancestors"
    ] == ["'none'"]


async def test_every_other_response_has_nosniff(
    client: AsyncTestClient[Litestar], auth: dict[str, str], categories: Any
) -> None:
    created = await client.post(API, json=commentary(), headers=auth)
    item_id = created.json()["id"]
    responses = {
        "201 write": created,
        "list": await client.get(API),
        "item": await client.get(f"{API}/{item_id}"),
        "categories": await client.get("/api/v1/categories"),
        "tags": await client.get("/api/v1/tags"),
        "authors": await client.get("/api/v1/authors"),
        "changes": await client.get("/api/v1/changes"),
        "oembed": await client.get(f"/oembed?url={quote(f'{PUBLIC_URL}/commentaries/{item_id}', safe='')}"),
        "openapi": await client.get("/schema/openapi.json"),
        "healthz": await client.get("/healthz"),
        "rss": await client.get("/feed.rss"),
        "atom": await client.get("/feed.atom"),
        "json feed": await client.get("/feed.json"),
        "opml": await client.get("/feeds.opml"),
        "xsl": await client.get("/feed.xsl"),
        "icon": await client.get("/icon.svg"),
        "embed.js": await client.get("/embed.js"),
        "304": await client.get(
            "/feed.atom", headers={"If-None-Match": (await client.get("/feed.atom")).headers["etag"]}
        ),
        "400": await client.get(f"{API}?limit=0"),
        "401": await client.post(API, json=commentary()),
        "404": await client.get(f"{API}/01ARZ3NDEKTSV4RRFFQ69G5FAV"),
        "404 route": await client.get("/no/such/route"),
        "405": await client.patch("/feed.atom"),
        "413": await client.post(API, content=b"x" * 1_100_000, headers={**auth, "Content-Type": "application/json"}),
        "415": await client.post(API, content=b"{}", headers={**auth, "Content-Type": "text/plain"}),
        "428": await client.put(f"{API}/{item_id}", json=commentary(), headers=auth),
        "HEAD": await client.head("/feed.json"),
    }
    assert responses["304"].status_code == 304
    for what, r in responses.items():
        assert r.headers.get("x-content-type-options") == "nosniff", (what, r.status_code, dict(r.headers))
    for what in ("list", "item", "categories", "changes", "400", "401", "404", "413", "415", "428"):
        assert responses[what].headers["content-type"].startswith("application/json"), what


# --- CORS -----------------------------------------------------------------------------------

ORIGIN = "https://partner.example"


async def test_cors_grants_reads_to_any_origin_without_credentials(
    client: AsyncTestClient[Litestar], auth: dict[str, str], categories: Any
) -> None:
    item_id = (await client.post(API, json=commentary(), headers=auth)).json()["id"]
    for path in (
        API,
        f"{API}/{item_id}",
        "/api/v1/categories",
        "/api/v1/changes",
        "/feed.json",
        "/feed.atom",
        "/oembed?url=" + quote(f"{PUBLIC_URL}/commentaries/{item_id}", safe=""),
        "/embed.js",
    ):
        for method in ("GET", "HEAD"):
            r = await client.request(method, path, headers={"Origin": ORIGIN})
            assert r.status_code == 200, path
            assert r.headers["access-control-allow-origin"] == "*", path
            assert "access-control-allow-credentials" not in r.headers, path
    # A preflight for a conditional GET is granted, without credentials.
    r = await client.options(API, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET",
                                           "Access-Control-Request-Headers": "if-none-match"})
    assert r.status_code in (200, 204)
    assert r.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in r.headers


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_a_preflight_for_a_write_grants_nothing(client: AsyncTestClient[Litestar], method: str) -> None:
    for path in (API, f"{API}/01ARZ3NDEKTSV4RRFFQ69G5FAV", "/api/v1/categories/economy"):
        r = await client.options(path, headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type, if-match",
        })
        granted_methods = r.headers.get("access-control-allow-methods", "")
        granted = r.status_code < 400 and "access-control-allow-origin" in r.headers and method in granted_methods
        assert not granted, (path, r.status_code, dict(r.headers))
        assert method not in granted_methods
        assert "access-control-allow-credentials" not in r.headers


async def test_a_get_preflight_asking_to_send_a_token_is_refused(client: AsyncTestClient[Litestar]) -> None:
    r = await client.options(API, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET",
                                           "Access-Control-Request-Headers": "authorization"})
    assert r.status_code >= 400 or "authorization" not in r.headers.get("access-control-allow-headers", "").lower()


async def test_answers_to_writes_carry_no_cors_grant(
    client: AsyncTestClient[Litestar], auth: dict[str, str], categories: Any
) -> None:
    """A write sent cross-origin anyway (a form, or a script without a preflight) gets an
    answer the sending page may not read: no Access-Control-* headers at all."""
    created = await client.post(API, json=commentary(), headers={**auth, "Origin": ORIGIN})
    item_id = created.json()["id"]
    answers = [
        created,
        await client.post(API, json=commentary(), headers={"Origin": ORIGIN}),  # 401
        await client.post(
            API, content=b"a=b", headers={"Origin": ORIGIN, "Content-Type": "application/x-www-form-urlencoded", **auth}
        ),
        await client.patch(
            f"{API}/{item_id}", json={"trend": "improved"}, headers={**auth, "Origin": ORIGIN, "If-Match": "*"}
        ),
        await client.delete(f"{API}/{item_id}", headers={**auth, "Origin": ORIGIN, "If-Match": "*"}),
        await client.put(
            "/api/v1/categories/economy",
            json={"names": {"en": "E"}},
            headers={**auth, "Origin": ORIGIN, "Cookie": "a=b"},
        ),
    ]
    assert [a.status_code for a in answers] == [201, 401, 415, 200, 204, 200]
    for a in answers:
        assert not [h for h in a.headers if h.lower().startswith("access-control-")], dict(a.headers)


# --- nothing loaded from elsewhere --------------------------------------------------------

OTHER_API_UIS = ["/schema/redoc", "/schema/elements", "/schema/rapidoc", "/schema/scalar", "/schema/stoplight"]


async def test_the_api_reference_loads_its_scripts_only_from_this_server(
    client: AsyncTestClient[Litestar], subtests: Any
) -> None:
    # Litestar's UIs load unpinned scripts from CDNs, on the origin where editors paste
    # tokens: the one UI served is Swagger UI with the files of the installed package.
    for path in OTHER_API_UIS:
        with subtests.test(path):
            r = await client.get(path)
            assert r.status_code == 404, (path, r.text[:200])
            assert "<script" not in r.text
    for path in ("/schema", "/schema/swagger"):
        with subtests.test(path):
            r = await client.get(path)
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
            loaded = re.findall(r"""<(?:script|link)\b[^>]*?(?:src|href)=["']([^"']+)""", r.text)
            assert sorted(loaded) == [
                "/icon.svg",
                "/schema/assets/swagger-ui-bundle.js",
                "/schema/assets/swagger-ui-standalone-preset.js",
                "/schema/assets/swagger-ui.css",
            ]
            for url in loaded:
                assert (await client.get(url)).status_code == 200, url
    for path in ("/schema/openapi.json", "/schema/openapi.yaml"):
        with subtests.test(path):
            r = await client.get(path)
            assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.oai.openapi")
            assert "<script" not in r.text
    assert (await client.get("/schema/openapi.json")).json()["openapi"].startswith("3.")
    for path in ("/schema/assets/index.css", "/schema/assets/..%2Fcore.py", "/schema/assets/swagger-editor.js"):
        assert (await client.get(path)).status_code == 404, path


async def test_no_page_loads_a_script_or_style_from_another_origin(
    client: AsyncTestClient[Litestar], auth: dict[str, str], categories: Any, subtests: Any
) -> None:
    item_id = (await client.post(API, json=commentary(), headers=auth)).json()["id"]
    for path, headers in every_resource(item_id):
        with subtests.test(path, **headers):
            r = await client.get(path, headers=headers)
            assert r.status_code == 200, (path, r.text[:200])
            html = r.headers["content-type"].startswith(("text/html", "application/xhtml"))
            for tag in re.findall(r"<(?:script|link)\b[^>]*>", r.text if html else "", flags=re.IGNORECASE):
                for url in re.findall(
                    r"""(?:src|href)\s*=\s*["']?((?:https?:)?//[^"'\s>]+)""", tag, flags=re.IGNORECASE
                ):
                    loaded = not tag.lower().startswith("<link") or re.search(
                        r"rel\s*=\s*[\"']?(stylesheet|preload|modulepreload|icon)", tag, re.IGNORECASE
                    )
                    assert not loaded or url.startswith(PUBLIC_URL), (path, tag)
            # Where a page may take code and styles from: never from another origin.
            for directive in filter(str.strip, r.headers.get("content-security-policy", "").split(";")):
                name, *sources = directive.split()
                if name in (
                    "default-src",
                    "script-src",
                    "script-src-elem",
                    "style-src",
                    "style-src-elem",
                    "connect-src",
                ):
                    assert all(source.startswith("'") or source == "data:" for source in sources), (path, directive)
