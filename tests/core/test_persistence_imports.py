"""Persistence builds no pipeline: it writes from the public graph and returns what it read,
and the pipeline side builds the ``Pipeline``. So no module of ``megatron.persistence``
imports ``megatron.pipeline``, nor the ``megatron`` package (which imports it), not even
inside a function; only imports under ``if TYPE_CHECKING:`` are exempt."""

from __future__ import annotations

import ast
from pathlib import Path

import megatron.persistence

PACKAGE = Path(megatron.persistence.__file__).parent
FORBIDDEN = "megatron.pipeline"


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """Every module ``tree`` imports, at any depth (functions included), with its line: for
    ``from megatron import pipeline`` both ``megatron`` and ``megatron.pipeline``; string
    arguments of ``importlib.import_module`` and ``__import__`` too. The body of an
    ``if TYPE_CHECKING:`` block is skipped (its ``else`` is not)."""
    found: list[tuple[int, str]] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            function = node.func
            name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
        stack.extend(ast.iter_child_nodes(node))
    return found


def _builds_a_pipeline(module: str) -> bool:
    return module == "megatron" or module == FORBIDDEN or module.startswith(FORBIDDEN + ".")


def test_persistence_imports_no_pipeline_not_even_lazily():
    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) > 5
    offending = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}"
        for path in sources
        for line, module in imported_modules(ast.parse(path.read_text(), str(path)))
        if _builds_a_pipeline(module)
    ]
    assert offending == []


def test_the_import_walk_sees_imports_inside_functions_and_skips_type_checking_only():
    source = """
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    from megatron.pipeline import Pipeline
def load():
    from megatron.pipeline import Pipeline
    import megatron
    from megatron import pipeline
    importlib.import_module("megatron.pipeline")
"""
    lines = {line for line, module in imported_modules(ast.parse(source)) if _builds_a_pipeline(module)}
    assert lines == {6, 7, 8, 9}  # not line 4, under TYPE_CHECKING
