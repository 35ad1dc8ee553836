"""Render once, reuse (feedsvc.feeds.fragments): a document assembled from items rendered
for other documents is, byte for byte, the document the renderers write in one go.

Every case renders through one Fragments cache several views in turn (other orders,
subsets, other languages and titles, archive documents, changed items) and compares each
result with ``render_rss`` / ``render_atom`` / ``render_jsonfeed`` called directly.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from datetime import timedelta

import msgspec
import pytest

from feedsvc.feeds.fragments import Fragments
from feedsvc.model import Category, Commentary, Translation
from tests.test_render import ALL, RENDERERS, border_talks, feed_view

FORMATS = ["rss", "atom", "json"]


def related_for(items: Sequence[Commentary]) -> dict[str, list[Translation]]:
    """A related commentary for some items (JSON Feed lists them), the same whatever the list."""
    return {
        c.id: [Translation(lang="en", id="01RELATED" + c.id[9:], slug="rel", title=f"Related to {c.title[:20]}",
                           url=f"https://feeds.example.org/commentaries/{c.id}")]
        for c in items
        if ord(c.id[-1]) % 2 == 0
    }


def direct(
    fmt: str, view_changes: dict[str, object], items: Sequence[Commentary], related: dict[str, list[Translation]]
) -> bytes:
    view = feed_view(fmt, **view_changes)
    if fmt == "json":
        from feedsvc.render.jsonfeed import render_jsonfeed

        return render_jsonfeed(view, items, related)
    return RENDERERS[fmt](view, items)


def check(cache: Fragments, fmt: str, items: Sequence[Commentary], **view_changes: object) -> bytes:
    related = related_for(items)
    got = cache.render(fmt, feed_view(fmt, **view_changes), items, related if fmt == "json" else None)  # type: ignore[arg-type]
    assert got == direct(fmt, view_changes, items, related if fmt == "json" else {})
    return got


@pytest.mark.parametrize("fmt", FORMATS)
def test_documents_from_reused_items_are_the_renderers_documents(fmt: str) -> None:
    cache = Fragments()
    check(cache, fmt, ALL)  # every item new
    rendered = cache.stats.rendered
    assert rendered == len(ALL)
    for items in itertools.permutations(ALL[:4], 3):  # every item known
        check(cache, fmt, list(items))
    assert cache.stats.rendered == rendered
    check(cache, fmt, [])
    check(cache, fmt, ALL[:1])


@pytest.mark.parametrize("fmt", FORMATS)
def test_what_the_view_decides_is_part_of_the_key(fmt: str) -> None:
    cache = Fragments()
    check(cache, fmt, ALL)
    check(cache, fmt, ALL, lang="be")  # dc:language, xml:lang and category labels differ
    check(cache, fmt, ALL, lang=None)
    check(cache, fmt, ALL, title="")  # Atom's fallback author is the feed title
    check(cache, fmt, ALL, base_url="https://other.example.org")
    check(cache, fmt, ALL, tag_authority="other.example.org")
    check(
        cache, fmt, ALL, categories={"regional-security": Category(slug="regional-security", names={"en": "Renamed"})}
    )
    check(cache, fmt, ALL, is_archive=True, current="https://feeds.example.org/feed", prev_archive=None)
    check(cache, fmt, ALL, updated=ALL[0].updated_at + timedelta(days=400))  # the head's updated time


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_changed_item_is_rendered_again(fmt: str) -> None:
    cache = Fragments()
    original = border_talks()
    check(cache, fmt, [original, *ALL[1:]])
    newer = msgspec.structs.replace(
        original,
        title="Talks collapse",
        version=original.version + 1,
        updated_at=original.updated_at + timedelta(hours=1),
    )
    check(cache, fmt, [newer, *ALL[1:]])
    retitled = msgspec.structs.replace(
        original, translations=[msgspec.structs.replace(t, title="A new title") for t in original.translations]
    )
    check(cache, fmt, [retitled, *ALL[1:]])


@pytest.mark.parametrize("fmt", FORMATS)
def test_random_mixes_of_known_and_new_items(fmt: str) -> None:
    rng = random.Random(6)
    pool = [
        msgspec.structs.replace(
            item, id=f"{item.id[:-2]}{n:02d}", version=n, updated_at=item.updated_at + timedelta(minutes=n)
        )
        for n in range(12)
        for item in [ALL[n % len(ALL)]]
    ]
    cache = Fragments(max_bytes=60_000)  # small: evictions while documents are assembled
    for _ in range(25):
        check(cache, fmt, rng.sample(pool, rng.randint(0, len(pool))), lang=rng.choice(["en", "be", None]))
    assert cache.bytes <= 60_000 + max(len(b) for b in [direct(fmt, {}, pool, related_for(pool))])


def test_the_cache_stays_within_its_bound() -> None:
    cache = Fragments(max_bytes=20_000)
    for fmt in FORMATS:
        check(cache, fmt, ALL)
    assert cache.bytes <= 20_000
    assert len(cache) > 0
