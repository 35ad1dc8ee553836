"""API tokens: made, checked and revoked; stored only as salted hashes.

``Service`` takes these use cases as a base class, so callers keep asking the service.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from feedsvc.errors import AuthenticationError, InvalidInputError, NotFoundError, PermissionDeniedError, StorageError
from feedsvc.model import SCOPES, TokenInfo
from feedsvc.store import Store, TokenRecord
from feedsvc.text import clean_line

TOKEN_PREFIX = "fsv"
"""What every token starts with (``fsv_ID_SECRET``), so a leaked one is easy to recognise."""


class TokenUseCases:
    """Creating, authenticating, listing and revoking tokens."""

    store: Store
    clock: Callable[[], datetime]

    async def create_token(
        self, name: str, scopes: list[str], *, expires_in: timedelta | None = None
    ) -> tuple[str, TokenInfo]:
        """Make a token with ``scopes`` (names from ``feedsvc.model.SCOPES``); return its secret
        form (shown once, never stored) and its record. InvalidInputError for no scope, an
        unknown one, or no name."""
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown or not scopes:
            raise InvalidInputError(f"scopes must be among {', '.join(SCOPES)}", field="scope")
        name = clean_line(name)
        if not name:
            raise InvalidInputError("a token needs a name", field="name")
        now = self.clock()
        token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        info = TokenInfo(
            id=token_id, name=name, scopes=sorted(set(scopes)), created_at=now,
            expires_at=now + expires_in if expires_in else None,
        )
        await self.store.add_token(TokenRecord(info=info, salt=salt, digest=_digest(salt, secret)))
        return f"{TOKEN_PREFIX}_{token_id}_{secret}", info

    async def authenticate(self, token: str, scope: str) -> TokenInfo:
        """Check a presented token and its scope; AuthenticationError or PermissionDeniedError."""
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
            raise AuthenticationError("malformed token")
        try:
            record = await self.store.get_token(parts[1])
        except NotFoundError:
            raise AuthenticationError("unknown token") from None
        if not hmac.compare_digest(record.digest, _digest(record.salt, parts[2])):
            raise AuthenticationError("unknown token")
        info = record.info
        if info.revoked_at is not None:
            raise AuthenticationError("token revoked")
        if info.expires_at is not None and info.expires_at <= self.clock():
            raise AuthenticationError("token expired")
        if not info.allows(scope):
            raise PermissionDeniedError(f"this operation needs the {scope!r} scope", required_scope=scope)
        return info

    async def list_tokens(self) -> list[TokenInfo]:
        return await self.store.get_tokens()

    async def revoke_token(self, id: str) -> TokenInfo:
        """Revoke a token and read it back: NotFoundError if unknown; StorageError if the
        database does not show it revoked afterwards (something in it undid the write), as
        a revocation reported done while the token still works is worse than a failure."""
        await self.store.revoke_token(id, now=self.clock())
        info = (await self.store.get_token(id)).info
        if info.revoked_at is None:
            raise StorageError(
                f"token {id} still reads as not revoked after the revocation: the database did not keep it"
                " and the token still works"
            )
        return info


def _digest(salt: bytes, secret: str) -> bytes:
    return hashlib.sha256(salt + secret.encode()).digest()
