"""The package's modules import one another without a circle (issue 13), and its
subpackages only in the direction of the layer table (issue 19).

Every ``import`` of a ``deblur_cli`` module counts, also those inside functions (a lazy
import still ties the two modules together) and those under ``if TYPE_CHECKING:`` (they
never run, but the design still runs in a loop) and those of a package's ``__init__`` (a
submodule that imports its own package's ``__init__``, which imports it back, is a circle).
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


def _imported(tree: ast.AST, here: str, modules: dict[str, Path]) -> set[str]:
    """Names of the package's modules that ``tree`` imports."""
    out: set[str] = set()

    def target(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    def visit(node: ast.AST) -> None:
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
    return out


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
    assert "deblur_cli.files.image_io" in graph["deblur_cli.pipeline.image"]
    assert "deblur_cli.weights.formats" in graph["deblur_cli.weights.registry"]
    assert "deblur_cli.synthesis" in graph["deblur_cli.data.make_pairs"]
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
    assert not graph["deblur_cli.synthesis"] & {"deblur_cli.data.datasets", "deblur_cli.data.make_pairs"}
    cli = {m for m in graph if m.startswith("deblur_cli.cli")}
    library = [m for m in graph if m not in cli and m not in ("deblur_cli.__main__",)]
    assert not [m for m in library if graph[m] & cli]


# ---------------------------------------------------------------------------------------------
# Layers (issue 19): the folders of docs/ARCHITECTURE.md and which ones each may import.
# A module belongs to the layer named by its first part under deblur_cli/; the modules
# directly in deblur_cli/ are named in TOP_LEVEL. A new folder or top-level module must be
# added here (test_every_module_has_a_layer), and each subpackage's docstring says what it
# may import in a "May import: ..." line that matches ALLOWED.

LIBRARY = ("core", "files", "network", "synthesis", "quality", "weights", "methods", "pipeline", "data", "api", "training", "tools")
# The arrows of the picture in docs/ARCHITECTURE.md; a layer may import what its arrows
# reach, directly or through other arrows (ALLOWED).
ARROWS: dict[str, set[str]] = {
    "core": set(),  # errors, progress
    "files": {"core"},
    "network": {"core"},
    "synthesis": {"files"},
    "quality": {"files"},
    "weights": {"files", "network"},
    "data": {"synthesis"},
    "methods": {"weights"},
    "pipeline": {"files"},  # the main path: image and batch, planned then run  # the method registry and the one inference-options value
    "api": {"methods"},  # api.py and the package's __init__ (version, lazy Deblurrer)
    "training": {"data", "quality", "weights"},
    "tools": {"data", "quality", "api"},
    # Front ends: they may import the library ("the library" in a docstring); nothing in the
    # library imports them. The CLI starts the web server inside its command.
    "serve": {"training", "tools", "pipeline"},
    "cli": {"serve", "training", "tools", "pipeline"},
    "__main__": {"cli"},
}


def _reach(arrows: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(arrows[start])
    while todo:
        layer = todo.pop()
        if layer not in seen:
            seen.add(layer)
            todo.extend(arrows[layer])
    return seen


ALLOWED: dict[str, set[str]] = {layer: _reach(ARROWS, layer) for layer in ARROWS}

TOP_LEVEL = {  # the modules directly in deblur_cli/
    PACKAGE: "api",
    f"{PACKAGE}.api": "api",
    f"{PACKAGE}.errors": "core",
    f"{PACKAGE}.progress": "core",
    f"{PACKAGE}.__main__": "__main__",
}
MAX_TOP_LEVEL = 8  # modules directly in deblur_cli/, __init__ and __main__ included


def _layer(module: str) -> str | None:
    if module in TOP_LEVEL:
        return TOP_LEVEL[module]
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (ROOT / parts[1]).is_dir() else None


def _layer_graph(graph: dict[str, set[str]]) -> dict[tuple[str, str], list[str]]:
    """{(layer, imported layer): ["module -> module", ...]} between different layers."""
    edges: dict[tuple[str, str], list[str]] = {}
    for module, imported in graph.items():
        for other in imported:
            a, b = _layer(module), _layer(other)
            if a != b:
                edges.setdefault((a, b), []).append(f"{module} -> {other}")
    return edges


def test_the_layer_table_has_no_circle():
    assert _cycle(ARROWS) is None
    assert _cycle({"a": {"b"}, "b": {"a"}}) is not None
    assert set(LIBRARY) | {"serve", "cli", "__main__"} == set(ARROWS)
    assert ALLOWED["files"] == {"core"}
    assert ALLOWED["api"] == {"core", "files", "network", "weights", "methods"}
    assert ALLOWED["serve"] == set(LIBRARY) and ALLOWED["cli"] == set(LIBRARY) | {"serve"}
    assert not any({"cli", "serve"} & ALLOWED[layer] for layer in LIBRARY)  # the library never imports a front end


def test_every_module_has_a_layer():
    unplaced = sorted(m for m in _modules() if _layer(m) not in ALLOWED)
    assert not unplaced, f"modules outside the layer table (add a row to ALLOWED or TOP_LEVEL): {unplaced}"


def test_at_most_eight_modules_directly_in_the_package():
    top = sorted(p.name for p in ROOT.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL, top
    assert {f"{PACKAGE}.{Path(n).stem}" for n in top} - {f"{PACKAGE}.__init__"} <= set(TOP_LEVEL)


def test_subpackages_import_only_the_layers_below_them():
    wrong = {
        pair: found
        for pair, found in _layer_graph(_graph()).items()
        if pair[1] not in ALLOWED[pair[0]]
    }
    assert not wrong, "imports against the layer table: " + "; ".join(
        f"{a} may not import {b} ({', '.join(sorted(found))})" for (a, b), found in sorted(wrong.items())
    )


def test_the_layer_check_sees_a_wrong_import():
    graph = {"deblur_cli.files.paths": {"deblur_cli.cli.app"}, "deblur_cli.cli.app": set()}
    assert ("files", "cli") in _layer_graph(graph)
    assert "cli" not in ALLOWED["files"]


def test_no_circle_through_type_checking_imports():
    """An import made only for type annotations is still an edge of the circle test."""
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from deblur_cli.errors import DeblurError\n"
    modules = {"deblur_cli.errors": Path("x")}
    assert _imported(ast.parse(source), "deblur_cli.files.paths", modules) == {"deblur_cli.errors"}


def test_each_subpackage_docstring_names_its_responsibility_and_layers():
    for init in sorted(ROOT.glob("*/__init__.py")):
        name = init.parent.name
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert len(doc.splitlines()[0] if doc else "") > 10, f"{name}/__init__.py: no docstring saying what it holds"
        lines = [line for line in doc.splitlines() if line.startswith("May import:")]
        assert lines, f"{name}/__init__.py: the docstring has no 'May import:' line"
        said = {part.strip(" .") for part in lines[0].removeprefix("May import:").split(",")}
        if "the library" in said:
            said = (said - {"the library"}) | set(LIBRARY)
        assert said == ALLOWED[name], f"{name}/__init__.py says it may import {sorted(said)}, the table {sorted(ALLOWED[name])}"
