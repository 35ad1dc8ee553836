"""The newsletter's pages and its confirmation mail: pure functions from values to text.

The pages that change a subscription (confirm, unsubscribe) show a button that POSTs and
change nothing when fetched: mail gateways' link scanners open every link in a mail. The
sign-up page's only script is ``static/newsletter.js``, which solves the proof of work
(SHA-256 in the browser's own crypto) and posts the form as JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import NamedTuple
from xml.sax.saxutils import quoteattr

from feedsvc.digest import Digest, tally_text
from feedsvc.model import NEWSLETTER_LANGUAGES, Image
from feedsvc.render.layout import STYLE
from feedsvc.render.messages import Messages
from feedsvc.text import absolute_url

FORM_STYLE = (
    "form p{margin:.8em 0}label{margin-right:1em}input[type=email]{font:inherit;width:100%;max-width:26rem;"
    "padding:.3em}button{font:inherit;padding:.4em 1.2em;cursor:pointer}"
    ".trap{position:absolute;left:-10000px;width:1px;height:1px;overflow:hidden}"
)


def _page(title: str, body: str, lang: str, *, head: str = "") -> str:
    return (
        f'<!doctype html>\n<html lang="{escape(lang)}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="robots" content="noindex"><link rel="icon" href="/icon.svg" type="image/svg+xml">'
        f"<title>{escape(title)}</title>{head}"
        f"<style>{STYLE}{FORM_STYLE}</style></head><body>{body}</body></html>\n"
    )


def action_page(
    *, site: str, lang: str, title: str, text: str, action: str | None = None, button: str | None = None,
    after: str = "",
) -> str:
    """A page that says ``text`` (plain text) and, with ``action``, has one button that
    POSTs to it; ``after`` is HTML put below."""
    form = (
        f"<form method=post action={quoteattr(action)}><p><button type=submit>{escape(button or title)}</button></p>"
        "</form>"
        if action is not None
        else ""
    )
    body = f'<p class="muted">{escape(site)}</p><h1>{escape(title)}</h1><p>{escape(text)}</p>{form}{after}'
    return _page(f"{title} · {site}", body, lang)


def signup_page(
    *, site: str, lang: str, base_url: str, categories: Sequence[tuple[str, str]], notice: str = ""
) -> str:
    """``GET /newsletter``: the sign-up form, labels in ``lang``; ``categories`` are
    (slug, name) pairs to choose among (none ticked: every category)."""
    m = Messages(lang)
    own = m.lang
    languages = "".join(
        f'<label><input type=checkbox name=languages value="{code}"{" checked" if code == own else ""}> '
        f"{escape(m.language(code))}</label>"
        for code in NEWSLETTER_LANGUAGES
    )
    cats = "".join(
        f"<label><input type=checkbox name=categories value={quoteattr(slug)}> {escape(name)}</label> "
        for slug, name in categories
    )
    cadences = "".join(
        f'<label><input type=radio name=cadence value="{value}"{" checked" if value == "weekly" else ""}> '
        f"{m.html(key)}</label>"
        for value, key in (("weekly", "cadence_weekly"), ("each", "cadence_each"))
    )
    words = {
        "data-sent": m("subscribe_sent"), "data-working": m("subscribe_working"),
        "data-failed": m("subscribe_failed", reason="{reason}"),
    }
    data = " ".join(f"{name}={quoteattr(value)}" for name, value in words.items())
    body = (
        f'<p class="muted"><a href={quoteattr(base_url + "/")}>{escape(site)}</a></p>'
        f'<h1>{m.html("newsletter")}</h1><p>{m.html("newsletter_intro")}</p>'
        f"<noscript><p><strong>{m.html('needs_script')}</strong></p></noscript>{notice}"
        f"<form id=newsletter method=post action={quoteattr(base_url + '/api/v1/subscriptions')} "
        f"data-challenge={quoteattr(base_url + '/api/v1/subscriptions/challenge')} {data}>"
        f'<p><label for=email>{m.html("email_address")}</label><br>'
        "<input type=email id=email name=email required maxlength=254 autocomplete=email></p>"
        f'<p>{m.html("languages_wanted")}: {languages}</p>'
        + (f"<p>{m.html('by_category')}: {cats}</p>" if cats else "")
        + f'<p>{m.html("how_often")}: {cadences}</p>'
        f'<p class=trap aria-hidden=true><label>{m.html("leave_empty")} '
        "<input name=website tabindex=-1 autocomplete=off></label></p>"
        f'<p><button type=submit>{m.html("subscribe_action")}</button></p><p id=status role=status></p></form>'
        f"<script src={quoteattr(base_url + '/newsletter.js')} defer></script>"
    )
    return _page(f'{m("newsletter")} · {site}', body, lang)


class MailParts(NamedTuple):
    """A mail's words: its subject and both bodies, written from the same data."""

    subject: str
    text: str
    html: str
    lang: str


