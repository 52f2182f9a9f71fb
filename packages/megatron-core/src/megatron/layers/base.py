"""Layer base classes: what a transformation must provide to be used in a pipeline."""

from __future__ import annotations

import functools
import itertools
import re
import types
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from megatron.config import _init_parameters, init_config
from megatron.errors import GraphError, SpecError
from megatron.layers.frozen import freeze
from megatron.nodes import Apply, Node, as_node_list, common_rows
from megatron.specs import UNKNOWN, Spec

_name_counters: defaultdict[str, itertools.count] = defaultdict(itertools.count)


_SMALL_WORD = r"(?:to|of|and|or|by|per|from)(?:[A-Z0-9_]|$)"
_WORD_BOUNDARY = re.compile(
    r"(?<=[a-z0-9])(?=[A-Z])"  # a capital after a lower-case letter or digit: One|Hot
    rf"|(?<=[A-Z])(?=[A-Z](?!{_SMALL_WORD})[a-z])"  # an acronym before a word: HTML|Parser
    rf"|(?<=[A-Z]{{2}})(?={_SMALL_WORD})"  # an acronym before a small word: RGB|to|Grey
)


def _snake_case(name: str) -> str:
    """A class name in snake case, acronyms kept whole: ``RGBtoGrey`` -> ``rgb_to_grey``."""
    return _WORD_BOUNDARY.sub("_", name).lower()


def _unique_name(cls: type) -> str:
    base = _snake_case(cls.__name__)
    n = next(_name_counters[base])
    return base if n == 0 else f"{base}_{n}"


class Layer:
    """A transformation of batches of arrays (first axis = observations).

    Subclasses implement :meth:`transform`. Those that know their output shape and dtype
    implement :meth:`output_spec`, which lets a shape mismatch fail when the graph is built.
    Hyperparameters are the ``__init__`` arguments, stored as attributes of the same name;
    arrays among them are kept as read-only copies and dicts as read-only dicts
    (:mod:`megatron.layers.frozen`), so that changing one means assigning a new value, which
    the pipeline's fingerprint sees. Calling a layer on nodes returns a node (a tuple of nodes
    when ``n_outputs > 1``).
    """

    stateful = False
    n_outputs = 1
    filters_rows = False
    """True for layers that drop rows (``Filter``): their last output holds the positions of
    the kept rows, which the pipeline uses to keep the observation index aligned."""

    # -- identity ----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """A name unique within the process (``whiten``, ``whiten_1``, ...) unless set."""
        name = self.__dict__.get("_name")
        if name is None:
            name = self.__dict__["_name"] = _unique_name(type(self))
        return name

    @name.setter
    def name(self, value: str) -> None:
        self.__dict__["_name"] = value

    def get_config(self) -> dict[str, Any]:
        """The hyperparameters: each ``__init__`` parameter read from the same-named attribute."""
        return init_config(self)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _init_parameters(type(self)):
            value = freeze(value)
        object.__setattr__(self, name, value)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # unpickled and deep-copied arrays come back writable
        hyperparameters = _init_parameters(type(self))
        self.__dict__.update({k: freeze(v) if k in hyperparameters else v for k, v in state.items()})

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    # -- what subclasses provide -------------------------------------------------------------
    def transform(self, *inputs: np.ndarray) -> np.ndarray | tuple[np.ndarray, ...]:
        """Compute the outputs for one batch of inputs. Must not modify the inputs."""
        raise NotImplementedError(f"{type(self).__name__} does not implement transform().")

    def output_spec(self, *inputs: Spec) -> Spec | tuple[Spec, ...]:
        """The output spec(s) for inputs of these specs; raise :class:`SpecError` to refuse."""
        return UNKNOWN if self.n_outputs == 1 else (UNKNOWN,) * self.n_outputs

    def n_targets(self, n_inputs: int) -> int:
        """How many of the trailing inputs are training targets, used by ``fit`` only."""
        return 0

    # -- building the graph ------------------------------------------------------------------
    def __call__(
        self, inputs: Node | Sequence[Node], name: str | Sequence[str] | None = None
    ) -> Node | tuple[Node, ...]:
        """Apply the layer to ``inputs`` and return its output node(s), named ``name``."""
        nodes = as_node_list(inputs, f"Calling layer {self.name!r}")
        rows = common_rows(nodes, f"Layer {self.name!r} ({type(self).__name__})")
        op = Apply(self, nodes, self.n_targets(len(nodes)))
        declared = self._declared_specs(op)
        specs = (declared,) if isinstance(declared, Spec) else tuple(declared)
        visible = specs[:-1] if self.filters_rows else specs
        call = next(self.__dict__.setdefault("_calls", itertools.count()))
        names = _output_names(self, name, len(visible), call)
        named = name is not None
        if self.filters_rows:
            positions = Node(
                f"{self.name}/{call}:positions", specs[-1], op, len(visible), named=False, rows=rows
            )
            rows = (*rows, positions)
        outputs = [
            Node(n, spec, op, i, named=named, rows=rows) for i, (n, spec) in enumerate(zip(names, visible))
        ]
        op.outputs = (*outputs, positions) if self.filters_rows else tuple(outputs)
        if all(node.is_eager for node in nodes):
            self._run_eagerly(op)
        single = len(outputs) == 1 and (self.filters_rows or isinstance(declared, Spec))
        return outputs[0] if single else tuple(outputs)

    def _declared_specs(self, op: Apply) -> Spec | tuple[Spec, ...]:
        input_specs = [node.spec for node in op.features]
        try:
            return self.output_spec(*input_specs)
        except SpecError as exc:
            shown = ", ".join(f"{node.name!r} {node.spec}" for node in op.features)
            raise SpecError(
                f"Layer {self.name!r} ({type(self).__name__}) cannot be applied to nodes {shown}: {exc}"
            ) from exc

    def _run_eagerly(self, op: Apply) -> None:
        from megatron.execution.local import run_layer

        values = [node.output for node in op.inputs]
        if self.stateful and not self.fitted:  # a layer called again applies what it learned
            run_layer(op, "fit", values)
        outputs = run_layer(op, "transform", values[: len(op.features)])
        for node, value in zip(op.outputs, outputs):
            node._value = value


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


