"""Settings, read once from ``FEEDSVC_*`` environment variables and passed down.

Every field is in the manual's configuration table (docs/configuration.md); tests/test_docs.py keeps the two in step.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from email.utils import parseaddr
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from feedsvc.errors import InvalidInputError
from feedsvc.model import LANG_PATTERN, normalize_lang

ENV_PREFIX = "FEEDSVC_"


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    database_url: str = "sqlite:///data/feedsvc.db"
    """`sqlite:///path` (relative to the working directory; `sqlite:////abs/path` for absolute),
    a bare file path, or `postgresql://user@host:port/db`."""
    public_url: str | None = None
    """The absolute base of every link the service emits (`https://feeds.example.org`).
    Never taken from request headers. Unset, links follow where `feedsvc serve` listens:
    `http://HOST:PORT` from `host` and `port` (`127.0.0.1` when it listens on every
    address), which is right on one machine only; set it to the address readers use."""
    title: str = "Commentaries"
    """The publication's name: the title of the site-wide feeds and pages."""
    description: str = "Analytical commentaries on security and foreign policy."
    """The subtitle of the site-wide feeds."""
    site_links: str | None = None
    """Links in every page's masthead and footer, after the publication's own:
    `Label=URL` pairs separated by `;` (`About=https://example.org/about; Contact=mailto:desk@example.org`);
    URLs are absolute `http(s):` or `mailto:` addresses, or paths on this site."""
    footer_note: str | None = None
    """A line at the foot of every page, as written (`© 2026 Example Institute`)."""
    primary_language: str = "en"
    """The language of `/feed.*`, the category feeds and `/digest.*` (a BCP 47 tag);
    other languages have feeds of their own (`/{lang}/feed.*`) and `/all/feed.*` has every one."""
    timezone: str = "UTC"
    """The publisher's time zone (an IANA name such as `Europe/Warsaw`): weekly digests
    are published in it, at `digest_hour` on the day after their period ends."""
    digest_hour: int = 8
    """The hour (0-23, in `timezone`) on the day after a monitoring period ends when its
    weekly digest is published: only then is it in the digest feeds, the API and pages."""
    tag_authority: str | None = None
    """Authority of the permanent item ids in feeds (`tag:AUTHORITY,date:commentary/ID`);
    defaults to the host of `public_url`. Set it once and never change it."""
    host: str = "127.0.0.1"
    """Address `feedsvc serve` binds to."""
    port: int = 8000
    """Port `feedsvc serve` listens on."""
    workers: int = 1
    """Server processes for `feedsvc serve`."""
    websub_hub: str | None = None
    """A WebSub hub URL: feeds advertise it and it is pinged after each write."""
    redis_url: str | None = None
    """Redis for rate-limit budgets shared by several nodes; in-memory when unset."""
    redis_prefix: str = "feedsvc:rl:"
    """Prefix of the rate-limit keys in Redis (one per deployment sharing a server)."""
    rate_limit_feeds: str = "50/s,1000"
    """Budget per client for feeds, pages, embed views, static files and every 304:
    `COUNT/UNIT[,BURST]` with UNIT `s`, `min` or `h` (burst defaults to COUNT); `0` = none.
    Counted in tokens: a poll of a feed at its own address (or a static file) takes 1, a
    page, an embed view or a feed with filters or an archive cursor takes 4."""
    rate_limit_read: str = "20/s,500"
    """Budget per client for JSON API reads; same form as `rate_limit_feeds`."""
    rate_limit_search: str = "5/s,500"
    """Budget per client for requests with a full-text `q`; same form."""
    rate_limit_write: str = "5/s,1000"
    """Budget per client for writes (POST, PUT, PATCH, DELETE); same form."""
    rate_limit_auth_failures: str = "10/min,30"
    """Failed authentications (401, 403) allowed per address; once spent, writes and
    requests with credentials from that address get 429 until it refills; same form."""
    feed_limit: int = 50
    """Items per feed document (and per archive page)."""
    cache_max_age: int = 60
    """`Cache-Control: max-age` on feeds and public API responses, in seconds."""
    stale_while_revalidate: int = 600
    """`Cache-Control: stale-while-revalidate` on feeds, in seconds."""
    max_body_bytes: int = 1_048_576
    """Largest accepted request body; larger ones get 413."""
    require_if_match: bool = True
    """PUT, PATCH and DELETE of an existing commentary need `If-Match` (else 428)."""
    allowed_hosts: tuple[str, ...] = ()
    """Comma-separated Host names accepted; empty accepts any (links never use Host anyway)."""
    media_dir: str = "data/media"
    """Folder served under `/media/` (images referenced as `/media/...`)."""
    frame_ancestors: str = "*"
    """CSP `frame-ancestors` for the embed views: who may put them in an iframe."""
    log_format: Literal["auto", "json", "text"] = "auto"
    """`json` lines, human `text`, or `auto`: text on a terminal, JSON otherwise."""
    log_level: str = "INFO"
    """Python logging level name: `DEBUG`, `INFO`, `WARNING`, `ERROR`. At `WARNING` and
    above the access log (written at `INFO`) is silent."""
    access_log: bool = True
    """One line per request (method, route, status, duration, bytes, request id, client)
    on stderr, at `INFO`."""
    webhook_allowed_networks: tuple[str, ...] = ()
    """Comma-separated CIDR ranges webhook URLs may reach although they are not public
    (`127.0.0.0/8`, `10.1.0.0/16`); by default loopback, private, link-local, multicast and
    reserved addresses are refused, at registration and again at each delivery."""
    webhook_timeout: float = 10.0
    """Seconds one webhook delivery may take, connection to last byte."""
    webhook_retry_delay: float = 10.0
    """Seconds before the first retry of a failed delivery; each further failure doubles
    it (with jitter), up to `webhook_max_retry_delay`."""
    webhook_max_retry_delay: float = 3600.0
    """Longest wait between two attempts, in seconds."""
    webhook_max_failures: int = 20
    """Consecutive failed attempts after which a subscription is disabled (a `410 Gone`
    answer disables it at once)."""
    webhook_poll_interval: float = 5.0
    """Seconds between looks at the change log for events written by other nodes (writes
    through this node wake the sender at once)."""
    header_timeout: float = 10.0
    """Seconds `feedsvc serve` waits for a request's line and headers, from their first byte
    (or from the connection, for its first request); a head not complete by then is cut
    (`408`, or closed unanswered when nothing was sent)."""
    body_timeout: float = 30.0
    """Seconds a request's body may take to arrive after its headers; then `408` and the
    connection is closed. Trickled bodies count too: it is a deadline, not an idle time."""
    keep_alive_timeout: float = 5.0
    """Seconds an idle keep-alive connection is kept open after an answer."""
    max_header_line: int = 8192
    """Longest header line, in bytes (a longer one is a `431`). The request line is bounded
    by the longest URL the app answers (`414`)."""
    max_header_bytes: int = 32768
    """Largest total of a request's header lines, in bytes; more is a `431`."""
    max_headers: int = 100
    """Most header lines in a request; more is a `431`."""
    max_connections: int = 1000
    """Open connections per server process. Past it an idle connection is closed to make
    room; when none is idle, a request on a connection past it is answered `503` with
    `Retry-After` at once, without reaching the app. `feedsvc serve` raises the process's
    open-files limit to its hard limit to hold them."""
    database_timeout: float = 5.0
    """Seconds one database call of `feedsvc serve` may take, a wait for a connection
    included; past it the request is a `503` with `Retry-After`. On PostgreSQL a call that
    cannot reach the server (refused, timed out) also marks the database unreachable: for
    the next half second other calls fail at once instead of waiting their turn, then one
    call tries again. On SQLite it is the longest wait for the write lock."""
    stale_max_age: int = 3600
    """Seconds a cached feed document may still be served while the database cannot be
    reached, counted from when it was last known current; it then carries
    `Cache-Status: feedsvc; hit; detail=stale` and `Age`. `0` answers `503` instead."""
    max_in_flight: int = 16
    """Requests a server process works on at once (probes and polls of cached feeds aside,
    which cost next to nothing). More wait in line, in order of arrival."""
    max_queued: int = 128
    """Requests a server process keeps waiting in line for `max_in_flight`; past it a request
    is answered `503` with `Retry-After` at once, without doing its work. A request whose
    client has gone while it waited is dropped, and a read whose client goes is cancelled."""
    shutdown_timeout: int = 10
    """Seconds `feedsvc serve` waits, after SIGTERM, for in-flight requests to finish; then
    up to 5 s more for queued WebSub pings. Keep the sum below the orchestrator's grace
    period (`docker stop` waits 10 s unless given `-t`)."""

    mail_from: str | None = None
    """The newsletter's sender, `Name <newsletter@example.org>`. Unset, the newsletter is
    off: its sign-up endpoint and pages answer `404`."""
    smtp_host: str = "127.0.0.1"
    """The SMTP server the newsletter's mail goes through."""
    smtp_port: int = 25
    """Its port (`587` for submission with STARTTLS, `465` for implicit TLS)."""
    smtp_tls: Literal["auto", "starttls", "tls", "none"] = "auto"
    """`starttls` (required), `tls` (implicit TLS, port 465), `none`, or `auto`: STARTTLS when
    the server offers it. Certificates are checked against the system's CAs (or
    `smtp_ca_file`)."""
    smtp_ca_file: str | None = None
    """A PEM file of CA certificates to check the SMTP server's certificate against,
    instead of the system's."""
    smtp_username: str | None = None
    """SMTP AUTH user name (with `smtp_password`); unset, no authentication."""
    smtp_password: str | None = None
    """SMTP AUTH password."""
    smtp_timeout: float = 30.0
    """Seconds one SMTP conversation may take."""
    dkim_key_file: str | None = None
    """A PEM file holding the RSA private key the newsletter's mail is DKIM-signed with
    (`openssl genrsa -out dkim.pem 2048`); unset, mail goes unsigned."""
    dkim_selector: str = "feedsvc"
    """The DKIM selector: the public key is published at `SELECTOR._domainkey.DOMAIN`."""
    dkim_domain: str | None = None
    """The signing domain (`d=`); defaults to the domain of `mail_from`."""
    newsletter_send: Literal["draft", "auto"] = "draft"
    """What happens when a weekly digest is published: `draft` holds its newsletter for an
    editor to send (`feedsvc newsletter send`, or the API), `auto` sends it to every
    subscriber of its language at once."""
    newsletter_rate: float = 20.0
    """Most newsletter mails sent per second by one server process."""
    newsletter_concurrency: int = 4
    """SMTP conversations one server process holds at once."""
    newsletter_retry_delay: float = 60.0
    """Seconds before a mail the server refused for now (4xx, no connection) is tried again;
    each further failure doubles it."""
    newsletter_max_attempts: int = 6
    """Attempts of one mail before it is given up as failed."""
    newsletter_proof_bits: int = 18
    """Work a sign-up's proof of work takes: leading zero bits of a SHA-256 hash (each one
    doubles it; 18 is about 260,000 hashes, a second or two in a browser). 0 switches it off."""
    rate_limit_subscribe: str = "10/h,5"
    """Budget per address for sign-ups (`POST /api/v1/subscriptions`); same form as
    `rate_limit_feeds`. One mailbox is mailed one confirmation an hour at most whatever
    this says."""

    @property
    def links(self) -> list[tuple[str, str]]:
        """``site_links`` as (label, URL) pairs, in order."""
        return site_links(self.site_links or "")

    @property
    def base_url(self) -> str:
        """``public_url`` (or, unset, the address served) without a trailing slash, ready
        for ``base_url + "/path"``."""
        if self.public_url:
            return self.public_url.rstrip("/")
        return served_url(self.host, self.port)


