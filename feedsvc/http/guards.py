"""Who may call a route: a bearer token that carries the scope the route needs.

Each guarded route names one scope (``feedsvc.model.SCOPES``); ``admin`` allows all of them
and the legacy ``write`` scope what it includes. A missing or bad token is a 401, a valid
token without the scope a 403 whose ``WWW-Authenticate`` names the scope needed
(feedsvc.http.errors). The token's record is left in the request state, where the rate
limiter learns that the token is real.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

from feedsvc.errors import AuthenticationError
from feedsvc.http.common import bearer_token
from feedsvc.model import Scope
from feedsvc.service import Service

# Query parameters that look like credentials: refused outright, since URLs end up in logs,
# browser histories and referrers.
CREDENTIAL_PARAMS = {"access_token", "token", "api_key", "apikey", "key", "auth"}


def require_scope(scope: Scope) -> Guard:
    """A guard: a valid, unrevoked, unexpired token that allows ``scope``."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        if CREDENTIAL_PARAMS & set(connection.query_params.keys()):
            raise AuthenticationError("tokens are accepted only in the Authorization header, never in the URL")
        token = bearer_token(connection)  # type: ignore[arg-type]
        if token is None:
            raise AuthenticationError("this endpoint needs Authorization: Bearer TOKEN")
        service: Service = connection.app.state.service
        connection.state.token = await service.authenticate(token, scope)

    guard.__name__ = guard.__qualname__ = f"require_{scope.replace(':', '_')}"
    return guard


def guards(scope: Scope) -> list[Guard]:
    """The ``guards`` of a route that needs ``scope``."""
    return [require_scope(scope)]


def security(scope: Scope) -> list[dict[str, list[str]]]:
    """The OpenAPI ``security`` of a route that needs ``scope``: a bearer token, the scope
    named as OpenAPI 3.1 allows for any scheme."""
    return [{"bearer": [scope]}]
