"""The commentary and its parts, as msgspec Structs.

One definition serves three purposes: decoding and validating request bodies (the
``New*``/``*Patch`` structs forbid unknown fields and carry the contract's limits as
``Meta``), encoding responses, and the OpenAPI schema Litestar derives from them.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

# --- constrained scalar types -------------------------------------------------------------

# Every pattern ends in `$(?!\n)`: msgspec checks patterns with Python's re.search, whose
# `$` also matches before a final newline, so "en\n" passed as a language and "a\n" as a
# slug; the lookahead closes that and changes nothing for JSON Schema's `$` (issue 7).
SLUG_PATTERN = r"^[a-z0-9-]{1,120}$(?!\n)"
# BCP 47 in the shape feeds and HTML need: a 2-3 letter language, then subtags.
LANG_PATTERN = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,4}$(?!\n)"

Slug = Annotated[str, Meta(pattern=SLUG_PATTERN, max_length=120, examples=["regional-security"])]
LangTag = Annotated[str, Meta(pattern=LANG_PATTERN, max_length=35, examples=["en", "be", "ru"])]
Title = Annotated[str, Meta(min_length=1, max_length=300)]
Summary = Annotated[str, Meta(max_length=1000)]
Tag = Annotated[str, Meta(min_length=1, max_length=64)]
Name = Annotated[str, Meta(min_length=1, max_length=200)]
ShortText = Annotated[str, Meta(max_length=500)]
HttpUrl = Annotated[
    str, Meta(pattern=r"^https?://[^\s<>\"]+$(?!\n)", max_length=2000, examples=["https://example.org/a"])
]
# Images may also be served by feedsvc itself (``/media/...``); such paths are made absolute
# with FEEDSVC_PUBLIC_URL wherever they are emitted.
ImageUrl = Annotated[str, Meta(pattern=r"^(https?://|/)[^\s<>\"]+$(?!\n)", max_length=2000)]
TranslationKey = Annotated[str, Meta(pattern=r"^[A-Za-z0-9._:-]{1,200}$(?!\n)")]
# 1 MB is the request limit; the body is the only field allowed to come near it.
BodyText = Annotated[str, Meta(max_length=900_000)]
AwareDatetime = Annotated[datetime, Meta(tz=True, examples=["2026-03-07T10:00:00+03:00"])]

Trend = Literal["improved", "worsened", "unchanged"]
Status = Literal["draft", "published"]
Scope = Literal[
    "commentaries:write", "categories:write", "webhooks:manage", "subscribers:read", "metrics:read", "admin", "write"
]
ChangeOp = Literal["created", "updated", "deleted"]

TRENDS: tuple[Trend, ...] = ("improved", "worsened", "unchanged")


def normalize_lang(tag: str) -> str:
    """Return a BCP 47 tag in its canonical case: ``EN-gb`` -> ``en-GB``, ``sr-latn`` -> ``sr-Latn``."""
    parts = tag.split("-")
    out = [parts[0].lower()]
    for part in parts[1:]:
        if len(part) == 4 and part.isalpha():
            out.append(part.title())
        elif (len(part) == 2 and part.isalpha()) or (len(part) == 3 and part.isdigit()):
            out.append(part.upper())
        else:
            out.append(part.lower())
    return "-".join(out)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(value: datetime) -> int:
    """Microseconds since the epoch for an aware datetime; exact, unlike float timestamps."""
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


def is_slug(value: str) -> bool:
    return re.fullmatch(SLUG_PATTERN, value) is not None


# Issue 7: a time whose UTC instant (or a day either side of it, the margin the stores put
# around calendar dates) lies outside what ``datetime`` holds overflows later, in a store
# or a renderer, and one such commentary made every public view a 500. Refused at the edge.
FIRST_DAY = date(1, 1, 2)
LAST_DAY = date(9999, 12, 30)
MAX_CATEGORIES = 50
"""Category slugs one filter may name; more is a 400 (each becomes an SQL parameter)."""


def in_range(value: date | datetime) -> bool:
    """Whether a date, or the UTC date of a datetime, lies within FIRST_DAY..LAST_DAY."""
    if isinstance(value, datetime):
        try:
            value = value.astimezone(UTC).date()
        except OverflowError:
            return False
    return FIRST_DAY <= value <= LAST_DAY


def _check_published_at(value: object) -> None:
    if isinstance(value, datetime) and not in_range(value):
        raise ValueError("published_at is out of range: in UTC it must fall between years 1 and 9999")


# --- parts of a commentary ----------------------------------------------------------------


class Author(Struct, forbid_unknown_fields=True, omit_defaults=True):
    name: Name
    affiliation: ShortText | None = None
    url: HttpUrl | None = None


class Period(Struct, forbid_unknown_fields=True):
    """A monitoring period, e.g. the week February 28 – March 6, 2022 (both days included)."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.start > self.end:
            raise ValueError("period start must not be after its end")


