"""Write handlers behind the bearer-token guard."""

from __future__ import annotations

import re
from typing import Annotated, Any, TypeVar

import msgspec
from litestar.di import NamedDependency
from litestar.params import FromPath, HeaderParameter, JSONBody, PathParameter
from litestar import Request, Response, delete, patch, post, put
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from feedsvc.errors import AuthenticationError, InvalidInputError
from feedsvc.http.read import API, JSON, ServiceDep, bearer_token, make_etag, responses
from feedsvc.model import SLUG_PATTERN, Category, CategoryIn, Commentary, CommentaryPatch, NewCommentary
from feedsvc.service import Service

_encode = msgspec.json.Encoder().encode

# Query parameters that look like credentials: refused outright, since URLs end up in logs,
# browser histories and referrers.
CREDENTIAL_PARAMS = {"access_token", "token", "api_key", "apikey", "key", "auth"}

IfMatch = Annotated[
    str | None,
    HeaderParameter(name="If-Match", description="The ETag from a GET of this commentary, or `*`.", required=False),
]


async def require_write_token(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: a valid, unrevoked, unexpired token with the ``write`` scope."""
    if CREDENTIAL_PARAMS & set(connection.query_params.keys()):
        raise AuthenticationError("tokens are accepted only in the Authorization header, never in the URL")
    token = bearer_token(connection)  # type: ignore[arg-type]
    if token is None:
        raise AuthenticationError("this endpoint needs Authorization: Bearer TOKEN")
    service: Service = connection.app.state.service
    connection.state.token = await service.authenticate(token, "write")


_AT_PATH = re.compile(r" - at `\$\.?(.*)`$")
T = TypeVar("T")


async def strict_body(request: Request[Any, Any, Any], type_: type[T]) -> T:
    """Decode the body strictly against ``type_``.

    Litestar validates ``data`` in msgspec's lax mode, which reads ``1772866800`` as a
    date and ``"5"`` as a number; the contract wants RFC 3339 strings and real JSON types.
    The annotated ``data`` parameter still documents the body in OpenAPI.
    """
    try:
        return msgspec.json.decode(await request.body(), type=type_)
    except msgspec.ValidationError as e:
        match = _AT_PATH.search(str(e))
        field = match.group(1) if match else None
        message = _AT_PATH.sub("", str(e))
        raise InvalidInputError(message if field is None else f"{message} (at {field})", field=field or "body", source="body") from None
    except msgspec.DecodeError as e:
        raise InvalidInputError(f"the body is not valid JSON: {e}", field="body", source="body") from None


WRITE_GUARDS = [require_write_token]
WRITE_SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]


def _item_response(item: Commentary, status: int, service: NamedDependency[Service], *, location: bool = False) -> Response[Commentary]:
    body = _encode(item)
    headers = {"ETag": make_etag(body, item.version), "Cache-Control": "no-store"}
    if location:
        headers["Location"] = f"{service.base_url}{API}/commentaries/{item.id}"
    return Response(content=body, status_code=status, headers=headers, media_type=JSON)


@post(f"{API}/commentaries", summary="Publish a commentary (201 with Location)", tags=["write"], status_code=201, guards=WRITE_GUARDS, security=WRITE_SECURITY, responses=responses(400, 401, 403, 409, 413, 503))
async def create_commentary(request: Request[Any, Any, Any], data: JSONBody[NewCommentary], service: ServiceDep) -> Response[Commentary]:
    item = await service.publish(await strict_body(request, NewCommentary))
    return _item_response(item, 201, service, location=True)


@put(f"{API}/commentaries/{{id:str}}", summary="Replace a commentary", tags=["write"], guards=WRITE_GUARDS, security=WRITE_SECURITY, responses=responses(400, 401, 403, 404, 409, 412, 413, 428, 503))
async def replace_commentary(request: Request[Any, Any, Any], id: FromPath[str], data: JSONBody[NewCommentary], service: ServiceDep, if_match: IfMatch = None) -> Response[Commentary]:
    item = await service.replace(id, await strict_body(request, NewCommentary), if_match=if_match)
    return _item_response(item, 200, service)


@patch(f"{API}/commentaries/{{id:str}}", summary="Change some fields (JSON merge patch)", tags=["write"], guards=WRITE_GUARDS, security=WRITE_SECURITY, responses=responses(400, 401, 403, 404, 409, 412, 413, 428, 503))
async def patch_commentary(request: Request[Any, Any, Any], id: FromPath[str], data: JSONBody[CommentaryPatch], service: ServiceDep, if_match: IfMatch = None) -> Response[Commentary]:
    item = await service.patch(id, await strict_body(request, CommentaryPatch), if_match=if_match)
    return _item_response(item, 200, service)


@delete(f"{API}/commentaries/{{id:str}}", summary="Delete a commentary (a tombstone stays for mirrors)", tags=["write"], status_code=204, guards=WRITE_GUARDS, security=WRITE_SECURITY, responses=responses(400, 401, 403, 404, 412, 428, 503))
async def delete_commentary(id: FromPath[str], service: ServiceDep, if_match: IfMatch = None) -> None:
    await service.retract(id, if_match=if_match)


@put(f"{API}/categories/{{slug:str}}", summary="Create or replace a category", tags=["write"], guards=WRITE_GUARDS, security=WRITE_SECURITY, responses=responses(400, 401, 403, 413, 503))
async def put_category(request: Request[Any, Any, Any], slug: Annotated[str, PathParameter(pattern=SLUG_PATTERN)], data: JSONBody[CategoryIn], service: ServiceDep) -> Response[Category]:
    category, created = await service.put_category(slug, await strict_body(request, CategoryIn))
    headers = {"Location": f"{service.base_url}{API}/categories/{slug}"} if created else {}
    return Response(content=_encode(category), status_code=201 if created else 200, headers=headers, media_type=JSON)


HANDLERS = [create_commentary, replace_commentary, patch_commentary, delete_commentary, put_category]