def site_links(value: str) -> list[tuple[str, str]]:
    """``Label=URL; Label=URL`` as pairs; InvalidInputError naming the first bad one."""
    out = []
    for part in (p.strip() for p in value.split(";")):
        if not part:
            continue
        label, sep, url = (x.strip() for x in part.partition("="))
        if not sep or not label or not url.startswith(("http://", "https://", "mailto:", "/")) or url.startswith("//"):
            raise InvalidInputError(
                f"FEEDSVC_SITE_LINKS: {part!r} is not Label=URL with an http(s):, mailto: or /path URL"
            )
        out.append((label, url))
    return out


def served_url(host: str, port: int) -> str:
    """``http://HOST:PORT`` for a server listening on ``host`` and ``port``: the loopback
    address when it listens on every address, whose own name no link could use."""
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def load_settings(environ: Mapping[str, str], **overrides: object) -> Settings:
    """Build Settings from ``FEEDSVC_*`` variables; ``overrides`` (e.g. CLI flags) win."""
    raw: dict[str, object] = {}
    fields = set(Settings.__struct_fields__)
    for key, value in environ.items():
        if key.startswith(ENV_PREFIX):
            name = key[len(ENV_PREFIX) :].lower()
            if name in fields:
                raw[name] = value
    for key in ("allowed_hosts", "webhook_allowed_networks"):
        if isinstance(raw.get(key), str):
            raw[key] = [h.strip() for h in str(raw[key]).split(",") if h.strip()]
    for key in (
        "websub_hub", "redis_url", "public_url", "mail_from", "smtp_ca_file", "smtp_username", "smtp_password",
        "dkim_key_file", "dkim_domain", "site_links", "footer_note",
    ):
        if raw.get(key) == "":
            raw[key] = None
    raw.update({k: v for k, v in overrides.items() if v is not None})
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as e:
        raise InvalidInputError(f"bad configuration: {e}") from None
    site_links(settings.site_links or "")
    if settings.public_url is not None and not settings.public_url.startswith(("http://", "https://")):
        raise InvalidInputError("FEEDSVC_PUBLIC_URL must be an absolute http(s) URL")
    for network in settings.webhook_allowed_networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise InvalidInputError(
                f"FEEDSVC_WEBHOOK_ALLOWED_NETWORKS: {network!r} is not a CIDR range such as 127.0.0.0/8"
            ) from None
    if min(settings.header_timeout, settings.body_timeout, settings.keep_alive_timeout) <= 0 or min(
        settings.max_header_line, settings.max_header_bytes, settings.max_headers, settings.max_connections
    ) < 1:
        raise InvalidInputError(
            "the client limits (FEEDSVC_HEADER_TIMEOUT ... FEEDSVC_MAX_CONNECTIONS) must be positive"
        )
    if settings.max_in_flight < 1 or settings.max_queued < 0:
        raise InvalidInputError("FEEDSVC_MAX_IN_FLIGHT must be at least 1 and FEEDSVC_MAX_QUEUED at least 0")
    try:
        ZoneInfo(settings.timezone)
    except (ValueError, ZoneInfoNotFoundError):
        raise InvalidInputError(f"FEEDSVC_TIMEZONE: {settings.timezone!r} is not an IANA time zone name") from None
    if not 0 <= settings.digest_hour <= 23:
        raise InvalidInputError("FEEDSVC_DIGEST_HOUR must be an hour from 0 to 23")
    if re.fullmatch(LANG_PATTERN, settings.primary_language) is None:
        raise InvalidInputError(f"FEEDSVC_PRIMARY_LANGUAGE: {settings.primary_language!r} is not a language tag")
    settings = msgspec.structs.replace(settings, primary_language=normalize_lang(settings.primary_language))
    if settings.database_timeout <= 0 or settings.stale_max_age < 0:
        raise InvalidInputError("FEEDSVC_DATABASE_TIMEOUT must be positive and FEEDSVC_STALE_MAX_AGE not negative")
    if settings.webhook_max_failures < 1 or min(settings.webhook_timeout, settings.webhook_poll_interval) <= 0:
        raise InvalidInputError(
            "FEEDSVC_WEBHOOK_MAX_FAILURES must be at least 1, and the webhook timeout and poll interval positive"
        )
    if settings.newsletter_rate <= 0 or settings.newsletter_concurrency < 1 or settings.newsletter_max_attempts < 1:
        raise InvalidInputError(
            "FEEDSVC_NEWSLETTER_RATE must be positive, FEEDSVC_NEWSLETTER_CONCURRENCY and _MAX_ATTEMPTS at least 1"
        )
    if not 0 <= settings.newsletter_proof_bits <= 32:
        raise InvalidInputError("FEEDSVC_NEWSLETTER_PROOF_BITS must be from 0 to 32")
    if settings.mail_from is not None and not mail_sender_ok(settings.mail_from):
        raise InvalidInputError(
            f"FEEDSVC_MAIL_FROM: {settings.mail_from!r} is not an address such as 'News <news@example.org>'"
        )
    return settings


def mail_sender_ok(text: str) -> bool:
    """Whether ``text`` is one address, with or without a name, fit for a From header."""
    if any(ord(ch) < 32 for ch in text):
        return False
    _, address = parseaddr(text)
    return "@" in address and " " not in address
