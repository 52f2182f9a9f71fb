"""What the built-in plugin registers, by kind and name, read without loading any plugin: its
hooks (:mod:`megatron.plugins.builtin`) register these, and the attribute door
(:mod:`megatron.plugins.facade`) resolves a built-in name from them before the installed
plugins are read, noting each one it hands out so that the first scan can warn of a plugin
that registers the same name."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from megatron.plugins.registry import Kind, Registry

LAYERS = {
    "megatron.layers.lambda_layer": ["Lambda"],
    "megatron.layers.image": ["RGBtoGrey", "RGBtoBinary", "Downsample", "Upsample", "ScalePixels"],
    "megatron.layers.missing": ["Impute", "SimpleImpute", "MissingIndicator"],
    "megatron.layers.numeric": [
        "Add", "Subtract", "ScalarMultiply", "ScalarAdd", "ElementWiseMultiply", "Divide", "StaticDot", "Dot", "Clip", "Log",
    ],
    "megatron.layers.scaling": ["Normalize", "Whiten", "MinMaxScale"],
    "megatron.layers.shaping": ["Cast", "AddDim", "Reshape", "Flatten", "Slice"],
    "megatron.layers.encoding": ["OneHotRange", "OneHotLabels"],
    "megatron.layers.joins": ["Concatenate", "SplitDict"],
    "megatron.layers.rows": ["TimeSeries", "Filter"],
    "megatron.layers.text": ["Lowercase", "Tokenize", "RemoveStopwords", "CountVectorize"],
}  # fmt: skip

METRICS = {
    "megatron.metrics.base": ["Metric"],
    "megatron.metrics.classification": ["Accuracy", "Precision", "Recall", "F1"],
    "megatron.metrics.regression": ["MeanSquaredError", "MeanAbsoluteError", "R2"],
}

SOURCES = {
    "megatron.io.sources": ["PandasData", "CSVData", "PandasGenerator", "CSVGenerator", "ArrayGenerator"],
    "megatron.io.parquet": ["ParquetData", "ParquetGenerator", "from_parquet"],
}

_TARGETS: dict[str, dict[str, str]] = {}
_HANDED_OUT: set[tuple[str, str]] = set()


def builtin_target(kind: Kind, name: str) -> str | None:
    """The ``"module:attribute"`` path of the built-in ``kind`` named ``name``, or None: what the
    built-in plugin registers, read without loading any plugin."""
    if not _TARGETS:
        for table_kind, table in (("layer", LAYERS), ("metric", METRICS), ("source", SOURCES)):
            _TARGETS[table_kind] = {n: f"{module}:{n}" for module, names in table.items() for n in names}
    return _TARGETS.get(kind, {}).get(name)


def handed_out(kind: Kind, name: str) -> None:
    """Note that the built-in ``name`` was used before the plugins were scanned."""
    _HANDED_OUT.add((kind, name))


def early_conflicts(registry: Callable[[], Registry]) -> list[str]:
    """Warnings for the built-ins used before the plugins were scanned that a plugin also
    registers (``registry`` gives the registry of the scan): such a name is a conflict from the
    scan on, like any other."""
    if not _HANDED_OUT:
        return []
    notes = []
    for (kind, name), clash in sorted(registry().conflicts.items()):
        if (kind, name) in _HANDED_OUT:
            others = " and ".join(f"{e.distribution} (plugin {e.plugin!r})" for e in clash[1:])
            notes.append(
                f"megatron: the built-in {kind} {name!r} was used before the installed plugins were read, and "
                f"{others} also registers it: from now on the name is a conflict "
                "(PluginConflictError on use)."
            )
    return notes
