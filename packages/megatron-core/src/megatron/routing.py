"""Fit-time arguments routed to the layers that take them (metadata routing).

``pipeline.fit(data, sample_weight=w)`` sends ``sample_weight`` to every stateful layer whose
``fit`` takes it; ``pipeline.fit(data, fit_params={"model": {"sample_weight": w}})`` sends it
to one layer, named by the layer's name or the name of a node it computes. As in
scikit-learn's metadata routing, nothing is dropped without a word: an argument no layer
takes, a name that is no layer or node, or a layer whose ``fit`` does not take the argument is
a :class:`~megatron.errors.ConfigError`.

A value is either

- an array with one value per row of the data (a whole-data ``fit`` or ``partial_fit``),
  whose length is checked; it cannot reach a layer behind a row filter, whose rows are not the
  data's; or
- the name of a node of the graph (a declared input such as ``"weight"``, or a node computed
  from it without learning, such as the weights passed through the same ``Filter`` as the
  features): computed from each batch, so it works with ``fit_generator`` and stays aligned
  with the rows the layer sees. Its row filters must be the layer's; or
- anything else (a dict of class weights), passed as it is.

A layer says what it takes with ``accepted_fit_params(mode)`` (a set of names, or None for
"any argument addressed to it by name"); otherwise the named parameters of its ``fit``
(``partial_fit``) are read from its signature.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from megatron.errors import ConfigError, DataError
from megatron.graph.call import FIT_PARAMS
from megatron.graph.node import Node, describe_rows
from megatron.graph.topology import needed_inputs, upstream_calls
from megatron.layers.out_of_fold import refuse_out_of_fold
from megatron.suggest import did_you_mean

if TYPE_CHECKING:
    from megatron.execution.executor import Executor
    from megatron.execution.plan import Plans
    from megatron.graph.topology import Graph
    from megatron.layers.base import Layer

FitParams = Mapping[str, Mapping[str, Any]]
"""Arguments for named layers: ``{layer or node name: {argument: value}}``."""


def accepted_fit_params(layer: Layer, mode: str) -> frozenset[str] | None:
    """The arguments ``layer``'s ``fit`` (``partial_fit`` for ``mode='partial_fit'``) takes
    besides its inputs; None where it takes any keyword (``**options``) it is sent by name."""
    own = getattr(layer, "accepted_fit_params", None)
    if own is not None:
        return own(mode)
    method = getattr(layer, "partial_fit" if mode == "partial_fit" else "fit")
    named = set()
    for parameter in inspect.signature(method).parameters.values():
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY or (
            parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
            and parameter.default is not inspect._empty
        ):
            named.add(parameter.name)
    return frozenset(named)


@attrs.frozen
class Routing:
    """Where each routed argument goes: per layer (by ``id``), values given as they are and
    nodes computed from each batch."""

    pipeline: str
    graph: Graph
    given: dict[int, dict[str, Any]]
    nodes: dict[int, dict[str, Node]]

    @property
    def per_row(self) -> list[tuple[int, str, Any]]:
        return [(k, p, v) for k, params in self.given.items() for p, v in params.items() if _rows_of(v)]

    def refuse_arrays(self, operation: str) -> None:
        """Arrays for the whole data cannot be cut into a stream's batches: refuse them."""
        for key, param, _ in self.per_row:
            raise ConfigError(
                f"Pipeline {self.pipeline!r}.{operation}(): {param}= for layer {self._name(key)!r} is an array "
                "for the whole data, which a stream of batches cannot cut: declare it as an input, give it in "
                f"each batch and route it by name ({param}='the input's name')."
            )

    def refuse_driving(self, operation: str) -> None:
        """Layers that run their own training loop over a stream take no routed argument there."""
        for layer in self.graph.stateful_layers:
            if (id(layer) in self.given or id(layer) in self.nodes) and layer.drives_its_own_loop():
                raise ConfigError(
                    f"Pipeline {self.pipeline!r}.{operation}(): {self.graph.describe(layer)} runs its own "
                    "training loop over the stream, which takes no routed fit arguments; fit it with "
                    "fit() on the whole data to route them."
                )

    @contextlib.contextmanager
    def applied(self, plans: Plans, executor: Executor, data: Any, n_rows: int | None) -> Iterator[None]:
        """Within the block, layers' learning methods get their routed arguments for ``data``
        (a whole dataset or one batch of ``n_rows`` rows)."""
        from megatron.io.feeds import read_feeds

        values = {key: dict(params) for key, params in self.given.items()}
        for key, param, value in self.per_row:
            if n_rows is not None and _rows_of(value) != n_rows:
                raise DataError(
                    f"Pipeline {self.pipeline!r}: {param}= for layer {self._name(key)!r} holds "
                    f"{_rows_of(value)} values; the data holds {n_rows} rows."
                )
        wanted = [(key, param, node) for key, params in self.nodes.items() for param, node in params.items()]
        if wanted:
            nodes = [node for _, _, node in wanted]
            plan = plans.get(("routed", tuple(id(n) for n in nodes)), nodes)
            feeds, _ = read_feeds(plan.inputs, data, None, self.pipeline, "fit")
            for (key, param, _), value in zip(wanted, executor.run(plan, feeds)):
                values.setdefault(key, {})[param] = value
        token = FIT_PARAMS.set(values)
        try:
            yield
        finally:
            FIT_PARAMS.reset(token)

    def _name(self, key: int) -> str:
        return next(layer.name for layer in self.graph.layers if id(layer) == key)


