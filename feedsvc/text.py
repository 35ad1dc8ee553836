"""Pure text functions: sanitising HTML, rendering Markdown, slugs, summaries, XML safety.

Nothing here touches storage or HTTP; the service applies these on write, the renderers on
output.
"""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser
from urllib.parse import urljoin

import nh3
from markdown_it import MarkdownIt
from slugify import slugify as _slugify

# The allow-list: structure and inline markup an article needs, nothing that runs or styles.
ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "dl", "dt",
    "em", "figcaption", "figure", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "li",
    "mark", "ol", "p", "pre", "q", "s", "small", "strong", "sub", "sup", "table", "tbody", "td",
    "tfoot", "th", "thead", "tr", "u", "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title", "hreflang"},
    "abbr": {"title"},
    "blockquote": {"cite"},
    "q": {"cite"},
    "del": {"cite"},
    "ins": {"cite"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "ol": {"start"},
    # Direction belongs in markup, where it ends with its element (raw controls are removed).
    "*": {"dir"},
}
_DIRECTIONS = frozenset({"ltr", "rtl", "auto"})
URL_SCHEMES = {"http", "https", "mailto"}

# XML 1.0 forbids these code points anywhere in a document; feeds must never carry them.
_XML_INVALID = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SPACES = re.compile(r"\s+")
# A start tag as the sanitiser writes it: text never holds a raw "<" (it is "&lt;"), and
# attribute values are always double-quoted with '"' escaped, so this matches tags only.
_START_TAG = re.compile(r'<[a-zA-Z][a-zA-Z0-9]*(?:\s+[^\s"\'>/=]+(?:="[^"]*")?)*\s*/?>')
_URL_ATTR = re.compile(r'(\s(?:href|src|cite)=")([^"]*)(")')

_markdown = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def strip_invalid_xml(text: str) -> str:
    """Remove characters XML 1.0 cannot carry (NUL, most C0 controls, U+FFFE/U+FFFF)."""
    return _XML_INVALID.sub("", text)


# Bidirectional embeddings, overrides and isolates (and their terminators). Each opens a
# state that runs to the end of the paragraph unless closed, so an override in a title or
# a name reverses what a page or feed reader shows after it ("txt.exe" from "exe.txt") or
# spoofs an author. The marks U+200E, U+200F and U+061C stay: they open no state, only set
# the direction of the neutral characters next to them, and right-to-left titles need
# them to place their punctuation.
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


def strip_bidi_controls(text: str) -> str:
    """Remove bidirectional embedding, override and isolate controls (U+202A-U+202E,
    U+2066-U+2069); direction marks (U+200E, U+200F, U+061C) stay."""
    return _BIDI_CONTROLS.sub("", text)


def clean_line(text: str) -> str:
    """Plain text for one-line fields: XML-safe, without bidi controls, whitespace runs
    collapsed, trimmed. Every single-line field goes through here on write."""
    return _SPACES.sub(" ", strip_bidi_controls(strip_invalid_xml(text))).strip()


# What a browser ignores when it reads a URL's scheme: C0 controls and spaces (and it drops
# tabs and newlines anywhere), so "java\tscript:" and " javascript:" are still scripts.
_URL_IGNORED = re.compile(r"[\x00-\x20\x7f]")
_URL_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):")


def url_allowed(value: str) -> bool:
    """Whether a URL attribute's value is relative or has a scheme in URL_SCHEMES."""
    match = _URL_SCHEME.match(_URL_IGNORED.sub("", value).lower())
    return match is None or match.group(1) in URL_SCHEMES


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    # nh3 checks the scheme of href and src only; `cite` (blockquote, q, del, ins) takes a
    # URL too and kept "javascript:…" (issue 7), so every URL attribute is checked here.
    if attribute in ("href", "src", "cite") and not url_allowed(value):
        return None
    if attribute == "dir" and value.strip().lower() not in _DIRECTIONS:
        return None
    return value


def sanitize_html(html: str) -> str:
    """Reduce HTML to the allow-list. Idempotent: sanitising the result changes nothing."""
    cleaned = nh3.clean(
        strip_invalid_xml(html),
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=_filter_attribute,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
    )
    # Character references decode to characters XML forbids ("&#x1;" becomes U+0001), so
    # the output is made XML-safe again; that also keeps sanitising idempotent. Raw bidi
    # controls go too: `dir` says the same and ends with its element.
    return strip_bidi_controls(strip_invalid_xml(cleaned)).strip()


def render_markdown(source: str) -> str:
    """Markdown to sanitised HTML (raw HTML inside the Markdown goes through the allow-list)."""
    return sanitize_html(markdown_to_html(source))


def markdown_to_html(source: str) -> str:
    """Markdown to HTML as markdown-it writes it, raw HTML included: not yet sanitised."""
    html: str = _markdown.render(strip_invalid_xml(source))
    return html


def absolutize_urls(html: str, page_url: str) -> str:
    """Resolve relative ``href``/``src``/``cite`` values in tags against ``page_url``, the
    page the HTML is shown on (``/about`` → the site's, ``#notes`` → the page's own).

    Works on sanitiser output; text that merely looks like an attribute is left alone.
    """
    if ' href="' not in html and ' src="' not in html and ' cite="' not in html:
        return html
    if _urls_absolute(html):
        # Every URL attribute already absolute (links in bodies mostly are): nothing to
        # change, found in one pass instead of a callback per tag (a third of a list page's
        # CPU). Exact: this scan meets every attribute the tag-by-tag one does, unless a
        # value runs from text into a tag, and such a value holds a "<" (text never does).
        return html
    return _absolutize_tags(html, page_url)


