"""The wrappers a stateful layer's learning methods get when its class is defined: each renews
the layer's state token and keeps the per-observation shapes of the features it was fitted
on, which ``transform`` then requires."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from megatron.layers.base import StatefulLayer

FITTED_SHAPES = "_fitted_shapes"
"""The ``metadata`` key under which a stateful layer keeps the per-observation shapes of the
feature inputs it was fitted on."""


LEARNING_METHODS = ("fit", "partial_fit", "fit_transform", "fit_batches", "reset")


def shapes_of(arrays: Sequence[Any]) -> tuple[tuple[int, ...], ...] | None:
    """The per-observation shapes of ``arrays`` (None unless each is an array of observations)."""
    shapes = []
    for X in arrays:
        shape = getattr(X, "shape", None)
        if not isinstance(shape, tuple) or not shape:
            return None
        shapes.append(tuple(int(d) for d in shape[1:]))
    return tuple(shapes)


def learning(kind: str, method: Callable[..., Any]) -> Callable[..., Any]:
    """``method``, one of the learning methods: renews the layer's state token when it returns
    or raises (a failed fit may have changed some of the state), and keeps the shapes fitted on
    (a full fit forgets the old ones; a partial fit must match them; a reset forgets them)."""

    @functools.wraps(method)
    def learn(self: StatefulLayer, *args: Any, **kwargs: Any) -> Any:
        try:
            if kind in ("fit", "fit_transform", "reset"):
                metadata = self.__dict__.get("_metadata")
                if type(metadata) is dict:
                    metadata.pop(FITTED_SHAPES, None)
            elif kind == "partial_fit":
                self._check_fitted_shape(self._features_of(args), "partial_fit")
            result = method(self, *args, **kwargs)
            if kind in ("fit", "fit_transform", "partial_fit"):
                self._record_fitted_shape(args)
            elif kind == "reset":  # an override that keeps its metadata still forgets the shapes
                metadata = self.__dict__.get("_metadata")
                if type(metadata) is dict:
                    metadata.pop(FITTED_SHAPES, None)
            if kind != "reset":  # fitted directly as through a pipeline: its pipeline transforms with it
                self.fitted = True
            return result
        finally:
            self.__dict__["state_token"] = uuid.uuid4().hex

    learn._renews_state_token = True  # type: ignore[attr-defined]
    return learn


def checking_fitted_shape(method: Callable[..., Any]) -> Callable[..., Any]:
    """``transform``, refusing features of another per-observation shape than those fitted on."""

    @functools.wraps(method)
    def transform(self: StatefulLayer, *features: Any) -> Any:
        self._check_fitted_shape(features, "transform")
        return method(self, *features)

    transform._checks_fitted_shape = True  # type: ignore[attr-defined]
    return transform
