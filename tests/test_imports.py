"""The package's modules import one another without a circle (issue 13).

Every ``import`` of a ``deblur_cli`` module counts, also those inside functions (a lazy
import still ties the two modules together); imports under ``if TYPE_CHECKING:`` do not
(they never run). A package's own ``__init__`` is not an edge of its submodules.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "deblur_cli"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(tree: ast.AST, here: str, modules: dict[str, Path]) -> set[str]:
    """Names of the package's modules that ``tree`` imports."""
    out: set[str] = set()

    def target(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.update(t for a in node.names if (t := target(a.name)))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:  # `from deblur_cli import image_io` names a module
                t = target(f"{node.module}.{a.name}") or target(node.module)
                if t:
                    out.add(t)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    out.discard(here)
    return {m for m in out if not here.startswith(m + ".")}  # a package's __init__ is not an edge


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imported(ast.parse(path.read_text()), name, modules) for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a list of module names (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := dfs(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := dfs(node)):
            return found
    return None


def test_the_walker_sees_real_edges():
    graph = _graph()
    assert "deblur_cli.image_io" in graph["deblur_cli.pipeline"]
    assert "deblur_cli.weights.formats" in graph["deblur_cli.weights.registry"]
    assert "deblur_cli.synthesis" in graph["deblur_cli.make_pairs"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_in_the_package():
    cycle = _cycle(_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_layers_point_one_way():
    """formats < download < registry < load; synthesis is pure; the library never imports the CLI."""
    graph = _graph()
    w = "deblur_cli.weights."
    assert w + "load" not in graph[w + "registry"] | graph[w + "download"] | graph[w + "formats"]
    assert w + "registry" not in graph[w + "download"] | graph[w + "formats"]
    assert w + "download" not in graph[w + "formats"]
    assert not graph["deblur_cli.synthesis"] & {"deblur_cli.datasets", "deblur_cli.make_pairs"}
    cli = {m for m in graph if m.startswith("deblur_cli.cli")}
    library = [m for m in graph if m not in cli and m not in ("deblur_cli.__main__",)]
    assert not [m for m in library if graph[m] & cli]
