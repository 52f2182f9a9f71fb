"""Layer base classes: what a transformation must provide to be used in a pipeline."""

from __future__ import annotations

import itertools
import types
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from megatron.config import init_config, init_parameters, record_arguments_of, recorded_argument
from megatron.errors import GraphError, LayerInputError, SpecError
from megatron.graph.call import Call
from megatron.graph.names import Names, automatic_name, join_graphs
from megatron.graph.node import Node, as_node_list, common_rows
from megatron.layers.affine import Affine
from megatron.layers.frozen import freeze
from megatron.layers.inverting import Inverting
from megatron.layers.learning import (
    FITTED_SHAPES,
    LEARNING_METHODS,
    checking_fitted_shape,
    learning,
    shapes_of,
)
from megatron.layers.naming import FeatureNaming
from megatron.layers.state import LearnedState
from megatron.specs import UNKNOWN, Spec


class Layer(FeatureNaming, Inverting):
    """A transformation of batches of arrays (first axis = observations).

    Subclasses implement :meth:`transform`. Those that know their output shape and dtype
    implement :meth:`output_spec`, which lets a shape mismatch fail when the graph is built.
    Hyperparameters are the ``__init__`` arguments, stored as attributes of the same name;
    arrays among them are kept as read-only copies and dicts as read-only dicts
    (:mod:`megatron.layers.frozen`), so that changing one means assigning a new value, which
    the pipeline's fingerprint sees. The arguments ``__init__`` was given are kept as well: a
    hyperparameter stored under another attribute still reads, and saves, under its own name.
    Calling a layer on nodes returns a node (a tuple of nodes when ``n_outputs > 1``).
    """

    stateful = False
    n_outputs = 1
    filters_rows = False
    """True for layers that drop rows (``Filter``): their last output holds the positions of
    the kept rows, which the pipeline uses to keep the observation index aligned."""
    stream_stateful = False
    """True for layers whose output rows depend on neighbouring rows of the same batch (a
    window): their rows cannot be computed one by one, so a cached transform refuses them."""

    @property
    def context_rows(self) -> int:
        """How many preceding rows of the same batch an output row depends on (0: its own row
        only): a batch that starts with that many rows of the one before gives the rows that
        follow them as the two batches joined would. A layer with ``context_rows > 0`` is
        ``stream_stateful``; a stream-stateful layer that leaves this at 0 declares no bound."""
        return 0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        record_arguments_of(cls, freeze)

    # -- identity ----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The name set (``layer.name = 'scaler'``), else an automatic one, fixed by the layer's
        first call: the class in snake case, numbered where another layer of the same graph has
        it (``whiten``, ``whiten_1``). The same graph built again gets the same names."""
        name = self.__dict__.get("_name")
        return automatic_name(type(self)) if name is None else name

    @name.setter
    def name(self, value: str) -> None:
        self.__dict__["_name"] = value
        self.__dict__.pop("_auto_named", None)

    @property
    def auto_named(self) -> bool:
        """Whether the layer's name was given automatically (and may be renumbered by a join)."""
        return bool(self.__dict__.get("_auto_named"))

    def rename(self, name: str, graph: Names) -> None:
        """Give this automatically named layer ``name`` in ``graph``, renaming its unnamed
        nodes with it (when a join of two graphs makes its name ambiguous)."""
        old = self.__dict__["_name"]
        self.__dict__["_name"] = name
        graph.layers[name] = self
        for node in self.__dict__.get("_auto_nodes", ()):
            node.name = name + node.name[len(old) :]

    def _claim_name(self, graph: Names) -> str:
        """Fix this layer's name within ``graph``, numbering an automatic one."""
        state = self.__dict__
        name = state.get("_name")
        if name is None:
            name = state["_name"] = graph.free(automatic_name(type(self)))
            state["_auto_named"] = True
            graph.layers[name] = self
            return name
        resident = graph.layers.get(name)
        if resident is None or resident is self:
            graph.layers[name] = self
        elif resident.auto_named:  # the graph's own automatic name moves aside
            graph.layers[name] = self
            resident.rename(graph.free(automatic_name(type(resident))), graph)
        return name

    def __getattr__(self, name: str) -> Any:
        # only for attributes not found otherwise: a hyperparameter the layer keeps elsewhere
        return recorded_argument(self, name)

    def get_config(self) -> dict[str, Any]:
        """The hyperparameters: each ``__init__`` parameter read from the same-named attribute."""
        return init_config(self)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in init_parameters(type(self)):
            value = freeze(value)
        object.__setattr__(self, name, value)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # unpickled and deep-copied arrays come back writable
        hyperparameters = init_parameters(type(self))
        self.__dict__.update({k: freeze(v) if k in hyperparameters else v for k, v in state.items()})

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    # -- what subclasses provide -------------------------------------------------------------
    # The base signatures take (*inputs: Any, **options: Any), which type checkers read as
    # "any arguments": a subclass's transform(self, X) or fit(self, X, y) then checks.
    def transform(self, *inputs: Any, **options: Any) -> Any:
        """Compute the outputs for one batch of inputs (an array, or a tuple of arrays for
        several outputs). Must not modify the inputs."""
        raise NotImplementedError(f"{type(self).__name__} does not implement transform().")

    def output_spec(self, *inputs: Any, **options: Any) -> Any:
        """The output spec(s) for inputs of these specs; raise :class:`SpecError` to refuse."""
        return UNKNOWN if self.n_outputs == 1 else (UNKNOWN,) * self.n_outputs

    def n_targets(self, n_inputs: int) -> int:
        """How many of the trailing inputs are training targets, used by ``fit`` only."""
        return 0

    def affine(self) -> Affine | None:
        """The layer as an affine map of its one input, ``transform(x) == x @ coef + intercept``
        up to rounding, for its state now (:class:`~megatron.layers.affine.Affine`), or None:
        not affine (the default), or not in this state. A pipeline folds a chain of such
        layers into one matrix product (see docs/performance.md)."""
        return None

    # -- building the graph ------------------------------------------------------------------
    def __call__(
        self, inputs: Node | Sequence[Node], name: str | Sequence[str] | None = None
    ) -> Node | tuple[Node, ...]:
        """Call the layer on ``inputs`` and return its output node(s), named ``name``."""
        nodes = as_node_list(inputs, f"Calling layer {self.name!r}")
        rows = common_rows(nodes, f"Layer {self.name!r} ({type(self).__name__})")
        call = Call(self, nodes, self.n_targets(len(nodes)))
        declared = self._declared_specs(call)
        specs = (declared,) if isinstance(declared, Spec) else tuple(declared)
        visible = specs[:-1] if self.filters_rows else specs
        names = None if name is None else _output_names(self, name, len(visible), 0)
        graph = join_graphs(nodes)
        self._claim_name(graph)
        number = next(self.__dict__.setdefault("_calls", itertools.count()))
        if names is None:
            names = _output_names(self, None, len(visible), number)
        named = name is not None
        automatic: list[Node] = []
        if self.filters_rows:
            positions = Node(
                f"{self.name}/{number}:positions",
                specs[-1],
                call,
                len(visible),
                named=False,
                rows=rows,
                graph=graph,
            )
            rows = (*rows, positions)
            automatic.append(positions)
        outputs = [
            Node(n, spec, call, i, named=named, rows=rows, graph=graph)
            for i, (n, spec) in enumerate(zip(names, visible))
        ]
        if not named:
            automatic.extend(outputs)
        if self.auto_named:  # renamed with the layer if a join makes its name ambiguous
            self.__dict__.setdefault("_auto_nodes", []).extend(automatic)
        call.outputs = (*outputs, positions) if self.filters_rows else tuple(outputs)
        if all(node.is_eager for node in nodes):
            call.run_eagerly()
        single = len(outputs) == 1 and (self.filters_rows or isinstance(declared, Spec))
        return outputs[0] if single else tuple(outputs)

    def _declared_specs(self, call: Call) -> Spec | tuple[Spec, ...]:
        input_specs = [node.spec for node in call.features]
        try:
            return self.output_spec(*input_specs)
        except SpecError as exc:
            shown = ", ".join(f"{node.name!r} {node.spec}" for node in call.features)
            raise SpecError(
                f"Layer {self.name!r} ({type(self).__name__}) cannot be applied to nodes {shown}: {exc}"
            ) from exc


