"""Mail addresses as the newsletter accepts and stores them: one spelling per mailbox.

Stored normalised, so that one mailbox is one subscriber however it was typed: the
domain in lower case and in its ASCII (IDNA 2008) form, the local part in lower case
(mailbox providers treat it so; RFC 5321 allows them to). Refused, because they are how
header injection and look-alike addresses come in: anything but a dot-atom of ASCII
before the ``@`` (no quoted strings, no comments, no display names, no SMTPUTF8), control
characters and spaces anywhere, IP literals, a domain label that mixes scripts (a Cyrillic
``а`` among Latin letters), and characters that IDNA 2008 does not allow (full-width
letters, symbols, unnormalised forms).
"""

from __future__ import annotations

import re
import unicodedata

import idna

from feedsvc.errors import InvalidInputError

_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*\Z")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
FIELD = "email"


def _refuse(reason: str) -> InvalidInputError:
    return InvalidInputError(f"not an address the newsletter accepts: {reason}", field=FIELD)


def _scripts(label: str) -> set[str]:
    """The scripts of a label's letters (LATIN, CYRILLIC, GREEK…), by their Unicode names."""
    return {unicodedata.name(ch, "?").split(" ")[0] for ch in label if ch.isalpha()}


def normalize_address(text: str) -> str:
    """``text`` as stored, or InvalidInputError (``field="email"``) saying why not."""
    if any(unicodedata.category(ch)[0] in "CZ" for ch in text):
        raise _refuse("no spaces or control characters")
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        raise _refuse("it needs one @ with something on each side")
    if not local.isascii():
        raise _refuse("letters beyond ASCII before the @ are not accepted")
    if len(local) > 64 or _LOCAL.match(local) is None:
        raise _refuse("only letters, digits, dots and !#$%&'*+/=?^_`{|}~- before the @")
    domain = domain.lower()
    if not domain.isascii():
        labels = domain.split(".")
        if any(len(_scripts(label)) > 1 for label in labels):
            raise _refuse("a part of the domain mixes alphabets")
        try:
            domain = idna.encode(domain, uts46=False).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            raise _refuse("the domain is not a valid internationalised name") from None
    labels = domain.split(".")
    if len(domain) > 253 or len(labels) < 2 or any(_LABEL.match(label) is None for label in labels):
        raise _refuse("the domain must be a name such as example.org")
    if labels[-1].isdigit():
        raise _refuse("the domain must be a name, not an address")
    return f"{local.lower()}@{domain}"
