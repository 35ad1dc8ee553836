"""Write handlers, each behind a bearer-token guard for its scope (feedsvc.http.guards)."""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, HeaderParameter, JSONBody, PathParameter

from feedsvc.errors import InvalidInputError
from feedsvc.http.bodies import WriteRequest, strict_body
from feedsvc.http.common import API, JSON, ServiceDep, responses
from feedsvc.http.conditional import make_etag
from feedsvc.http.guards import guards, security
from feedsvc.model import (
    CATEGORIES_WRITE,
    COMMENTARIES_WRITE,
    SLUG_PATTERN,
    Category,
    CategoryIn,
    Commentary,
    CommentaryPatch,
    NewCommentary,
    TokenInfo,
)
from feedsvc.service import Service

_encode = msgspec.json.Encoder().encode


IfMatch = Annotated[
    str | None,
    HeaderParameter(name="If-Match", description="The ETag from a GET of this commentary, or `*`.", required=False),
]


IdempotencyKeyHeader = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        description="Any unique string (a UUID) of 1-255 visible ASCII characters. A retried POST with the same "
        "key and token within 24 hours stores nothing new and gets the first answer again (201, the same id, "
        "`Idempotent-Replayed: true`); the same key with another body is a 409.",
        required=False,
    ),
]
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def parse_idempotency_key(header: str) -> str:
    """The key of an ``Idempotency-Key`` header (an sf-string, quoted, or a bare token)."""
    value = header.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if _IDEMPOTENCY_KEY.fullmatch(value) is None:
        raise InvalidInputError(
            "Idempotency-Key must be 1-255 visible ASCII characters", field="Idempotency-Key", source="header"
        )
    return value


CHANGE_HEADER = "Feedsvc-Change"
"""The change number of a commentary write: a read sent with it as ``Feedsvc-Min-Change``
sees the write on every node (feedsvc.http.fastpath, ``Service.state``)."""

WRITE_GUARDS = guards(COMMENTARIES_WRITE)
WRITE_SECURITY = security(COMMENTARIES_WRITE)
CATEGORY_GUARDS = guards(CATEGORIES_WRITE)
CATEGORY_SECURITY = security(CATEGORIES_WRITE)


def _item_response(
    item: Commentary, status: int, service: NamedDependency[Service], *, location: bool = False, replayed: bool = False
) -> Response[Any]:
    # Encoded here, once, because the ETag is computed over these very bytes; the handlers'
    # Response[Commentary] annotations still document the body in OpenAPI.
    body = _encode(item)
    headers = {"ETag": make_etag(body, item.version), "Cache-Control": "no-store", CHANGE_HEADER: str(item.version)}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    if location:
        headers["Location"] = f"{service.base_url}{API}/commentaries/{item.id}"
    return Response(content=body, status_code=status, headers=headers, media_type=JSON)


@post(
    f"{API}/commentaries",
    summary="Publish a commentary (201 with Location)",
    tags=["write"],
    status_code=201,
    guards=WRITE_GUARDS,
    request_class=WriteRequest,
    security=WRITE_SECURITY,
    responses=responses(400, 401, 403, 409, 413, 415, 503),
)
async def create_commentary(
    request: Request[Any, Any, Any],
    data: JSONBody[NewCommentary],
    service: ServiceDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response[Commentary]:
    new = await strict_body(request, NewCommentary)
    if idempotency_key is None:
        return _item_response(await service.publish(new), 201, service, location=True)
    token: TokenInfo = request.state.token
    item, created = await service.publish_once(new, owner=token.id, key=parse_idempotency_key(idempotency_key))
    return _item_response(item, 201, service, location=True, replayed=not created)


@put(
    f"{API}/commentaries/{{id:str}}",
    summary="Replace a commentary",
    tags=["write"],
    guards=WRITE_GUARDS,
    request_class=WriteRequest,
    security=WRITE_SECURITY,
    responses=responses(400, 401, 403, 404, 409, 412, 413, 415, 428, 503),
)
async def replace_commentary(
    request: Request[Any, Any, Any],
    id: FromPath[str],
    data: JSONBody[NewCommentary],
    service: ServiceDep,
    if_match: IfMatch = None,
) -> Response[Commentary]:
    item = await service.replace(id, await strict_body(request, NewCommentary), if_match=if_match)
    return _item_response(item, 200, service)


@patch(
    f"{API}/commentaries/{{id:str}}",
    summary="Change some fields (JSON merge patch)",
    tags=["write"],
    guards=WRITE_GUARDS,
    request_class=WriteRequest,
    security=WRITE_SECURITY,
    responses=responses(400, 401, 403, 404, 409, 412, 413, 415, 428, 503),
)
async def patch_commentary(
    request: Request[Any, Any, Any],
    id: FromPath[str],
    data: JSONBody[CommentaryPatch],
    service: ServiceDep,
    if_match: IfMatch = None,
) -> Response[Commentary]:
    item = await service.patch(id, await strict_body(request, CommentaryPatch), if_match=if_match)
    return _item_response(item, 200, service)


@delete(
    f"{API}/commentaries/{{id:str}}",
    summary="Delete a commentary (a tombstone stays for mirrors)",
    tags=["write"],
    status_code=204,
    guards=WRITE_GUARDS,
    security=WRITE_SECURITY,
    responses=responses(400, 401, 403, 404, 412, 428, 503),
)
async def delete_commentary(id: FromPath[str], service: ServiceDep, if_match: IfMatch = None) -> Response[None]:
    seq = await service.retract(id, if_match=if_match)
    return Response(content=None, status_code=204, headers={CHANGE_HEADER: str(seq)})


@put(
    f"{API}/categories/{{slug:str}}",
    summary="Create or replace a category",
    tags=["write"],
    guards=CATEGORY_GUARDS,
    request_class=WriteRequest,
    security=CATEGORY_SECURITY,
    responses=responses(400, 401, 403, 413, 415, 503),
)
async def put_category(
    request: Request[Any, Any, Any],
    slug: Annotated[str, PathParameter(pattern=SLUG_PATTERN)],
    data: JSONBody[CategoryIn],
    service: ServiceDep,
) -> Response[Category]:
    category, created = await service.put_category(slug, await strict_body(request, CategoryIn))
    headers = {"Location": f"{service.base_url}{API}/categories/{slug}"} if created else {}
    response: Response[Any] = Response(
        content=_encode(category), status_code=201 if created else 200, headers=headers, media_type=JSON
    )
    return response


HANDLERS = [
    create_commentary,
    replace_commentary,
    patch_commentary,
    delete_commentary,
    put_category,
]
