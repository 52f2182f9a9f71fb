"""``Keras``: a Keras 3 model as a megatron layer.

Keras (and TensorFlow behind it) is imported when a model is wrapped, not when the plugin
loads.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from megatron.errors import IncrementalFitError, SpecError
from megatron.layers import checks
from megatron.layers.naming import FeatureNames, numbered
from megatron.layers.out_of_fold import OutOfFold, checked_cv
from megatron.progress import enabled as progress_enabled
from megatron.specs import Spec


def _is_keras_model(obj: Any) -> bool:
    return type(obj).__module__.startswith("keras") and hasattr(obj, "inputs") and hasattr(obj, "fit")


def _spec(tensor: Any) -> Spec:
    return Spec(tuple(tensor.shape)[1:], str(tensor.dtype))


def _empty_shape(tensor: Any) -> tuple[int, ...]:
    """The shape of no rows of ``tensor``: an axis of unknown length (None) has none either."""
    return (0, *(0 if d is None else int(d) for d in tuple(tensor.shape)[1:]))


class Keras(OutOfFold):
    """A compiled Keras model as a layer, called on ``[features..., targets...]``.

    The number of features is the model's number of inputs; the remaining inputs are the
    training targets, used by ``fit`` only (``transform`` does not need them). A model with
    several outputs gives one node per output. ``fit_kwargs`` (epochs, batch_size,
    validation_data, callbacks...) go to ``model.fit``; ``predict_kwargs`` to
    ``model.predict``. Keras's progress output follows the pipeline's progress switch.

    ``cv`` (a number of folds, a splitter with ``split(X, y)``, or a list of (train, test)
    positions) makes the outputs a fit hands downstream out-of-fold predictions: each fold
    trains from the weights (and optimizer state) the model had before the fit, then the model
    trains on all rows for ``transform`` (:mod:`megatron.layers.out_of_fold`). Arguments routed
    to fit (``Pipeline.fit(data, sample_weight=w)``: ``sample_weight``, ``class_weight``) reach
    ``model.fit``.

    Example::

        preds = Keras(model, fit_kwargs={'epochs': 5})([grey_images, ohe_labels], 'preds')
    """

    iterative = True  # Pipeline.fit_generator trains it for every epoch
    fixed_shape = False  # the model checks its own input shapes (a None axis takes any length)

    def __init__(
        self,
        model: Any,
        fit_kwargs: dict[str, Any] | None = None,
        predict_kwargs: dict[str, Any] | None = None,
        cv: Any = None,
    ) -> None:
        if not _is_keras_model(model):
            raise SpecError(
                f"Keras needs a Keras model; got {type(model).__module__}.{type(model).__qualname__}"
            )
        if not getattr(model, "inputs", None):
            raise SpecError(
                "the Keras model has no defined inputs: build it with keras.Input or call build()"
            )
        self.model = model
        self.fit_kwargs = dict(fit_kwargs or {})
        self.predict_kwargs = dict(predict_kwargs or {})
        self.n_outputs = len(model.outputs)
        self.cv = checked_cv(cv, "Keras")

    @property
    def n_features(self) -> int:
        return len(self.model.inputs)

    def n_targets(self, n_inputs: int) -> int:
        return max(n_inputs - self.n_features, 0)

    def output_spec(self, *features: Spec) -> Spec | tuple[Spec, ...]:
        if len(features) != self.n_features:
            raise SpecError(f"the model takes {self.n_features} feature inputs; got {len(features)}")
        for position, (spec, tensor) in enumerate(zip(features, self.model.inputs)):
            want = _spec(tensor)
            if not want.compatible(spec):
                raise SpecError(f"model input {position} has shape {want.shape}; the node has {spec.shape}")
        specs = tuple(_spec(t) for t in self.model.outputs)
        return specs[0] if len(specs) == 1 else specs

    def state_size(self) -> int:
        """Bytes of the model's weights."""
        return int(sum(np.prod(w.shape) * np.dtype(w.dtype).itemsize for w in self.model.weights))

    # -- fitting ---------------------------------------------------------------------------------
    def _training(self, inputs: tuple[np.ndarray, ...]) -> tuple[Any, Any]:
        """``_split`` of data to train on, refusing NaN and infinities, which would make the
        weights NaN and every prediction with them, without a word."""
        for X in inputs:
            checks.finite(np.asarray(X), "train on", hint="fill missing values first (SimpleImpute, Impute)")
        return self._split(inputs)

    def _split(self, inputs: tuple[np.ndarray, ...]) -> tuple[Any, Any]:
        features, targets = inputs[: self.n_features], inputs[self.n_features :]
        x = features[0] if len(features) == 1 else tuple(features)
        y = None if not targets else (targets[0] if len(targets) == 1 else tuple(targets))
        return x, y

    def _verbose(self) -> int:
        return self.fit_kwargs.get("verbose", 1 if progress_enabled() else 0)

    def reset(self) -> None:
        """Keep the model's weights: Keras models train on from where they are, as in Keras."""
        self.metadata = {}
        self.fitted = False

    def accepted_fit_params(self, mode: str = "fit") -> frozenset[str]:
        """The arguments :mod:`megatron.routing` may send to ``model.fit`` (``train_on_batch``
        for ``partial_fit``)."""
        return frozenset({"sample_weight", "class_weight"})

    def fit(self, *inputs: np.ndarray, **params: Any) -> None:
        x, y = self._training(inputs)
        kwargs = {**self.fit_kwargs, **params, "verbose": self._verbose()}
        history = self.model.fit(x, y, **kwargs)
        self.metadata["history"] = {k: np.asarray(v) for k, v in history.history.items()}

    def fold_start(self) -> Any:
        """The model's weights and its optimizer's variables (built first, so that a fold
        starts from the same moments and step count as the first fit would)."""
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        variables = list(optimizer.variables) if optimizer is not None else []
        from keras import ops

        return [np.array(w) for w in self.model.get_weights()], [ops.convert_to_numpy(v) for v in variables]

    def fold_restore(self, start: Any) -> None:
        weights, optimizer_values = start
        self.model.set_weights(weights)
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None:
            for variable, value in zip(optimizer.variables, optimizer_values):
                variable.assign(value)

    def supports_partial_fit(self) -> bool:
        return self.cv is None

    def partial_fit(self, *inputs: np.ndarray, **params: Any) -> None:
        """One training step on the batch."""
        self._no_out_of_fold("partial_fit")
        x, y = self._training(inputs)
        self.model.train_on_batch(x, y, **params)

    def _no_out_of_fold(self, operation: str) -> None:
        if self.cv is not None:
            raise IncrementalFitError(
                f"layer {self.name!r} has cv=: out-of-fold outputs need all the rows at once, so "
                f"{operation} cannot train it batch by batch"
            )

    def fit_batches(
        self, batches: Callable[[], Iterable[tuple[np.ndarray, ...]]], epochs: int, steps: int | None = None
    ) -> None:
        """Train with Keras's own loop, one ``model.fit`` epoch per pass over the batches the
        pipeline computes upstream (each batch computed once per epoch)."""
        self._no_out_of_fold("fit_generator")
        kwargs = {k: v for k, v in self.fit_kwargs.items() if k not in ("epochs", "batch_size", "shuffle")}
        kwargs["verbose"] = self._verbose()
        kwargs["shuffle"] = False  # batches arrive in the source's order

        def pairs() -> Iterator[tuple[Any, Any]]:
            for inputs in batches():
                yield self._training(inputs)

        for epoch in range(epochs):
            with warnings.catch_warnings():
                # without a known length, Keras learns an epoch's end by running out of data
                warnings.filterwarnings("ignore", message="Your input ran out of data")
                self.model.fit(
                    pairs(), initial_epoch=epoch, epochs=epoch + 1, steps_per_epoch=steps, **kwargs
                )

    # -- transforming ----------------------------------------------------------------------------
    def transform(self, *features: np.ndarray) -> np.ndarray | tuple[np.ndarray, ...]:
        x = features[0] if len(features) == 1 else tuple(features)
        if len(features[0]) == 0:
            empty = tuple(np.empty(_empty_shape(t), dtype=str(t.dtype)) for t in self.model.outputs)
            return empty[0] if self.n_outputs == 1 else empty
        kwargs = {"verbose": 0, **self.predict_kwargs}
        predictions = self.model.predict(x, **kwargs)
        if self.n_outputs == 1:
            return np.asarray(predictions)
        return tuple(np.asarray(p) for p in predictions)

    # -- the shared layer protocol ---------------------------------------------------------------
    def get_feature_names_out(self, *input_features: FeatureNames) -> Any:
        """``<layer name>0..k-1`` for an output whose last axis holds ``k`` values (the layer's
        name for one value per observation), None where ``k`` is not known; a tuple of these for
        a model with several outputs."""
        names = tuple(self._names_of(tuple(tensor.shape)[1:]) for tensor in self.model.outputs)
        return names[0] if self.n_outputs == 1 else names

    def _names_of(self, shape: tuple[Any, ...]) -> FeatureNames:
        if not shape:
            return [self.name]
        return None if shape[-1] is None else numbered(self.name, int(shape[-1]))
