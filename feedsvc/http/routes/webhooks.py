"""``/api/v1/webhooks``: subscriptions to signed change events (issue 4, part 6).

Every route needs a token with the ``webhooks:manage`` scope (or ``admin``), reads
included: the list names who is told about changes, and where, so an editor's token
(``commentaries:write``, or the legacy ``write``) can neither read nor change it. The
signing secret appears once, in the answer to the registration.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from feedsvc.http.bodies import WriteRequest, strict_body
from feedsvc.http.common import API, JSON, responses
from feedsvc.http.guards import guards, security
from feedsvc.model import WEBHOOKS_MANAGE, CreatedWebhook, NewWebhook, TokenInfo, Webhook
from feedsvc.push.webhooks import WebhookRegistry

_encode = msgspec.json.Encoder().encode


WebhooksDep = NamedDependency[WebhookRegistry]

HOOK_GUARDS = guards(WEBHOOKS_MANAGE)
HOOK_SECURITY = security(WEBHOOKS_MANAGE)


# Subscribers and their state are private and change by themselves: never cached anywhere.
_NO_STORE = {"Cache-Control": "no-store"}


def _json(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(
        content=_encode(value), status_code=status, headers={**_NO_STORE, **(headers or {})}, media_type=JSON
    )


@post(
    f"{API}/webhooks",
    summary="Subscribe a URL to signed change events (the secret is shown only here)",
    tags=["webhooks"],
    status_code=201,
    guards=HOOK_GUARDS,
    request_class=WriteRequest,
    security=HOOK_SECURITY,
    responses=responses(400, 401, 403, 413, 415, 422, 503),
)
async def create_webhook(
    request: Request[Any, Any, Any], data: JSONBody[NewWebhook], webhooks: WebhooksDep
) -> Response[CreatedWebhook]:
    token: TokenInfo = request.state.token
    created = await webhooks.register(await strict_body(request, NewWebhook), owner=token.id)
    location = f"{request.app.state.service.base_url}{API}/webhooks/{created.id}"
    return _json(created, 201, {"Location": location})


@get(
    f"{API}/webhooks",
    summary="Every webhook subscription with its delivery state",
    tags=["webhooks"],
    guards=HOOK_GUARDS,
    security=HOOK_SECURITY,
    responses=responses(401, 403, 503),
)
async def list_webhooks(webhooks: WebhooksDep) -> Response[list[Webhook]]:
    return _json(await webhooks.list())


@get(
    f"{API}/webhooks/{{id:str}}",
    summary="One webhook subscription: state, last error, last success",
    tags=["webhooks"],
    guards=HOOK_GUARDS,
    security=HOOK_SECURITY,
    responses=responses(401, 403, 404, 503),
)
async def get_webhook(id: FromPath[str], webhooks: WebhooksDep) -> Response[Webhook]:
    return _json(await webhooks.get(id))


@delete(
    f"{API}/webhooks/{{id:str}}",
    summary="Unsubscribe: no more deliveries",
    tags=["webhooks"],
    status_code=204,
    guards=HOOK_GUARDS,
    security=HOOK_SECURITY,
    responses=responses(401, 403, 404, 503),
)
async def delete_webhook(id: FromPath[str], webhooks: WebhooksDep) -> None:
    await webhooks.delete(id)


HANDLERS = [
    create_webhook,
    list_webhooks,
    get_webhook,
    delete_webhook,
]