_URL_NAMES = ("href", "src", "cite")


def _urls_absolute(html: str) -> bool:
    """Whether every match of ``_URL_ATTR`` in ``html`` has an absolute value without "<":
    ``all(...)`` over ``_URL_ATTR.finditer(html)``, found by ``str.find`` on '="' (the
    regular expression tries every whitespace character: six times slower)."""
    end = 0  # where the last match ended: finditer's matches do not overlap
    at = html.find('="')
    while at != -1:
        for name in _URL_NAMES:
            start = at - len(name) - 1
            if start >= end and html.startswith(name, at - len(name)) and html[start].isspace():
                close = html.find('"', at + 2)
                if close == -1:
                    return True  # no match here nor further on
                value = html[at + 2 : close]
                if not _ABSOLUTE.match(value) or "<" in value:
                    return False
                end = close + 1
                break
        at = html.find('="', max(at + 2, end))
    return True


def _absolutize_tags(html: str, page_url: str) -> str:
    """``absolutize_urls`` tag by tag: every start tag's URL attributes resolved."""

    def fix_tag(tag: re.Match[str]) -> str:
        return _URL_ATTR.sub(lambda m: m.group(1) + _absolute(m.group(2), page_url) + m.group(3), tag.group(0))

    return _START_TAG.sub(fix_tag, html)


_ABSOLUTE = re.compile("https?://|mailto:")
"""What ``_absolute`` leaves alone."""


def _absolute(url: str, page_url: str) -> str:
    if url.startswith(("http://", "https://", "mailto:")):
        return url
    return urljoin(page_url, url.replace("&amp;", "&")).replace("&", "&amp;")


def absolute_url(url: str, base: str) -> str:
    """An absolute URL for a value that may be a root-relative path like ``/media/a.svg``."""
    return url if url.startswith(("http://", "https://")) else urljoin(base + "/", url)


class _TextExtractor(HTMLParser):
    # Every tag that ends a run of words where a browser would: without it, text taken
    # from "<td>a</td><td>b</td>" or "<p>a<br>b</p>" glues the words ("ab").
    BLOCKS: frozenset[str] = frozenset({
        "p", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "tr", "td", "th", "pre",
        "figure", "figcaption", "caption", "ul", "ol", "dl", "dt", "dd", "table", "hr", "div", "section",
    })

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.paragraphs: list[str] = []
        self._current: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BLOCKS:
            self.parts.append("\n")
            if self._current is not None:
                self._current.append(" ")
        if tag == "p":
            self._current = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "p" and self._current is not None:
            text = clean_line("".join(self._current))
            if text:
                self.paragraphs.append(text)
            self._current = None

    def handle_data(self, data: str) -> None:
        self.parts.append(data)
        if self._current is not None:
            self._current.append(data)


# Markup as the sanitiser writes it, one capture per match: the name of a start tag (None
# for an end tag). ASCII whitespace and names only, attribute values double-quoted: on such
# tags HTMLParser ends a tag exactly where this does (see _fast_text).
_MARKUP = re.compile(
    r'<(?:([a-zA-Z][a-zA-Z0-9]*)(?:[ \t\n\r\f]+[a-zA-Z_:][-a-zA-Z0-9_:.]*(?:="[^"]*")?)*[ \t\n\r\f]*/?'
    r"|/[a-zA-Z][a-zA-Z0-9]*[ \t\n\r\f]*)>"
)


def html_to_text(html: str) -> str:
    """The readable text of an HTML fragment, blocks separated by newlines."""
    text = _fast_text(html)
    if text is None:
        parser = _TextExtractor()
        parser.feed(html)
        parser.close()
        text = "".join(parser.parts)
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


def _fast_text(html: str) -> str | None:
    """What ``_TextExtractor`` collects in ``parts``, joined, for HTML made only of plain
    tags of the allow-list and text without "<" (sanitiser output: the full-text index
    gets every stored body through here); None for anything else, left to HTMLParser.

    About ten times faster than HTMLParser, which was most of the cost of writing a
    commentary. Equal by construction: HTMLParser (convert_charrefs) unescapes each run
    of text between two tags as a whole, as here; a start tag of BLOCKS adds a newline
    (self-closing ones too); end tags add nothing. Tests compare the two on many inputs.
    """
    pieces = _MARKUP.split(html)
    out: list[str] = []
    for i, piece in enumerate(pieces):
        if i % 2 == 0:
            if "<" in piece:
                return None
            out.append(unescape(piece) if "&" in piece else piece)
        elif piece is not None:
            name = piece.lower()
            if name not in ALLOWED_TAGS:  # e.g. <script>: HTMLParser reads its content raw
                return None
            if name in _TextExtractor.BLOCKS:
                out.append("\n")
    return "".join(out)


def derive_summary(html: str, limit: int = 1000) -> str:
    """The first paragraph of a body as plain text, cut at a word boundary within ``limit``."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    text = parser.paragraphs[0] if parser.paragraphs else clean_line(html_to_text(html))
    return truncate(text, limit)


def truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:.-–—") + "…"


def slugify(title: str) -> str:
    """A URL slug from a title, Cyrillic transliterated; ``commentary`` if nothing remains."""
    # The backend named: with "auto", python-slugify tries to import `unidecode` (not
    # installed) for every non-ASCII title, and a failed import is not cached: that search
    # of sys.path was most of the cost of a Cyrillic slug. text-unidecode is what "auto"
    # falls back to, so slugs are unchanged.
    slug = _slugify(title, max_length=120, word_boundary=True, backend="text-unidecode")
    return slug or "commentary"
