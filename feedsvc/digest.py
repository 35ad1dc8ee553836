"""Weekly digests (issue 9): what the API returns for them and the rules that make them.

A digest gathers the public commentaries of one language whose ``period`` starts on the
same day. The publisher's monitoring periods are weeks ("February 28 – March 6, 2022"),
written the same way on every commentary of that week, so the period's first day names the
week: it is the digest's address (``/api/v1/digests/2022-02-28?lang=en``), and its end is
the latest ``period.end`` among the commentaries. Grouping by the exact start day, not by a
calendar week computed here, keeps whatever weeks the publisher uses (Monday–Sunday,
Saturday–Friday, …) and never moves a commentary into a week its period does not name.

One digest per period *and language*: readers subscribe per language, and a feed item is
written in one language. Drafts and scheduled commentaries are not in any digest until
they are public.

A digest is published once its week is over: at a set hour (``FEEDSVC_DIGEST_HOUR``) on the
day after its period ends, in the publisher's time zone (``FEEDSVC_TIMEZONE``); see
``Schedule``. Until then it is nowhere public, so the first time a reader or a mailer sees
it, it holds the whole week; an RSS-to-email service takes an item once, by its GUID.
Whether a digest is published is a function of the clock, not of a write: caches key on
``Schedule.ended_by`` as well as on the change sequence.

A digest's ``updated_at`` is the newest ``updated_at`` among its commentaries, or the last
time a commentary left it (deleted, moved to another period or language, unpublished) or
joined it without being edited (a scheduled one turning public), or its publication, when
that is later: the store notes the moments commentaries leave or join, since the
commentaries still in the digest do not show them.

This module sits beside ``feedsvc.model`` (it imports only that): the service builds
digests with it and the renderers label them with it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import msgspec
from msgspec import Struct

from feedsvc.model import Commentary, Period, Trend

# --- what the API returns -----------------------------------------------------------------


class DigestEntry(Struct, kw_only=True):
    """One commentary as a digest lists it."""

    id: str
    title: str
    category: str
    """The category slug."""
    trend: Trend | None = None
    url: str
    """Where to read it (the commentary's ``url``)."""
    summary: str
    published_at: datetime
    updated_at: datetime


class TrendTally(Struct, kw_only=True):
    """How many of a digest's commentaries carry each trend marker."""

    improved: int = 0
    worsened: int = 0
    unchanged: int = 0
    unmarked: int = 0
    """Commentaries without a trend."""


class Digest(Struct, kw_only=True):
    """A week's public commentaries in one language."""

    period: Period
    """``start``: the day every commentary's period starts on (the digest's address);
    ``end``: the latest end among them."""
    lang: str
    title: str
    """E.g. "Weekly digest, 2 – 8 March 2026", in the digest's language."""
    url: str
    """The digest's readable page."""
    published_at: datetime
    """When the digest was published: the set hour of the day after its period ended.
    Before then it is not public."""
    updated_at: datetime
    """When the digest last changed: it was published, or a commentary in it changed, left
    it, or joined it."""
    trends: TrendTally
    commentaries: list[DigestEntry]
    """Oldest publication first (ties by id)."""


class DigestPage(Struct):
    items: list[Digest]
    next_cursor: str | None = None


# --- when one is published ----------------------------------------------------------------


class Schedule:
    """When a period's digest is published: at ``hour`` on the day after the period's last
    day, in the publisher's time zone ``timezone`` (an IANA name)."""

    def __init__(self, timezone: str = "UTC", hour: int = 8) -> None:
        self.zone = ZoneInfo(timezone)
        self.hour = hour

    def due_at(self, end: date) -> datetime:
        """When the digest of a period ending on ``end`` is published (in UTC)."""
        return datetime.combine(end + timedelta(days=1), time(self.hour), tzinfo=self.zone).astimezone(UTC)

    def ended_by(self, now: datetime) -> date:
        """The last period end whose digest is published at ``now``: digests of periods
        ending on this day or before are public, later ones not yet."""
        end = now.astimezone(self.zone).date() - timedelta(days=1)
        # The day before yesterday's digest came out yesterday, whatever the hour and DST.
        return end if self.due_at(end) <= now else end - timedelta(days=1)


# --- building one -------------------------------------------------------------------------


def tally(items: Sequence[Commentary]) -> TrendTally:
    """Count the trend markers of ``items``."""
    out = TrendTally()
    for item in items:
        name = item.trend or "unmarked"
        setattr(out, name, getattr(out, name) + 1)
    return out


def build_digest(
    start: date,
    lang: str,
    items: Sequence[Commentary],
    *,
    left_at: datetime | None,
    url: str,
    url_of: Callable[[Commentary], str],
    schedule: Schedule,
) -> Digest:
    """The digest of ``items`` (its public commentaries, in order; at least one).

    ``left_at`` is the last time a commentary left or joined without an edit (see the
    module docstring); ``url_of`` gives each commentary's readable URL; ``schedule`` when
    the digest is published.
    """
    end = max((c.period.end for c in items if c.period is not None), default=start)
    published = schedule.due_at(end)
    updated = max(c.updated_at for c in items)
    if left_at is not None and left_at > updated:
        updated = left_at
    # A reader first sees the digest when it is published: that is a change it must notice,
    # and the feed's Last-Modified moves with it, whenever its commentaries were last edited.
    updated = max(updated, published)
    return Digest(
        period=Period(start=start, end=end),
        lang=lang,
        title=digest_title(start, end, lang),
        url=url,
        published_at=published,
        updated_at=updated,
        trends=tally(items),
        commentaries=[
            DigestEntry(
                id=c.id, title=c.title, category=c.category, trend=c.trend, url=url_of(c), summary=c.summary,
                published_at=c.published_at, updated_at=c.updated_at,
            )
            for c in items
        ],
    )


def stamp(digests: Sequence[Digest]) -> bytes:
    """What a rendered list of digests depends on, compactly: equal stamps render equally."""
    return msgspec.json.encode(digests)


# --- words in the digest's language -------------------------------------------------------

# Month names as they follow a day number ("6 March", "6 марта"): genitive where the
# language inflects. Languages without an entry use English.
_MONTHS = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"),
    "be": ("студзеня", "лютага", "сакавіка", "красавіка", "мая", "чэрвеня", "ліпеня", "жніўня",
           "верасня", "кастрычніка", "лістапада", "снежня"),
    "ru": ("января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа", "сентября",
           "октября", "ноября", "декабря"),
    "uk": ("січня", "лютого", "березня", "квітня", "травня", "червня", "липня", "серпня", "вересня",
           "жовтня", "листопада", "грудня"),
    "pl": ("stycznia", "lutego", "marca", "kwietnia", "maja", "czerwca", "lipca", "sierpnia", "września",
           "października", "listopada", "grudnia"),
}
_NAMES = {
    "en": "Weekly digest",
    "be": "Штотыднёвы агляд",
    "ru": "Еженедельный обзор",
    "uk": "Щотижневий огляд",
    "pl": "Przegląd tygodnia",
}
_TRENDS: dict[str, dict[str, str]] = {
    "en": {"improved": "improved", "worsened": "worsened", "unchanged": "unchanged", "unmarked": "no trend"},
    "be": {"improved": "паляпшэнне", "worsened": "пагаршэнне", "unchanged": "без змен", "unmarked": "без ацэнкі"},
    "ru": {"improved": "улучшение", "worsened": "ухудшение", "unchanged": "без изменений", "unmarked": "без оценки"},
    "uk": {"improved": "покращення", "worsened": "погіршення", "unchanged": "без змін", "unmarked": "без оцінки"},
    "pl": {"improved": "poprawa", "worsened": "pogorszenie", "unchanged": "bez zmian", "unmarked": "bez oceny"},
}
TREND_ARROWS = {"improved": "↗", "worsened": "↘", "unchanged": "→"}
_TALLY_ORDER = ("worsened", "improved", "unchanged", "unmarked")