class Source(Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Where the commentary was originally published."""

    name: Name
    url: HttpUrl | None = None


class Image(Struct, forbid_unknown_fields=True, omit_defaults=True):
    url: ImageUrl
    alt: ShortText | None = None
    caption: ShortText | None = None
    credit: ShortText | None = None
    length: Annotated[int, Meta(ge=1, le=2**40)] | None = None
    """The file's size in bytes, when the publisher knows it: RSS enclosures carry it
    (``length="0"`` means unknown there). feedsvc never fetches the image to find it."""


class Translation(Struct):
    """A pointer from a commentary to one of its translations."""

    lang: str
    id: str
    slug: str
    title: str
    url: str


# --- writes -------------------------------------------------------------------------------


class NewCommentary(Struct, kw_only=True, forbid_unknown_fields=True):
    """A commentary as a client submits it (POST, PUT, import)."""

    title: Title
    lang: LangTag
    category: Slug
    authors: Annotated[list[Author], Meta(min_length=1, max_length=20)]
    published_at: AwareDatetime | None = None
    """Defaults to the time of the request. A future time schedules the commentary."""
    slug: Slug | None = None
    """Derived from the title when absent (Cyrillic transliterated) and kept unique per language."""
    translation_key: TranslationKey | None = None
    summary: Summary | None = None
    """Derived from the first paragraph of the body when absent."""
    body_html: BodyText | None = None
    body_markdown: BodyText | None = None
    tags: Annotated[list[Tag], Meta(max_length=20)] = msgspec.field(default_factory=list)
    status: Status = "published"
    period: Period | None = None
    trend: Trend | None = None
    source: Source | None = None
    image: Image | None = None
    canonical_url: HttpUrl | None = None

    def __post_init__(self) -> None:
        if self.body_html is not None and self.body_markdown is not None:
            raise ValueError("give either body_html or body_markdown, not both")
        _check_published_at(self.published_at)


class CommentaryPatch(Struct, kw_only=True, forbid_unknown_fields=True):
    """A JSON merge patch (RFC 7396) of a commentary: absent fields stay, ``null`` clears."""

    title: Title | UnsetType = UNSET
    lang: LangTag | UnsetType = UNSET
    category: Slug | UnsetType = UNSET
    authors: Annotated[list[Author], Meta(min_length=1, max_length=20)] | UnsetType = UNSET
    published_at: AwareDatetime | UnsetType = UNSET
    slug: Slug | UnsetType = UNSET
    translation_key: TranslationKey | None | UnsetType = UNSET
    summary: Summary | None | UnsetType = UNSET
    body_html: BodyText | UnsetType = UNSET
    body_markdown: BodyText | UnsetType = UNSET
    tags: Annotated[list[Tag], Meta(max_length=20)] | UnsetType = UNSET
    status: Status | UnsetType = UNSET
    period: Period | None | UnsetType = UNSET
    trend: Trend | None | UnsetType = UNSET
    source: Source | None | UnsetType = UNSET
    image: Image | None | UnsetType = UNSET
    canonical_url: HttpUrl | None | UnsetType = UNSET

    def __post_init__(self) -> None:
        if self.body_html is not UNSET and self.body_markdown is not UNSET:
            raise ValueError("give either body_html or body_markdown, not both")
        _check_published_at(self.published_at)


class CategoryIn(Struct, forbid_unknown_fields=True):
    """A category as a client submits it with ``PUT /api/v1/categories/{slug}``."""

    names: Annotated[dict[LangTag, Name], Meta(min_length=1, max_length=50)]
    descriptions: Annotated[dict[LangTag, Annotated[str, Meta(max_length=2000)]], Meta(max_length=50)] = (
        msgspec.field(default_factory=dict)
    )


# --- reads --------------------------------------------------------------------------------


class Commentary(Struct, kw_only=True):
    """A stored commentary, as the API returns it."""

    id: str
    """Assigned by the server: a ULID, URL-safe and time-sortable. Never changes."""
    slug: str
    lang: str
    title: str
    summary: str
    body_html: str
    category: str
    tags: list[str]
    authors: list[Author]
    published_at: datetime
    updated_at: datetime
    created_at: datetime
    status: Status
    version: int
    """The change sequence number of the last change; grows with every write."""
    translation_key: str | None = None
    period: Period | None = None
    trend: Trend | None = None
    source: Source | None = None
    image: Image | None = None
    canonical_url: str | None = None
    url: str = ""
    """Where to read it: ``canonical_url``, or else the page feedsvc serves for it."""
    translations: list[Translation] = msgspec.field(default_factory=list)


class Category(Struct, kw_only=True):
    slug: str
    names: dict[str, str]
    descriptions: dict[str, str] = msgspec.field(default_factory=dict)
    updated_at: datetime | None = None
    count: int = 0
    """Published commentaries filed under it (in list responses)."""

    def name(self, lang: str | None) -> str:
        """The name in ``lang``, else English, else any name there is."""
        if lang and lang in self.names:
            return self.names[lang]
        if lang and lang.split("-")[0] in self.names:
            return self.names[lang.split("-")[0]]
        return self.names.get("en") or next(iter(self.names.values()), self.slug)

    def description(self, lang: str | None) -> str:
        """The description in ``lang`` (or its primary language), else English, else any."""
        if lang and lang in self.descriptions:
            return self.descriptions[lang]
        if lang and lang.split("-")[0] in self.descriptions:
            return self.descriptions[lang.split("-")[0]]
        return self.descriptions.get("en") or next(iter(self.descriptions.values()), "")


class Count(Struct):
    """A tag, an author or a language with how many published commentaries carry it."""

    name: str
    count: int


class RelatedCommentary(Struct, kw_only=True, omit_defaults=True):
    """A commentary related to another (issue 9): enough to show and link it, and its score
    (feedsvc.store.related: shared tags, category and title words, and closeness in time)."""

    id: str
    lang: str
    slug: str
    title: str
    summary: str
    url: str
    category: str
    tags: list[str]
    published_at: datetime
    image: Image | None = None
    score: float
    """Higher is more related; 3 per shared tag, 2 for the category, up to 3 for title words,
    up to 1 for closeness in time."""


class Page(Struct):
    items: list[Commentary]
    next_cursor: str | None = None


class Change(Struct, kw_only=True):
    """One entry of the change log a mirror replays in order."""

    seq: int
    op: ChangeOp
    id: str
    at: datetime
    commentary: Commentary | None = None
    """The commentary as it was right after this change; absent on deletions (tombstones)."""


class ChangePage(Struct):
    items: list[Change]
    next_cursor: str
    """Pass as ``since`` to continue; it is returned even when ``items`` is empty."""


# --- token scopes: what a token may do (least privilege) ---------------------------------

COMMENTARIES_WRITE: Scope = "commentaries:write"
CATEGORIES_WRITE: Scope = "categories:write"
WEBHOOKS_MANAGE: Scope = "webhooks:manage"
SUBSCRIBERS_READ: Scope = "subscribers:read"
METRICS_READ: Scope = "metrics:read"
ADMIN: Scope = "admin"
LEGACY_WRITE: Scope = "write"

SCOPES: dict[Scope, str] = {
    COMMENTARIES_WRITE: "publish, replace, patch and delete commentaries; read drafts and scheduled items",
    CATEGORIES_WRITE: "create and replace categories",
    WEBHOOKS_MANAGE: "subscribe, list, read and delete webhook subscriptions (who is told about changes, and where)",
    SUBSCRIBERS_READ: "read newsletter subscribers (personal data; kept apart from every other scope)",
    METRICS_READ: "scrape /metrics",
    ADMIN: "everything above",
    LEGACY_WRITE: "the scope tokens had before scopes were split: commentaries:write and categories:write",
}
"""Every scope a token can carry, with what it allows (``feedsvc token create --help``)."""

# Tokens made before the split carry "write", which then allowed every write route. It keeps
# allowing what editors need; webhook subscriptions (who is told about changes, and where)
# now need their own scope, so a leaked editor token can no longer list or delete them.
SCOPE_ALIASES: dict[str, frozenset[str]] = {LEGACY_WRITE: frozenset({COMMENTARIES_WRITE, CATEGORIES_WRITE})}


class TokenInfo(Struct, kw_only=True):
    id: str
    name: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    def allows(self, scope: str) -> bool:
        """Whether this token may do what ``scope`` names: it carries the scope, ``admin``,
        or an alias that includes it (``write``). Unknown stored scopes allow nothing."""
        for held in self.scopes:
            if held == scope or held == ADMIN or scope in SCOPE_ALIASES.get(held, ()):
                return True
        return False


# --- webhooks (issue 4, part 6) -----------------------------------------------------------

WEBHOOK_EVENTS: tuple[ChangeOp, ...] = ("created", "updated", "deleted")
WebhookState = Literal["active", "disabled"]


class NewWebhook(Struct, kw_only=True, forbid_unknown_fields=True):
    """A subscription as a client registers it with ``POST /api/v1/webhooks``."""

    url: Annotated[
        str, Meta(pattern=r"^https?://[^\s<>\"]+$(?!\n)", max_length=2000, examples=["https://partner.example.net/hooks/feedsvc"])
    ]
    """Where events are POSTed: an http(s) URL without credentials, whose host must not
    resolve to a loopback, private, link-local or otherwise non-public address."""
    events: Annotated[list[ChangeOp], Meta(min_length=1, max_length=3)] = msgspec.field(
        default_factory=lambda: list(WEBHOOK_EVENTS)
    )
    """Which changes to receive; all three when absent."""
    categories: Annotated[list[Slug], Meta(max_length=MAX_CATEGORIES)] = msgspec.field(default_factory=list)
    """Only commentaries in these categories; every category when empty."""
    languages: Annotated[list[LangTag], Meta(max_length=50)] = msgspec.field(default_factory=list)
    """Only commentaries in these languages; every language when empty."""
    description: ShortText | None = None
    """A note for whoever reads the list later (who asked for it, why)."""


class DeliveryError(Struct, kw_only=True):
    """The last failed delivery attempt."""

    at: datetime
    message: str
    """What went wrong: the receiver's answer, or the network error."""
    status: int | None = None
    """The receiver's HTTP status, when it answered."""


class Webhook(Struct, kw_only=True):
    """A subscription and its delivery state, as the API shows it (never its secret)."""

    id: str
    url: str
    events: list[ChangeOp]
    categories: list[str]
    languages: list[str]
    created_at: datetime
    state: WebhookState
    """``active``, or ``disabled`` (no more deliveries; see ``disabled_reason``)."""
    position: int
    """The change sequence number of the last event delivered (or skipped by the filters);
    delivery goes on from the next one."""
    consecutive_failures: int = 0
    description: str | None = None
    disabled_reason: str | None = None
    disabled_at: datetime | None = None
    last_error: DeliveryError | None = None
    last_success_at: datetime | None = None
    next_attempt_at: datetime | None = None
    """After a failure, when the next attempt is due."""


class CreatedWebhook(Webhook, kw_only=True):
    """The answer to a registration: the subscription with its signing secret, shown this once."""

    secret: str
    """``whsec_`` and the base64 of the HMAC-SHA256 key (Standard Webhooks)."""


# --- the newsletter ------------------------------------------------------------

Cadence = Literal["weekly", "each"]
NewsletterLang = Literal["en", "be", "ru"]
NEWSLETTER_LANGUAGES: tuple[NewsletterLang, ...] = ("en", "be", "ru")
"""The languages the newsletter is written in (its mails and pages)."""
SubscriberState = Literal["pending", "active", "unsubscribed", "suspended"]
MailFormat = Literal["html", "text", "eml"]


class ProofOfWork(Struct, kw_only=True, forbid_unknown_fields=True):
    """A solved challenge from ``GET /api/v1/subscriptions/challenge``."""

    challenge: Annotated[str, Meta(max_length=200)]
    nonce: Annotated[str, Meta(pattern=r"^[0-9a-f]{1,32}$(?!\n)")]
    """Hex digits such that SHA-256 of ``challenge:email:nonce`` starts with ``bits`` zero bits."""


class NewSubscription(Struct, kw_only=True, forbid_unknown_fields=True):
    """A sign-up to the newsletter (``POST /api/v1/subscriptions``)."""

    email: Annotated[str, Meta(min_length=3, max_length=254, examples=["reader@example.org"])]
    """The address; stored normalised (the domain in lower case and ASCII, the local part
    in lower case); characters beyond ASCII in the local part are refused."""
    languages: Annotated[list[NewsletterLang], Meta(min_length=1, max_length=3)] = msgspec.field(
        default_factory=lambda: ["en"]
    )
    """The languages of the commentaries to get; the first is the language of the mails."""
    categories: Annotated[list[Slug], Meta(max_length=MAX_CATEGORIES)] = msgspec.field(default_factory=list)
    """Only commentaries in these categories; every category when empty."""
    cadence: Cadence = "weekly"
    """``weekly``: the weekly digest; ``each``: a mail for each commentary."""
    proof: ProofOfWork
    website: Annotated[str, Meta(max_length=200)] = ""
    """Leave empty: a field people never see and form-filling robots do (a honeypot)."""


class Challenge(Struct, kw_only=True):
    """A proof-of-work challenge for one sign-up."""

    challenge: str
    bits: int
    """Leading zero bits SHA-256 of ``challenge:email:nonce`` must have."""
    expires_at: datetime


class Subscriber(Struct, kw_only=True):
    """What is kept about a subscriber: everything, as its export (personal data)."""

    id: str
    email: str
    lang: str
    """The language of its mails and pages."""
    languages: list[str]
    categories: list[str]
    cadence: Cadence
    state: SubscriberState
    state_reason: str | None
    created_at: datetime
    updated_at: datetime
    confirmed_at: datetime | None


class SubscriberPage(Struct):
    items: list[Subscriber]
    next_cursor: str | None