class StatefulLayer(Layer):
    """A layer that learns parameters: implement ``fit`` or ``partial_fit``, and ``transform``.

    Learned parameters go into the dict ``self.metadata``. A layer that implements only
    ``partial_fit`` is fitted on a whole dataset by :meth:`reset` then one ``partial_fit``.
    Layers that keep state outside ``metadata`` override :meth:`reset` as well.

    Every call of ``fit``, ``partial_fit``, ``fit_transform``, ``fit_batches`` or ``reset``,
    through a pipeline or directly, renews :attr:`state_token`; a subclass's own versions of
    these methods are wrapped to do so when the class is defined.
    """

    stateful = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in _LEARNING_METHODS:
            method = cls.__dict__.get(name)
            if isinstance(method, types.FunctionType) and not hasattr(method, "_renews_state_token"):
                setattr(cls, name, _renewing_state_token(method))

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

    def supports_partial_fit(self) -> bool:
        """Whether the layer can be fitted batch by batch (exactly, for the built-ins)."""
        return type(self).partial_fit is not StatefulLayer.partial_fit

    def reset(self) -> None:
        """Forget everything learned, before a fresh fit."""
        self.metadata = {}
        self.fitted = False
        self.__dict__["state_token"] = uuid.uuid4().hex

    def fit(self, *inputs: np.ndarray) -> None:
        """Learn from a whole dataset; by default :meth:`reset` then :meth:`partial_fit`."""
        if not self.supports_partial_fit():
            raise NotImplementedError(f"{type(self).__name__} implements neither fit() nor partial_fit().")
        self.reset()
        self.partial_fit(*inputs)

    def partial_fit(self, *inputs: np.ndarray) -> None:
        """Update what was learned with one more batch."""
        raise NotImplementedError(f"{type(self).__name__} does not implement partial_fit().")

    def fit_transform(self, *inputs: np.ndarray) -> Any:
        """Fit on ``inputs`` (targets included), then transform its features. Layers that can do
        both in one go (scikit-learn's ``fit_transform``, PCA's SVD) override this."""
        self.fit(*inputs)
        return self.transform(*inputs[: len(inputs) - self.n_targets(len(inputs))])

    def fit_batches(
        self, batches: Callable[[], Iterable[tuple[np.ndarray, ...]]], epochs: int, steps: int | None = None
    ) -> None:
        """Learn from a stream, as ``Pipeline.fit_generator`` does: each call of ``batches()``
        starts one pass and yields the layer's inputs batch by batch (``steps`` of them, when
        known).

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


_LEARNING_METHODS = ("fit", "partial_fit", "fit_transform", "fit_batches", "reset")


def _renewing_state_token(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method``, renewing the layer's state token when it returns or raises (a failed fit may
    have changed some of the state)."""

    @functools.wraps(method)
    def learn(self: StatefulLayer, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        finally:
            self.__dict__["state_token"] = uuid.uuid4().hex

    learn._renews_state_token = True  # type: ignore[attr-defined]
    return learn
