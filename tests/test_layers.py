"""The import graph keeps the layers: no cycles, and each layer imports only the layers before it.

Imports are read with ``ast`` at module level and inside functions alike, so a cycle cannot hide
behind a late import. ``training/`` is torch only: arrays and settings in, checkpoints out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# (layer, module-name prefixes); a module belongs to the layer of its longest matching prefix.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("rsgui", "rsgui.errors", "rsgui.progress", "rsgui.atomic", "rsgui.paths",
              "rsgui.safeload")),
    ("tiles", ("rsgui.bands", "rsgui.tiles", "rsgui.geo", "rsgui.geotiff")),
    ("archive", ("rsgui.archive", "rsgui.listing", "rsgui.tiff_header", "rsgui.manifest",
                 "rsgui.demo", "rsgui.image_header", "rsgui.sources", "rsgui.scenes",
                 "rsgui.patches", "rsgui.layouts", "rsgui.prefetch", "rsgui.subset")),
    ("codes", ("rsgui.codes", "rsgui.hamming", "rsgui.mih", "rsgui.cosine", "rsgui.index_store",
               "rsgui.shards",
               "rsgui.metrics", "rsgui.ranking", "rsgui.features", "rsgui.projection")),
    ("training", ("training",)),
    ("encoders", ("rsgui.encoders",)),
    ("services", ("rsgui.services",)),
    ("front", ("rsgui.cli", "rsgui.app", "rsgui.experiments")),
]  # fmt: skip
ORDER = {name: i for i, (name, _) in enumerate(LAYERS)}
TRAINING_MAY_USE = {"rsgui", "rsgui.errors", "rsgui.progress", "rsgui.bands", "rsgui.atomic"}
QT = ("PySide6", "shiboken6", "superqt", "pyqtgraph")
HEAVY = ("torch", "torchvision", "training")  # never at module level outside training/


def _modules() -> dict[str, Path]:
    mods = {}
    for top in ("rsgui", "training"):
        for p in sorted((ROOT / top).rglob("*.py")):
            parts = p.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = p
    return mods


MODULES = _modules()


def _layer(module: str) -> str | None:
    best, found = -1, None
    for name, prefixes in LAYERS:
        for pre in prefixes:
            if (module == pre or module.startswith(pre + ".")) and len(pre) > best:
                best, found = len(pre), name
    return found


def _imports(module: str, path: Path) -> list[tuple[str, bool, int]]:
    """(imported name, at module level, line) for every import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    package = module if is_pkg else module.rpartition(".")[0]
    top_level = {id(n) for n in tree.body}
    for n in tree.body:  # imports under a module-level if/try count as module level
        if isinstance(n, ast.If | ast.Try):
            top_level |= {id(c) for c in ast.walk(n)}
    out = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names = [mod] + [f"{mod}.{a.name}" for a in node.names]
        else:
            continue
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            continue
        if _type_checking_only(tree, node):
            continue
        for name in names:
            out.append((name, id(node) in top_level, node.lineno))
    return out


def _type_checking_only(tree: ast.Module, node: ast.AST) -> bool:
    for n in tree.body:
        if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test):
            if any(c is node for c in ast.walk(n)):
                return True
    return False


def _resolve(name: str) -> str | None:
    """The project module an imported name refers to (``a.b.func`` -> ``a.b``)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _graph() -> dict[str, dict[str, int]]:
    graph: dict[str, dict[str, int]] = {m: {} for m in MODULES}
    for mod, path in MODULES.items():
        for name, _, line in _imports(mod, path):
            target = _resolve(name)
            if target and target != mod and not mod.startswith(target + "."):
                graph[mod].setdefault(target, line)
    return graph


def test_every_module_has_a_layer():
    assert [m for m in MODULES if _layer(m) is None] == []


def test_no_import_cycles():
    graph = _graph()
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert cycles == []


def test_imports_follow_the_layer_order():
    wrong = []
    for mod, deps in _graph().items():
        here = ORDER[_layer(mod)]
        for dep, line in deps.items():
            if ORDER[_layer(dep)] > here:
                wrong.append(f"{MODULES[mod].relative_to(ROOT)}:{line} imports {dep}")
    assert wrong == []


def test_training_uses_only_base_rsgui_modules():
    wrong = []
    for mod, deps in _graph().items():
        if _layer(mod) != "training":
            continue
        for dep, line in deps.items():
            if dep.startswith("rsgui") and dep not in TRAINING_MAY_USE:
                wrong.append(f"{MODULES[mod].relative_to(ROOT)}:{line} imports {dep}")
    assert wrong == []


@pytest.mark.parametrize("rule", ["qt outside app", "heavy at module level"])
def test_third_party_imports_stay_in_their_layer(rule):
    wrong = []
    for mod, path in MODULES.items():
        for name, top_level, line in _imports(mod, path):
            head = name.split(".")[0]
            if rule == "qt outside app" and head in QT and not mod.startswith("rsgui.app"):
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
            if (
                rule == "heavy at module level"
                and top_level
                and head in HEAVY
                and _layer(mod) != "training"
            ):
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {name} at module level")
    assert wrong == []


def test_the_checker_sees_a_cycle(tmp_path, monkeypatch):
    """The graph walker itself: two modules importing each other inside functions is a cycle."""
    a = tmp_path / "a.py"
    a.write_text("def f():\n    from rsgui.b import g\n")
    names = _imports("rsgui.a", a)
    assert ("rsgui.b", False, 2) in names
