"""``Graph``: the calls from a pipeline's inputs to its outputs and metrics, checked, and the
walks over it (what a set of nodes depends on, which inputs it reads)."""

from __future__ import annotations

from collections.abc import Container, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from megatron.errors import GraphError, SpecError
from megatron.graph.call import Call
from megatron.graph.names import join_graphs
from megatron.graph.node import Input, Node, as_node_list, common_rows

if TYPE_CHECKING:
    from megatron.layers.base import Layer, StatefulLayer
    from megatron.metrics.base import MetricNode


class Graph:
    """The graph of a pipeline, checked when built: its :attr:`inputs`, :attr:`outputs` and
    :attr:`metrics`, and the layer :attr:`calls` that compute them, in topological order.

    ``where`` names the graph in error messages (``"Pipeline 'iris'"``). Metrics called on
    nodes of the graph are found without being listed: a metric is found when every node it
    reads lies on the way from the inputs to the outputs, so a metric of another pipeline that
    shares these inputs never pulls that pipeline's model into this one.
    """

    def __init__(
        self,
        inputs: Input | Sequence[Input],
        outputs: Node | Sequence[Node],
        metrics: Sequence[MetricNode] = (),
        where: str = "Graph",
    ) -> None:
        self.where = where
        self.inputs: tuple[Input, ...] = _inputs(as_node_list(inputs, f"{where} inputs"), where)
        self.outputs: tuple[Node, ...] = _named(as_node_list(outputs, f"{where} outputs"), where)
        try:
            self.rows: tuple[Node, ...] = common_rows(self.outputs, where)
            """The row lineage of the outputs: the position nodes of the filters upstream."""
        except SpecError as exc:
            raise GraphError(str(exc)) from None
        self.metrics: tuple[MetricNode, ...] = self._find_metrics(metrics)
        roots = list(self.outputs) + [n for m in self.metrics for n in m.inputs]
        join_graphs([*self.inputs, *roots])  # automatic names unique across all of it
        self.calls: tuple[Call, ...] = tuple(upstream_calls(roots))
        self._check_inputs_declared(roots)
        self._check_unique_names()
        self._stages: list[list[StatefulLayer]] | None = None
        self._calls_by_layer: dict[int, list[Call]] | None = None
        self._nodes_by_name: dict[str, Node] | None = None

    @property
    def layers(self) -> list[Layer]:
        """Every layer of the graph once, in topological order."""
        seen: dict[int, Layer] = {}
        for call in self.calls:
            seen.setdefault(id(call.layer), call.layer)
        return list(seen.values())

    @property
    def stateful_layers(self) -> list[StatefulLayer]:
        """The layers that learn, in topological order."""
        return [layer for layer in self.layers if layer.stateful]  # type: ignore[misc]

    @property
    def nodes(self) -> list[Node]:
        """Every node of the graph: the inputs, then layer outputs in topological order."""
        return list(self.inputs) + [n for call in self.calls for n in call.outputs]

    def node_named(self, name: str) -> Node | None:
        """The node of the graph named ``name``, if any (names are unique)."""
        node = (self._nodes_by_name or {}).get(name)
        if node is None or node.name != name:  # indexed on first use, again after a rename
            self._nodes_by_name = {node.name: node for node in self.nodes}
            node = self._nodes_by_name.get(name)
        return node

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(node.name for node in self.outputs)

    def stages(self) -> list[list[StatefulLayer]]:
        """The stateful layers in the stages of a staged fit (see :func:`stateful_stages`)."""
        if self._stages is None:
            self._stages = stateful_stages(self.calls)
        return [list(stage) for stage in self._stages]

    def calls_of(self, layer: Layer) -> list[Call]:
        """The calls of ``layer`` in this graph, in topological order."""
        by_layer = self._calls_by_layer
        if by_layer is None:  # indexed once (staged fits ask for every batch), by identity: not pickled
            by_layer = self._calls_by_layer = {}
            for call in self.calls:
                by_layer.setdefault(id(call.layer), []).append(call)
        return list(by_layer.get(id(layer), ()))

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_calls_by_layer": None, "_nodes_by_name": None}

    def describe(self, layer: Layer) -> str:
        """``layer`` for error messages: its name, class and the nodes of its first call."""
        return self.calls_of(layer)[0].describe()

    def _find_metrics(self, listed: Sequence[MetricNode]) -> tuple[MetricNode, ...]:
        graph_nodes = list(self.inputs) + [n for call in upstream_calls(self.outputs) for n in call.outputs]
        in_graph = {id(n) for n in graph_nodes}
        found = {id(metric): metric for metric in listed}
        for node in graph_nodes:
            for metric in node.metrics:
                if all(id(n) in in_graph for n in metric.inputs):
                    found.setdefault(id(metric), metric)
        metrics = tuple(found.values())
        names = [m.name for m in metrics]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise GraphError(f"{self.where}: several metrics are named {duplicates}.")
        return metrics

    def _check_inputs_declared(self, roots: list[Node]) -> None:
        declared = {id(n) for n in self.inputs}
        for node in needed_inputs(roots, self.calls):
            if id(node) not in declared:
                raise GraphError(
                    f"{self.where} needs input {node.name!r}, which is not among its declared inputs "
                    f"{[n.name for n in self.inputs]}."
                )

    def _check_unique_names(self) -> None:
        seen: dict[str, Node] = {}
        for node in self.nodes:
            other = seen.setdefault(node.name, node)
            if other is not node:
                raise GraphError(
                    f"{self.where}: two different nodes are named {node.name!r} ({other!r} and {node!r}); "
                    "node names must be unique."
                )