def _primary(lang: str | None) -> str:
    """The table key for a language tag: its primary subtag when known, else English."""
    key = (lang or "en").split("-")[0].lower()
    return key if key in _NAMES else "en"


def digest_name(lang: str | None) -> str:
    """"Weekly digest" in ``lang`` (English for languages without a translation)."""
    return _NAMES[_primary(lang)]


def trend_label(trend: str, lang: str | None) -> str:
    """A trend marker (or ``unmarked``) in words, in ``lang``."""
    return _TRENDS[_primary(lang)][trend]


def month_names(lang: str | None) -> tuple[str, ...]:
    """The twelve month names as they follow a day number, in ``lang`` (English when the
    language has no entry)."""
    return _MONTHS[_primary(lang)]


def date_range(start: date, end: date, lang: str | None) -> str:
    """"2 – 8 March 2026", "28 February – 6 March 2022", "29 December 2025 – 4 January 2026",
    or one day; day before month, as every supported language writes it."""
    months = month_names(lang)
    last = f"{end.day} {months[end.month - 1]} {end.year}"
    if start == end:
        return last
    if (start.year, start.month) == (end.year, end.month):
        first = str(start.day)
    elif start.year == end.year:
        first = f"{start.day} {months[start.month - 1]}"
    else:
        first = f"{start.day} {months[start.month - 1]} {start.year}"
    return f"{first} – {last}"


def digest_title(start: date, end: date, lang: str | None) -> str:
    """"Weekly digest, 2 – 8 March 2026" in ``lang``."""
    return f"{digest_name(lang)}, {date_range(start, end, lang)}"


def trend_text(trend: str | None, lang: str | None) -> str:
    """"↘ worsened" (an arrow and the word) in ``lang``; ``None`` is "no trend"."""
    name = trend or "unmarked"
    arrow = TREND_ARROWS.get(name)
    return f"{arrow} {trend_label(name, lang)}" if arrow else trend_label(name, lang)


def tally_text(trends: TrendTally, lang: str | None) -> str:
    """"↘ worsened: 2 · ↗ improved: 1" in ``lang``, for the counts above zero."""
    return " · ".join(
        f"{trend_text(name, lang)}: {getattr(trends, name)}" for name in _TALLY_ORDER if getattr(trends, name)
    )
