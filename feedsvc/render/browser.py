"""A feed as a web page, for browsers that open a feed URL.

Browsers apply ``<?xml-stylesheet?>`` less and less (Chromium shows a removal warning), so
the HTTP layer also runs the same stylesheet here and serves the HTML to browser
navigations. One stylesheet, one look, whichever side applies it.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from lxml import etree


@cache
def _transform() -> etree.XSLT:
    xsl = resources.files("feedsvc.render").joinpath("static", "feed.xsl").read_bytes()
    # The stylesheet is ours and static; still, no network and no external entities.
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.XSLT(etree.fromstring(xsl, parser), access_control=etree.XSLTAccessControl.DENY_ALL)


def feed_page(feed_xml: bytes) -> bytes:
    """The RSS or Atom document ``feed_xml`` as an HTML page (UTF-8 bytes)."""
    doc = etree.fromstring(feed_xml, etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True))
    return bytes(_transform()(doc))