def route(
    pipeline: str,
    graph: Graph,
    mode: str,
    fit_params: FitParams | None,
    broadcast: Mapping[str, Any],
    *,
    foreign: bool = False,
    stream: bool = False,
) -> Routing | None:
    """Where ``fit_params`` (by layer or node name) and ``broadcast`` (to every layer that takes
    the argument) go, checked; None when nothing is routed. Refuses to fit layers with ``cv=``
    batch by batch (``mode='partial_fit'``). ``foreign``: the data goes to a
    plugin (dask), which takes no routed arguments; ``stream``: a ``fit_generator``, where
    values come from each batch."""
    where = f"Pipeline {pipeline!r}"
    if mode == "partial_fit":
        refuse_out_of_fold(
            graph.stateful_layers, graph.describe, "fit_generator" if stream else "partial_fit"
        )
    if not fit_params and not broadcast:
        return None
    if foreign:
        raise ConfigError(
            f"{where}: routed fit arguments work on data the core reads itself, not on {where}'s plugin data"
        )
    layers = graph.stateful_layers
    given: dict[int, dict[str, Any]] = {}
    for param, value in broadcast.items():
        takers = [layer for layer in layers if param in (accepted_fit_params(layer, mode) or ())]
        if not takers:
            raise ConfigError(
                f"{where}: {param}= was passed to {mode}(), but no layer's {mode}() takes it, so it would be "
                f"unused. The layers take: {_takes(layers, mode)}. Address an argument to one layer with "
                f"fit_params={{'layer name': {{{param!r}: ...}}}}."
            )
        for layer in takers:
            given.setdefault(id(layer), {})[param] = value
    by_name = {layer.name: layer for layer in layers}
    for name, params in (fit_params or {}).items():
        named = _layer_named(where, graph, by_name, name)
        accepted = accepted_fit_params(named, mode)
        if not isinstance(params, Mapping):
            raise ConfigError(
                f"{where}: fit_params[{name!r}] must map argument names to values; got {params!r}"
            )
        for param, value in params.items():
            if accepted is not None and param not in accepted:
                raise ConfigError(
                    f"{where}: {graph.describe(named)} has a {mode}() that does not take {param!r}; it takes "
                    f"{sorted(accepted)}.{did_you_mean(param, accepted)}"
                )
            given.setdefault(id(named), {})[param] = value
    routing = _placed(where, pipeline, graph, given)
    if stream:
        routing.refuse_arrays("fit_generator")
        routing.refuse_driving("fit_generator")
    return routing


def _layer_named(where: str, graph: Graph, by_name: Mapping[str, Layer], name: str) -> Layer:
    if name in by_name:
        return by_name[name]
    node = graph.node_named(name)
    if node is not None and node.call is not None and node.call.layer.stateful:
        return node.call.layer
    names = [
        *by_name,
        *(n.name for layer in by_name.values() for c in graph.calls_of(layer) for n in c.outputs),
    ]
    raise ConfigError(
        f"{where}: fit_params names {name!r}, which is no stateful layer or node of one; the stateful layers "
        f"are {sorted(by_name)}.{did_you_mean(name, names)}"
    )


