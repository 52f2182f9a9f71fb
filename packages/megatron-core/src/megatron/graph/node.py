"""Nodes: the values of a pipeline graph.

An :class:`Input` is a named entry point for data. Calling a layer on nodes makes a
:class:`~megatron.graph.call.Call`, whose outputs are new nodes (one per layer output). Nodes
describe the graph only; the data of a run lives in that run's own context. In eager mode (an
``Input`` called on an array) nodes also hold a value, shown by :attr:`Node.output`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from megatron.errors import ConfigError, GraphError, InputDtypeError, InputShapeError, SpecError
from megatron.graph.names import Names
from megatron.specs import Spec

if TYPE_CHECKING:
    from megatron.graph.call import Call
    from megatron.layers.base import Layer
    from megatron.metrics.base import MetricNode

_NO_VALUE: Any = object()


class Node:
    """A value in a pipeline graph: an :class:`Input`, or an output of a layer call."""

    def __init__(
        self,
        name: str,
        spec: Spec,
        call: Call | None = None,
        output_index: int = 0,
        *,
        named: bool = True,
        rows: tuple[Node, ...] = (),
        graph: Names | None = None,
    ) -> None:
        self.name = name
        self.rows = rows
        """The row selections applied upstream: the position nodes of each ``Filter`` call."""
        self.spec = spec
        self.call = call
        """The layer call that computes this node (``None`` for inputs)."""
        self.output_index = output_index
        self.named = named
        self.metrics: list[MetricNode] = []
        self._value: Any = _NO_VALUE
        self.graph = Names() if graph is None else graph
        """The layer names of the graph this node belongs to (see :class:`Names`)."""

    @property
    def shape(self) -> tuple[int | None, ...] | None:
        """Per-observation shape (without the observation axis), or ``None`` if unknown."""
        return self.spec.shape

    @property
    def dtype(self) -> np.dtype[Any] | None:
        return self.spec.dtype

    @property
    def layer(self) -> Layer | None:
        """The layer that produces this node (``None`` for inputs)."""
        return None if self.call is None else self.call.layer

    @property
    def inputs(self) -> tuple[Node, ...]:
        """The nodes this node was computed from."""
        return () if self.call is None else self.call.inputs

    @property
    def is_eager(self) -> bool:
        return self._value is not _NO_VALUE

    @property
    def output(self) -> np.ndarray:
        """The node's value in eager mode."""
        if self._value is _NO_VALUE:
            raise GraphError(
                f"Node {self.name!r} holds no value: only nodes built in eager mode do. "
                "Call an Input on an array (Input('x', (3,))(array)) to build eagerly, or run "
                "a Pipeline to compute values."
            )
        return self._value

    def hold(self, value: np.ndarray) -> None:
        """Keep ``value`` as this node's eager value (what :attr:`output` shows)."""
        self._value = value

    def __repr__(self) -> str:
        made_by = "Input" if self.call is None else type(self.call.layer).__name__
        return f"<Node {self.name!r} {made_by} {self.spec}>"


class Input(Node):
    """A named input of a pipeline.

    ``shape`` excludes the observation axis: the default ``()`` takes a 1-D array of scalars.
    Entries of ``shape`` may be ``None`` for any length. ``dtype=None`` accepts any dtype;
    otherwise data is cast to it (safely, within the same kind). ``columns`` makes the input
    read several DataFrame columns as one (n, k) array.

    Calling an input on an array switches on eager mode: ``Input('x', (3,))(array)``.
    """

    def __init__(
        self,
        name: str,
        shape: Sequence[int | None] | int | None = (),
        dtype: Any = None,
        columns: Sequence[str] | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise GraphError(f"An Input needs a non-empty string name; got {name!r}.")
        super().__init__(name, Spec(shape, dtype))
        self.columns = None if columns is None else list(columns)
        known, width = self.spec.shape, None if columns is None else len(self.columns or ())
        if width is not None and known is not None and known not in ((width,), (None,)):
            raise ConfigError(
                f"Input {name!r} reads {width} columns {self.columns} as one array of shape ({width},) "
                f"per observation; its shape is {known}: pass shape=({width},)."
            )
        """The DataFrame columns this input reads, stacked as one array (default: its name)."""
        # A fully known shape is checked with one tuple comparison on the hot path.
        self._exact_shape = None if self.spec.shape is None or None in self.spec.shape else self.spec.shape

    def check(self, data: Any) -> np.ndarray:
        """``data`` as an array of this input's spec, or a megatron error saying why not."""
        array = data if type(data) is np.ndarray else np.asarray(data)
        spec = self.spec
        if (
            array.shape[1:] == self._exact_shape
            and array.ndim
            and (spec.dtype is None or array.dtype == spec.dtype)
        ):
            return array
        if array.ndim == 0 and type(data).__module__.startswith("scipy.sparse"):
            raise InputDtypeError(
                f"Input {self.name!r} got a scipy.sparse {type(data).__name__} of shape {data.shape}; "
                "megatron layers take dense numpy arrays. Pass data.toarray() where it fits in memory."
            )
        if array.ndim == 0:
            raise InputShapeError(
                f"Input {self.name!r} expects a batch of observations of shape {spec.shape}; "
                f"got a scalar {array!r}."
            )
        if spec.shape is not None and not spec.accepts_shape(array.shape[1:]):
            raise InputShapeError(
                f"Input {self.name!r} declares per-observation shape {spec.shape}; got an array "
                f"of shape {array.shape}, i.e. {len(array)} observations of shape "
                f"{array.shape[1:]}."
            )
        if spec.dtype is not None and array.dtype != spec.dtype:
            if not np.can_cast(array.dtype, spec.dtype, casting="same_kind"):
                raise InputDtypeError(
                    f"Input {self.name!r} declares dtype {spec.dtype}; got {array.dtype}, "
                    "which cannot be cast safely."
                )
            array = array.astype(spec.dtype)
        return array

    def __call__(self, data: Any) -> Input:
        """Hold ``data`` for eager mode; layers called on eager nodes compute at once."""
        self.hold(self.check(data))
        return self


def as_node_list(nodes: Node | Sequence[Node], where: str) -> tuple[Node, ...]:
    """Normalise a node or a sequence of nodes, with a clear error for anything else."""
    items = (nodes,) if isinstance(nodes, Node) else nodes
    if not isinstance(items, (list, tuple)) or not items:
        raise GraphError(f"{where} expects a Node or a non-empty list of Nodes; got {nodes!r}.")
    for item in items:
        if not isinstance(item, Node):
            raise GraphError(f"{where} expects Nodes; got {type(item).__name__} {item!r}.")
    return tuple(items)


def common_rows(nodes: Sequence[Node], where: str) -> tuple[Node, ...]:
    """The row selection shared by ``nodes``; nodes filtered differently cannot be combined."""
    rows = nodes[0].rows
    for node in nodes[1:]:
        if node.rows != rows:
            raise SpecError(
                f"{where} cannot combine node {nodes[0].name!r} ({describe_rows(rows)}) with node "
                f"{node.name!r} ({describe_rows(node.rows)}): their rows differ. Pass every input "
                "through the same Filter call."
            )
    return rows


def describe_rows(rows: tuple[Node, ...]) -> str:
    """``all rows``, or the filters whose kept rows these are."""
    if not rows:
        return "all rows"
    return "rows kept by " + " then ".join(repr(r.layer.name) for r in rows if r.layer is not None)
