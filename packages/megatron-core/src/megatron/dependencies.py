"""Optional libraries and plugin packages: importing them on demand, and saying how to install
what is missing.

Megatron's packages install from a clone of its repository (an unrelated project publishes a
``megatron-core`` on PyPI), so every hint names the repository install:
``pip install -e "packages/megatron-core[pandas]"``.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from megatron.errors import MissingDependencyError

REPOSITORY = "a clone of the Megatron repository"

OPTIONAL_MODULES: dict[str, str] = {
    "pandas": "megatron-core[pandas]",
    "pydot": "megatron-core[viz]",
    "tqdm": "megatron-core[progress]",
    "hypothesis": "megatron-core[testing]",
    "sqlalchemy": "megatron-sql",
    "megatron_sql": "megatron-sql",
    "psycopg": "megatron-sql[postgresql]",
    "sklearn": "megatron-sklearn",
    "skops": "megatron-sklearn",
    "megatron_sklearn": "megatron-sklearn",
    "keras": "megatron-keras",
    "tensorflow": "megatron-keras",
    "megatron_keras": "megatron-keras",
}
"""Each optional module, and the package of this repository (with its extra) that brings it."""

PLUGIN_NAMES: dict[tuple[str, str], str] = {
    **{("layer", "Keras"): "megatron-keras", ("serializer", "keras"): "megatron-keras"},
    **{("layer", "Sklearn"): "megatron-sklearn", ("serializer", "skops"): "megatron-sklearn"},
    **{("metric", name): "megatron-sklearn" for name in ("Sklearn", "ROCAUC", "AveragePrecision", "LogLoss")},
    **{("source", name): "megatron-sql" for name in ("SQLData", "SQLGenerator", "from_sql")},
    **{
        ("storage", scheme): "megatron-sql"
        for scheme in ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "mssql", "oracle")
    },
}
"""The names that this repository's plugins register, by (kind, name), with their package."""

_PLUGIN_MODULES = {
    "megatron-keras": "megatron_keras",
    "megatron-sklearn": "megatron_sklearn",
    "megatron-sql": "megatron_sql",
}


def install_command(package: str) -> str:
    """The command that installs ``package`` (``megatron-sql``, ``megatron-core[pandas]``)
    from the repository's root."""
    return f'pip install -e "packages/{package}"'


def install_hint(package: str) -> str:
    """A sentence: ``install_command`` and where to run it."""
    return f"Install it from the root of {REPOSITORY}: {install_command(package)}"


def missing_module(module: str, feature: str) -> MissingDependencyError:
    """The error for ``feature`` (e.g. ``"Outputs.to_frame()"``) lacking the optional ``module``."""
    top = module.partition(".")[0]
    package = OPTIONAL_MODULES.get(top)
    how = install_hint(package) if package else f"Install it: pip install {top}"
    return MissingDependencyError(f"{feature} needs {top}, which is not installed. {how}", name=top)


def require(module: str, feature: str) -> ModuleType:
    """Import the optional ``module`` for ``feature``, or raise :class:`MissingDependencyError`
    naming the package to install. A module that is installed but fails to import raises its
    own error."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or not (module == exc.name or module.startswith(exc.name + ".")):
            raise
        raise missing_module(module, feature) from None


def missing_plugin(kind: str, name: str) -> MissingDependencyError | None:
    """The error for the well-known plugin name ``name`` of ``kind`` when its plugin is not
    loaded, or ``None`` for a name no package of this repository registers."""
    package = PLUGIN_NAMES.get((kind, name))
    return None if package is None else missing_package(f"The {kind} {name!r}", package)


def missing_package(feature: str, package: str) -> MissingDependencyError:
    """The error for ``feature``, which the plugin package ``package`` of this repository provides
    and which is not loaded: not installed, or installed but blocked or broken."""
    module = _PLUGIN_MODULES[package]
    if importlib.util.find_spec(module) is not None:
        return MissingDependencyError(
            f"{feature} comes from {package}, which is installed but whose plugin is not loaded: "
            "check MEGATRON_PLUGINS and MEGATRON_DISABLE_PLUGINS, and the warning that says why it "
            "failed to load.",
            name=module,
        )
    return MissingDependencyError(
        f"{feature} comes from {package}, which is not installed. {install_hint(package)}", name=module
    )
