"""The package's import graph, read from the source: no cycles, no private names across modules, stages in order.

Every ``import`` counts, the ones inside functions too: a lazy import that closes a cycle is still a cycle a
reader has to untangle. The graph is built with ``ast``, so nothing is imported to check it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "lipnet_ko"

# Sub-packages from upstream to downstream: a module may import its own package and the ones before it.
LAYERS = ("files", "text", "video", "data", "synth", "decoding", "model", "training", "app")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module that ``import name`` loads (``name`` may end in a class or function)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(path: Path, modules: dict[str, Path]) -> list[tuple[str, str, int]]:
    """``(imported module, imported name or "", line)`` for every project import in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("lipnet_ko"):
                    found.append((resolve(alias.name, modules), "", node.lineno))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lipnet_ko"):
            assert node.level == 0, f"{path}:{node.lineno}: relative import"
            for alias in node.names:
                target = f"{node.module}.{alias.name}"
                if target in modules:  # `from lipnet_ko.text import tokenizer` imports a module
                    found.append((target, "", node.lineno))
                else:
                    found.append((resolve(node.module, modules), alias.name, node.lineno))
    return found


def import_graph() -> dict[str, set[str]]:
    modules = package_modules()
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        for target, _, _ in imports_of(path, modules):
            if target != name:
                graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of nodes (first == last), or None; a package counts as depending on its
    ``__init__`` only through explicit imports."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def test_find_cycle_finds_a_planted_cycle_and_accepts_a_dag():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 30, "the walk found too few modules: is PACKAGE_DIR right?"
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_no_module_imports_another_modules_private_names():
    modules = package_modules()
    offences = []
    for name, path in modules.items():
        for target, imported, line in imports_of(path, modules):
            if target != name and imported.startswith("_") and imported != "__version__":
                offences.append(f"{path.relative_to(PACKAGE_DIR.parent)}:{line} imports {target}.{imported}")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module_aliases = {
            alias.asname or alias.name.rpartition(".")[2]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lipnet_ko")
            for alias in node.names
            if f"{node.module}.{alias.name}" in modules
        }
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in module_aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                offences.append(f"{path.relative_to(PACKAGE_DIR.parent)}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert not offences, "\n".join(offences)


def test_every_module_lives_in_a_stage_package():
    loose = [name for name in package_modules() if name.count(".") == 1 and name.split(".")[1] not in LAYERS + ("__main__",)]
    assert not loose, f"modules outside the stage packages {LAYERS}: {loose}"


@pytest.mark.parametrize("layer", LAYERS)
def test_a_stage_imports_only_itself_and_the_stages_upstream(layer):
    modules = package_modules()
    allowed = set(LAYERS[: LAYERS.index(layer) + 1])
    offences = []
    for name, path in modules.items():
        if layer_of(name) != layer:
            continue
        for target, imported, line in imports_of(path, modules):
            target_layer = layer_of(target)
            if target == "lipnet_ko" and imported in ("__version__",):
                continue
            if target_layer is None and target != "lipnet_ko":
                continue
            if target == "lipnet_ko" or target_layer not in allowed:
                offences.append(f"{path.relative_to(PACKAGE_DIR.parent)}:{line} imports {target} ({imported or 'module'})")
    assert not offences, f"{layer} may import only {sorted(allowed)}:\n" + "\n".join(offences)


def test_no_top_level_name_hides_a_sub_package():
    """``import lipnet_ko.decoding.search as s`` and ``lipnet_ko.decoding.lm.load_default_lm`` resolve through the
    attributes of ``lipnet_ko``: a public name (function, class) named like a sub-package would shadow it."""
    tree = ast.parse((PACKAGE_DIR / "__init__.py").read_text(encoding="utf-8"))
    names = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    for node in ast.walk(tree):
        targets = [t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]
        if isinstance(node, ast.Assign) and {"__all__", "_EXPORTS"} & set(targets):
            value = node.value
            names |= {elt.value for elt in getattr(value, "elts", getattr(value, "keys", [])) if isinstance(elt, ast.Constant)}
    packages = {path.parent.name for path in PACKAGE_DIR.glob("*/__init__.py")} | {p.stem for p in PACKAGE_DIR.glob("*.py")}
    assert len(names) > 5, names
    assert not names & packages, f"top-level names that shadow a sub-package or module: {sorted(names & packages)}"
