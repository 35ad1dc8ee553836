"""Write request bodies, for the write and webhook routes: JSON, declared as JSON, decoded
strictly (no duplicate keys, no unknown fields) into the model's types."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

import msgspec
from litestar import Request
from litestar.exceptions import HTTPException, SerializationException

from feedsvc.errors import InvalidInputError
from feedsvc.model import is_slug
from feedsvc.problems import body_problems, summary
from feedsvc.service import Service

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
        (
            v.strip().strip('"').lower()
            for k, _, v in (p.partition("=") for p in params.split(";"))
            if k.strip().lower() == "charset"
        ),
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
            value = await super().json()
        except RecursionError:
            raise InvalidInputError("the body is nested too deeply", field="body", source="body") from None
        except (SerializationException, ValueError) as e:
            reason = e.detail if isinstance(e, SerializationException) else str(e)
            raise InvalidInputError(f"the body is not valid JSON: {reason}", field="body", source="body") from None
        # Litestar checks the body against the handler's type next, and stops at the first
        # problem; here every problem is listed at once.
        expected = self.route_handler.parsed_data_field
        if expected is not None:
            problems = body_problems(value, expected.annotation)
            category = value.get("category") if isinstance(value, dict) else None
            if problems and isinstance(category, str) and is_slug(category):
                service: Service = self.app.state.service
                problems.extend(await service.category_problems([category], source="body"))
            if problems:
                raise InvalidInputError(summary(problems), problems=problems)
        return value


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
        raise InvalidInputError(
            f"the key {key!r} occurs more than once in an object", field=key, source="body"
        ) from None
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
        raise InvalidInputError(
            message if field is None else f"{message} (at {field})", field=field or "body", source="body"
        ) from None
    except (msgspec.DecodeError, ValueError) as e:
        raise InvalidInputError(f"the body is not valid JSON: {e}", field="body", source="body") from None
    except RecursionError:
        raise InvalidInputError("the body is nested too deeply", field="body", source="body") from None
    reject_duplicate_keys(body)
    return value
