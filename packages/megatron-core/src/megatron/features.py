"""Feature names through a graph: the names of each node's last axis, from the inputs' columns
through each layer's ``get_feature_names_out``.

An input reading DataFrame columns (``Input('x', (2,), columns=['age', 'income'])``) carries
their names; an input of one value per observation (shape ``()``) is one feature named after
the input; any other input's names are not known (None). Each layer call then names its
outputs from its feature inputs' names (:meth:`megatron.layers.Layer.get_feature_names_out`).
A pipeline computes its graph's names once per fitted state (its fingerprint), never per
``transform``: ``Outputs`` resolve them only when ``to_frame`` asks.

A node's names are distinct, so each names one column of a frame: where a layer's names repeat
and are its inputs' names one after the other (a concatenation), each input whose names repeat
is prefixed by its node's name (``<node>__<feature>``, as ``to_frame`` prefixes outputs and
scikit-learn's ``FeatureUnion`` its transformers); whatever still repeats (the same node
joined twice, a layer of one's own) is numbered: ``age``, ``age_1``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from megatron.errors import LayerError, UnknownOutputError, layer_failure
from megatron.layers.naming import FeatureNames, distinct, joined, sourced
from megatron.suggest import did_you_mean

if TYPE_CHECKING:
    from megatron.graph.call import Call
    from megatron.graph.node import Input, Node
    from megatron.graph.topology import Graph
    from megatron.pipeline import Pipeline

__all__ = ["FeatureNames", "PipelineFeatures", "graph_feature_names", "input_feature_names"]


def input_feature_names(node: Input) -> FeatureNames:
    """The names of an input's last axis: its DataFrame ``columns``, else its own name for one
    value per observation, else None."""
    if node.columns is not None:
        return list(node.columns)
    return [node.name] if node.shape == () else None


def graph_feature_names(
    graph: Graph, inputs: Mapping[str, FeatureNames] | None = None
) -> dict[str, FeatureNames]:
    """Every node's feature names, by node name, in one walk of ``graph``'s calls; ``inputs``
    gives the names of some inputs instead of their columns (a scikit-learn ``X``'s columns)."""
    given = inputs or {}
    names: dict[str, FeatureNames] = {}
    for node in graph.inputs:
        own = given.get(node.name)
        found = list(own) if own is not None else input_feature_names(node)
        names[node.name] = None if found is None else distinct(found)
    for call in graph.calls:
        outputs = call.visible_outputs
        features = [names.get(n.name) for n in call.features]
        for output, value in zip(outputs, _call_names(call, features)):
            names[output.name] = _distinct(call, _checked(call, output, value), features)
    return names


def _distinct(call: Call, names: FeatureNames, features: Sequence[FeatureNames]) -> FeatureNames:
    """``names`` made distinct: a joining's inputs prefixed by node where their names repeat,
    then any repeat left numbered."""
    if names is None or len(set(names)) == len(names):
        return names
    if len(features) > 1 and names == joined(features):
        names = sourced([(node.name, part or []) for node, part in zip(call.features, features)])
    return distinct(names)


def _call_names(call: Call, features: Sequence[FeatureNames]) -> Sequence[FeatureNames]:
    """What the call's layer names its outputs, one entry per visible output."""
    layer: Any = call.layer
    try:
        result = layer.get_feature_names_out(*features)
    except Exception as exc:
        raise layer_failure(call.describe(), "get_feature_names_out", [], exc) from exc
    n = len(call.visible_outputs)
    if result is None:
        return [None] * n
    if n == 1 and not (isinstance(result, tuple) and all(r is None or isinstance(r, list) for r in result)):
        return [result]  # one output's names (a tuple of lists is one entry per output, a Filter's)
    if not isinstance(result, tuple) or len(result) != n:
        raise LayerError(
            f"{call.describe()} has {n} outputs: get_feature_names_out() must return a tuple of {n} "
            f"lists of names (or None); got {type(result).__name__}."
        )
    return result


def _checked(call: Call, node: Node, names: Any) -> FeatureNames:
    """``names`` as a list of strings as long as ``node``'s last axis, where that is known."""
    if names is None:
        return None
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise LayerError(
            f"{call.describe()}: get_feature_names_out() must return a list of strings or None; "
            f"got {names!r}."
        )
    shape = node.shape
    width = 1 if shape == () else (shape[-1] if shape else None)
    if width is not None and len(names) != width:
        raise LayerError(
            f"{call.describe()}: get_feature_names_out() gave {len(names)} names for node "
            f"{node.name!r}, whose last axis has {width} values ({node.spec})."
        )
    return list(names)


class PipelineFeatures:
    """The feature names of a pipeline's nodes (a mixin of :class:`~megatron.Pipeline`)."""

    def feature_names(
        self, node: str | Node | None = None, inputs: Mapping[str, Sequence[str] | None] | None = None
    ) -> Any:
        """The names of the last axis of each output (``{output name: list or None}``), or of
        ``node`` (a node or a node's name) alone: an input's columns, passed through layers that
        keep features and renamed by those that make new ones (``one_hot_range__colour_red``,
        ``static_dot0``). None where they are not known; stateful layers that learn their
        features (``OneHotLabels``) know them once fitted. ``inputs`` names the columns of
        some inputs instead (by input name: the columns of the data a scikit-learn ``X`` came
        from)."""
        pipeline = _pipeline(self)
        if inputs:
            names = graph_feature_names(
                pipeline.graph, {k: None if v is None else list(v) for k, v in inputs.items()}
            )
        else:
            names = self._graph_feature_names()
        if node is None:
            return {name: _copy(names.get(name)) for name in pipeline.output_names}
        key = node if isinstance(node, str) else node.name
        if key not in names:
            raise UnknownOutputError(
                f"Pipeline {pipeline.name!r} has no node named {key!r}.{did_you_mean(key, names)}"
            )
        return _copy(names[key])

    def _graph_feature_names(self) -> dict[str, FeatureNames]:
        """Every node's names, computed once per fingerprint (a fit, a new hyperparameter)."""
        pipeline = _pipeline(self)
        fingerprint = pipeline.fingerprint
        memo = self.__dict__.get("_feature_names_memo")
        if memo is None or memo[0] != fingerprint:
            memo = self.__dict__["_feature_names_memo"] = (fingerprint, graph_feature_names(pipeline.graph))
        return cast("dict[str, FeatureNames]", memo[1])


def _copy(names: FeatureNames) -> FeatureNames:
    return None if names is None else list(names)


def _pipeline(shown: PipelineFeatures) -> Pipeline:
    return cast("Pipeline", shown)  # the one class that mixes it in


def feature_columns(
    outputs: Sequence[tuple[str, Any]], features: Mapping[str, FeatureNames]
) -> dict[str, list[str]]:
    """The column names of each output of one value per feature (a 2-D array) whose feature
    names are known: those names, or ``<output>__<feature>`` for an output whose names would
    repeat another output's column; a name that still repeats (within one output, or after the
    prefix) is numbered (``age_1``), so no two columns share one."""
    chosen = {
        name: distinct(names)
        for name, array in outputs
        if array.ndim == 2 and (names := features.get(name)) is not None and len(names) == array.shape[1]
    }
    counts: dict[str, int] = {}
    for name, array in outputs:
        for column in chosen.get(name, [name] if array.ndim == 1 else []):
            counts[column] = counts.get(column, 0) + 1
    named = {
        name: [f"{name}__{c}" for c in columns] if any(counts[c] > 1 for c in columns) else columns
        for name, columns in chosen.items()
    }
    single = [name for name, array in outputs if array.ndim == 1]  # such a column is its output's name
    flat = distinct([c for columns in named.values() for c in columns], reserved=single)
    result, start = {}, 0
    for name, columns in named.items():
        result[name] = flat[start : start + len(columns)]
        start += len(columns)
    return result
