"""Structural limits on a commentary's body, checked in linear time before any sanitising or
rendering.

The sanitiser (html5ever inside nh3) does work per token in proportion to how deep the
tree is and how many formatting elements are open, so 88,000 unclosed ``<div>`` cost
31 s of CPU; its attribute de-duplication is quadratic in the attributes of one tag; and
markdown-it spends tens of microseconds on every link bracket and emphasis delimiter
(``"!["`` x 440,000 took 13.8 s). A real article is nowhere near these limits (the sample
articles in data/ are nested 4 deep at most, have 28 tags, 2 brackets and 26 emphasis
characters; a long, table-heavy 1 MB article has some 20,000 tags at depth 10), so they
refuse only input made to be expensive, and they make the most expensive accepted body
cost well under a second of CPU.

Pure functions: nothing here touches storage, threads or HTTP.
"""

from __future__ import annotations

import re

from feedsvc.errors import InvalidInputError

MAX_DEPTH = 100
"""Elements open at once (nesting depth, plus formatting elements still to be reopened)."""
MAX_TAGS = 100_000
"""Start and end tags in one body."""
MAX_TAG_CHARS = 4096
"""Characters in one tag, attributes included (bounds the attributes of one tag)."""
MAX_BRACKETS = 5_000
"""``[`` in one Markdown body (links, images, references)."""
MAX_DELIMITERS = 20_000
"""``*`` and ``_`` in one Markdown body (emphasis delimiters)."""

# A tag as the HTML tokenizer starts one: "<" or "</" then an ASCII letter; the name runs to
# HTML whitespace, "/" or ">". The rest runs to the ">" that ends the tag, skipping a quoted
# attribute value (a quote after "="). A value longer than any allowed tag is not skipped:
# the tag is then too long anyway, and a bounded look keeps the scan linear.
_TAG = re.compile(
    r"<(/?)([A-Za-z][^\t\n\f\r />]*)"
    rf"((?:=[\t\n\f\r ]*(?:\"[^\"]{{0,{MAX_TAG_CHARS}}}\"|'[^']{{0,{MAX_TAG_CHARS}}}')|[^>])*)>?"
)

# Elements that never hold children.
_VOID = frozenset(
    [
        "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "image", "img", "input", "keygen",
        "link", "meta", "param", "source", "track", "wbr",
    ]
)
# Formatting elements: the parser remembers them past their parent's end and reopens them
# for the next text, so an unclosed one costs work long after its block closed.
_FORMATTING = frozenset(
    ["a", "b", "big", "code", "em", "font", "i", "nobr", "s", "small", "strike", "strong", "tt", "u"]
)
# Elements whose end the parser implies when another element's end tag comes.
_IMPLIED_END = frozenset(
    ["dd", "dt", "li", "optgroup", "option", "p", "rb", "rp", "rt", "rtc", "td", "th", "tr", "tbody", "thead", "tfoot"]
)
# Start tags that close an open <p> (the parser's "close a p element"), and sibling groups
# where a start tag closes the previous sibling.
_CLOSES_P = frozenset(
    [
        "address", "article", "aside", "blockquote", "center", "details", "dialog", "dir", "div", "dl", "fieldset",
        "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hgroup", "hr", "main",
        "menu", "nav", "ol", "p", "pre", "search", "section", "summary", "table", "ul", "li", "dd", "dt",
    ]
)
# A start tag of these closes the previous sibling, found on top or under the elements the
# parser certainly pops with it (the parser's rules pop more; popping less only counts high).
_SIBLINGS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "li": (frozenset({"li"}), frozenset({"p"})),
    "dt": (frozenset({"dt", "dd"}), frozenset({"p"})),
    "dd": (frozenset({"dt", "dd"}), frozenset({"p"})),
    "td": (frozenset({"td", "th"}), frozenset({"p"})),
    "th": (frozenset({"td", "th"}), frozenset({"p"})),
    "tr": (frozenset({"tr"}), frozenset({"p", "td", "th"})),
    "option": (frozenset({"option"}), frozenset()),
}


