"""Folding chains of affine layers into one matrix product plus a bias.

The plan compiler finds chains of transform steps whose layers may be affine maps of their one
input (their class implements :meth:`Layer.affine <megatron.layers.base.Layer.affine>`) and
whose intermediate values nothing else reads: not a result of the plan (an output, a metric's
input, a row filter's positions), not read by another step. Each such chain becomes one step
running a :class:`FoldedChain`, which composes the layers' maps on first use and keeps the
result for as long as the layers' states and hyperparameters stay the same objects (any fit,
partial fit, ``set_state``, load or hyperparameter assignment replaces one of them, so folded
coefficients are never stale).

A folded chain computes ``X @ coef + intercept`` (``X * coef + intercept`` for a chain of
element-wise scalers) in the dtype the unfolded chain returns, for float32 and float64 inputs
of shape ``(n, in)``. Anything else runs the layers one by one, as the unfolded plan would:
another dtype (integers keep integer arithmetic), another shape, a layer not affine in its
current state, non-finite coefficients, or non-finite values reaching a layer that refuses
them (the layers then raise their own errors).
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import attrs
import numpy as np

from megatron.errors import layer_failure
from megatron.graph.call import Call
from megatron.layers.affine import compose
from megatron.layers.base import Layer

if TYPE_CHECKING:
    from megatron.execution.plan import Step

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
LOCATED = "_megatron_located"
"""Set on an error that already names the layer it came from, so executors raise it as it is."""


@attrs.frozen
class _Fold:
    coef: np.ndarray
    intercept: np.ndarray
    dtype: np.dtype
    elementwise: bool
    finite_only: bool


class FoldedChain:
    """The layers of a chain of calls as one affine map (see the module docstring). It runs as
    a step's layer: ``transform`` takes the chain's input and returns its output."""

    stateful = False
    filters_rows = False
    n_outputs = 1
    fresh_output = True
    """The output is a new array that nothing else holds (when the last layer's is)."""

    def __init__(self, calls: Sequence[Call]) -> None:
        self.calls = tuple(calls)
        self.layers = tuple(call.layer for call in self.calls)
        self.name = "+".join(layer.name for layer in self.layers)
        self.fresh_output = bool(getattr(self.layers[-1], "fresh_output", False))
        self._cache: tuple[list[Any], dict[tuple[np.dtype, int], _Fold | None]] = ([], {})

    def __repr__(self) -> str:
        return f"FoldedChain({' -> '.join(self.name.split('+'))})"

    def transform(self, X: np.ndarray) -> np.ndarray:
        """The chain's output for ``X``: the folded map where it applies, else each layer in turn."""
        fold = self.fold_for(X)
        if fold is None:
            return self.unfolded(X)
        out = np.multiply(X, fold.coef) if fold.elementwise else np.matmul(X, fold.coef)
        out += fold.intercept
        if out.dtype != fold.dtype:
            out = out.astype(fold.dtype)
        if fold.finite_only and not np.isfinite(out).all():  # a non-finite input: the layers refuse it
            return self.unfolded(X)
        return out

    def unfolded(self, X: Any) -> Any:
        """The chain run layer by layer; an error names the layer it came from."""
        for call in self.calls:
            try:
                X = call.layer.transform(X)
            except Exception as exc:
                error = layer_failure(call.describe(), "transform", [X], exc)
                setattr(error, LOCATED, True)
                raise error from exc
            if type(X) is not np.ndarray:
                X = call.arrays(X)[0]
        return X

    def fold_for(self, X: Any) -> _Fold | None:
        """The folded map for inputs like ``X`` in the layers' current state (None: run unfolded)."""
        if type(X) is not np.ndarray or X.ndim != 2 or X.dtype not in _FLOATS:
            return None
        version, folds = self._cache
        current = self._version()
        if len(current) != len(version) or not all(map(operator.is_, current, version)):
            folds = {}
            self._cache = (current, folds)
        key = (X.dtype, X.shape[1])
        if key not in folds:
            folds[key] = self._fold(X)
        return folds[key]

    def _version(self) -> list[Any]:
        """The objects the layers' maps are computed from: any fit, load, ``set_state`` or
        hyperparameter assignment replaces at least one of them."""
        parts: list[Any] = []
        for layer in self.layers:
            state = layer.__dict__
            parts.extend(state.values())
            metadata = state.get("_metadata")
            if type(metadata) is dict:
                parts.extend(metadata.values())
            estimator = state.get("estimator")
            if estimator is not None and hasattr(estimator, "__dict__"):  # a model fitted in place
                parts.extend(vars(estimator).values())
        return parts

    def _fold(self, X: np.ndarray) -> _Fold | None:
        try:
            maps = [layer.affine() for layer in self.layers]
            affine = compose(maps)
            dtype = np.asarray(self.unfolded(X[:0])).dtype  # the dtype the layers give these inputs
        except Exception:  # not foldable now: the layers run (and raise) one by one
            return None
        if affine is None or dtype not in _FLOATS or not affine.finite or not well_scaled(maps, dtype):
            return None
        width = X.shape[1]
        coef = affine.coef
        intercept = affine.intercept
        if affine.elementwise:
            if any(a.ndim > 1 or (a.ndim == 1 and a.shape[0] != width) for a in (coef, intercept)):
                return None
        elif coef.ndim == 0 or coef.shape[0] != width or intercept.shape not in ((), coef.shape[1:]):
            return None
        return _Fold(
            coef.astype(dtype), intercept.astype(dtype), dtype, affine.elementwise, affine.finite_only
        )


SCALE_LIMITS = {np.dtype(np.float64): 1e100, np.dtype(np.float32): 1e12}
"""How far (either way) a chain's coefficients may take its values, per dtype, for it to fold."""


def well_scaled(maps: Sequence[Any], dtype: np.dtype) -> bool:
    """Whether a chain of affine ``maps`` keeps its values far from overflow and underflow in
    ``dtype``: the products of the layers' largest gains, of their intercepts carried on, and of
    their smallest nonzero coefficients stay within :data:`SCALE_LIMITS`. A chain that scales by
    1e-200 and then 1e300 computes 1e100 step by step, while its composed coefficient underflows
    to 0; one whose intermediate overflows to inf would come out finite folded. Neither folds."""
    limit = SCALE_LIMITS[dtype]
    gain, shift, small = 1.0, 0.0, 1.0
    for affine in maps:
        coef = np.abs(affine.coef)
        # the largest factor from an input to an output: a row sum of the matrix
        step = (
            float(coef.max(initial=0.0)) if affine.elementwise or coef.ndim < 2 else float(coef.sum(0).max())
        )
        nonzero = coef[coef > 0]
        gain *= step
        shift = shift * step + float(np.abs(affine.intercept).max(initial=0.0))
        small *= float(nonzero.min()) if nonzero.size else 1.0
        if gain > limit or shift > limit or small < 1 / limit:
            return False
    return True


def may_be_affine(layer: Any) -> bool:
    """Whether ``layer``'s class declares an affine map (it overrides ``Layer.affine``)."""
    method = getattr(type(layer), "affine", None)
    return method is not None and method is not Layer.affine


def fold_chains(steps: list[Step], keep: Sequence[int], fitted: set[int]) -> list[Step]:
    """``steps`` with every chain of two or more foldable transform steps replaced by one step
    running a :class:`FoldedChain`, at the place of the chain's last step. ``keep``: the
    result slots (never folded away); ``fitted``: ids of the layers the plan fits (not folded)."""
    readers = Counter(s for step in steps for s in step.inputs)
    kept = set(keep)

    def foldable(step: Step) -> bool:
        return (
            step.mode == "transform"
            and len(step.inputs) == 1
            and len(step.outputs) == 1
            and id(step.call.layer) not in fitted
            and may_be_affine(step.call.layer)
        )

    reader_of = {step.inputs[0]: i for i, step in enumerate(steps) if foldable(step)}
    chains: list[list[int]] = []
    seen: set[int] = set()
    for i, step in enumerate(steps):
        if i in seen or not foldable(step):
            continue
        chain = [i]
        while True:
            out = steps[chain[-1]].outputs[0]
            nxt = reader_of.get(out)
            if nxt is None or out in kept or readers[out] != 1:
                break
            chain.append(nxt)
        seen.update(chain)
        if len(chain) > 1:
            chains.append(chain)
    if not chains:
        return steps
    replaced: dict[int, Step | None] = {}
    for chain in chains:
        calls = [steps[i].call for i in chain]
        folded = FoldedChain(calls)
        call = Call(cast(Layer, folded), calls[0].features, 0)
        call.outputs = calls[-1].outputs
        for i in chain:
            replaced[i] = None
        replaced[chain[-1]] = attrs.evolve(
            steps[chain[-1]], call=call, inputs=steps[chain[0]].inputs, frees=()
        )
    kept_steps = []
    for i, step in enumerate(steps):
        new = replaced.get(i, step)
        if new is not None:
            kept_steps.append(new)
    return kept_steps


def folded_chains(steps: Sequence[Step]) -> list[FoldedChain]:
    """The folded chains among ``steps``, in plan order (for the summary)."""
    return [step.call.layer for step in steps if isinstance(step.call.layer, FoldedChain)]
