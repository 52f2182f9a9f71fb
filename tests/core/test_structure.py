"""The source stays in modules of one job and reasonable size: no module of any package over
400 lines, no function or method over 60. Each check lists every offender with its size."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "packages").glob("*/src/**/*.py"))
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def module_sizes(paths: list[Path]) -> dict[str, int]:
    """Lines of each module."""
    return {_relative(path): len(path.read_text(encoding="utf-8").splitlines()) for path in paths}


def function_sizes(paths: list[Path]) -> dict[str, int]:
    """Lines of each function and method (from its ``def`` to its last line), by
    ``path:line qualified.name``."""
    sizes: dict[str, int] = {}
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        _functions(tree, "", _relative(path), sizes)
    return sizes


def _functions(node: ast.AST, prefix: str, where: str, sizes: dict[str, int]) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            name = f"{prefix}{child.name}"
            if not isinstance(child, ast.ClassDef):
                end = child.end_lineno or child.lineno
                sizes[f"{where}:{child.lineno} {name}"] = end - child.lineno + 1
            _functions(child, f"{name}.", where, sizes)
        else:
            _functions(child, prefix, where, sizes)


def _report(sizes: dict[str, int], limit: int, what: str) -> str:
    over = sorted(((size, name) for name, size in sizes.items() if size > limit), reverse=True)
    lines = [f"  {name}: {size} lines" for size, name in over]
    return f"{len(over)} {what} over {limit} lines:\n" + "\n".join(lines) if over else ""


def test_the_sources_are_found():
    assert len(SOURCES) > 20
    assert any(path.name == "pipeline.py" for path in SOURCES)


def test_no_module_is_over_400_lines():
    report = _report(module_sizes(SOURCES), MAX_MODULE_LINES, "modules")
    if report:
        pytest.fail(report, pytrace=False)


def test_no_function_is_over_60_lines():
    report = _report(function_sizes(SOURCES), MAX_FUNCTION_LINES, "functions")
    if report:
        pytest.fail(report, pytrace=False)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def f():\n    return 1\n", {"f": 2}),
        ("class A:\n    def m(self):\n        x = 1\n        return x\n", {"A.m": 3}),
        ("def outer():\n    def inner():\n        pass\n    return inner\n", {"outer": 4, "outer.inner": 2}),
        ("async def f():\n    pass\n", {"f": 2}),
        ("if True:\n    def g():\n        pass\n", {"g": 2}),
    ],
)
def test_functions_are_measured_from_def_to_last_line(tmp_path, source, expected):
    path = tmp_path / "m.py"
    path.write_text(source)
    sizes = {key.partition(" ")[2]: size for key, size in _sizes_of(path).items()}
    assert sizes == expected


def test_a_report_names_every_offender_with_its_size():
    report = _report({"a.py:1 f": 61, "b.py:3 g": 60, "c.py:9 C.h": 90}, MAX_FUNCTION_LINES, "functions")
    assert report.splitlines() == [
        "2 functions over 60 lines:",
        "  c.py:9 C.h: 90 lines",
        "  a.py:1 f: 61 lines",
    ]


def _sizes_of(path: Path) -> dict[str, int]:
    sizes: dict[str, int] = {}
    _functions(ast.parse(path.read_text()), "", path.name, sizes)
    return sizes


def bare_base_raises(paths: list[Path]) -> list[str]:
    """Every ``raise MegatronError(...)``: each error deserves its specific class (a
    ``ConfigError``, a ``GraphError``...), which is also the natural built-in to catch."""
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                func = node.exc.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                if name == "MegatronError":
                    found.append(f"  {_relative(path)}:{node.lineno}")
    return found


def test_no_error_is_raised_as_the_bare_base_class():
    found = bare_base_raises(SOURCES)
    assert not found, "raise MegatronError(...) instead of a specific class:\n" + "\n".join(found)
