"""The weekly digest feeds (issue 9): one item per digest, in RSS, Atom and JSON Feed.

A digest becomes the same ItemParts a commentary becomes, so the three renderers write it
as they write commentaries:

* ``guid``/``id``: ``tag:{tag_authority},{period start}:digest/{lang}``, stable per period
  and language whatever happens to the commentaries in it;
* ``title``: "Weekly digest, 2 – 8 March 2026" in the digest's language;
* ``link``/``url``: the digest's readable page;
* content: the trend tally, then each commentary linked, with its trend and summary;
  summary: the tally alone;
* published: the digest's publication, the set hour of the day after its period ended
  (feedsvc.digest.Schedule; never earlier); updated: the digest's ``updated_at`` (it moves
  when a commentary in it changes, leaves or joins);
* author: the publication (its name, its site): mailers such as rss2email build the From
  line of the mail from it, and the commentaries' own authors are several per digest;
* ``commentary:period`` (JSON Feed: ``_commentary.period``) with the period's first day
  and the latest last day among its commentaries. No category or trend: a digest has
  several of each.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape
from typing import Literal

from feedsvc.digest import Digest, tally_text, trend_text
from feedsvc.render.atom import render_atom_parts
from feedsvc.render.feedview import AuthorParts, FeedView, ItemParts, aware, safe_url
from feedsvc.render.jsonfeed import render_jsonfeed_parts
from feedsvc.render.rss import render_rss_parts
from feedsvc.text import strip_invalid_xml


def _line(text: str) -> str:
    return " ".join(strip_invalid_xml(text).split())


def digest_guid(authority: str, digest: Digest) -> str:
    """The permanent id of a digest in feeds (RFC 4151 tag URI), per period and language."""
    return f"tag:{authority},{digest.period.start.isoformat()}:digest/{digest.lang}"


def digest_html(digest: Digest) -> str:
    """The item's content: the tally, then each commentary linked, with trend and summary."""
    rows = []
    for entry in digest.commentaries:
        title = escape(_line(entry.title) or entry.id, quote=False)
        marker = f" — {escape(trend_text(entry.trend, digest.lang), quote=False)}" if entry.trend else ""
        summary = escape(_line(entry.summary), quote=False)
        rows.append(
            f'<li><p><a href="{escape(safe_url(_line(entry.url)))}">{title}</a>{marker}</p>'
            + (f"\n<p>{summary}</p>" if summary else "")
            + "</li>"
        )
    # Blocks on lines of their own: readers that make a teaser by stripping tags (an npm
    # parser did: "no trend: 1Autumn Rotation…") keep the words apart.
    rows_html = "\n".join(rows)
    return f"<p>{escape(tally_text(digest.trends, digest.lang), quote=False)}</p>\n<ul>\n{rows_html}\n</ul>"


def digest_parts(view: FeedView, digest: Digest, publication: str) -> ItemParts:
    """A digest reduced to what the feed renderers write for an item; ``publication`` is
    the publisher's name, the digest's author."""
    return ItemParts(
        guid=digest_guid(view.tag_authority, digest),
        title=_line(digest.title),
        url=safe_url(_line(digest.url)),
        lang=digest.lang,
        summary=tally_text(digest.trends, digest.lang),
        content_html=digest_html(digest),
        authors=(AuthorParts(name=publication, affiliation=None, url=view.base_url + "/", display=publication),),
        category_slug="",
        category_label="",
        tags=(),
        published=aware(digest.published_at),
        updated=aware(digest.updated_at),
        image=None,
        source=None,
        translations=(),
        trend=None,
        period=(digest.period.start, digest.period.end),
    )


_RENDERERS: dict[str, Callable[[FeedView, Sequence[ItemParts]], bytes]] = {
    "rss": render_rss_parts,
    "atom": render_atom_parts,
    "json": render_jsonfeed_parts,
}


def render_digest_feed(
    fmt: Literal["rss", "atom", "json"], view: FeedView, digests: Sequence[Digest], *, publication: str
) -> bytes:
    """The digest feed in ``fmt``: one item per digest, in the order given (newest first),
    each by ``publication`` (the publisher's name)."""
    return _RENDERERS[fmt](view, [digest_parts(view, d, publication) for d in digests])
