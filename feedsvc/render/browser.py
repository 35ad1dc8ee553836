"""A feed as a web page, for browsers that open a feed URL.

Browsers apply ``<?xml-stylesheet?>`` less and less (Chromium shows a removal warning), so
the HTTP layer also runs the same stylesheet here and serves the HTML to browser
navigations. One stylesheet, one look, whichever side applies it.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from xml.sax.saxutils import escape

from lxml import etree

from feedsvc.render.messages import stylesheet_words

_WORDS = re.compile(r"<!--@words-->.*?<!--words@-->", re.DOTALL)


@cache
def stylesheet() -> bytes:
    """``/feed.xsl``: ``static/feed.xsl`` with its ``word`` template written from the
    message catalogue, so a feed's page speaks the feed's language (English when the
    catalogue does not have it)."""
    source = resources.files("feedsvc.render").joinpath("static", "feed.xsl").read_text("utf-8")
    words = stylesheet_words()
    choices = []
    for key, english in words["en"].items():
        for lang, texts in words.items():
            if lang != "en":
                choices.append(f"<xsl:when test=\"$key = '{key}' and $l = '{lang}'\">{escape(texts[key])}</xsl:when>")
        choices.append(f"<xsl:when test=\"$key = '{key}'\">{escape(english)}</xsl:when>")
    template = (
        '<xsl:template name="word"><xsl:param name="key"/><xsl:choose>\n      '
        + "\n      ".join(choices)
        + "\n    </xsl:choose></xsl:template>"
    )
    return _WORDS.sub(lambda _: template, source, count=1).encode()


@cache
def _transform() -> etree.XSLT:
    # The stylesheet is ours and static; still, no network and no external entities.
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.XSLT(etree.fromstring(stylesheet(), parser), access_control=etree.XSLTAccessControl.DENY_ALL)


def feed_page(feed_xml: bytes) -> bytes:
    """The RSS or Atom document ``feed_xml`` as an HTML page (UTF-8 bytes)."""
    doc = etree.fromstring(feed_xml, etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True))
    return bytes(_transform()(doc))
