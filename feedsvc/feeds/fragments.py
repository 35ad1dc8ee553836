"""Render once, reuse: the bytes of each feed item, kept for every document that shows it.

A feed document is a head (the channel or feed element, made for its view), its items and
a tail. An item's bytes depend only on the presented commentary and on a few fields of the
view (feedsvc.render.feedview.prepare), so a new view of items shown before (another
filter, an archive page, the next document after one new commentary) needs only its head
rendered; the items are spliced in from earlier renders, byte for byte what a full render
writes (tests/test_fragments.py compares them).

RSS and Atom: the items not yet known are rendered with the head by the renderers
themselves (``only=``), in a head made for *all* the items (namespace declarations and the
document's updated time depend on them), then cut out at their start tags (``<item>``,
``<entry``: text and attribute values never hold a raw ``<``). JSON Feed: each item is
encoded on its own, the document without items ends in ``"items":[]}``.

An item is known by its stored version (``id``, ``version`` and ``updated_at``: a stored
version never changes) and everything its presentation adds or the view decides: its
URL, its translations, its category's names, its related commentaries, and the view's
language, base URL, tag authority and (Atom) fallback author. The cache is an LRU bounded
in bytes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import msgspec

from feedsvc.model import Commentary, Translation
from feedsvc.render.atom import fallback_author_name, render_atom_parts
from feedsvc.render.feedview import FeedView, ItemParts, prepare, safe_view
from feedsvc.render.jsonfeed import render_jsonfeed_empty, render_jsonfeed_item
from feedsvc.render.rss import render_rss_parts

Format = Literal["rss", "atom", "json"]

# Per format: the renderer of a document for (view, head parts, only these parts), the
# bytes every item starts with, and the bytes after the last item.
_XML: dict[str, tuple[Callable[..., bytes], bytes, bytes]] = {
    "rss": (render_rss_parts, b"<item>", b"</channel></rss>"),
    "atom": (render_atom_parts, b"<entry", b"</feed>"),
}
_JSON_TAIL = b"]}"
_OVERHEAD = 400
"""Bytes an entry costs beyond its fragment (key, skeleton, dict slots): for the bound."""


class _Fragment:
    __slots__ = ("body", "skeleton")

    def __init__(self, body: bytes, skeleton: ItemParts | None) -> None:
        self.body = body
        self.skeleton = skeleton
        """The item's parts without its texts: what the head needs of it (RSS and Atom)."""


class FragmentStats:
    def __init__(self) -> None:
        self.reused = 0
        self.rendered = 0


