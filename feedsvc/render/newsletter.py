"""The newsletter's pages and its confirmation mail: pure functions from values to text.

The pages that change a subscription (confirm, unsubscribe) show a button that POSTs and
change nothing when fetched: mail gateways' link scanners open every link in a mail. The
sign-up page's only script is ``static/newsletter.js``, which solves the proof of work
(SHA-256 in the browser's own crypto) and posts the form as JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr
from html import escape
from xml.sax.saxutils import quoteattr

from feedsvc.model import NEWSLETTER_LANGUAGES
from feedsvc.render.html import STYLE
from feedsvc.render.messages import Messages

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
        f'<p><button type=submit>{m.html("subscribe")}</button></p><p id=status role=status></p></form>'
        f"<script src={quoteattr(base_url + '/newsletter.js')} defer></script>"
    )
    return _page(f'{m("newsletter")} · {site}', body, lang)


def confirmation_mail(
    *, site: str, lang: str, sender: str, to: str, link: str, days: int, message_id: str, now: datetime
) -> EmailMessage:
    """The double opt-in mail: plain text and HTML from the same words, in ``lang``."""
    m = Messages(lang)
    subject = m("confirm_subject", site=site)
    intro, ignore = m("confirm_mail_intro", site=site), m("confirm_mail_ignore", days=str(days))
    text = f"{intro}\n\n{link}\n\n{ignore}\n\n-- \n{site}\n"
    html = (
        f'<!doctype html><html lang="{escape(m.lang)}"><head><meta charset="utf-8"><title>{escape(subject)}</title>'
        f'</head><body style="font-family:sans-serif;max-width:40rem"><p>{escape(intro)}</p>'
        f'<p><a href={quoteattr(link)}>{m.html("confirm_button")}</a></p>'
        f'<p style="color:#5b6474">{escape(ignore)}</p><p style="color:#5b6474">{escape(site)}</p></body></html>'
    )
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = formataddr(("", to))
    message["Subject"] = subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id
    message["Content-Language"] = m.lang
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message
