"""What the newsletter signs: the links in its mails and the proof-of-work challenges.

Everything is ``feedsvc.cursors.sign``'s form, ``base64url(payload).base64url(mac)``,
under a key derived from the store's secret, so every node accepts every other node's
links. The payloads (JSON arrays, first element the kind):

* ``["confirm", subscriber_id, nonce, expires_s]``: the double opt-in link. Single-use
  because confirming clears the subscriber's nonce; a later sign-up makes a new one.
* ``["unsubscribe", subscriber_id]``: in every mail's ``List-Unsubscribe`` and footer.
  It never expires (mail stays in mailboxes for years, and RFC 8058 asks that the link
  keep working) and can be used again: unsubscribing is idempotent.
* ``["pow", expires_s, random]``: a challenge. Solving it means finding a nonce such that
  SHA-256 of ``challenge:email:nonce`` starts with ``bits`` zero bits; the work is bound to
  the address, so one solution serves one address only, and the store's throttle keeps
  a solved challenge from mailing its address more than once an hour.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import msgspec

from feedsvc.cursors import sign, unsign
from feedsvc.errors import InvalidCursorError, InvalidInputError

_decode = msgspec.json.Decoder(list[str | int]).decode
_encode = msgspec.json.encode


def newsletter_key(secret: bytes) -> bytes:
    """The key of the newsletter's signatures: apart from the cursors' key, so that no
    cursor can ever be passed off as a link."""
    return hmac.new(secret, b"feedsvc newsletter links", hashlib.sha256).digest()


def _open(key: bytes, token: str, kind: str, size: int) -> list[str | int] | None:
    try:
        payload = unsign(key, token, "token")
    except InvalidCursorError:
        return None
    try:
        value = _decode(payload)
    except msgspec.DecodeError:
        return None
    return value if len(value) == size and value[0] == kind else None


def confirm_link(key: bytes, subscriber_id: str, nonce: str, expires_s: int) -> str:
    return sign(key, _encode(["confirm", subscriber_id, nonce, expires_s]))


def open_confirm_link(key: bytes, token: str, now_s: int) -> tuple[str, str] | None:
    """(subscriber id, nonce) of a genuine, unexpired confirmation link; else None."""
    value = _open(key, token, "confirm", 4)
    if value is None or not isinstance(value[3], int) or value[3] < now_s:
        return None
    return str(value[1]), str(value[2])


def unsubscribe_link(key: bytes, subscriber_id: str) -> str:
    return sign(key, _encode(["unsubscribe", subscriber_id]))


def open_unsubscribe_link(key: bytes, token: str) -> str | None:
    """The subscriber id of a genuine unsubscribe link; else None."""
    value = _open(key, token, "unsubscribe", 2)
    return str(value[1]) if value is not None else None


def new_challenge(key: bytes, expires_s: int) -> str:
    return sign(key, _encode(["pow", expires_s, secrets.token_hex(8)]))


def leading_zero_bits(digest: bytes) -> int:
    bits = 0
    for byte in digest:
        if byte:
            return bits + 8 - byte.bit_length()
        bits += 8
    return bits


def check_proof(key: bytes, challenge: str, email: str, nonce: str, *, bits: int, now_s: int) -> None:
    """InvalidInputError (``field="proof"``) unless ``challenge`` is genuine and unexpired
    and ``nonce`` solves it for ``email`` (as the client sent it: its browser cannot know
    the normalised form)."""
    value = _open(key, challenge, "pow", 3)
    if value is None:
        raise InvalidInputError("the proof of work's challenge is not one this service made", field="proof")
    if not isinstance(value[1], int) or value[1] < now_s:
        raise InvalidInputError("the proof of work's challenge expired; fetch a new one", field="proof")
    digest = hashlib.sha256(f"{challenge}:{email}:{nonce}".encode()).digest()
    if leading_zero_bits(digest) < bits:
        raise InvalidInputError("the proof of work does not solve the challenge", field="proof")


def solve(challenge: str, email: str, bits: int) -> str:
    """A nonce that solves ``challenge`` for ``email`` (what a browser's script does; the
    command line and tests use it)."""
    n = 0
    while True:
        nonce = format(n, "x")
        if leading_zero_bits(hashlib.sha256(f"{challenge}:{email}:{nonce}".encode()).digest()) >= bits:
            return nonce
        n += 1
