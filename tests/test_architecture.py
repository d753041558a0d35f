"""The shape of the code, checked from its source (docs/ARCHITECTURE.md describes it):

- no import cycle between modules, counting every import a module runs (top-level or inside a
  function; only ``if TYPE_CHECKING:`` imports are left out);
- no import cycle between packages (a package is a folder: ``narrate.cli``, ``narrate.endpoints``,
  ``flows``, ...); a package and its own sub-packages are one unit here, so ``narrate.endpoints``
  using ``narrate.errors`` and ``narrate.settings`` typing with ``narrate.endpoints.kind`` do not
  count, but ``narrate.endpoints`` <-> ``narrate.aws`` would;
- no function outside a flow's own signature takes more than 6 parameters;
- no module over 500 lines;
- no test imports a private name.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("narrate", "flows", "tasks", "model_server", "deployments", "bench")
MAX_PARAMETERS = 6
MAX_LINES = 500


@dataclass(frozen=True)
class Module:
    name: str
    path: Path

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"

    @property
    def package(self) -> str:
        return self.name if self.is_package else self.name.rpartition(".")[0] or self.name

    def tree(self) -> ast.Module:
        return ast.parse(self.path.read_text(encoding="utf-8"), str(self.path))


def modules(roots: tuple[str, ...] = PRODUCT) -> dict[str, Module]:
    found = {}
    for root in roots:
        for path in sorted((ROOT / root).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = Module(".".join(parts), path)
    return found


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, except the bodies of ``if TYPE_CHECKING:`` blocks (imports for type hints only)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                stack.extend(child.orelse)
                continue
            stack.append(child)


def imports_of(module: Module, known: dict[str, Module]) -> set[str]:
    """The project modules ``module`` imports when it runs."""
    found: set[str] = set()
    for node in _runtime_nodes(module.tree()):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.name.split(".")
                anchor = anchor if module.is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {name for name in found if name in known and name != module.name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def module_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(module, known) for name, module in known.items()}


def related(a: str, b: str) -> bool:
    """One package is the other or contains it."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def package_graph() -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = {}
    for name, targets in module_graph().items():
        source = known[name].package
        edges = graph.setdefault(source, set())
        edges.update(known[t].package for t in targets if not related(source, known[t].package))
    return graph


def test_no_import_cycle_between_modules() -> None:
    assert cycles(module_graph()) == []


def test_no_import_cycle_between_packages() -> None:
    assert cycles(package_graph()) == []


def test_the_checks_find_a_cycle_when_there_is_one() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert not related("narrate.cli", "narrate.clips") and related("narrate", "narrate.cli")


def _is_flow(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    for decorator in function.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if ast.unparse(target) in {"flow", "prefect.flow"}:
            return True
    return False


def parameter_count(function: ast.FunctionDef | ast.AsyncFunctionDef, method: bool) -> int:
    arguments = function.args
    names = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
    count = len(names) + (arguments.vararg is not None) + (arguments.kwarg is not None)
    if method and names and names[0].arg in {"self", "cls"}:
        count -= 1
    return count


def long_signatures() -> list[str]:
    found = []
    for module in modules().values():
        tree = module.tree()
        methods = {
            id(item) for node in ast.walk(tree) if isinstance(node, ast.ClassDef) for item in node.body
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or _is_flow(node):
                continue
            count = parameter_count(node, id(node) in methods)
            if count > MAX_PARAMETERS:
                found.append(f"{module.name}.{node.name}: {count} parameters")
    return sorted(found)


def test_no_function_outside_a_flow_signature_takes_more_than_six_parameters() -> None:
    assert long_signatures() == []


@pytest.mark.parametrize("root", [*PRODUCT, "tests"])
def test_no_module_is_over_500_lines(root: str) -> None:
    long = {
        str(path.relative_to(ROOT)): lines
        for path in (ROOT / root).rglob("*.py")
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_no_test_imports_a_private_name() -> None:
    private = []
    for module in modules(("tests",)).values():
        for node in ast.walk(module.tree()):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PRODUCT:
                private += [
                    f"{module.name}: {node.module}.{alias.name}"
                    for alias in node.names
                    if alias.name.startswith("_") and not alias.name.startswith("__")
                ]
    assert private == []


def test_flow_and_task_runs_are_named_as_their_functions() -> None:
    import importlib

    from prefect import Flow, Task

    found = {}
    for name in modules(("flows", "tasks")):
        for value in vars(importlib.import_module(name)).values():
            if isinstance(value, Flow | Task) and value.fn.__module__ == name:
                found[value.fn.__name__] = value.name
    assert len(found) >= 15
    assert {fn: run for fn, run in found.items() if run != fn.replace("_", "-")} == {}
