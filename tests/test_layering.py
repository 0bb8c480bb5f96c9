"""The package's layers import only downward, and no modules import each other in a loop.

Read from the source (every ``import`` statement, also those inside
functions), so a lazy import cannot hide an upward dependency. The layers,
bottom to top (docs/runtime.md, fxplain/__init__.py):

    _util, _core  ->  datasets  ->  runtime  ->  faces  ->  models  ->  methods
    ->  explainer / results / plotting  ->  reconstruction | evaluation  ->  testing  ->  cli

(``testing``, the pytest plugin and assertions for users' test suites, sits
beside the package's ``__init__``, which does not import it.)
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fxplain"

#: Rank of each top-level part of the package; a module may import parts of
#: lower rank, its own part, and (only among the presentation modules) parts
#: of the same rank.
RANKS = {
    "_util": 0, "_core": 0, "data": 0,
    "datasets": 1,
    "runtime": 2,
    "faces": 3,
    "models": 4,
    "methods": 5,
    "explainer": 6, "results": 6, "plotting": 6,
    "reconstruction": 7, "protocols": 7, "identification": 7,
    "evaluation": 8,
    "__init__": 9, "testing": 9,
    "cli": 10,
    "__main__": 11,
}
SAME_RANK_ALLOWED = {"explainer", "results", "plotting"}


def _module_name(path: Path) -> str:
    parts = ("fxplain",) + path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1]) if parts[-1] == "__init__" else ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()
#: Importable names: the Python modules and the C extension (which imports nothing of fxplain's
#: but ``fxplain._util.errors``, at its start-up).
KNOWN = set(MODULES) | {"fxplain._core"}


def _imports(name: str, path: Path, top_level_only: bool) -> set[str]:
    """The fxplain modules ``name`` imports (resolved to a module or package in MODULES)."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # `from X import Y`: Y may be a submodule of X
            targets = [f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in KNOWN else prefix
                       for alias in node.names]
        for target in targets:
            if not target.startswith("fxplain"):
                continue
            while target not in KNOWN and "." in target:
                target = target.rpartition(".")[0]
            if target != name:
                found.add(target)
    return found


def _part(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__"
    return parts[1]


def test_every_part_has_a_rank():
    parts = {_part(m) for m in MODULES} | {"_core"}
    assert parts <= set(RANKS), f"modules outside the layering table: {sorted(parts - set(RANKS))}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_only_downward(module):
    here = _part(module)
    upward = []
    for target in sorted(_imports(module, MODULES[module], top_level_only=False)):
        there = _part(target)
        if there == here or RANKS[there] < RANKS[here]:
            continue
        if RANKS[there] == RANKS[here] and {here, there} <= SAME_RANK_ALLOWED:
            continue
        upward.append(target)
    assert not upward, f"{module} (layer {here}) imports upper or sibling layers: {upward}"


def test_no_import_cycles():
    graph = {m: _imports(m, p, top_level_only=True) for m, p in MODULES.items()}
    # a package's __init__ re-exporting its submodules is the package importing
    # downward; a submodule importing the package's __init__ back would be a loop
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    # an import of a package from one of its own submodules (e.g. `from . import x`
    # inside pkg/a.py) resolves to the submodule, so every cycle left is real
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("layer", ["fxplain._util", "fxplain.runtime", "fxplain.models", "fxplain.faces",
                                   "fxplain.methods", "fxplain.reconstruction", "fxplain.evaluation",
                                   "fxplain.testing"])
def test_each_layer_imports_on_its_own(layer):
    """Importing one layer first (in a fresh interpreter) works: no hidden dependence on import order."""
    code = f"import importlib, sys; importlib.import_module({layer!r}); print('ok')"
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


def test_the_layering_check_catches_an_upward_import(tmp_path, monkeypatch):
    """The checker itself: a module of a low layer importing an upper one is found."""
    fake = PACKAGE / "_util" / "validation.py"
    source = fake.read_text() + "\nfrom ..methods import base\n"
    copy = tmp_path / "validation.py"
    copy.write_text(source)
    found = _imports("fxplain._util.validation", copy, top_level_only=False)
    assert "fxplain.methods.base" in found


def _hooks_into_lower_layers(name: str, source: str, is_package: bool = False) -> list[str]:
    """Import-time statements of module ``name`` that hand its own code to another part of the package.

    A lower layer calling upward through a hook (a global callable that an
    upper layer sets when it is imported, as ``register_photo_aligner`` once
    was) is an upward dependency the import statements do not show. Found
    here: at module level, a call of a function imported from another part
    with a function or class of this module as an argument, or an assignment
    to an attribute of a module or object imported from another part.
    """
    tree = ast.parse(source)
    here = _part(name)
    package = name if is_package else name.rpartition(".")[0]
    foreign: set[str] = set()  # names bound by imports from other parts
    local_defs = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([module] if module else []))
            if module.startswith("fxplain") and _part(module if module != "fxplain" else "fxplain") != here:
                foreign |= {alias.asname or alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            foreign |= {(alias.asname or alias.name).split(".")[0] for alias in node.names
                        if alias.name.startswith("fxplain.") and _part(alias.name) != here}
    found = []
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            call = node.value
            func = call.func
            root = func
            while isinstance(root, ast.Attribute):
                root = root.value
            passes_own = any(isinstance(arg, ast.Name) and arg.id in local_defs
                             for arg in list(call.args) + [kw.value for kw in call.keywords])
            if isinstance(root, ast.Name) and root.id in foreign and passes_own:
                found.append(f"line {node.lineno}: {ast.unparse(call)}")
        if isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                root = target
                while isinstance(root, ast.Attribute):
                    root = root.value
                if target is not root and isinstance(root, ast.Name) and root.id in foreign:
                    found.append(f"line {node.lineno}: {ast.unparse(target)} = ...")
    return found


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_registration_hooks_into_lower_layers(module):
    path = MODULES[module]
    hooks = _hooks_into_lower_layers(module, path.read_text(), path.name == "__init__.py")
    assert not hooks, f"{module} hands its own code to another layer at import time: {hooks}"


def test_the_hook_check_catches_a_registration_hook():
    """The checker itself, on the hook the photo path once had (faces registering its aligner with _util)."""
    source = ("from .._util.images import register_photo_aligner\n"
              "def align_face(photo, size, name, face):\n    return photo\n"
              "register_photo_aligner(align_face)\n")
    assert _hooks_into_lower_layers("fxplain.faces.face", source)
    attribute = "from .._util import images\ndef align(p):\n    return p\nimages._photo_aligner = align\n"
    assert _hooks_into_lower_layers("fxplain.faces.face", attribute)
    same_layer = "from .base import register_format\nclass F: pass\nregister_format(F)\n"
    assert not _hooks_into_lower_layers("fxplain.models.formats", same_layer)
