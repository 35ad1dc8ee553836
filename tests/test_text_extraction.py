"""Fast paths over sanitised bodies that must change nothing but speed.

``html_to_text`` (the text the full-text index gets) reads sanitiser output without
HTMLParser and must give exactly what HTMLParser gives: the words indexed, and so every
search result, depend on it. ``absolutize_urls`` returns a body whose links are all absolute
after one scan, and must give what rewriting it tag by tag gives. Both are checked on the
sample data, on benchmark bodies, on hand-picked edge cases and on random markup, raw and
sanitised."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.generate import generate
from feedsvc.text import (
    _ABSOLUTE,
    _URL_ATTR,
    _absolutize_tags,
    _fast_text,
    _TextExtractor,
    _urls_absolute,
    absolutize_urls,
    derive_summary,
    html_to_text,
    render_markdown,
    sanitize_html,
)

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "commentaries.jsonl"


def parsed_text(html: str) -> str:
    """html_to_text as HTMLParser alone computes it: the reference."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return "\n".join(line.strip() for line in "".join(parser.parts).splitlines() if line.strip())


def sample_bodies() -> list[str]:
    bodies = []
    for line in SAMPLE.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record.get("body_html"):
            bodies.append(sanitize_html(record["body_html"]))
        elif record.get("body_markdown"):
            bodies.append(render_markdown(record["body_markdown"]))
    return bodies


def test_sample_bodies_take_the_fast_path_and_give_the_parsers_text() -> None:
    bodies = sample_bodies()
    assert bodies
    for body in bodies:
        assert _fast_text(body) is not None
        assert html_to_text(body) == parsed_text(body)


def test_benchmark_bodies_give_the_parsers_text() -> None:
    for record in generate(300, seed=7):
        body = sanitize_html(record["body_html"])
        assert _fast_text(body) is not None
        assert html_to_text(body) == parsed_text(body)


EDGE_CASES = [
    "<p>a &amp; b &lt;c&gt; &nbsp;d&#x41;&#66;</p>",
    "<p>&am<b>p;</b> split entity</p>",  # each run of text is unescaped on its own
    "<p>tail with a dangling &amp",
    "<p>x</p><br/><br /><hr>y<h2>Title</h2><ul><li>one</li><li>two</li></ul>",
    '<a href="https://e.org/?a=1&amp;b=2" title="x > y">link</a> after',
    '</p title="a>b">text',  # an end tag ends at its first ">"
    "<p\u00a0class=x>nbsp is not a separator for HTMLParser</p>",
    "<script>var a = '<p>';</script><p>after</p>",
    "<style>p { color: red }</style>text",
    "<!-- a comment --><p>text</p>",
    "a < b and c > d",
    "<P>Upper case</P><BR>",
    "<p>\u2028line separator\u2029and\x0bvertical tab\x0cform feed\x1cfile</p>",
    "<blockquote><p>quoted</p></blockquote><pre>  keep\n  lines</pre>",
    "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>",
    "<p>unterminated <b",
    "<custom-tag>x</custom-tag><p>y",
    "",
    "   \n  ",
]


@pytest.mark.parametrize("html", EDGE_CASES)
def test_edge_cases_give_the_parsers_text(html: str) -> None:
    assert html_to_text(html) == parsed_text(html)
    clean = sanitize_html(html)
    assert html_to_text(clean) == parsed_text(clean)


FRAGMENTS = st.sampled_from([
    "<p>", "</p>", "<br>", "<br/>", "<li>", "</li>", "<h2>", "<b>", "</b>", "<script>", "</script>",
    '<a href="x">', "</a>", '<a title="a>b">', "<!--", "-->", "<", ">", "&", "&amp;", "&lt;", "&#65;",
    "&nbsp;", "&am", "p;", ";", " ", "\n", "\r\n", "\u00a0", "\u2028", "word", "слова", "<P CLASS=x>",
    "</p x>", "<pre>", "<blockquote>", "<tr>", "<img src=\"i.png\" alt=\"i\"/>", "<x-y>",
])


