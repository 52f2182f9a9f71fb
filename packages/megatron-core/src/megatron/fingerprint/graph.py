"""The pipeline's fingerprint: its graph's inputs, calls, layers and hyperparameters, kept
with the slots it read and recomputed only when one of them holds another object."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from megatron.fingerprint.probes import Probe, attribute, unchanged
from megatron.fingerprint.walk import Walk

if TYPE_CHECKING:
    from megatron.graph.topology import Graph


class _Memo:
    """A computed fingerprint and the slots it read."""

    __slots__ = ("probes", "value")

    def __init__(self, value: str | None = None, probes: tuple[Probe, ...] = ()) -> None:
        self.value = value
        self.probes = probes

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Memo, ())  # another process recomputes: identities do not travel


class GraphFingerprint:
    """The fingerprint of ``graph`` (32 hex digits, :attr:`value`), kept with the slots it read
    and recomputed only when one was replaced: an input's declaration, a hyperparameter, a
    function's code, defaults, closure, attributes or globals, a module attribute or class
    member code reads, a state token. A copy in another process recomputes its own."""

    __slots__ = ("graph", "memo")

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.memo = _Memo()

    @property
    def value(self) -> str:
        memo = self.memo
        if memo.value is not None and unchanged(memo.probes):
            return memo.value
        self.memo = memo = _graph_memo(self.graph)
        return memo.value  # type: ignore[return-value]

    def __reduce__(self) -> tuple[Any, ...]:
        return (GraphFingerprint, (self.graph,))


def _graph_memo(graph: Graph) -> _Memo:
    probes: list[Probe] = []
    walk = Walk(probes)
    for node in graph.inputs:  # what the pipeline reads from the data given
        walk.put("input")
        walk.slot(attribute("name"), node, node.name)
        spec = node.spec
        probes.append((attribute("spec"), node, spec))  # a Spec is immutable: replaced, not edited
        walk.value(spec.shape)
        walk.value(spec.dtype)
        walk.slot(attribute("columns"), node, node.columns)
    index: dict[int, int] = {}
    for call in graph.calls:
        layer = call.layer
        first = id(layer) not in index
        number = index.setdefault(id(layer), len(index))
        walk.put(
            "call",
            repr((number, call.n_targets, [n.name for n in call.inputs], [n.name for n in call.outputs])),
        )
        if not first:
            continue
        walk.klass(type(layer))
        for key, value in sorted(layer.get_config().items()):
            walk.put("hyperparameter", key)
            walk.hyperparameter(attribute(key), layer, value, stateful=layer.stateful)
        if layer.stateful:
            walk.slot(attribute("state_token"), layer, layer.state_token)
    return _Memo(walk.hexdigest()[:32], tuple(probes))
