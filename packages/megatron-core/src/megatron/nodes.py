"""Nodes: the values of a pipeline graph.

An :class:`Input` is a named entry point for data. Calling a layer on nodes returns new nodes
(one per layer output). Nodes describe the graph only; the data of a run lives in that run's
own context. In eager mode (an ``Input`` called on an array) nodes also hold a value, shown
by :attr:`Node.output`.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from megatron.errors import GraphError, InputDtypeError, InputShapeError, MegatronError, SpecError
from megatron.specs import Spec

if TYPE_CHECKING:
    from megatron.layers.base import Layer
    from megatron.metrics.base import MetricNode

_NO_VALUE: Any = object()


class Names:
    """The layer names taken in one connected graph.

    Automatic layer names (``whiten``, ``whiten_1``) are unique within a graph, not within the
    process: building the same graph twice gives the same names, which scikit-learn's nested
    parameters (``whiten__...``) and saved files rely on. Every :class:`Input` starts a graph;
    a layer called on nodes of several graphs joins them (a union-find of these records), and
    an automatic name that the join makes ambiguous is renamed, with its unnamed nodes, to the
    next free number, as if the graphs had been built as one.
    """

    __slots__ = ("layers", "parent")

    def __init__(self) -> None:
        self.parent: Names | None = None
        # weak: a graph's names do not keep its layers alive (an Input reused for many graphs)
        self.layers: weakref.WeakValueDictionary[str, Layer] = weakref.WeakValueDictionary()

    def __getstate__(self) -> tuple[Names | None, dict[str, Layer]]:
        return self.parent, dict(self.layers)

    def __setstate__(self, state: tuple[Names | None, dict[str, Layer]]) -> None:
        self.parent, layers = state
        self.layers = weakref.WeakValueDictionary(layers)

    def root(self) -> Names:
        """The record that holds the names of the whole (joined) graph."""
        root = self
        while root.parent is not None:
            root = root.parent
        walker = self
        while walker.parent is not None and walker.parent is not root:  # shorten the path walked
            walker.parent, walker = root, walker.parent
        return root

    def free(self, base: str) -> str:
        """``base``, or ``base_1``, ``base_2``... whichever no layer of the graph holds."""
        name, n = base, 0
        while name in self.layers:
            n += 1
            name = f"{base}_{n}"
        return name


def join_graphs(nodes: Sequence[Node]) -> Names:
    """The names of the graph that joining ``nodes`` makes (one record for all of them)."""
    root = nodes[0].graph.root()
    for node in nodes[1:]:
        other = node.graph.root()
        if other is not root:
            _merge(root, other)
    for node in nodes:
        node.graph = root
    return root


def _merge(root: Names, other: Names) -> None:
    other.parent = root
    for name, layer in list(other.layers.items()):
        resident = root.layers.get(name)
        if resident is None or resident is layer:
            root.layers[name] = layer
            continue
        # the same automatic name in both graphs: the one that joins takes the next number
        mover = layer if layer.__dict__.get("_auto_named") else resident
        if not mover.__dict__.get("_auto_named"):
            continue  # two layers named so by the user: the pipeline reports their nodes
        keeper = resident if mover is layer else layer
        root.layers[name] = keeper
        rename_layer(mover, root.free(name_base(mover)), root)
    other.layers = weakref.WeakValueDictionary()


def name_base(layer: Layer) -> str:
    from megatron.layers.base import automatic_name

    return automatic_name(type(layer))


def rename_layer(layer: Layer, name: str, graph: Names) -> None:
    """Give an automatically named layer ``name`` in ``graph``, renaming its unnamed nodes."""
    old = layer.__dict__["_name"]
    layer.__dict__["_name"] = name
    graph.layers[name] = layer
    for node in layer.__dict__.get("_auto_nodes", ()):
        node.name = name + node.name[len(old) :]


class Apply:
    """One call of a layer on input nodes; its outputs are one node per layer output."""

    __slots__ = ("inputs", "layer", "n_targets", "outputs")

    def __init__(self, layer: Layer, inputs: tuple[Node, ...], n_targets: int) -> None:
        self.layer = layer
        self.inputs = inputs
        self.n_targets = n_targets
        self.outputs: tuple[Node, ...] = ()

    @property
    def features(self) -> tuple[Node, ...]:
        """The inputs passed to ``transform`` (all but the trailing targets)."""
        return self.inputs[: len(self.inputs) - self.n_targets]

    @property
    def targets(self) -> tuple[Node, ...]:
        """The trailing inputs used only to fit."""
        return self.inputs[len(self.inputs) - self.n_targets :]

    @property
    def visible_outputs(self) -> tuple[Node, ...]:
        """The outputs a user sees (without a row filter's positions)."""
        return self.outputs[:-1] if self.layer.filters_rows else self.outputs

    def describe(self) -> str:
        names = ", ".join(repr(n.name) for n in self.visible_outputs)
        return f"layer {self.layer.name!r} ({type(self.layer).__name__}) at node {names}"


class Node:
    """A value in a pipeline graph: an :class:`Input`, or an output of a layer call."""

    def __init__(
        self,
        name: str,
        spec: Spec,
        op: Apply | None = None,
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
        self.op = op
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
    def dtype(self) -> np.dtype | None:
        return self.spec.dtype

    @property
    def layer(self) -> Layer | None:
        """The layer that produces this node (``None`` for inputs)."""
        return None if self.op is None else self.op.layer

    @property
    def inputs(self) -> tuple[Node, ...]:
        """The nodes this node was computed from."""
        return () if self.op is None else self.op.inputs

    @property
    def is_eager(self) -> bool:
        return self._value is not _NO_VALUE

    @property
    def output(self) -> np.ndarray:
        """The node's value in eager mode."""
        if self._value is _NO_VALUE:
            raise MegatronError(
                f"Node {self.name!r} holds no value: only nodes built in eager mode do. "
                "Call an Input on an array (Input('x', (3,))(array)) to build eagerly, or run "
                "a Pipeline to compute values."
            )
        return self._value

    def __repr__(self) -> str:
        made_by = "Input" if self.op is None else type(self.op.layer).__name__
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
        self._value = self.check(data)
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
    if not rows:
        return "all rows"
    return "rows kept by " + " then ".join(repr(r.layer.name) for r in rows)  # type: ignore[union-attr]


def from_dataframe(df: Any, exclude_cols: Sequence[str] = (), **options: Any) -> dict[str, Input]:
    """Inputs for a DataFrame's columns; see :func:`megatron.io.schema.from_dataframe`."""
    from megatron.io.schema import from_dataframe as build

    return build(df, exclude_cols, **options)


def from_csv(path: Any, exclude_cols: Sequence[str] = (), **options: Any) -> dict[str, Input]:
    """Inputs for a CSV file's columns; see :func:`megatron.io.schema.from_csv`."""
    from megatron.io.schema import from_csv as build

    return build(path, exclude_cols, **options)


def from_sql(connection: Any, query_or_table: Any, params: Any = None, **options: Any) -> dict[str, Input]:
    """Inputs for a query's result columns (needs megatron-sql); see ``megatron_sql.from_sql``."""
    from megatron.dependencies import require

    build = require("megatron_sql.sources", "from_sql").from_sql
    return build(connection, query_or_table, params, **options)
