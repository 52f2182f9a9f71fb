"""With every package installed, ``import megatron`` stays light, and so does loading plugins."""

import json
import subprocess
import sys
from importlib.metadata import distribution

import pytest

HEAVY = (
    "tensorflow",
    "keras",
    "sklearn",
    "sqlalchemy",
    "pandas",
    "pyarrow",
    "polars",
    "pydot",
    "torch",
    "dask",
)
PACKAGES = ("megatron-core", "megatron-sklearn", "megatron-keras", "megatron-sql")
PLUGINS = ("megatron_sklearn", "megatron_keras", "megatron_sql")


def every_plugin() -> None:
    for module in PLUGINS:
        pytest.importorskip(module, reason=f"needs {module}: this test wants every package installed")


def imported_top_level_modules(code: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True
    )
    names = set()
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_is_installed(package):
    every_plugin()
    assert distribution(package).version.startswith("2026.")


def test_import_megatron_imports_no_heavy_library():
    modules = imported_top_level_modules("import megatron")
    assert "megatron" in modules and "numpy" in modules
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))


def test_loading_every_plugin_imports_no_heavy_library():
    every_plugin()
    code = (
        "import megatron, json, sys; from megatron.plugins import get_plugin_manager;"
        "m = get_plugin_manager(); print(json.dumps(sorted(p.name for p in m.plugins)));"
        "dir(megatron.layers); dir(megatron.metrics); dir(megatron.io)"
    )
    modules = imported_top_level_modules(code)
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert set(json.loads(loaded.stdout)) >= {"core", "sklearn", "keras", "sql"}


def imported_modules(code: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(result.stdout.splitlines()[-1]))


@pytest.mark.parametrize(
    "code",
    [
        "import megatron",
        "import megatron; megatron.layers.Whiten; megatron.metrics.Accuracy; megatron.io.CSVData",
        "from megatron.layers import Whiten, checks; from megatron.io import columnar",
        "import megatron, numpy as np; x = megatron.nodes.Input('x', (2,)); "
        "p = megatron.Pipeline(x, megatron.layers.Whiten()(x, 'y'), name='p'); "
        "p.fit({'x': np.ones((3, 2))}); p.transform({'x': np.ones((1, 2))})",
    ],
)
def test_builtin_layers_do_not_read_the_installed_plugins(code):
    """A built-in name (and a submodule of megatron.layers) is found without importlib.metadata
    and the scan of every distribution it makes."""
    modules = imported_modules(code)
    assert not {"importlib.metadata", "email", "zipfile"} & modules, sorted(
        {"importlib.metadata", "email", "zipfile"} & modules
    )
    assert "megatron.plugins.manager" not in modules
