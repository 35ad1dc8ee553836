"""The newsletter's routes: sign-up, the links in its mails, subscribers' data.

Public: the proof-of-work challenge and ``POST /api/v1/subscriptions`` (its own rate-limit
bucket, ``subscribe``, per address), the sign-up page, and the pages its mails link to.
Those pages change nothing when fetched: a GET shows a button, the POST it sends
confirms or unsubscribes. ``POST /newsletter/unsubscribe/TOKEN`` is also the RFC 8058
one-click target of every mail's ``List-Unsubscribe`` header: it unsubscribes at once,
whatever the body (a mailbox provider sends ``List-Unsubscribe=One-Click``), and answers
with a page in the subscriber's language.

Subscribers' addresses are personal data: listing and exporting them needs a token with
``subscribers:read``, erasing one ``admin``; no other scope sees them.
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from feedsvc.http.bodies import WriteRequest, strict_body
from feedsvc.http.common import API, HTML, JSON, parse_start, responses
from feedsvc.http.conditional import conditional
from feedsvc.http.guards import guards, security
from feedsvc.model import (
    ADMIN,
    COMMENTARIES_WRITE,
    SUBSCRIBERS_READ,
    Challenge,
    MailFormat,
    NewsletterLang,
    NewSubscription,
    Subscriber,
    SubscriberPage,
)
from feedsvc.newsletter.issues import Issues
from feedsvc.newsletter.sending import IssueSender
from feedsvc.newsletter.subscribers import Newsletter
from feedsvc.render.messages import Messages, catalogue_lang
from feedsvc.render.newsletter import action_page, signup_page
from feedsvc.service import Service
from feedsvc.store import StoredSubscriber

_encode = msgspec.json.Encoder().encode
NewsletterDep = NamedDependency[Newsletter]

# Pages that post a form back to themselves; the sign-up page also runs its one script.
NEWSLETTER_CSP = (
    "default-src 'none'; img-src * data:; style-src 'unsafe-inline'; script-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": NEWSLETTER_CSP,
    "X-Content-Type-Options": "nosniff",
    # The token in the URL must not leak to the pages a subscriber goes on to.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex",
}
_NO_STORE = {"Cache-Control": "no-store"}


def _json(value: Any, status: int = 200) -> Response[Any]:
    return Response(content=_encode(value), status_code=status, headers=_NO_STORE, media_type=JSON)


def _page(text: str, status: int = 200) -> Response[Any]:
    return Response(content=text.encode(), status_code=status, headers=_PAGE_HEADERS, media_type=HTML)


def _site(newsletter: Newsletter, lang: str) -> str:
    return Messages(lang).site_name(newsletter.site)


# --- signing up ---------------------------------------------------------------------------


@get(
    f"{API}/subscriptions/challenge",
    summary="A proof-of-work challenge for one newsletter sign-up",
    tags=["newsletter"],
    responses=responses(404, 503),
)
async def challenge(newsletter: NewsletterDep) -> Response[Challenge]:
    return _json(await newsletter.challenge())


@post(
    f"{API}/subscriptions",
    summary="Sign up to the newsletter: a confirmation mail is sent (double opt-in)",
    description=(
        "Always 202 when the request is well formed, whether or not the address was known: the answer never "
        "tells who is subscribed. Solve `GET /api/v1/subscriptions/challenge` first: `proof.nonce` is hex such "
        "that SHA-256 of `challenge:email:nonce` (the email as sent) starts with `bits` zero bits."
    ),
    tags=["newsletter"],
    status_code=202,
    request_class=WriteRequest,
    responses=responses(400, 404, 413, 415, 429, 503),
)
async def subscribe(
    request: Request[Any, Any, Any], data: JSONBody[NewSubscription], newsletter: NewsletterDep
) -> Response[dict[str, str]]:
    await newsletter.subscribe(await strict_body(request, NewSubscription))
    return _json({"status": "accepted: if the address can be subscribed, a confirmation mail is on its way"}, 202)


@get("/newsletter", summary="The newsletter's sign-up form", tags=["pages"], media_type=HTML,
     responses=responses(404, 503))
async def signup(
    newsletter: NewsletterDep,
    service: NamedDependency[Service],
    lang: Annotated[str | None, QueryParameter(max_length=35, description="The form's language.")] = None,
) -> Response[Any]:
    newsletter.check_enabled()
    lang = catalogue_lang(lang)
    categories = [(c.slug, c.names.get(lang) or c.names.get("en") or c.slug) for c in await service.get_categories()]
    return _page(signup_page(site=_site(newsletter, lang), lang=lang, base_url="", categories=categories))


@get("/newsletter.js", summary="The sign-up form's script", tags=["pages"], include_in_schema=False)
async def signup_script(request: Request[Any, Any, Any]) -> Response[bytes]:
    script = resources.files("feedsvc.render").joinpath("static", "newsletter.js").read_bytes()
    return conditional(request, script, media_type="text/javascript", cache_control="public, max-age=3600")


# --- the links in mails: a GET shows a button, its POST acts --------------------------------


def _expired(newsletter: Newsletter, lang: str = "en") -> Response[Any]:
    m = Messages(lang)
    again = f'<p><a href="/newsletter?lang={lang}">{m.html("subscribe_action")}</a></p>'
    page = action_page(
        site=_site(newsletter, lang), lang=lang, title=m("link_expired_title"), text=m("link_expired_text"),
        after=again,
    )
    return _page(page, 404)


@get("/newsletter/confirm/{token:str}", summary="The confirmation page: a button, nothing changed",
     tags=["pages"], media_type=HTML, include_in_schema=False)
async def confirm_page(token: FromPath[str], newsletter: NewsletterDep) -> Response[Any]:
    sub = await newsletter.pending_confirmation(token)
    if sub is None:
        return _expired(newsletter)
    m = Messages(sub.lang)
    site = _site(newsletter, sub.lang)
    return _page(action_page(site=site, lang=sub.lang, title=m("confirm_title"),
                             text=m("confirm_text", site=site, email=sub.email), action="",
                             button=m("confirm_button")))


@post("/newsletter/confirm/{token:str}", summary="Confirm a subscription (once)", tags=["pages"],
      media_type=HTML, status_code=200, include_in_schema=False)
async def confirm(token: FromPath[str], newsletter: NewsletterDep) -> Response[Any]:
    sub = await newsletter.confirm(token)
    if sub is None:
        return _expired(newsletter)
    m = Messages(sub.lang)
    site = _site(newsletter, sub.lang)
    return _page(action_page(site=site, lang=sub.lang, title=m("confirmed_title"),
                             text=m("confirmed_text", site=site, email=sub.email)))


def _gone(newsletter: Newsletter) -> Response[Any]:
    m = Messages("en")
    return _page(action_page(site=newsletter.site, lang="en", title=m("gone_title"), text=m("gone_text")), 404)


@get("/newsletter/unsubscribe/{token:str}", summary="The unsubscribe page: a button, nothing changed",
     tags=["pages"], media_type=HTML, include_in_schema=False)
async def unsubscribe_page(token: FromPath[str], newsletter: NewsletterDep) -> Response[Any]:
    sub = await newsletter.subscriber_of_link(token)
    if sub is None:
        return _gone(newsletter)
    if sub.state == "unsubscribed":
        return _unsubscribed(newsletter, sub)
    m = Messages(sub.lang)
    site = _site(newsletter, sub.lang)
    return _page(action_page(site=site, lang=sub.lang, title=m("unsubscribe_title"),
                             text=m("unsubscribe_text", site=site, email=sub.email), action="",
                             button=m("unsubscribe_title")))


def _unsubscribed(newsletter: Newsletter, sub: StoredSubscriber) -> Response[Any]:
    m = Messages(sub.lang)
    site = _site(newsletter, sub.lang)
    again = m.html("resubscribe", link=f'<a href="/newsletter?lang={sub.lang}">{m.html("subscribe_again")}</a>')
    return _page(action_page(site=site, lang=sub.lang, title=m("unsubscribed_title"),
                             text=m("unsubscribed_text", site=site, email=sub.email), after=f"<p>{again}</p>"))


@post("/newsletter/unsubscribe/{token:str}", summary="Unsubscribe at once (RFC 8058 one-click too)",
      tags=["pages"], media_type=HTML, status_code=200, include_in_schema=False)
async def unsubscribe(token: FromPath[str], newsletter: NewsletterDep) -> Response[Any]:
    sub = await newsletter.unsubscribe(token)
    return _gone(newsletter) if sub is None else _unsubscribed(newsletter, sub)


# --- subscribers' data ------------------------------------------------------------------------


@get(f"{API}/subscribers", summary="Newsletter subscribers (personal data), by id", tags=["newsletter"],
     guards=guards(SUBSCRIBERS_READ), security=security(SUBSCRIBERS_READ), responses=responses(400, 401, 403))
async def list_subscribers(
    newsletter: NewsletterDep,
    in_state: Annotated[
        str | None, QueryParameter(name="state", max_length=16, description="Only subscribers in this state.")
    ] = None,
    cursor: Annotated[str | None, QueryParameter(max_length=500)] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
) -> Response[SubscriberPage]:
    return _json(await newsletter.page(state=in_state, cursor=cursor, limit=limit))


@get(f"{API}/subscribers/{{ref:str}}", summary="Everything kept about one subscriber (by id or address)",
     tags=["newsletter"], guards=guards(SUBSCRIBERS_READ), security=security(SUBSCRIBERS_READ),
     responses=responses(401, 403, 404))
async def export_subscriber(ref: FromPath[str], newsletter: NewsletterDep) -> Response[Subscriber]:
    return _json(await newsletter.export(ref))


@delete(f"{API}/subscribers/{{ref:str}}", summary="Erase everything kept about one subscriber",
        tags=["newsletter"], status_code=204, guards=guards(ADMIN), security=security(ADMIN),
        responses=responses(401, 403, 404))
async def erase_subscriber(ref: FromPath[str], newsletter: NewsletterDep) -> None:
    await newsletter.erase(ref)


# --- issues: previews and test sends for editors ------------------------------------------------

IssuesDep = NamedDependency[Issues]
_FORMATS = {"html": HTML, "text": "text/plain", "eml": "message/rfc822"}


@get(f"{API}/newsletter/digests/{{start:str}}", summary="Preview the newsletter of a published weekly digest",
     description="`format`: `html` or `text` (its two parts), or `eml` (the whole mail, headers and DKIM "
     "signature included, as a subscriber would get it).",
     tags=["newsletter"], guards=guards(COMMENTARIES_WRITE), security=security(COMMENTARIES_WRITE),
     responses=responses(400, 401, 403, 404))
async def preview_issue(
    start: FromPath[str],
    issues: IssuesDep,
    lang: Annotated[NewsletterLang, QueryParameter(description="The issue's language.")] = "en",
    format: Annotated[MailFormat, QueryParameter(description="What to show.")] = "html",
) -> Response[bytes]:
    body = await issues.preview(parse_start(start), lang, format)
    # The preview runs no script and posts nothing, whatever a commentary's text holds.
    csp = "default-src 'none'; img-src * data:; style-src 'unsafe-inline'"
    headers = {**_PAGE_HEADERS, "Content-Security-Policy": csp}
    return Response(content=body, headers=headers, media_type=_FORMATS[format])


class TestSend(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    lang: NewsletterLang = "en"
    to: Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
    """The one address to send it to."""


@post(f"{API}/newsletter/digests/{{start:str}}/test", summary="Send the newsletter of a digest to one address",
      tags=["newsletter"], status_code=200, guards=guards(COMMENTARIES_WRITE), request_class=WriteRequest,
      security=security(COMMENTARIES_WRITE), responses=responses(400, 401, 403, 404, 415, 502))
async def send_test_issue(
    request: Request[Any, Any, Any], start: FromPath[str], data: JSONBody[TestSend], issues: IssuesDep
) -> Response[dict[str, str]]:
    body = await strict_body(request, TestSend)
    await issues.send_test(parse_start(start), body.lang, body.to)
    return _json({"status": "sent"})


class SendIssue(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    lang: NewsletterLang = "en"


class IssueStatus(msgspec.Struct, kw_only=True):
    """An issue and how many of its mails are in each state (queued, sent, failed)."""

    key: str
    start: str
    lang: str
    state: str
    """``draft``, ``sending`` or ``sent``."""
    sends: dict[str, int]


@post(f"{API}/newsletter/digests/{{start:str}}/send", summary="Send the newsletter of a digest to its subscribers",
      description="Queues one mail per active weekly subscriber of the language, once: sending again queues "
      "only subscribers who have none yet. The server sends them in the background.",
      tags=["newsletter"], status_code=202, guards=guards(COMMENTARIES_WRITE), request_class=WriteRequest,
      security=security(COMMENTARIES_WRITE), responses=responses(400, 401, 403, 404, 415))
async def send_issue(
    request: Request[Any, Any, Any], start: FromPath[str], data: JSONBody[SendIssue],
    mail_sender: NamedDependency[IssueSender],
) -> Response[IssueStatus]:
    body = await strict_body(request, SendIssue)
    issue, _ = await mail_sender.send_issue(parse_start(start), body.lang)
    counts = await mail_sender.store.send_counts(issue.key)
    return _json(IssueStatus(key=issue.key, start=issue.start.isoformat(), lang=issue.lang, state=issue.state,
                             sends=counts), 202)


@get(f"{API}/newsletter/issues", summary="The newsletter's issues, newest first, with their sends by state",
     tags=["newsletter"], guards=guards(COMMENTARIES_WRITE), security=security(COMMENTARIES_WRITE),
     responses=responses(401, 403))
async def list_issues(mail_sender: NamedDependency[IssueSender]) -> Response[list[IssueStatus]]:
    store = mail_sender.store
    return _json([
        IssueStatus(
            key=i.key, start=i.start.isoformat(), lang=i.lang, state=i.state, sends=await store.send_counts(i.key)
        )
        for i in await store.get_issues(100)
    ])


HANDLERS = [
    preview_issue, send_test_issue, send_issue, list_issues,
    challenge, subscribe, signup, signup_script, confirm_page, confirm, unsubscribe_page, unsubscribe, list_subscribers,
    export_subscriber, erase_subscriber,
]
