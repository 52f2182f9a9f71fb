"""Each optional feature, used where its package is missing, says which package to install
from this repository (a ``MissingDependencyError``, also a ``MegatronError`` and an
``ImportError``).

In the core-only environment (``tox -e core``) the packages really are missing. Elsewhere the
test takes them away for its own duration: a module set to ``None`` in ``sys.modules`` cannot be
imported or found, and ``MEGATRON_PLUGINS=core`` loads the built-in plugin alone.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import megatron
from megatron.errors import DataError, MegatronError, MissingDependencyError
from megatron.outputs import Outputs
from megatron.plugins import reset_plugin_manager

OPTIONAL = (
    "pandas",
    "pyarrow",
    "polars",
    "pydot",
    "IPython",
    "sqlalchemy",
    "megatron_sql",
    "sklearn",
    "megatron_sklearn",
    "keras",
    "tensorflow",
    "megatron_keras",
)


@pytest.fixture
def core_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The optional packages cannot be imported, and only the core's plugin loads."""
    for module in {*OPTIONAL, *(name for name in sys.modules if name.partition(".")[0] in OPTIONAL)}:
        monkeypatch.setitem(sys.modules, module, None)  # submodules too: imported ones are cached
    monkeypatch.setenv("MEGATRON_PLUGINS", "core")
    monkeypatch.delenv("MEGATRON_DISABLE_PLUGINS", raising=False)
    reset_plugin_manager()
    yield
    reset_plugin_manager()


def pipeline() -> megatron.Pipeline:
    x = megatron.nodes.Input("x")
    return megatron.Pipeline(x, megatron.layers.ScalarMultiply(2)(x, "y"), name="optional")


def stored(url: Any) -> megatron.Pipeline:
    x = megatron.nodes.Input("x")
    return megatron.Pipeline(x, megatron.layers.ScalarMultiply(2)(x, "y"), name="stored", storage=url)


def csv_file(tmp_path: Any) -> Any:
    path = tmp_path / "data.csv"
    path.write_text("x\n1\n")
    return path


FEATURES: dict[str, tuple[Callable[[Any], object], str, str]] = {
    "Outputs.to_frame": (
        lambda _: Outputs(["a"], [np.arange(2)]).to_frame(),
        "pandas",
        "megatron-core[pandas]",
    ),
    "CSVData": (lambda tmp: megatron.io.CSVData(csv_file(tmp)), "pandas", "megatron-core[pandas]"),
    "CSVGenerator": (
        lambda tmp: megatron.io.CSVGenerator(csv_file(tmp), 1),
        "pandas",
        "megatron-core[pandas]",
    ),
    "from_csv": (lambda tmp: megatron.nodes.from_csv(csv_file(tmp)), "pandas", "megatron-core[pandas]"),
    "Outputs.to_frame polars": (
        lambda _: Outputs(["a"], [np.arange(2)]).to_frame(backend="polars"),
        "polars",
        "megatron-core[polars]",
    ),
    "Outputs.to_arrow": (
        lambda _: Outputs(["a"], [np.arange(2)]).to_arrow(),
        "pyarrow",
        "megatron-core[parquet]",
    ),
    "ParquetData": (
        lambda tmp: megatron.io.ParquetData(tmp / "d.parquet"),
        "pyarrow",
        "megatron-core[parquet]",
    ),
    "ParquetGenerator": (
        lambda tmp: megatron.io.ParquetGenerator(tmp / "d.parquet", 1),
        "pyarrow",
        "megatron-core[parquet]",
    ),
    "from_parquet": (
        lambda tmp: megatron.nodes.from_parquet(tmp / "d.parquet"),
        "pyarrow",
        "megatron-core[parquet]",
    ),
    "to_dot": (lambda _: pipeline().to_dot(), "pydot", "megatron-core[viz]"),
    "plot": (lambda tmp: pipeline().plot(tmp / "graph.png"), "pydot", "megatron-core[viz]"),
    "layers.Keras": (lambda _: megatron.layers.Keras, "megatron_keras", "megatron-keras"),
    "layers.Sklearn": (lambda _: megatron.layers.Sklearn, "megatron_sklearn", "megatron-sklearn"),
    "metrics.ROCAUC": (lambda _: megatron.metrics.ROCAUC, "megatron_sklearn", "megatron-sklearn"),
    "io.SQLData": (lambda _: megatron.io.SQLData, "megatron_sql", "megatron-sql"),
    "from_sql": (lambda _: megatron.nodes.from_sql("sqlite://", "t"), "megatron_sql", "megatron-sql"),
    "sqlite storage": (lambda tmp: stored(f"sqlite:///{tmp}/o.db"), "megatron_sql", "megatron-sql"),
    "default storage": (lambda _: stored("default"), "megatron_sql", "megatron-sql"),
    "postgresql storage": (lambda _: stored("postgresql+psycopg://h/db"), "megatron_sql", "megatron-sql"),
    "sqlite3 connection storage": (
        lambda _: stored(sqlite3.connect(":memory:")),
        "megatron_sql",
        "megatron-sql",
    ),
}


@pytest.mark.parametrize("feature", FEATURES)
def test_a_missing_package_names_its_repository_install(feature, core_only, tmp_path):
    use, module, package = FEATURES[feature]
    with pytest.raises(MissingDependencyError) as caught:
        use(tmp_path)
    error = caught.value
    assert isinstance(error, MegatronError) and isinstance(error, ImportError)
    assert error.name == module
    assert f'pip install -e "packages/{package}"' in str(error), str(error)
    assert "clone of the Megatron repository" in str(error)


def test_a_plugin_installed_but_not_loaded_says_so(monkeypatch):
    pytest.importorskip(
        "megatron_keras", reason="needs megatron_keras: pip install -e packages/megatron-keras"
    )
    monkeypatch.setenv("MEGATRON_PLUGINS", "core")
    reset_plugin_manager()
    try:
        with pytest.raises(MissingDependencyError, match="installed but whose plugin is not loaded"):
            megatron.layers.Keras
    finally:
        reset_plugin_manager()


def test_an_unknown_name_stays_an_attribute_error():
    with pytest.raises(AttributeError, match="Did you mean 'Whiten'"):
        megatron.layers.Whitten
    assert not hasattr(megatron.layers, "NoSuchLayer")


def test_the_demo_without_its_plugin_names_the_package_that_provides_it(core_only, capsys):
    from megatron.cli import main

    assert main(["demo"]) == 1
    err = capsys.readouterr().err
    assert "megatron demo: The command 'demo' comes from megatron-keras, which is not installed." in err
    assert (
        'from the root of a clone of the Megatron repository: pip install -e "packages/megatron-keras"' in err
    )


def test_pandas_data_of_a_dict_says_what_it_expects():
    with pytest.raises(DataError, match="PandasData expects a pandas DataFrame; got dict.*pass it to fit"):
        megatron.io.PandasData({"a": [1]})
    with pytest.raises(DataError, match="PandasGenerator expects a pandas DataFrame; got list"):
        megatron.io.PandasGenerator([1, 2], batch_size=1)
