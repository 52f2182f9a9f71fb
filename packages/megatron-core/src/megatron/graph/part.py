"""Part of a graph, asked for by name: the nodes one ``transform(outputs=...)`` computes, or the
metrics one ``evaluate(metrics=...)`` updates, so that only what they need runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import attrs

from megatron.errors import GraphError, SpecError, UnknownOutputError
from megatron.graph.node import Node, common_rows
from megatron.suggest import did_you_mean

if TYPE_CHECKING:
    from megatron.graph.topology import Graph
    from megatron.metrics.base import MetricNode


MetricsAsked: TypeAlias = "str | MetricNode | Sequence[str | MetricNode] | None"
"""What ``evaluate(metrics=...)`` takes: metric names or metric nodes (None: every metric)."""


@attrs.frozen
class Part:
    """The nodes asked for, in the order asked (``names``), and the filters upstream of them
    (``rows``: whose kept rows give the index of the result)."""

    nodes: tuple[Node, ...]
    names: tuple[str, ...]
    rows: tuple[Node, ...]
    whole: bool
    """Whether every output of the graph is among ``nodes`` (so a storage can keep the rows)."""


def whole_part(graph: Graph) -> Part:
    """The part that is the graph's outputs, as a plain ``transform`` computes them."""
    return Part(graph.outputs, graph.output_names, graph.rows, True)


def select_part(graph: Graph, wanted: str | Node | Sequence[str | Node]) -> Part:
    """The nodes of ``graph`` named (or given) in ``wanted``: outputs, inputs or intermediate
    nodes. Nodes filtered by different ``Filter`` calls cannot be asked for together."""
    items = [wanted] if isinstance(wanted, (str, Node)) else list(wanted)
    if not items:
        raise GraphError(f"{graph.where}: outputs= names no node; pass None for every output.")
    nodes = [_node(graph, item) for item in items]
    names = [node.name for node in nodes]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise GraphError(f"{graph.where}: outputs= names {repeated} more than once.")
    try:
        rows = common_rows(nodes, f"{graph.where}: outputs=")
    except SpecError as exc:
        raise GraphError(str(exc)) from None
    asked = {id(node) for node in nodes}
    whole = all(id(node) in asked for node in graph.outputs)
    return Part(tuple(nodes), tuple(names), rows, whole)


def _node(graph: Graph, item: Any) -> Node:
    if isinstance(item, Node):
        if graph.node_named(item.name) is not item:
            raise GraphError(f"{graph.where}: node {item.name!r} is not a node of this graph.")
        return item
    if not isinstance(item, str):
        raise GraphError(f"{graph.where}: outputs= takes node names or nodes; got {item!r}.")
    node = graph.node_named(item)
    if node is None and item in {m.name for m in graph.metrics}:
        raise UnknownOutputError(
            f"{graph.where}: {item!r} is a metric, not a node; evaluate(metrics=[{item!r}]) computes it."
        )
    if node is None:
        raise UnknownOutputError(
            f"{graph.where} has no node named {item!r}; its outputs are {list(graph.output_names)}."
            + did_you_mean(item, [n.name for n in graph.nodes])
        )
    return node


def select_metrics(
    graph: Graph, wanted: str | MetricNode | Sequence[str | MetricNode]
) -> tuple[MetricNode, ...]:
    """The metrics of ``graph`` named (or given) in ``wanted``, in that order."""
    items = [wanted] if isinstance(wanted, str) or not isinstance(wanted, Sequence) else list(wanted)
    names = [_metric_name(graph, item) for item in items]
    by_name = {m.name: m for m in graph.metrics}
    if not names:
        raise GraphError(f"{graph.where}: metrics= names no metric; pass None for every metric.")
    for name in names:
        if not isinstance(name, str):
            raise GraphError(f"{graph.where}: metrics= takes metric names; got {name!r}.")
        if name not in by_name:
            raise UnknownOutputError(
                f"{graph.where} has no metric named {name!r}; its metrics are {list(by_name)}."
                + did_you_mean(name, by_name)
            )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise GraphError(f"{graph.where}: metrics= names {repeated} more than once.")
    return tuple(by_name[name] for name in names)


def _metric_name(graph: Graph, item: Any) -> Any:
    """A metric's name, for a metric node of ``graph`` given itself (anything else as given)."""
    if isinstance(item, str) or not hasattr(item, "metric"):
        return item
    if not any(item is metric for metric in graph.metrics):
        raise GraphError(
            f"{graph.where}: metric {getattr(item, 'name', item)!r} is not a metric of this graph."
        )
    return item.name
