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