def _mail_html(lang: str, subject: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="{escape(lang)}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{escape(subject)}</title>'
        f'</head><body style="margin:0;padding:16px;font-family:Arial,Helvetica,sans-serif;color:#1d2330">'
        f'<div style="max-width:600px;margin:0 auto">{body}</div></body></html>'
    )


def confirmation_mail(*, site: str, lang: str, link: str, days: int) -> MailParts:
    """The double opt-in mail, in ``lang``."""
    m = Messages(lang)
    subject = m("confirm_subject", site=site)
    intro, ignore = m("confirm_mail_intro", site=site), m("confirm_mail_ignore", days=str(days))
    text = f"{intro}\n\n{link}\n\n{ignore}\n\n-- \n{site}\n"
    html = _mail_html(m.lang, subject, (
        f"<p>{escape(intro)}</p><p><a href={quoteattr(link)}>{m.html('confirm_button')}</a></p>"
        f'<p style="color:#5b6474">{escape(ignore)}</p><p style="color:#5b6474">{escape(site)}</p>'
    ))
    return MailParts(subject, text, html, m.lang)


SHORTER: tuple[tuple[int | None, int | None], ...] = ((None, None), (240, None), (0, None), (0, 40), (0, 15))
"""Ways to write a digest mail, longest first: (summary length, most commentaries listed);
None is no limit, a summary of 0 is left out. A sender takes the first that fits."""


def _cut(text: str, length: int | None) -> str:
    if length is None or len(text) <= length:
        return text
    return text[: max(0, length - 1)].rsplit(" ", 1)[0] + "…" if length else ""


def digest_mail(
    digest: Digest, images: Mapping[str, Image], *, site: str, email: str, unsubscribe: str, base_url: str,
    summary_length: int | None = None, most: int | None = None,
) -> MailParts:
    """The weekly digest as a mail in the digest's language: each commentary's title, trend,
    summary (cut at ``summary_length``), lead image (by absolute URL, with its alt text) and
    link; past ``most`` commentaries, the digest's page is named for the rest."""
    m = Messages(digest.lang)
    subject = f"{digest.title} · {site}"
    web = f"<a href={quoteattr(digest.url)}>{escape(digest.url)}</a>"
    count = str(len(digest.commentaries))
    intro = m("digest_mail_intro", count=count, link=digest.url)
    tally = tally_text(digest.trends, digest.lang)
    why = m("why_this_mail", email=email, site=site)
    leave = m("unsubscribe_line", link=unsubscribe)
    lines = [digest.title, "=" * len(digest.title), "", intro, tally, ""]
    blocks = []
    for entry in digest.commentaries if most is None else digest.commentaries[:most]:
        trend = f" ({m.trend(entry.trend)})" if entry.trend else ""
        summary = _cut(entry.summary, summary_length)
        lines += [f"* {entry.title}{trend}", *([f"  {summary}"] if summary else []), f"  {entry.url}", ""]
        image = images.get(entry.id)
        figure = ""
        if image is not None:
            alt = image.alt or image.caption or entry.title
            figure = (
                f'<img src={quoteattr(absolute_url(image.url, base_url))} alt={quoteattr(alt)} width="560" '
                'style="display:block;max-width:100%;height:auto;border:0;margin:8px 0">'
            )
        blocks.append(
            f'<h2 style="font-size:18px;margin:24px 0 4px"><a href={quoteattr(entry.url)} style="color:#1f5fbf">'
            f"{escape(entry.title)}</a></h2>"
            + (f'<p style="margin:0;color:#5b6474">{escape(m.trend(entry.trend))}</p>' if entry.trend else "")
            + figure
            + (f'<p style="margin:4px 0">{escape(summary)}</p>' if summary else "")
            + f'<p style="margin:4px 0"><a href={quoteattr(entry.url)}>{m.html("read_more")} →</a></p>'
        )
    if most is not None and len(digest.commentaries) > most:
        lines += [f"… {digest.url}", ""]
        blocks.append(f"<p>… {web}</p>")
    lines += ["-- ", why, leave, ""]
    html = _mail_html(m.lang, subject, (
        f'<p style="color:#5b6474">{escape(site)}</p><h1 style="font-size:22px">'
        f'<a href={quoteattr(digest.url)} style="color:#1d2330">{escape(digest.title)}</a></h1>'
        f'<p>{m.html("digest_mail_intro", count=count, link=web)}</p>'
        f'<p>{escape(tally)}</p>{"".join(blocks)}'
        f'<hr style="border:0;border-top:1px solid #d8dde6;margin:24px 0">'
        f'<p style="font-size:13px;color:#5b6474">{escape(why)} '
        f'<a href={quoteattr(unsubscribe)}>{m.html("unsubscribe_title")}</a></p>'
    ))
    return MailParts(subject, "\n".join(lines), html, m.lang)
