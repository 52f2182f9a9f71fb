"""The documentation: built strictly, reference pages current and complete, examples running."""

import importlib.util
import inspect
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from megatron.layers import StatelessLayer
from megatron.plugins import hookimpl, hookspecs

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def load_generator():
    spec = importlib.util.spec_from_file_location("gen_reference", DOCS / "gen_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reference_pages_are_current():
    generator = load_generator()
    for filename, text in generator.pages().items():
        assert (DOCS / "reference" / filename).read_text() == text + "\n", (
            f"run python docs/gen_reference.py ({filename})"
        )


class Undocumented(StatelessLayer):
    def transform(self, x):
        return x


class UndocumentedPlugin:
    @hookimpl
    def register_layers(self, register):
        register("Undocumented", Undocumented)


def test_a_layer_without_docs_fails_the_guard(megatron_plugins):
    megatron_plugins(UndocumentedPlugin(), "undocumented")
    generator = load_generator()
    with pytest.raises(generator.UndocumentedError, match="layer Undocumented .* has no docstring"):
        generator.pages()


def hook_names():
    return [
        name for name, f in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(f, "megatron_spec")
    ]


@pytest.mark.parametrize("hook", hook_names())
def test_every_hook_is_documented_and_tested(hook):
    assert inspect.getdoc(getattr(hookspecs, hook)), f"hook {hook} has no docstring"
    tests = [p for p in (ROOT / "tests").rglob("test_*.py") if p.name != "test_docs.py"]
    assert any(f"def {hook}(" in p.read_text() for p in tests), f"no test implements the hook {hook}"


def python_examples():
    for page in sorted(DOCS.glob("*.md")):
        for number, block in enumerate(re.findall(r"```python\n(.+?)```", page.read_text(), re.S)):
            yield pytest.param(block, id=f"{page.stem}-{number}")


@pytest.mark.parametrize("code", python_examples())
def test_documentation_examples_run(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.random.seed(0)
    exec(compile(code, "docs", "exec"), {})


def test_docs_build_strictly(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "reference" / "layers" / "index.html").exists()
