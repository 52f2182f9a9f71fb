"""Feature names: the names of the last axis of a layer's output, from those of its inputs.

:class:`FeatureNaming` is mixed into :class:`~megatron.layers.Layer`. The helpers build names
in scikit-learn's style: ``<layer>__<feature>`` for new features a layer makes from one input
feature (``one_hot_range__colour_red``), ``<layer>0``... for projections (``pca0``). A
node's names are distinct: where joined inputs repeat one another's names, those inputs'
names are prefixed by their node (``<node>__<feature>``, as scikit-learn's ``FeatureUnion``
prefixes by transformer); what still repeats is numbered (``age_1``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

FeatureNames = list[str] | None
"""The names of an axis (one per position), or None where they are not known."""


class FeatureNaming:
    """What a layer says about the names of its output's last axis (a mixin of ``Layer``)."""

    def get_feature_names_out(self, *input_features: FeatureNames) -> Any:
        """The names of the output's last axis, given per feature input the names of that
        input's last axis (None where not known); None where they are not known.

        A node with one value per observation has a single name. A layer with several outputs
        returns a tuple of them, one entry per output. By default the names are not known;
        layers that keep the features (scalers, element-wise maps) pass them through, layers
        that make new ones name them ``<layer>__<feature>`` or ``<layer>0``, ``<layer>1``...
        """
        return None


def passed_through(input_features: Sequence[FeatureNames]) -> FeatureNames:
    """The names of the first input, for a layer that keeps its features (an element-wise map)."""
    return list(input_features[0]) if input_features and input_features[0] is not None else None


def shared(input_features: Sequence[FeatureNames]) -> FeatureNames:
    """The inputs' names where every input has the same ones (element-wise arithmetic of
    inputs describing the same features), else None."""
    first = passed_through(input_features)
    if first is None or any(names != first for names in input_features[1:]):
        return None
    return first


def joined(input_features: Sequence[FeatureNames]) -> FeatureNames:
    """The inputs' names one after the other (a concatenation), None where any is unknown."""
    if any(names is None for names in input_features):
        return None
    return [name for names in input_features for name in names]  # type: ignore[union-attr]


def sourced(parts: Sequence[tuple[str, Sequence[str]]]) -> list[str]:
    """The names of ``parts`` (a source's name and its names) one after the other, those of each
    part holding a name that repeats (in another part or its own) as ``<source>__<name>``."""
    counts = Counter(name for _, names in parts for name in names)
    return [
        f"{source}__{name}" if any(counts[n] > 1 for n in names) else name
        for source, names in parts
        for name in names
    ]


def distinct(names: Sequence[str], reserved: Iterable[str] = ()) -> list[str]:
    """``names`` with each repeat of an earlier name (or of a ``reserved`` one) numbered
    ``<name>_1``, ``<name>_2``... (the first number that gives a name not among either)."""
    seen = set(reserved)
    taken = seen | set(names)
    out = []
    for name in names:
        if name in seen:
            k = 1
            while f"{name}_{k}" in taken:
                k += 1
            name = f"{name}_{k}"
            taken.add(name)
        seen.add(name)
        out.append(name)
    return out


def prefixed(layer: str, values: Iterable[Any], feature: FeatureNames = None) -> list[str]:
    """``<layer>__<feature>_<value>`` per value, or ``<layer>__<value>`` where the input is not one
    named feature: the names of the columns a layer makes from the values of one feature."""
    stem = f"{layer}__{feature[0]}_" if feature is not None and len(feature) == 1 else f"{layer}__"
    return [f"{stem}{_text(value)}" for value in values]


def numbered(layer: str, n: int) -> list[str]:
    """``<layer>0`` ... ``<layer>{n-1}``: the names of a projection's components."""
    return [f"{layer}{i}" for i in range(n)]


def _text(value: Any) -> str:
    return str(value.item() if hasattr(value, "item") else value)
