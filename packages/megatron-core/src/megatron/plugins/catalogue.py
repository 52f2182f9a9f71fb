"""The catalogue: plugin distributions megatron can point a user to, as data.

When a name, a command, a default or an object that no loaded plugin provides is asked for,
the hint that says what to install comes from here (:mod:`megatron.plugins.hints` reads it).
Nothing here is loaded, imported or trusted: a distribution in the catalogue is a plugin like
any other, and one that is not listed works the same, only without the hint. Any plugin
distribution can be listed the same way.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs


@attrs.frozen
class KnownDistribution:
    """A plugin distribution, what it provides, and how it installs."""

    name: str
    """The distribution's name, as pip installs it."""
    module: str
    """A top-level module it ships: importable when it is installed."""
    provides: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    """The names its plugin registers, by kind (``"layer"``, ``"storage"``, ``"command"``...)."""
    hooks: tuple[str, ...] = ()
    """The other hooks it implements that the core asks for by hook (``default_storage_url``)."""
    adapts: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    """By adapter hook, the top-level modules of the foreign objects it claims."""
    from_repository: bool = True
    """Installed from a clone of the Megatron repository (``packages/<name>``), not an index."""


KNOWN: tuple[KnownDistribution, ...] = (
    KnownDistribution(
        name="megatron-sql",
        module="megatron_sql",
        provides={
            "source": ("SQLData", "SQLGenerator", "from_sql"),
            "storage": ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "mssql", "oracle"),
        },
        hooks=("default_storage_url",),
        adapts={"adapt_storage": ("sqlite3", "sqlalchemy")},
    ),
    KnownDistribution(
        name="megatron-sklearn",
        module="megatron_sklearn",
        provides={
            "layer": ("Sklearn",),
            "metric": ("Sklearn", "ROCAUC", "AveragePrecision", "LogLoss"),
            "serializer": ("skops",),
        },
        adapts={"adapt_layer": ("sklearn",)},
    ),
    KnownDistribution(
        name="megatron-keras",
        module="megatron_keras",
        provides={"layer": ("Keras",), "serializer": ("keras",), "command": ("demo",)},
        adapts={"adapt_layer": ("keras",)},
    ),
    KnownDistribution(
        name="megatron-dask",
        module="megatron_dask",
        adapts={"run_operation": ("dask",)},
    ),
)
"""Megatron's own plugin distributions."""
