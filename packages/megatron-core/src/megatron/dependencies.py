"""Optional libraries: importing them on demand, and saying how to install what is missing
(plugin packages are in the plugin catalogue, :mod:`megatron.plugins.hints`).

Megatron's packages install from a clone of its repository (an unrelated project publishes a
``megatron-core`` on PyPI), so every hint names the repository install:
``pip install -e "packages/megatron-core[pandas]"``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from megatron.errors import MissingDependencyError

REPOSITORY = "a clone of the Megatron repository"

OPTIONAL_MODULES: dict[str, str] = {
    "pandas": "megatron-core[pandas]",
    "pyarrow": "megatron-core[parquet]",
    "polars": "megatron-core[polars]",
    "pydot": "megatron-core[viz]",
    "tqdm": "megatron-core[progress]",
    "hypothesis": "megatron-core[testing]",
}
"""Each optional module of the core, and the package (with its extra) that brings it. What a
plugin package provides is in the plugin catalogue (:mod:`megatron.plugins.catalogue`)."""


def install_command(package: str) -> str:
    """The command that installs ``package`` of this repository (``megatron-core[pandas]``, a
    plugin package) from the repository's root."""
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
