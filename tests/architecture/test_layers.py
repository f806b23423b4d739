"""The layers of DESIGN.md hold: no import cycle inside ``streamdsl/`` or ``backends/``, and no
import against the layers (the kernel importing connectors or backends, a backend importing the
DSL or another backend, ...). The imports are read from the source with ``ast``, lazy ones
(inside functions) included; ``if TYPE_CHECKING:`` blocks are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[2]
#: where each importable package lives (setuptools' package-dir of pyproject.toml)
PACKAGE_DIRS = {"streamdsl": ROOT / "streamdsl", "streamdsl.backends": ROOT / "backends",
                "streamdsl.cli": ROOT / "cli"}

#: layer -> the layers it must never import (DESIGN.md "Layers"; prefixes of module names)
FORBIDDEN = {
    # the kernel: operator rules only
    "streamdsl.runtime": ("streamdsl.connectors", "streamdsl.backends", "streamdsl.dsl",
                          "streamdsl.sql", "streamdsl.optimize", "streamdsl.cli",
                          "streamdsl.testing", "streamdsl.backend", "streamdsl.lint",
                          "streamdsl.render"),
    "streamdsl.ir": ("streamdsl.runtime", "streamdsl.connectors", "streamdsl.backends",
                     "streamdsl.dsl", "streamdsl.sql", "streamdsl.optimize", "streamdsl.cli",
                     "streamdsl.testing", "streamdsl.backend"),
    "streamdsl.optimize": ("streamdsl.runtime", "streamdsl.connectors", "streamdsl.backends",
                           "streamdsl.dsl", "streamdsl.sql", "streamdsl.cli", "streamdsl.testing"),
    "streamdsl.connectors": ("streamdsl.backends", "streamdsl.dsl", "streamdsl.sql",
                             "streamdsl.optimize", "streamdsl.cli", "streamdsl.testing"),
    "streamdsl.dsl": ("streamdsl.runtime", "streamdsl.backends", "streamdsl.sql",
                      "streamdsl.cli", "streamdsl.testing"),
    "streamdsl.sql": ("streamdsl.runtime", "streamdsl.backends", "streamdsl.cli"),
    "streamdsl.backend": ("streamdsl.backends", "streamdsl.dsl", "streamdsl.sql",
                          "streamdsl.cli"),
    # a backend sees the IR, the kernel, the connectors and the backend protocol
    "streamdsl.backends": ("streamdsl.dsl", "streamdsl.sql", "streamdsl.cli",
                           "streamdsl.testing", "streamdsl.lint"),
}
#: Packages whose modules define mutually recursive types: the DSL's fluent handles
#: (``Stream.group_by`` gives a ``GroupedStream``, whose aggregations give a ``Table``, whose
#: ``to_stream`` gives a ``Stream``). Their lazy imports of each other are how Python writes
#: that; their module-level imports must still be acyclic.
MUTUAL = ("streamdsl.dsl",)
BACKENDS = sorted(p.name for p in (ROOT / "backends").iterdir()
                  if p.is_dir() and (p / "__init__.py").exists())


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg, base in PACKAGE_DIRS.items():
        for path in base.rglob("*.py"):
            rel = path.relative_to(base).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([pkg, *parts])
            if name.split(".")[:2] == ["streamdsl", "backends"] and pkg == "streamdsl":
                continue
            mods[name] = path
    return mods


MODULES = _modules()


def _resolve(module: str, path: Path, node: ast.ImportFrom | ast.Import) -> list[str]:
    """Module names an import statement refers to (only ours)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.startswith("streamdsl")]
    if node.level:
        pkg = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        for _ in range(node.level - 1):
            pkg = pkg.rsplit(".", 1)[0]
        base = f"{pkg}.{node.module}" if node.module else pkg
    else:
        base = node.module or ""
    if not base.startswith("streamdsl"):
        return []
    out = []
    for a in node.names:
        sub = f"{base}.{a.name}"
        out.append(sub if sub in MODULES else base)
    return out


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports(module: str) -> tuple[set[str], set[str]]:
    """``(module-level imports, all imports)`` of ``module``."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    top: set[str] = set()
    every: set[str] = set()

    def visit(node: ast.AST, at_top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if _type_checking(child):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                names = _resolve(module, path, child)
                every.update(names)
                if at_top:
                    top.update(names)
            visit(child, at_top and not isinstance(child, (ast.FunctionDef,
                                                           ast.AsyncFunctionDef, ast.Lambda)))
    visit(tree, True)
    return top, every


IMPORTS = {m: imports(m) for m in MODULES}


def _layer(module: str) -> str | None:
    best = None
    for layer in FORBIDDEN:
        if (module == layer or module.startswith(layer + ".")) and \
                (best is None or len(layer) > len(best)):
            best = layer
    return best


def test_the_tree_is_what_the_test_reads():
    assert "streamdsl.runtime.ingest" in MODULES and "streamdsl.backends.local.executor" in MODULES
    assert BACKENDS == ["beam", "bytewax", "local"]
    assert "streamdsl.runtime.ingest" in IMPORTS["streamdsl.connectors.memory"][0]


def _package(module: str) -> str:
    return module.rsplit(".", 1)[0]


def test_no_import_cycle():
    g = nx.DiGraph()
    for m, (top, every) in IMPORTS.items():  # lazy imports too: they hide a cycle, not remove it
        g.add_node(m)
        for t in every:
            if t in MODULES and t != m and (t in top or _package(m) != _package(t)
                                            or _package(m) not in MUTUAL):
                g.add_edge(m, t)
    cycles = sorted(nx.simple_cycles(g), key=len)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c + c[:1]) for c in cycles[:5])


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_against_the_layers(module):
    layer = _layer(module)
    _, every = IMPORTS[module]
    bad = []
    if layer is not None:
        bad += [t for t in every if any(t == f or t.startswith(f + ".") for f in FORBIDDEN[layer])]
    if module.startswith("streamdsl.backends."):
        mine = module.split(".")[2]
        bad += [t for t in every if t.startswith("streamdsl.backends.")
                and t.split(".")[2] != mine]
    if not module.startswith("streamdsl.cli"):
        bad += [t for t in every if t.startswith("streamdsl.cli")]
    assert not bad, f"{module} imports {sorted(set(bad))} against the layers (DESIGN.md)"


def test_the_rules_catch_what_they_forbid():
    """The checks themselves: an upward import and a cycle are found."""
    assert _layer("streamdsl.runtime.aggregate") == "streamdsl.runtime"
    assert any("streamdsl.connectors".startswith(f) for f in FORBIDDEN["streamdsl.runtime"])
    g = nx.DiGraph([("a", "b"), ("b", "a")])
    assert list(nx.simple_cycles(g))
