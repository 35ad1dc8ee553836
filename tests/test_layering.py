"""The direction of imports (STYLE.md, "Module layout"), checked on the source with ``ast``.

``errors <- model <- store <- service <- http, cli``: a layer imports only the layers below
it (and itself); ``render`` sees ``model`` and the pure helpers, ``push`` sees ``model`` and
``store``. Nothing outside ``feedsvc.store`` names an engine (SQLite, PostgreSQL): callers get a
store from ``open_store`` and ask it for capabilities. Inside the store, the shared core never
names an engine either (only the factory does, lazily), and the engines never name each other.
Imports inside functions count as much as those at the top of a module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "feedsvc"

LAYER_OF_TOP = {
    "feedsvc": "ground", "__main__": "cli", "errors": "ground", "text": "ground", "files": "ground",
    "problems": "ground", "paths": "ground",
    "model": "model", "config": "model", "logs": "model", "digest": "model", "commentary": "model",
    "cursors": "model", "query": "model", "importformats": "model", "structure": "model", "bodies": "service",
    "store": "store", "render": "render", "push": "push",
    "service": "service", "tokens": "service", "transfer": "service", "datamove": "service",
    "feeds": "feeds", "newsletter": "newsletter", "http": "http", "cli": "cli",
    "newsletter_cli": "cli",
}
"""The layer of each top-level module or package of feedsvc. A new one must be placed here."""

_BELOW_SERVICE = {"ground", "model", "store"}
MAY_IMPORT = {
    "ground": {"ground"},
    "model": {"ground", "model"},
    "store": {"ground", "model", "store"},
    "render": {"ground", "model", "render"},
    "push": {"ground", "model", "store", "push"},
    "service": {*_BELOW_SERVICE, "service"},
    "feeds": {*_BELOW_SERVICE, "render", "service", "feeds"},
    "newsletter": {*_BELOW_SERVICE, "render", "service", "newsletter"},
    "http": {*_BELOW_SERVICE, "render", "push", "service", "feeds", "newsletter", "http"},
    "cli": {*_BELOW_SERVICE, "render", "push", "service", "feeds", "newsletter", "http", "cli"},
}

ENGINES = {"sqlite": ("sqlite",), "postgres": ("postgres",)}
"""The modules (or packages) under feedsvc.store that belong to one engine."""



def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _exists(module: str) -> bool:
    base = PACKAGE.parent.joinpath(*module.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _imports(path: Path) -> Iterator[str]:
    """Every feedsvc module ``path`` imports, anywhere in it: ``from X import name`` counts
    as importing X.name when that is a module, else X."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.split(".")[0] == "feedsvc")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            if base.split(".")[0] != "feedsvc":
                continue
            for alias in node.names:
                yield f"{base}.{alias.name}" if _exists(f"{base}.{alias.name}") else base


def _layer(module: str) -> str:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "feedsvc"
    assert top in LAYER_OF_TOP, f"{module}: place feedsvc.{top} in a layer (LAYER_OF_TOP in {__name__})"
    return LAYER_OF_TOP[top]


def _engine(module: str) -> str | None:
    """The engine a module under feedsvc.store belongs to (migrations included), or None."""
    parts = module.split(".")
    if parts[:2] != ["feedsvc", "store"] or len(parts) < 3:
        return None
    if parts[2] == "migrations" and len(parts) > 3:
        return parts[3] if parts[3] in ENGINES else None
    return next((engine for engine, names in ENGINES.items() if parts[2] in names), None)


EDGES = sorted(
    {(_module_name(path), target) for path in PACKAGE.rglob("*.py") for target in _imports(path)}
)


def test_the_check_sees_the_imports_it_is_about() -> None:
    """Guards the checks below against passing because they see nothing."""
    assert ("feedsvc.service", "feedsvc.store") in EDGES
    assert ("feedsvc.store.factory", "feedsvc.store.sqlite") in EDGES  # a lazy import
    assert _engine("feedsvc.store.sqlite") == "sqlite"
    assert _engine("feedsvc.store.migrations.postgres") == "postgres"
    assert _engine("feedsvc.store.records") is None


def test_no_module_imports_upward() -> None:
    wrong = [
        f"{source} ({_layer(source)}) imports {target} ({_layer(target)})"
        for source, target in EDGES
        if _layer(target) not in MAY_IMPORT[_layer(source)]
    ]
    assert wrong == []


def test_nothing_outside_the_store_names_an_engine() -> None:
    wrong = [
        f"{source} imports {target}"
        for source, target in EDGES
        if _engine(target) and not source.startswith("feedsvc.store")
    ]
    assert wrong == []


def test_the_store_core_names_no_engine_and_engines_not_each_other() -> None:
    wrong = []
    for source, target in EDGES:
        engine = _engine(target)
        if not source.startswith("feedsvc.store") or engine is None or source == "feedsvc.store.factory":
            continue
        if _engine(source) != engine:
            wrong.append(f"{source} imports {target}")
    assert wrong == []