@settings(max_examples=400, deadline=None)
@given(st.lists(FRAGMENTS | st.text(max_size=5), max_size=30))
def test_random_markup_gives_the_parsers_text(parts: list[str]) -> None:
    html = "".join(parts)
    assert html_to_text(html) == parsed_text(html)
    clean = sanitize_html(html)
    assert _fast_text(clean) is not None
    assert html_to_text(clean) == parsed_text(clean)


# --- absolute links: one scan when every URL is already absolute ---------------------------

PAGE = "https://feeds.example.org/commentaries/01JQ0000000000000000000001"

LINK_CASES = [
    '<p><a href="https://e.org/x">abs</a> and <a href="/about">root</a></p>',
    '<p><a href="https://e.org/x">only absolute</a> <img src="http://e.org/i.png" alt="i"></p>',
    '<blockquote cite="mailto:a@e.org"><p>q</p></blockquote>',
    '<p>text says href="https://e.org/" <a href="rel">rel</a></p>',  # text that looks like an attribute
    '<p>text href="http://x <a href="rel">link</a></p>',  # a text value running into a tag
    '<a title=" href=" href="rel">x</a>',
    '<a title="a>b" href="#notes">x</a>',
    '<a href="HTTPS://E.ORG/">upper-case scheme</a>',
    '<a href="https://e.org/?a=1&amp;b=2">query</a><a href="?a=1&amp;b=2">relative query</a>',
    "<p>no links at all</p>",
]


@pytest.mark.parametrize("html", LINK_CASES)
def test_absolute_links_match_the_tag_by_tag_rewrite(html: str) -> None:
    assert absolutize_urls(html, PAGE) == _absolutize_tags(html, PAGE)
    clean = sanitize_html(html)
    assert absolutize_urls(clean, PAGE) == _absolutize_tags(clean, PAGE)


def test_sample_and_benchmark_bodies_keep_their_links() -> None:
    bodies = sample_bodies() + [sanitize_html(r["body_html"]) for r in generate(200, seed=11)]
    for body in bodies:
        assert absolutize_urls(body, PAGE) == _absolutize_tags(body, PAGE)


LINK_FRAGMENTS = FRAGMENTS | st.sampled_from([
    ' href="', ' src="', ' cite="', '"', "https://e.org/", "/rel", "mailto:x@e.org", '<a href="/r">',
    '<a href="https://e.org/a">', '<img src="i.png">', '<blockquote cite="http://e.org/">', "<a title=\"",
])


@settings(max_examples=400, deadline=None)
@given(st.lists(LINK_FRAGMENTS | st.text(max_size=4), max_size=30))
def test_random_markup_keeps_the_tag_by_tag_links(parts: list[str]) -> None:
    html = "".join(parts)
    assert absolutize_urls(html, PAGE) == _absolutize_tags(html, PAGE)
    clean = sanitize_html(html)
    assert absolutize_urls(clean, PAGE) == _absolutize_tags(clean, PAGE)


@settings(max_examples=600, deadline=None)
@given(
    st.lists(
        LINK_FRAGMENTS | st.sampled_from(["href", "src", "cite", "=", "\t", "\u2003", "x"]) | st.text(max_size=3),
        max_size=40,
    )
)
def test_the_quick_link_scan_sees_what_the_regular_expression_sees(parts: list[str]) -> None:
    html = "".join(parts)
    expected = all(_ABSOLUTE.match(m.group(2)) and "<" not in m.group(2) for m in _URL_ATTR.finditer(html))
    assert _urls_absolute(html) == expected


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ("<p>Line one<br>Line two</p>", "Line one\nLine two"),
        ("<table><tr><td>cell</td><td>next</td></tr></table>", "cell\nnext"),
        ("<p>tally: 1</p><ul><li><p>Autumn</p></li></ul>", "tally: 1\nAutumn"),
        ("<dl><dt>term</dt><dd>meaning</dd></dl>", "term\nmeaning"),
    ],
)
def test_block_boundaries_keep_words_apart(body: str, text: str) -> None:
    assert html_to_text(body) == text
    assert _fast_text(body) is not None  # the fast path agrees (checked above on many inputs)


def test_a_derived_summary_keeps_the_words_of_a_broken_line_apart() -> None:
    assert derive_summary("<p>Line one<br>Line two</p><p>More.</p>") == "Line one Line two"