def check_html(html: str, field: str) -> None:
    """Refuse HTML beyond the structural limits, in time linear in its length.

    The depth counted never falls below the depth the HTML parser builds: an end tag
    closes an element here only where the parser certainly closes it too (the element is
    on top, or only elements with implied ends are above it), and a start tag closes only
    what the parser's own rules close (an open ``<p>`` before a block, a previous ``<li>``).

    Raises:
        InvalidInputError: naming ``field`` and the limit exceeded (``limit``, ``max``).
    """
    _check_tag_count(html, field)
    stack: list[str] = []
    formatting = 0
    for match in _TAG.finditer(html):
        if len(match.group(0)) > MAX_TAG_CHARS:
            raise _too_much(field, "tag_chars", MAX_TAG_CHARS, "has a tag longer than that")
        name = match.group(2).lower()
        if match.group(1):
            if _end_tag(stack, name) and name in _FORMATTING:
                formatting -= 1
            continue
        if name in _VOID:
            continue
        if name in _FORMATTING:
            formatting += 1
        sibling = _SIBLINGS.get(name)
        if sibling is not None:
            _pop_to(stack, *sibling)
        if name in _CLOSES_P and stack and stack[-1] == "p":
            stack.pop()
        stack.append(name)
        if len(stack) + formatting > MAX_DEPTH:
            raise _too_much(field, "depth", MAX_DEPTH, "nests elements deeper than that")


def _end_tag(stack: list[str], name: str) -> bool:
    """Pop ``name`` when it is on top, or (not a formatting element, which the parser may
    move rather than close) under elements whose end is implied; whether it was popped."""
    if name in _FORMATTING:
        return _pop_to(stack, frozenset({name}), frozenset())
    return _pop_to(stack, frozenset({name}), _IMPLIED_END)


def _pop_to(stack: list[str], targets: frozenset[str], over: frozenset[str]) -> bool:
    """Pop the topmost element of ``targets`` if only elements of ``over`` are above it."""
    i = len(stack) - 1
    while i >= 0 and stack[i] not in targets and stack[i] in over:
        i -= 1
    if i >= 0 and stack[i] in targets:
        del stack[i:]
        return True
    return False


def _check_tag_count(html: str, field: str) -> None:
    tags = html.count("<")
    if tags > MAX_TAGS:
        # Not every "<" starts a tag: count exactly before refusing.
        tags = sum(1 for _ in _TAG.finditer(html))
        if tags > MAX_TAGS:
            raise _too_much(field, "tags", MAX_TAGS, f"has {tags} tags")


def check_markdown(source: str, field: str) -> None:
    """Refuse Markdown beyond the limits that can be checked on its source, in linear time:
    the brackets and emphasis delimiters markdown-it spends most per character on, and the
    number of tags. (Its depth is checked on the HTML it renders to, with ``check_html``,
    before that is sanitised: in the source, ``List<String>`` in a code block looks like an
    unclosed tag; markdown-it's own nesting stops at 20 levels.)

    Raises:
        InvalidInputError: naming ``field`` and the limit exceeded.
    """
    brackets = source.count("[")
    if brackets > MAX_BRACKETS:
        raise _too_much(field, "brackets", MAX_BRACKETS, f"has {brackets} '[' (links, images)")
    delimiters = source.count("*") + source.count("_")
    if delimiters > MAX_DELIMITERS:
        raise _too_much(field, "delimiters", MAX_DELIMITERS, f"has {delimiters} '*' and '_' (emphasis)")
    _check_tag_count(source, field)


def _too_much(field: str, limit: str, maximum: int, what: str) -> InvalidInputError:
    return InvalidInputError(
        f"{field} {what}: the limit is {maximum} ({limit})", field=field, limit=limit, max=maximum
    )
