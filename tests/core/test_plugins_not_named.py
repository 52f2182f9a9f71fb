"""The core names no plugin: a third-party plugin does everything ours do through the same
doors. No module of megatron-core but the plugin catalogue holds the name of one of this
repository's plugins, or of a library only a plugin serves, in its code (string constants,
f-string parts, imports); docstrings and documentation strings may mention them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "packages" / "megatron-core" / "src" / "megatron"
CATALOGUE = CORE / "plugins" / "catalogue.py"
NAMES = (
    "megatron-sql",
    "megatron_sql",
    "megatron-sklearn",
    "megatron_sklearn",
    "megatron-keras",
    "megatron_keras",
    "skops",
    "keras",
    "sqlite",
)


def plugin_names_in_code(source: str, filename: str = "<source>") -> list[str]:
    """``line: names in 'text'`` for each string constant or import of ``source`` naming a plugin.
    A string that is a statement of its own (a docstring, an attribute's documentation) is
    documentation, not code."""
    tree = ast.parse(source, filename)
    documentation = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in documentation:
            text = node.value
        elif isinstance(node, ast.Import):
            text = " ".join(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            text = " ".join([node.module or "", *(alias.name for alias in node.names)])
        else:
            continue
        named = [name for name in NAMES if name in text.lower()]
        if named:
            found.append(f"{node.lineno}: {', '.join(named)} in {text!r}")
    return found


def test_the_core_names_no_plugin_outside_the_catalogue():
    modules = sorted(path for path in CORE.rglob("*.py") if path != CATALOGUE)
    assert len(modules) > 50  # the whole core is read
    found = [
        f"{path.relative_to(CORE.parent)}:{hit}"
        for path in modules
        for hit in plugin_names_in_code(path.read_text(), str(path))
    ]
    assert found == [], "the core names plugins in code:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "code",
    [
        "URL = 'sqlite:///megatron.db'",
        "message = f'{feature} needs megatron-sql'",
        "import megatron_keras",
        "from megatron_sklearn.layer import Sklearn",
        "HINTS = {('serializer', 'skops'): 'x'}",
        "if kind == 'Keras':\n    pass",
    ],
)
def test_the_scan_finds_a_plugin_named_in_code(code):
    assert plugin_names_in_code(code)


def test_the_scan_lets_documentation_mention_plugins():
    code = '''
"""Storage: the SQLite file of megatron-sql."""

DEFAULT = None
"""With megatron-sql: sqlite:///megatron.db."""


def as_layer(obj):
    """A Keras model, with megatron-keras."""
    return obj  # megatron-sklearn: a comment is no code either
'''
    assert plugin_names_in_code(code) == []
