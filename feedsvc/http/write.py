"""Write handlers, each behind a bearer-token guard for its scope (feedsvc.http.guards)."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, TypeVar

import msgspec
from litestar import Request, Response, delete, patch, post, put
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, SerializationException
from litestar.params import FromPath, HeaderParameter, JSONBody, PathParameter

from feedsvc.errors import InvalidInputError
from feedsvc.http.guards import guards, security
from feedsvc.http.read import API, JSON, ServiceDep, make_etag, responses
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


_AT_PATH = re.compile(r" - at `\$\.?(.*)`$")
T = TypeVar("T")

# Issue 7: a write body is JSON and says so. `application/json` or any `application/*+json`
# (merge-patch), in UTF-8; anything else, or no Content-Type at all, is 415 before the body
# is read as JSON, so a form or text/plain post never reaches the decoder.
_JSON_MEDIA_TYPE = re.compile(r"^application/(?:[a-z0-9.+-]+\+)?json$")


def _require_json(request: Request[Any, Any, Any]) -> None:
    header = request.headers.get("content-type")
    media_type, _, params = (header or "").partition(";")
    charset = next(
        (v.strip().strip('"').lower() for k, _, v in (p.partition("=") for p in params.split(";")) if k.strip().lower() == "charset"),
        "utf-8",
    )
    if _JSON_MEDIA_TYPE.fullmatch(media_type.strip().lower()) is None or charset not in ("utf-8", "utf8"):
        raise HTTPException(
            status_code=415,
            detail="the body must be JSON: send Content-Type: application/json (UTF-8)",
            extra={"content_type": (header or "")[:100]},
        )


class WriteRequest(Request[Any, Any, Any]):
    """The request of every write handler: a JSON body declared as JSON, and every way the
    body can fail to decode is a 400 naming the body. Litestar's decoder lets invalid UTF-8
    (UnicodeDecodeError) and very deep nesting (RecursionError) through as 500s."""

    async def json(self) -> Any:
        _require_json(self)
        try:
            return await super().json()
        except RecursionError:
            raise InvalidInputError("the body is nested too deeply", field="body", source="body") from None
        except (SerializationException, ValueError) as e:
            reason = e.detail if isinstance(e, SerializationException) else str(e)
            raise InvalidInputError(f"the body is not valid JSON: {reason}", field="body", source="body") from None


class _DuplicateKey(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> None:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen.add(key)


def reject_duplicate_keys(body: bytes) -> None:
    """400 when any object in ``body`` has a key twice. msgspec (like most decoders) keeps
    the last value silently; a proxy or log reader that keeps the first would then see
    another document than the one stored, so duplicates are refused (issue 7)."""
    try:
        json.loads(body, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as e:
        key = str(e.args[0])
        raise InvalidInputError(f"the key {key!r} occurs more than once in an object", field=key, source="body") from None
    except (ValueError, RecursionError):
        pass  # msgspec has accepted the body; the duplicate check has nothing more to say


async def strict_body(request: Request[Any, Any, Any], type_: type[T]) -> T:
    """Decode the body strictly against ``type_``.

    Litestar validates ``data`` in msgspec's lax mode, which reads ``1772866800`` as a
    date and ``"5"`` as a number; the contract wants RFC 3339 strings and real JSON types.
    The annotated ``data`` parameter still documents the body in OpenAPI.
    """
    body = await request.body()
    try:
        value = msgspec.json.decode(body, type=type_)
    except msgspec.ValidationError as e:
        match = _AT_PATH.search(str(e))
        field = match.group(1) if match else None
        message = _AT_PATH.sub("", str(e))
        raise InvalidInputError(message if field is None else f"{message} (at {field})", field=field or "body", source="body") from None
    except (msgspec.DecodeError, ValueError) as e:
        raise InvalidInputError(f"the body is not valid JSON: {e}", field="body", source="body") from None
    except RecursionError:
        raise InvalidInputError("the body is nested too deeply", field="body", source="body") from None
    reject_duplicate_keys(body)
    return value


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
    headers = {"ETag": make_etag(body, item.version), "Cache-Control": "no-store"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    if location:
        headers["Location"] = f"{service.base_url}{API}/commentaries/{item.id}"
    return Response(content=body, status_code=status, headers=headers, media_type=JSON)


@post(f"{API}/commentaries", summary="Publish a commentary (201 with Location)", tags=["write"], status_code=201, guards=WRITE_GUARDS, request_class=WriteRequest, security=WRITE_SECURITY, responses=responses(400, 401, 403, 409, 413, 415, 503))
async def create_commentary(request: Request[Any, Any, Any], data: JSONBody[NewCommentary], service: ServiceDep, idempotency_key: IdempotencyKeyHeader = None) -> Response[Commentary]:
    new = await strict_body(request, NewCommentary)
    if idempotency_key is None:
        return _item_response(await service.publish(new), 201, service, location=True)
    token: TokenInfo = request.state.token
    item, created = await service.publish_once(new, owner=token.id, key=parse_idempotency_key(idempotency_key))
    return _item_response(item, 201, service, location=True, replayed=not created)


@put(f"{API}/commentaries/{{id:str}}", summary="Replace a commentary", tags=["write"], guards=WRITE_GUARDS, request_class=WriteRequest, security=WRITE_SECURITY, responses=responses(400, 401, 403, 404, 409, 412, 413, 415, 428, 503))
async def replace_commentary(request: Request[Any, Any, Any], id: FromPath[str], data: JSONBody[NewCommentary], service: ServiceDep, if_match: IfMatch = None) -> Response[Commentary]:
    item = await service.replace(id, await strict_body(request, NewCommentary), if_match=if_match)
    return _item_response(item, 200, service)


@patch(f"{API}/commentaries/{{id:str}}", summary="Change some fields (JSON merge patch)", tags=["write"], guards=WRITE_GUARDS, request_class=WriteRequest, security=WRITE_SECURITY, responses=responses(400, 401, 403, 404, 409, 412, 413, 415, 428, 503))
async def patch_commentary(request: Request[Any, Any, Any], id: FromPath[str], data: JSONBody[CommentaryPatch], service: ServiceDep, if_match: IfMatch = None) -> Response[Commentary]:
    item = await service.patch(id, await strict_body(request, CommentaryPatch), if_match=if_match)
    return _item_response(item, 200, service)


@delete(f"{API}/commentaries/{{id:str}}", summary="Delete a commentary (a tombstone stays for mirrors)", tags=["write"], status_code=204, guards=WRITE_GUARDS, security=WRITE_SECURITY, responses=responses(400, 401, 403, 404, 412, 428, 503))
async def delete_commentary(id: FromPath[str], service: ServiceDep, if_match: IfMatch = None) -> None:
    await service.retract(id, if_match=if_match)


@put(f"{API}/categories/{{slug:str}}", summary="Create or replace a category", tags=["write"], guards=CATEGORY_GUARDS, request_class=WriteRequest, security=CATEGORY_SECURITY, responses=responses(400, 401, 403, 413, 415, 503))
async def put_category(request: Request[Any, Any, Any], slug: Annotated[str, PathParameter(pattern=SLUG_PATTERN)], data: JSONBody[CategoryIn], service: ServiceDep) -> Response[Category]:
    category, created = await service.put_category(slug, await strict_body(request, CategoryIn))
    headers = {"Location": f"{service.base_url}{API}/categories/{slug}"} if created else {}
    response: Response[Any] = Response(
        content=_encode(category), status_code=201 if created else 200, headers=headers, media_type=JSON
    )
    return response


HANDLERS = [create_commentary, replace_commentary, patch_commentary, delete_commentary, put_category]

