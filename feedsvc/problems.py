"""Every problem of a request at once, each naming its field.

msgspec stops at the first thing wrong with a value; someone writing their first request
then fixes one field per round trip. ``body_problems`` walks a decoded JSON value along the
type it should have (the model's Structs, with their ``Meta`` limits) and lists every
problem: missing fields, unknown fields with the nearest known name, values outside an
enumeration with the values there are, and whatever msgspec says of each other field.

A problem is the entry the error body's ``extra`` list holds (feedsvc.http.errors):
``{"message", "key", "source"}``, plus ``"allowed"`` (the valid values) when there is a
fixed set of them. This module sits beside ``feedsvc.model`` and imports only msgspec.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import msgspec

Problem = dict[str, Any]


def problem(message: str, key: str, source: str = "body", allowed: Sequence[str] | None = None) -> Problem:
    """One entry of an error's ``extra`` list."""
    out: Problem = {"message": message, "key": key, "source": source}
    if allowed is not None:
        out["allowed"] = list(allowed)
    return out


def summary(problems: Sequence[Problem], where: str = "the body") -> str:
    """The ``detail`` of an error with ``problems``: the one message, or all of them."""
    if len(problems) == 1:
        return str(problems[0]["message"])
    return f"{len(problems)} problems in {where}: " + "; ".join(str(p["message"]) for p in problems)


def nearest(name: str, known: Sequence[str]) -> str | None:
    """The known name ``name`` was most likely meant to be (a typo, another case), if any."""
    lowered = {k.lower(): k for k in known}
    if name.lower() in lowered:
        return lowered[name.lower()]
    found = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[found[0]] if found else None


def one_of(key: str, value: object, allowed: Sequence[str], source: str = "body") -> Problem:
    """``value`` is not among ``allowed``: say which ones there are, and the nearest."""
    guess = nearest(value, allowed) if isinstance(value, str) else None
    hint = f"; did you mean `{guess}`?" if guess else ""
    return problem(
        f"`{key}` must be one of {', '.join(allowed)}, not {_show(value)}{hint}", key, source, allowed=allowed
    )


def body_problems(value: Any, type_: Any, *, source: str = "body") -> list[Problem]:
    """Every way ``value`` (decoded JSON) fails to be a ``type_``; empty when it is one,
    as far as the types can tell (the rules a Struct checks in ``__post_init__`` included)."""
    out: list[Problem] = []
    _check(value, type_, "", out, source)
    return out


def _show(value: object) -> str:
    text = msgspec.json.encode(value).decode() if not isinstance(value, bytes) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def _unwrap(type_: Any) -> tuple[Any, list[msgspec.Meta]]:
    metas: list[msgspec.Meta] = []
    while get_origin(type_) is Annotated:
        type_, *extras = get_args(type_)
        metas.extend(m for m in extras if isinstance(m, msgspec.Meta))
    return type_, metas


def _check(value: Any, type_: Any, key: str, out: list[Problem], source: str) -> None:
    inner, metas = _unwrap(type_)
    origin = get_origin(inner)
    if origin is Union or isinstance(inner, types.UnionType):
        options = [o for o in get_args(inner) if o is not msgspec.UnsetType]
        if value is None and type(None) in options:
            return
        options = [o for o in options if o is not type(None)]
        if len(options) == 1:
            _check(value, options[0], key, out, source)
            return
    elif origin is Literal:
        allowed = [str(a) for a in get_args(inner)]
        if value not in get_args(inner):
            out.append(one_of(key, value, allowed, source))
        return
    elif isinstance(inner, type) and issubclass(inner, msgspec.Struct) and isinstance(value, dict):
        _check_struct(value, inner, key, out, source)
        return
    elif origin is list and isinstance(value, list):
        _check_list(value, inner, metas, key, out, source)
        return
    try:
        msgspec.convert(value, type_, strict=True)
    except msgspec.ValidationError as e:
        out.append(_from_msgspec(e, key, source))


def _check_list(
    value: list[Any], type_: Any, metas: list[msgspec.Meta], key: str, out: list[Problem], source: str
) -> None:
    for meta in metas:
        if meta.min_length is not None and len(value) < meta.min_length:
            out.append(problem(f"`{key}` needs at least {meta.min_length} item(s), not {len(value)}", key, source))
        if meta.max_length is not None and len(value) > meta.max_length:
            out.append(problem(f"`{key}` takes at most {meta.max_length} items, not {len(value)}", key, source))
    (item,) = get_args(type_)
    for i, element in enumerate(value):
        _check(element, item, f"{key}[{i}]", out, source)


def _check_struct(
    value: dict[str, Any], type_: type[msgspec.Struct], key: str, out: list[Problem], source: str
) -> None:
    fields = {f.encode_name: f for f in msgspec.structs.fields(type_)}
    before = len(out)
    if type_.__struct_config__.forbid_unknown_fields:
        for name in value:
            if name not in fields:
                guess = nearest(name, list(fields))
                hint = f"; did you mean `{_join(key, guess)}`?" if guess else ""
                out.append(problem(f"unknown field `{_join(key, name)}`{hint}", _join(key, name), source))
    for name, field in fields.items():
        if name in value:
            _check(value[name], field.type, _join(key, name), out, source)
        elif field.required:
            out.append(problem(f"`{_join(key, name)}` is required", _join(key, name), source))
    if len(out) == before:
        # The fields are fine one by one; what is left are the rules across fields.
        try:
            msgspec.convert(value, type_, strict=True)
        except msgspec.ValidationError as e:
            out.append(_from_msgspec(e, key or "body", source))


def _from_msgspec(error: msgspec.ValidationError, key: str, source: str) -> Problem:
    """msgspec's message, its ``- at `$.path``` turned into the problem's key."""
    message = str(error)
    path = ""
    if " - at `$" in message:
        message, _, at = message.rpartition(" - at `$")
        path = at.rstrip("`").lstrip(".")
    full = f"{key}{'' if not path or path.startswith('[') else '.'}{path}" if key else path
    full = full or "body"
    return problem(f"`{full}`: {message}" if full != "body" else message, full, source)
