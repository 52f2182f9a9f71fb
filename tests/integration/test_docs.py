"""The documentation: built strictly, reference pages current and complete, and every code
block of the READMEs and docs running as written.

A Python block runs on its own, in a fresh namespace and an empty working directory. A block
that is not meant to run alone says so on the line before it: ``<!-- fragment: why -->``.
Shell blocks are the README's set-up commands (``<!-- command: NAME -->``, run by CI) or a
package's install line (``<!-- install -->``). A block that needs an optional package that
is missing is skipped, naming it (and fails where the package is installed).
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from megatron.errors import MissingDependencyError
from megatron.layers import StatelessLayer
from megatron.plugins import hookimpl, hookspecs

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted([ROOT / "README.md", *DOCS.glob("*.md"), *ROOT.glob("packages/*/README.md")])
PACKAGES = sorted(p.parent for p in ROOT.glob("packages/*/pyproject.toml"))
PYTHON = {"python", "py"}
SHELL = {"bash", "sh", "shell", "console"}
DATA = {"", "text", "toml", "json", "yaml", "ini"}
FENCE = re.compile(r"^```([\w+-]*)\n(.*?)^```$", re.S | re.M)
MARKER = re.compile(r"<!--\s*(fragment|command|install)\s*:?\s*(.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    language: str
    code: str
    marker: str | None
    note: str

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = MARKER.search(before)
        found.append(
            Block(
                page,
                text.count("\n", 0, match.start()) + 1,
                match.group(1),
                match.group(2),
                marker.group(1) if marker else None,
                marker.group(2) if marker else "",
            )
        )
    return found


ALL_BLOCKS = [block for page in PAGES for block in blocks(page)]
RUNNABLE = [b for b in ALL_BLOCKS if b.language in PYTHON and b.marker != "fragment"]


def load_generator():
    spec = importlib.util.spec_from_file_location("gen_reference", DOCS / "gen_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reference_pages_are_current():
    for module in ("megatron_keras", "megatron_sklearn", "megatron_sql"):  # the pages list every plugin
        pytest.importorskip(module, reason=f"needs {module}: the reference pages list every plugin's names")
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


def test_every_block_runs_or_says_why_not():
    assert len(RUNNABLE) >= 10, "the block extraction found too little"
    for block in ALL_BLOCKS:
        where = f"{block.id} ({block.language or 'plain'} block)"
        if block.marker == "fragment":
            assert block.note, f"{where}: say why it is a fragment: <!-- fragment: why -->"
        elif block.language in SHELL:
            assert block.marker in ("command", "install"), (
                f"{where}: a shell block is a README set-up command (<!-- command: NAME -->, CI runs it) "
                "or a package's install line (<!-- install -->)"
            )
        else:
            assert block.language in PYTHON | DATA, f"{where}: unknown language; mark it as a fragment"


@pytest.mark.parametrize("block", RUNNABLE, ids=[b.id for b in RUNNABLE])
def test_code_block_runs_as_written(block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.random.seed(0)
    code = compile(block.code, str(block.page.relative_to(ROOT)), "exec")
    try:
        exec(code, {"__name__": "__docs__"})
    except (MissingDependencyError, ModuleNotFoundError) as exc:
        module = (exc.name or "").partition(".")[0]
        if not module or importlib.util.find_spec(module) is not None:
            raise
        pytest.skip(f"needs {module}, which this environment does not install: {exc}")


@pytest.mark.parametrize("package", PACKAGES, ids=[p.name for p in PACKAGES])
def test_each_package_readme_shows_its_install_line_and_an_example(package):
    readme = package / "README.md"
    name = re.search(r'^name = "(.+)"$', (package / "pyproject.toml").read_text(), re.M).group(1)
    page = blocks(readme)
    installs = [b for b in page if b.marker == "install"]
    assert len(installs) == 1, f"{readme}: one install block, marked <!-- install -->"
    words = installs[0].code.split()
    assert words[:3] == ["pip", "install", "-e"], f"{readme}: install editable from the repository"
    paths = [w.strip("\"'").split("[")[0] for w in words[3:] if w != "-e"]
    assert f"packages/{name}" in paths, f"{readme}: the install line installs packages/{name}"
    assert all((ROOT / p / "pyproject.toml").exists() for p in paths), f"{readme}: {paths}"
    if name != "megatron-core":
        assert paths[0] == "packages/megatron-core", f"{readme}: install the core from the repository too"
    assert any(b in RUNNABLE for b in page), f"{readme}: a runnable example"


def test_docs_build_strictly(tmp_path):
    pytest.importorskip("mkdocs", reason="needs mkdocs (requirements-test.txt) to build the site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "reference" / "layers" / "index.html").exists()
