"""The files ``feedsvc import`` reads, read into entries for the Importer (feedsvc.transfer).

* ``*.jsonl``: one record a line, either a category ``{"kind": "category", "slug", "names",
  "descriptions"}`` or a commentary (``ImportedCommentary``: the fields of a POST plus an
  optional ``id``, ``created_at`` and ``updated_at``), as ``feedsvc export`` writes them;
* ``*.json``: an array of categories without ``kind`` (``data/categories.json``);
* ``*.md``: one commentary, its fields as YAML front matter between ``---`` lines and the
  Markdown after them as ``body_markdown``;
* a folder: every ``.json`` in or below it, then every ``.jsonl``, then every ``.md``, each
  group in path order; other files (images, the database itself) are ignored.

Categories are parsed here; a commentary stays a line of JSON (a Markdown file becomes
one), validated and built later, maybe in a worker process. A record that cannot be read is
a ``BadEntry`` naming ``file:line`` and why.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import msgspec
import yaml

from feedsvc.errors import InvalidInputError
from feedsvc.model import CategoryIn, Slug

SUFFIXES = (".json", ".jsonl", ".md")
_BOM = b"\xef\xbb\xbf"
# Front matter: a first line of ---, YAML, then a line of --- (or ...); the rest is the body.
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)^(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.DOTALL | re.MULTILINE)



class CategoryRecord(CategoryIn, kw_only=True, forbid_unknown_fields=True):
    """A category as import reads it: a line of JSON Lines (with ``kind``) or an element of
    a ``.json`` array (without)."""

    slug: Slug
    kind: Literal["category"] | None = None


_decode_category = msgspec.json.Decoder(CategoryRecord).decode
_decode_array = msgspec.json.Decoder(list[msgspec.Raw]).decode
_encode = msgspec.json.Encoder().encode


# --- what the readers yield ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CategoryEntry:
    where: str
    record: CategoryRecord


@dataclass(frozen=True, slots=True)
class CommentaryEntry:
    """A commentary record as JSON, validated and built later (maybe in another process)."""

    where: str
    line: bytes


@dataclass(frozen=True, slots=True)
class BadEntry:
    where: str
    reason: str


Entry = CategoryEntry | CommentaryEntry | BadEntry


# --- finding and reading files ------------------------------------------------------------


def collect_files(paths: Sequence[str | Path]) -> list[Path]:
    """Expand the paths given to ``feedsvc import`` into the files to read, in order.

    Raises:
        InvalidInputError: a path does not exist or is a file of an unknown kind.
    """
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += _folder_files(path)
        elif path.is_file():
            if path.suffix not in SUFFIXES:
                raise InvalidInputError(f"{path}: not a .jsonl, .json or .md file, nor a folder")
            files.append(path)
        else:
            raise InvalidInputError(f"{path}: no such file or folder")
    return files


def _folder_files(folder: Path) -> list[Path]:
    """Every .json, then .jsonl, then .md file in or below ``folder``, hidden ones left out."""
    found: list[Path] = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(root, n) for n in names if not n.startswith(".") and Path(n).suffix in SUFFIXES]
    return sorted(found, key=lambda p: (SUFFIXES.index(p.suffix), p.as_posix()))


def count_records(path: Path) -> int:
    """About how many records ``path`` holds, cheaply (for the progress bar's total)."""
    if path.suffix == ".jsonl":
        with path.open("rb") as f:
            return sum(1 for line in f if line.strip())
    return 1 if path.suffix == ".md" else 0


def read_file(path: Path) -> Iterator[Entry]:
    """The records of one file: categories parsed, commentaries as JSON, or a BadEntry."""
    if path.suffix == ".jsonl":
        yield from _read_jsonl(path)
    elif path.suffix == ".json":
        yield from _read_category_array(path)
    else:
        yield _read_markdown(path)


def _read_jsonl(path: Path) -> Iterator[Entry]:
    try:
        with path.open("rb") as f:
            for lineno, raw in enumerate(f, 1):
                line = raw.removeprefix(_BOM).strip() if lineno == 1 else raw.strip()
                if line:
                    yield parse_line(f"{path}:{lineno}", line)
    except OSError as e:
        yield BadEntry(f"{path}:1", f"cannot read the file: {e.strerror or e}")


def parse_line(where: str, line: bytes) -> Entry:
    """One JSON Lines record: a category when it has ``"kind"``, else a commentary."""
    if b'"kind"' not in line:
        return CommentaryEntry(where, line)
    try:
        return CategoryEntry(where, _decode_category(line))
    except msgspec.DecodeError as e:  # ValidationError included
        return BadEntry(where, str(e))


def _read_category_array(path: Path) -> Iterator[Entry]:
    try:
        items = _decode_array(path.read_bytes().removeprefix(_BOM))
    except OSError as e:
        yield BadEntry(f"{path}:1", f"cannot read the file: {e.strerror or e}")
        return
    except msgspec.DecodeError as e:
        yield BadEntry(f"{path}:1", f"expected an array of categories: {e}")
        return
    for i, raw in enumerate(items, 1):
        where = f"{path}: item {i}"
        try:
            yield CategoryEntry(where, _decode_category(raw))
        except msgspec.DecodeError as e:
            yield BadEntry(where, str(e))


def _read_markdown(path: Path) -> Entry:
    where = f"{path}:1"
    try:
        text = path.read_text("utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        return BadEntry(where, f"cannot read the file: {e}")
    match = _FRONT_MATTER.match(text)
    if match is None:
        return BadEntry(where, "no front matter: the file must start with a line '---'")
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        return BadEntry(f"{path}:{line}", f"front matter is not valid YAML: {getattr(e, 'problem', None) or e}")
    try:
        return CommentaryEntry(where, markdown_json(meta if meta is not None else {}, text[match.end() :]))
    except InvalidInputError as e:
        return BadEntry(where, e.message)


def markdown_json(meta: Any, body: str) -> bytes:
    """The commentary of a Markdown file as a JSON record, from its front matter and body.

    Dates YAML turned into ``date``/``datetime`` objects become ISO text again, so the record
    is validated exactly like a line of JSON Lines.

    Raises:
        InvalidInputError: the front matter is not a mapping, holds the body, holds a date
            and time without a UTC offset, or holds values JSON cannot carry.
    """
    if not isinstance(meta, dict):
        raise InvalidInputError("the front matter must be a mapping of field: value")
    for key in ("body_markdown", "body_html"):
        if key in meta:
            raise InvalidInputError(f"the body goes after the front matter, not in `{key}`")
    for name, value in _walk(meta):
        if isinstance(value, datetime) and value.tzinfo is None:
            raise InvalidInputError(f"`{name}` needs a UTC offset, e.g. 2026-03-10T08:00:00Z or +03:00")
    try:
        return _encode({**meta, "body_markdown": body.strip("\r\n") if body.strip() else None})
    except (TypeError, ValueError) as e:
        raise InvalidInputError(f"the front matter holds a value JSON cannot carry: {e}") from None


def _walk(value: Any, name: str = "$") -> Iterator[tuple[str, Any]]:
    """Every value nested in parsed YAML, with its path (``period.start``)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, f"{name}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, f"{name}[{i}]")
    else:
        yield name.removeprefix("$."), value
