"""The benchmark scripts import each other in one direction only (no loop), lazy imports
inside functions included: a loop makes the order of imports matter and hides which script
a helper belongs to."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"


def bench_imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted(BENCH.glob("*.py")):
        module = f"bench.{path.stem}"
        graph[module] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bench."):
                graph[module].add(node.module)
            elif isinstance(node, ast.Import):
                graph[module] |= {a.name for a in node.names if a.name.startswith("bench.")}
    return graph


def test_the_benchmark_scripts_do_not_import_each_other_in_a_loop() -> None:
    graph = bench_imports()
    assert graph["bench.scale"], "the check reads bench's imports"
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as e:
        raise AssertionError(f"bench modules import each other in a loop: {' -> '.join(e.args[1])}") from None
    assert order.index("bench.common") < order.index("bench.run") < order.index("bench.nodes")
