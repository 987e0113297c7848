"""The package's import graph: layered from the ground floor up, without circles.

Every ``import`` of every module is read with ``ast``, those inside functions too (a deferred import
is still a dependency), so the rules hold for the code as written, not only for what one run
happens to load. Imports under ``if TYPE_CHECKING:`` count for the layers but not for circles:
they never run, and a protocol's implementations naming it for mypy is no circle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import nsmc_sentiment_classifier as package

PACKAGE = package.__name__
PACKAGE_DIR = Path(package.__file__).parent

# Lowest first. A module may import modules of its own layer and of the layers below it, never one
# above. A subpackage not named here is a launcher (like aws/), one floor below the CLI; each
# subpackage's ``commands`` module is part of the CLI layer.
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("ground floor", frozenset({"__init__", "errors"})),
    # Standard library only: the hooks and the inference container import it on its own.
    ("label schemes", frozenset({"label_schemes"})),
    ("options", frozenset({"options", "config"})),
    ("metrics", frozenset({"metrics"})),
    ("data", frozenset({"data"})),
    ("baseline", frozenset({"baseline"})),
    ("training", frozenset({"training"})),
    ("serving", frozenset({"serving"})),
    ("launchers", frozenset({"aws"})),
    ("CLI", frozenset({"cli", "__main__"})),
)
LAUNCHERS = next(index for index, (name, _) in enumerate(LAYERS) if name == "launchers")
CLI = len(LAYERS) - 1


def module_files() -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, whether it is a package's ``__init__``)."""
    modules = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = [PACKAGE, *path.relative_to(PACKAGE_DIR).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return modules


def typing_only_nodes(tree: ast.AST) -> set[int]:
    """The ids of the nodes inside ``if TYPE_CHECKING:`` blocks."""
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            guarded.update(id(child) for statement in node.body for child in ast.walk(statement))
    return guarded


def imported_names(
    tree: ast.AST, module: str, is_package: bool, runtime_only: bool = False
) -> Iterator[tuple[str, int]]:
    """Every absolute name an import statement in ``tree`` may load, with its line."""
    here = module.split(".") if is_package else module.split(".")[:-1]
    skipped = typing_only_nodes(tree) if runtime_only else set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            yield source, node.lineno
            for alias in node.names:
                yield f"{source}.{alias.name}", node.lineno  # ``from . import module``


def import_graph(runtime_only: bool = False) -> dict[tuple[str, str], str]:
    """(importer, imported) -> where the import is written, for imports within the package."""
    modules = module_files()
    edges: dict[tuple[str, str], str] = {}
    for module, (path, is_package) in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for name, line in imported_names(tree, module, is_package, runtime_only):
            while name and name not in modules:  # ``package.module.function`` -> the module
                name = name.rpartition(".")[0]
            if name and name != module:
                edges.setdefault((module, name), f"{path.relative_to(PACKAGE_DIR.parent)}:{line}")
    return edges


def layer(module: str) -> int:
    parts = module.split(".")[1:] or ["__init__"]
    if parts[-1] == "commands" and len(parts) > 1:
        return CLI
    for index, (_, members) in enumerate(LAYERS):
        if parts[0] in members:
            return index
    return LAUNCHERS


def short(module: str) -> str:
    return module.removeprefix(f"{PACKAGE}.")


def describe(edges: dict[tuple[str, str], str], pairs: list[tuple[str, str]]) -> str:
    return "\n".join(f"  {short(a)} -> {short(b)}  ({edges[(a, b)]})" for a, b in sorted(pairs))


def cycles(edges: dict[tuple[str, str], str]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    graph: dict[str, list[str]] = {}
    for source, target in edges:
        graph.setdefault(source, []).append(target)
        graph.setdefault(target, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for child in graph[node]:
            if child not in index:
                visit(child)
                low[node] = min(low[node], low[child])
            elif child in on_stack:
                low[node] = min(low[node], index[child])
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


def test_the_graph_is_read():
    edges = import_graph()
    # Relative, absolute and in-function imports are all seen (a parser that saw none would
    # pass every rule below).
    assert (f"{PACKAGE}.__main__", f"{PACKAGE}.cli") in edges
    assert (f"{PACKAGE}.cli", f"{PACKAGE}.errors") in edges
    assert len({source for source, _ in edges}) >= 20
    assert set(import_graph(runtime_only=True)) < set(edges)  # TYPE_CHECKING imports are told apart


def test_no_import_circle():
    edges = import_graph(runtime_only=True)
    found = cycles(edges)
    messages = [describe(edges, [(a, b) for a, b in edges if a in group and b in group]) for group in found]
    assert not found, "import circle(s) among the package's modules:\n" + "\n\n".join(messages)


def test_no_import_back_up_a_layer():
    edges = import_graph()
    upward = [(a, b) for a, b in edges if layer(b) > layer(a)]
    order = " < ".join(name for name, _ in LAYERS)
    assert not upward, f"imports back up a layer (layers: {order}):\n" + describe(edges, upward)


def test_only_the_main_module_imports_the_cli():
    edges = import_graph()
    allowed = f"{PACKAGE}.__main__"
    offending = [(a, b) for a, b in edges if b == f"{PACKAGE}.cli" and a != allowed]
    assert not offending, (
        "the CLI module is the top: import errors from errors.py, not from cli.py\n"
        + describe(edges, offending)
    )


def test_the_rules_catch_a_cycle_and_an_upward_import():
    edges = {
        (f"{PACKAGE}.config", f"{PACKAGE}.training.options"): "config.py:1",
        (f"{PACKAGE}.training.options", f"{PACKAGE}.config"): "training/options.py:1",
    }
    assert cycles(edges) == [[f"{PACKAGE}.config", f"{PACKAGE}.training.options"]]
    assert layer(f"{PACKAGE}.training.options") > layer(f"{PACKAGE}.config")
    assert layer(f"{PACKAGE}.serving.commands") == layer(f"{PACKAGE}.cli") == CLI
    # A new launcher package sits where aws/ does; its commands module is CLI.
    assert layer(f"{PACKAGE}.another_cloud.jobs") == layer(f"{PACKAGE}.aws.jobs") == LAUNCHERS