def _inputs(nodes: tuple[Node, ...], where: str) -> tuple[Input, ...]:
    for node in nodes:
        if not isinstance(node, Input):
            layer = node.layer.name if node.layer is not None else "?"
            raise GraphError(
                f"{where}: inputs must be Input nodes; {node.name!r} is computed by layer {layer!r}."
            )
    return nodes  # type: ignore[return-value]


def _named(nodes: tuple[Node, ...], where: str) -> tuple[Node, ...]:
    for node in nodes:
        if not node.named:
            raise GraphError(
                f"{where}: output node {node.name!r} has no name; name it when calling its layer, "
                "e.g. layer(nodes, 'my_output')."
            )
    return nodes


def upstream_calls(roots: Iterable[Node], *, with_targets: bool | Container[int] = True) -> list[Call]:
    """Layer calls that ``roots`` depend on, in topological order.

    A call's trailing target inputs only feed fitting: they are followed when ``with_targets``
    is True, or is a set of ids of the layers being fitted and holds the call's layer.
    """
    order: list[Call] = []
    seen: set[int] = set()
    stack: list[tuple[Call, bool]] = [(n.call, False) for n in roots if n.call is not None][::-1]
    while stack:
        call, expanded = stack.pop()
        if expanded:
            order.append(call)
            continue
        if id(call) in seen:
            continue
        seen.add(id(call))
        stack.append((call, True))
        parents = call.inputs if follows_targets(call, with_targets) else call.features
        stack.extend(
            (p.call, False) for p in reversed(parents) if p.call is not None and id(p.call) not in seen
        )
    return order


def follows_targets(call: Call, with_targets: bool | Container[int]) -> bool:
    """Whether a walk with ``with_targets`` (see :func:`upstream_calls`) reads ``call``'s targets."""
    if isinstance(with_targets, bool):
        return with_targets
    return id(call.layer) in with_targets


def needed_inputs(
    roots: Iterable[Node], calls: Iterable[Call], *, with_targets: bool | Container[int] = True
) -> list[Input]:
    """The :class:`Input` nodes read by ``calls`` or among ``roots``, in first-use order."""
    found: dict[int, Input] = {}
    for node in roots:
        if isinstance(node, Input):
            found.setdefault(id(node), node)
    for call in calls:
        for node in call.inputs if follows_targets(call, with_targets) else call.features:
            if isinstance(node, Input):
                found.setdefault(id(node), node)
    return list(found.values())


def stateful_stages(calls: Sequence[Call]) -> list[list[StatefulLayer]]:
    """Group the stateful layers of ``calls`` into stages that can be fitted in order.

    A layer's stage is one more than the latest stage of any stateful layer upstream of any of
    its calls, so everything upstream of a stage is final before that stage is fitted. A layer
    upstream of itself (called on its own output), or two shared layers each upstream of a call
    of the other, cannot be fitted and raise ``GraphError``.
    """
    layers = {id(call.layer): call.layer for call in calls if call.layer.stateful}
    for key, layer in layers.items():
        own = [call for call in calls if id(call.layer) == key]
        if len(own) > 1 and any(_depends_on_layer(call, layer) for call in own):
            raise GraphError(
                f"Layer {layer.name!r} is called on a node computed from its own output: "
                "it cannot be fitted before it is used."
            )
    # A layer called several times sits at the stage of its latest call, which can push its
    # earlier calls, and their consumers, later: iterate until the stages settle.
    layer_stage: dict[int, int] = {}
    changed = True
    while changed:
        changed = False
        call_stage: dict[int, int] = {}
        for call in calls:  # topological order
            upstream = max(
                (call_stage.get(id(p.call), 0) for p in call.inputs if p.call is not None), default=0
            )
            if not call.layer.stateful:
                call_stage[id(call)] = upstream
                continue
            stage = max(upstream + 1, layer_stage.get(id(call.layer), 0))
            if stage > len(calls):  # more stages than calls: two layers each wait for the other
                raise GraphError(_mutual_wait(layers, call.layer))
            if stage != layer_stage.get(id(call.layer)):
                layer_stage[id(call.layer)] = stage
                changed = True
            call_stage[id(call)] = stage
    stages: list[list[StatefulLayer]] = [[] for _ in range(max(layer_stage.values(), default=0))]
    for key, stage in layer_stage.items():
        stages[stage - 1].append(layers[key])  # type: ignore[arg-type]
    return stages


def _mutual_wait(layers: dict[int, Layer], layer: Layer) -> str:
    names = sorted(other.name for other in layers.values())
    return (
        f"Layer {layer.name!r} is called on a node computed by a stateful layer that is itself called on a "
        f"node computed by {layer.name!r} (among {names}): each would have to be fitted before the "
        "other. Use separate layers for those calls."
    )


def _depends_on_layer(call: Call, layer: Layer) -> bool:
    return any(up.layer is layer for up in upstream_calls(call.inputs))