def _output_names(layer: Layer, name: str | Sequence[str] | None, n: int, call: int) -> list[str]:
    if name is None:
        base = f"{layer.name}/{call}"
        return [base] if n == 1 else [f"{base}:{i}" for i in range(n)]
    if isinstance(name, str):
        return [name] if n == 1 else [f"{name}:{i}" for i in range(n)]
    names = list(name)
    if len(names) != n or not all(isinstance(x, str) and x for x in names):
        raise GraphError(
            f"Layer {layer.name!r} has {n} outputs; name= must be a string or {n} strings, got {name!r}."
        )
    return names


class StatelessLayer(Layer):
    """A layer with nothing to learn: its output depends on its inputs alone."""


class StatefulLayer(Layer, LearnedState):
    """A layer that learns parameters: implement ``fit`` or ``partial_fit``, and ``transform``.

    Learned parameters go into the dict ``self.metadata``. A layer that implements only
    ``partial_fit`` is fitted on a whole dataset by :meth:`reset` then one ``partial_fit``.
    Layers that keep state outside ``metadata`` override :meth:`reset` as well, and
    :meth:`get_state` and :meth:`set_state`, the one door to what a layer learned; a layer
    whose states merge (fitting in parallel) implements :meth:`merge_exactness` and
    :meth:`merge_states` (:mod:`megatron.layers.state`).

    Every call of ``fit``, ``partial_fit``, ``fit_transform``, ``fit_batches`` or ``reset``,
    through a pipeline or directly, renews :attr:`state_token`, and each but ``reset`` that
    returns marks the layer :attr:`fitted`; a subclass's own versions of these methods are
    wrapped to do so when the class is defined. They also record the
    per-observation shapes of the features fitted on (``metadata['_fitted_shapes']``), which
    ``transform`` and further ``partial_fit`` calls then require (see :attr:`fixed_shape`).
    """

    stateful = True
    fixed_shape = True
    """Whether what the layer learns belongs to the per-observation shape it was fitted on (a
    mean per feature): ``transform`` and ``partial_fit`` then refuse inputs of another shape
    with a :class:`~megatron.errors.LayerInputError` naming both, instead of broadcasting.
    Layers that learn something of any shape (a vocabulary, a range of labels) or check shapes
    themselves (a Keras model with a ``None`` axis) set it to False."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in LEARNING_METHODS:
            method = cls.__dict__.get(name)
            if isinstance(method, types.FunctionType) and not hasattr(method, "_renews_state_token"):
                setattr(cls, name, learning(name, method))
        method = cls.__dict__.get("transform")
        if isinstance(method, types.FunctionType) and not hasattr(method, "_checks_fitted_shape"):
            cls.transform = checking_fitted_shape(method)  # type: ignore[method-assign]

    @property
    def iterative(self) -> bool:
        """Whether the layer learns more from more passes over the same data (an iterative
        learner: a Keras model, scikit-learn's SGD). ``Pipeline.fit_generator`` gives such a
        layer ``epochs`` passes; every other stateful layer (one-pass statistics: counts,
        moments, ranges, vocabularies) is fitted by exactly one pass, whatever ``epochs`` says,
        so that ``fit_generator`` equals ``fit``. Layers that drive their own training loop are
        iterative by default; a class sets ``iterative = True`` to say so."""
        return self.drives_its_own_loop()

    @property
    def fitted(self) -> bool:
        """Whether the layer has learned what ``transform`` needs."""
        return self.__dict__.get("_fitted", False)

    @fitted.setter
    def fitted(self, value: bool) -> None:
        self.__dict__["_fitted"] = bool(value)
        if value:  # every fit is a new state: outputs stored from an older one are stale
            self.__dict__["state_token"] = uuid.uuid4().hex

    @property
    def state_token(self) -> str:
        """Identifies what the layer learned; renewed by every fit, partial fit or reset, so the
        pipeline's fingerprint changes and outputs stored before are not served from the cache."""
        token = self.__dict__.get("state_token")
        if token is None:  # not setdefault: a new uuid per read costs microseconds on the cache path
            token = self.__dict__["state_token"] = uuid.uuid4().hex
        return token

    @property
    def metadata(self) -> dict[str, Any]:
        """The learned parameters (a dict; created on first use, so ``__init__`` is optional)."""
        return self.__dict__.setdefault("_metadata", {})

    @metadata.setter
    def metadata(self, value: dict[str, Any]) -> None:
        self.__dict__["_metadata"] = value

    def state_size(self) -> int:
        """Bytes of what the layer learned, for the summary: the arrays in :attr:`metadata` (and
        in dicts there). Layers that keep their state elsewhere (a Keras model) override it."""
        total = 0
        for value in self.metadata.values():
            if isinstance(value, np.ndarray):
                total += value.nbytes
            elif isinstance(value, dict):
                total += sum(v.nbytes for v in value.values() if isinstance(v, np.ndarray))
        return total

    def supports_partial_fit(self) -> bool:
        """Whether the layer can be fitted batch by batch (exactly, for the built-ins)."""
        return type(self).partial_fit is not StatefulLayer.partial_fit

    def reset(self) -> None:
        """Forget everything learned, before a fresh fit."""
        self.metadata = {}
        self.fitted = False
        self.__dict__["state_token"] = uuid.uuid4().hex

    def fit(self, *inputs: Any, **options: Any) -> Any:
        """Learn from a whole dataset; by default :meth:`reset` then :meth:`partial_fit`."""
        if not self.supports_partial_fit():
            raise NotImplementedError(f"{type(self).__name__} implements neither fit() nor partial_fit().")
        self.reset()
        self.partial_fit(*inputs, **options)

    def partial_fit(self, *inputs: Any, **options: Any) -> Any:
        """Update what was learned with one more batch."""
        raise NotImplementedError(f"{type(self).__name__} does not implement partial_fit().")

    def fit_transform(self, *inputs: Any, **options: Any) -> Any:
        """Fit on ``inputs`` (targets included), then transform its features. Layers that can do
        both in one go (scikit-learn's ``fit_transform``, PCA's SVD) override this."""
        self.fit(*inputs, **options)
        return self.transform(*inputs[: len(inputs) - self.n_targets(len(inputs))])

    def fit_batches(
        self, batches: Callable[[], Iterable[tuple[np.ndarray, ...]]], epochs: int, steps: int | None = None
    ) -> None:
        """Learn from a stream, as ``Pipeline.fit_generator`` does: each call of ``batches()``
        starts one pass and yields the layer's inputs batch by batch (``steps`` of them, when
        known). The pipeline passes ``epochs=1`` unless the layer is :attr:`iterative`.

        Layers with a training loop of their own (Keras) override this; the pipeline then hands
        them the stream instead of calling ``partial_fit`` per batch. The default resets and
        calls ``partial_fit`` on every batch of every epoch.
        """
        self.reset()
        for _ in range(epochs):
            for inputs in batches():
                self.partial_fit(*inputs)

    def drives_its_own_loop(self) -> bool:
        """Whether the layer overrides :meth:`fit_batches` to run its own training loop."""
        return type(self).fit_batches is not StatefulLayer.fit_batches

    def _features_of(self, inputs: Sequence[Any]) -> Sequence[Any]:
        return inputs[: len(inputs) - self.n_targets(len(inputs))]

    def _record_fitted_shape(self, inputs: Sequence[Any]) -> None:
        shapes = shapes_of(self._features_of(inputs))
        metadata = self.metadata
        if shapes is not None and isinstance(metadata, dict):
            metadata[FITTED_SHAPES] = shapes

    def _check_fitted_shape(self, features: Sequence[Any], operation: str) -> None:
        metadata = self.__dict__.get("_metadata")
        fitted = metadata.get(FITTED_SHAPES) if type(metadata) is dict else None
        if fitted is None or not self.fixed_shape:
            return
        for position, (want, X) in enumerate(zip(fitted, features)):
            shape = getattr(X, "shape", None)
            if shape is not None and tuple(shape[1:]) != tuple(want):
                which = f" (feature input {position})" if len(fitted) > 1 else ""
                raise LayerInputError(
                    f"was fitted on observations of shape {tuple(want)}{which}; got observations of "
                    f"shape {tuple(shape[1:])} (a batch of shape {tuple(shape)}). What it learned "
                    "belongs to the shape it learned it on: reshape the input or refit the layer."
                )


for _name in LEARNING_METHODS:  # the defaults themselves renew the token and keep the shapes
    setattr(StatefulLayer, _name, learning(_name, StatefulLayer.__dict__[_name]))
del _name