class Fragments:
    """Rendered feed items by item and view inputs, in an LRU of at most ``max_bytes``."""

    def __init__(self, max_bytes: int = 24 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.stats = FragmentStats()
        self._lru: OrderedDict[tuple[object, ...], _Fragment] = OrderedDict()

    def __len__(self) -> int:
        return len(self._lru)

    def render(
        self,
        fmt: Format,
        view: FeedView,
        items: Sequence[Commentary],
        related: Mapping[str, Sequence[Translation]] | None = None,
    ) -> bytes:
        """What ``render_rss`` / ``render_atom`` / ``render_jsonfeed`` (with ``related``)
        return for ``view`` and ``items``, reusing the items rendered before."""
        view = safe_view(view)
        related = related or {}
        context: tuple[object, ...] = (fmt, view.base_url, view.tag_authority, view.lang)
        if fmt == "atom":
            context += (fallback_author_name(view),)
        keys = [self._key(context, view, item, related.get(item.id, ()) if fmt == "json" else ()) for item in items]
        found = [self._lru.get(key) for key in keys]
        bodies = (
            self._json(view, items, related, keys, found) if fmt == "json" else self._xml(fmt, view, items, keys, found)
        )
        if bodies is None:  # cannot happen; if it did, a full render is still right
            return _XML[fmt][0](view, [prepare(view, item) for item in items])
        head, tail, fragments = bodies
        return b"".join((head, *fragments, tail))

    def _key(
        self, context: tuple[object, ...], view: FeedView, item: Commentary, related: Sequence[Translation]
    ) -> tuple[object, ...]:
        category = view.categories.get(item.category)
        return (
            *context,
            item.id,
            item.version,
            item.updated_at,
            item.url,
            tuple((t.lang, t.id, t.slug, t.title, t.url) for t in item.translations),
            tuple(category.names.items()) if category is not None else None,
            tuple((t.lang, t.id, t.title, t.url) for t in related),
        )

    def _json(
        self,
        view: FeedView,
        items: Sequence[Commentary],
        related: Mapping[str, Sequence[Translation]],
        keys: list[tuple[object, ...]],
        found: list[_Fragment | None],
    ) -> tuple[bytes, bytes, list[bytes]]:
        empty = render_jsonfeed_empty(view)
        head = empty[: -len(_JSON_TAIL)]
        bodies: list[bytes] = []
        for n, (item, key, known) in enumerate(zip(items, keys, found, strict=True)):
            if known is None:
                body = render_jsonfeed_item(view, item, related.get(item.id, ()))
                self._store(key, _Fragment(body, None))
            else:
                body = known.body
                self._reuse(key)
            bodies.append(b"," + body if n else body)
        return head, _JSON_TAIL, bodies

    def _xml(
        self, fmt: str, view: FeedView, items: Sequence[Commentary], keys: list[tuple[object, ...]],
        found: list[_Fragment | None],
    ) -> tuple[bytes, bytes, list[bytes]] | None:
        renderer, start, tail = _XML[fmt]
        missing = [n for n, fragment in enumerate(found) if fragment is None]
        parts = {n: prepare(view, items[n]) for n in missing}
        # The head is made for all items: new ones by their parts, known ones by skeletons.
        heads = [parts[n] if f is None or f.skeleton is None else f.skeleton for n, f in enumerate(found)]
        doc = renderer(view, heads, only=[parts[n] for n in missing])
        starts = _positions(doc, start)
        if len(starts) != len(missing) or not doc.endswith(tail):
            return None
        head = doc[: starts[0]] if starts else doc[: len(doc) - len(tail)]
        ends = [*starts[1:], len(doc) - len(tail)]
        for n, known in enumerate(found):
            if known is not None:
                self._reuse(keys[n])
        bodies = [known.body if known is not None else b"" for known in found]
        # missing and starts have the same length (checked above); ends has one more entry
        # (the end of the head) when nothing is missing, which the zip leaves out.
        for n, begin, end in zip(missing, starts, ends, strict=False):
            bodies[n] = doc[begin:end]
            self._store(keys[n], _Fragment(bodies[n], _skeleton(parts[n])))
        return head, tail, bodies

    def _reuse(self, key: tuple[object, ...]) -> None:
        if key in self._lru:  # storing this document's new items may have evicted it
            self._lru.move_to_end(key)
        self.stats.reused += 1

    def _store(self, key: tuple[object, ...], fragment: _Fragment) -> None:
        self.stats.rendered += 1
        old = self._lru.pop(key, None)
        if old is not None:
            self.bytes -= len(old.body) + _OVERHEAD
        self._lru[key] = fragment
        self.bytes += len(fragment.body) + _OVERHEAD
        while self.bytes > self.max_bytes and self._lru:
            _, evicted = self._lru.popitem(last=False)
            self.bytes -= len(evicted.body) + _OVERHEAD


def _skeleton(parts: ItemParts) -> ItemParts:
    """What a document's head reads of an item (feedsvc.render.xmlfeed.new_generator,
    newest_update): everything but the bulky texts."""
    return msgspec.structs.replace(parts, summary="", content_html="")


def _positions(doc: bytes, marker: bytes) -> list[int]:
    out = []
    at = doc.find(marker)
    while at >= 0:
        if marker != b"<entry" or doc[at + 6 : at + 7] in (b">", b" "):
            out.append(at)
        at = doc.find(marker, at + 1)
    return out