def _placed(where: str, pipeline: str, graph: Graph, given: dict[int, dict[str, Any]]) -> Routing:
    """Split the values into those given as they are and node names, checking that each reaches
    its layer row by row."""
    nodes: dict[int, dict[str, Node]] = {}
    layers = {id(layer): layer for layer in graph.stateful_layers}
    for key, params in given.items():
        layer = layers[key]
        calls = graph.calls_of(layer)
        if len(calls) > 1:
            raise ConfigError(
                f"{where}: {graph.describe(layer)} is called on several nodes and fitted on all of them "
                "at once; routed fit arguments reach only a layer called once."
            )
        rows = calls[0].inputs[0].rows if calls[0].inputs else ()
        for param, value in list(params.items()):
            if isinstance(value, str | Node):
                nodes.setdefault(key, {})[param] = _routed_node(where, graph, layer, param, value, rows)
                del params[param]
            elif _rows_of(value) is not None and rows:
                raise ConfigError(
                    f"{where}: {param}= for {graph.describe(layer)} is an array of one value per row of the "
                    f"data, but the layer sees {describe_rows(rows)}. Declare the values "
                    f"as an input, pass it through the same filter call as the layer's inputs and route the "
                    f"filtered node by name ({param}='its name')."
                )
    return Routing(pipeline, graph, {k: v for k, v in given.items() if v}, nodes)


def _routed_node(
    where: str, graph: Graph, layer: Layer, param: str, given: str | Node, rows: tuple[Node, ...]
) -> Node:
    """The node a routed value names (or is), checked: read from the pipeline's declared inputs
    without learning, with the layer's rows."""
    if isinstance(given, str):
        node = graph.node_named(given)
        if node is None:
            names = [n.name for n in graph.nodes]
            raise ConfigError(
                f"{where}: {param}={given!r} for layer {layer.name!r} names no node of the pipeline: by name it "
                "knows its inputs and the nodes on the way to its outputs and metrics. Route a node computed "
                f"off that way (from a declared input, without learning) as the node itself: {param}=node."
                f"{did_you_mean(given, names)}"
            )
    else:
        node = given
    shown = repr(node.name)
    declared = {id(n) for n in graph.inputs}
    undeclared = [n.name for n in needed_inputs([node], upstream_calls([node])) if id(n) not in declared]
    if undeclared:
        raise ConfigError(
            f"{where}: {param}={shown} for layer {layer.name!r} is computed from {undeclared}, which "
            f"{'is' if len(undeclared) == 1 else 'are'} not among the pipeline's declared inputs "
            f"{[n.name for n in graph.inputs]}; route a node computed from them."
        )
    if tuple(map(id, node.rows)) != tuple(map(id, rows)):
        raise ConfigError(
            f"{where}: {param}={shown} for layer {layer.name!r} holds "
            f"{describe_rows(node.rows)}, and the layer sees {describe_rows(rows)}: pass the values "
            "through the same filter call as the layer's inputs, and route that output."
        )
    learning = [c.layer.name for c in upstream_calls([node]) if c.layer.stateful]
    if learning:
        raise ConfigError(
            f"{where}: {param}={shown} for layer {layer.name!r} is computed by layers that learn "
            f"({learning}), which are not fitted yet when it is needed; route a node computed without them."
        )
    return node


def _rows_of(value: Any) -> int | None:
    shape = getattr(value, "shape", None)
    return int(shape[0]) if isinstance(shape, tuple) and len(shape) >= 1 else None


def _takes(layers: list[Any], mode: str) -> str:
    parts = []
    for layer in layers:
        accepted = accepted_fit_params(layer, mode)
        parts.append(f"{layer.name!r}: {'any by name' if accepted is None else sorted(accepted)}")
    return "{" + ", ".join(parts) + "}"


def applied(
    routing: Routing | None, plans: Plans, executor: Executor, data: Any, n_rows: int | None
) -> contextlib.AbstractContextManager[None]:
    """:meth:`Routing.applied`, or nothing to do where nothing is routed."""
    return contextlib.nullcontext() if routing is None else routing.applied(plans, executor, data, n_rows)
