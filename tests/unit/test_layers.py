"""The package's layers, read from the code's own imports.

Bottom to top: ``core`` (the shared vocabulary), then ``plan``, ``aws`` and ``sim``, then
``deploy``, then ``observe``, then ``cli``. A package imports only its own modules and
those of the packages listed for it in ``MAY_IMPORT``. Every import counts: at module
level, inside a function (a command's lazy imports), and under ``TYPE_CHECKING`` too, as
a type named in a signature ties the two packages together as much as a call does.
The package's root module (``ecs_deploy_many``: the version) belongs with ``core``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "src" / "ecs_deploy_many"
PACKAGE = "ecs_deploy_many"

MAY_IMPORT: dict[str, frozenset[str]] = {
    "core": frozenset(),
    "plan": frozenset({"core"}),
    "aws": frozenset({"core"}),
    "sim": frozenset({"core"}),
    "deploy": frozenset({"core", "plan", "aws"}),
    "observe": frozenset({"core", "plan", "deploy"}),
    "journal": frozenset({"core"}),
    "jobs": frozenset({"core", "plan"}),
    "cli": frozenset({"core", "plan", "aws", "sim", "deploy", "observe", "journal", "jobs"}),
}
"""What each layer may import besides itself; ``cli`` wires everything."""


@dataclass(frozen=True)
class Import:
    module: str
    """The importing module, dotted."""
    imported: str
    """The project module (or package) it imports, dotted."""
    line: int
    module_level: bool
    """At module level and outside ``if TYPE_CHECKING``: it runs when the module loads."""


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> str:
    """``ecs_deploy_many.deploy.engine`` -> ``deploy``; the root module is ``core``'s."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (ROOT / parts[1]).is_dir() else "core"


def _is_module(dotted: str) -> bool:
    relative = Path(*dotted.split(".")[1:]) if "." in dotted else Path()
    return (ROOT / relative).is_dir() or (ROOT / relative).with_suffix(".py").is_file()


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, module: str | None = None) -> Iterator[Import]:
    """The project imports of the module at ``path`` (named ``module``, or by its path)."""
    module = module or _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def visit(node: ast.AST, module_level: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.split(".")[0] == PACKAGE:
                        yield Import(module, alias.name, child.lineno, module_level)
            elif isinstance(child, ast.ImportFrom):
                yield from from_import(child, module_level)
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                yield from visit(child, False)
            elif isinstance(child, ast.If) and _type_checking(child.test):
                for statement in child.body:
                    yield from visit(ast.Module(body=[statement], type_ignores=[]), False)
                for statement in child.orelse:
                    yield from visit(ast.Module(body=[statement], type_ignores=[]), module_level)
            else:
                yield from visit(child, module_level)

    def from_import(node: ast.ImportFrom, module_level: bool) -> Iterator[Import]:
        if node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            source = ".".join([*base, node.module] if node.module else base)
        else:
            source = node.module or ""
        if source.split(".")[0] != PACKAGE:
            return
        for alias in node.names:
            submodule = f"{source}.{alias.name}"
            imported = submodule if _is_module(submodule) else source
            yield Import(module, imported, node.lineno, module_level)

    yield from visit(ast.parse(path.read_text(), str(path)), True)


def _all_imports() -> list[Import]:
    return [found for path in sorted(ROOT.rglob("*.py")) for found in _imports(path)]


def test_every_package_has_a_layer() -> None:
    packages = {path.name for path in ROOT.iterdir() if (path / "__init__.py").is_file()}
    assert packages == set(MAY_IMPORT), "place the new package in MAY_IMPORT and the README"


def test_the_import_reader_sees_every_kind_of_import(tmp_path: Path) -> None:
    source = tmp_path / "engine.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "import ecs_deploy_many.core.clock\n"
        "from ..observe import log\n"
        "from . import pipeline\n"
        "if TYPE_CHECKING:\n"
        "    from ecs_deploy_many.cli.fleet import deploy\n"
        "def run() -> None:\n"
        "    from ecs_deploy_many.sim.server import running_simulator\n"
    )
    found = {(i.imported, i.module_level) for i in _imports(source, "ecs_deploy_many.deploy.x")}
    assert found == {
        ("ecs_deploy_many.core.clock", True),
        ("ecs_deploy_many.observe.log", True),
        ("ecs_deploy_many.deploy.pipeline", True),
        ("ecs_deploy_many.cli.fleet", False),
        ("ecs_deploy_many.sim.server", False),
    }


def test_no_module_imports_a_layer_above_its_own() -> None:
    breaks = []
    for found in _all_imports():
        layer, imported = _layer(found.module), _layer(found.imported)
        if imported != layer and imported not in MAY_IMPORT[layer]:
            allowed = ", ".join(sorted(MAY_IMPORT[layer])) or "nothing else"
            breaks.append(
                f"{found.module} (line {found.line}) imports {found.imported}: "
                f"{layer} may import {allowed}"
            )
    assert not breaks, "\n".join(dict.fromkeys(breaks))


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle in ``graph`` as a path that ends where it starts, or None."""
    done: set[str] = set()

    def walk(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for successor in sorted(graph.get(node, ())):
            if cycle := walk(successor, [*path, node]):
                return cycle
        done.add(node)
        return None

    for node in sorted(graph):
        if cycle := walk(node, []):
            return cycle
    return None


@pytest.mark.parametrize(
    ("graph", "cycle"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
        ({"a": {"b"}, "b": {"a"}}, ["a", "b", "a"]),
        ({"a": {"b"}, "b": {"c"}, "c": {"b"}}, ["b", "c", "b"]),
    ],
)
def test_cycle_finder(graph: dict[str, set[str]], cycle: list[str] | None) -> None:
    assert _cycle(graph) == cycle


def test_no_import_cycle_between_packages_at_module_level() -> None:
    graph: dict[str, set[str]] = {}
    for found in _all_imports():
        layer, imported = _layer(found.module), _layer(found.imported)
        if found.module_level and layer != imported:
            graph.setdefault(layer, set()).add(imported)
    assert _cycle(graph) is None, f"packages import each other: {' -> '.join(_cycle(graph) or [])}"
