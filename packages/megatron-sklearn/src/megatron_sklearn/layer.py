"""``Sklearn``: a scikit-learn estimator as a megatron layer."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from megatron.errors import IncrementalFitError, LayerInputError, SpecError
from megatron.layers.base import StatefulLayer
from megatron.layers.state import Exactness
from megatron.specs import Spec

METHODS = ("transform", "predict", "predict_proba", "predict_log_proba", "decision_function")


def is_estimator(obj: Any) -> bool:
    """A scikit-learn style estimator (without importing scikit-learn for other objects)."""
    return hasattr(obj, "fit") and hasattr(obj, "get_params") and not isinstance(obj, type)


def _supervised(estimator: Any) -> bool:
    from sklearn.base import is_classifier, is_regressor

    return bool(is_classifier(estimator) or is_regressor(estimator))


class Sklearn(StatefulLayer):
    """A scikit-learn estimator as a layer: a transformer, an unsupervised model or a
    supervised model.

    Called on ``[X...]`` or ``[X..., y]``: a classifier or regressor takes its last input as
    the training target (``targets=`` says how many trailing inputs are targets for any other
    estimator). Targets feed ``fit`` only: they are never passed to ``transform``/``predict``
    and ``Pipeline.transform`` does not need them. Several feature inputs are joined as
    columns. ``method`` picks the output: ``'transform'``, ``'predict'``, ``'predict_proba'``,
    ``'decision_function'``...; by default ``predict`` for supervised models and for models
    without ``transform``, ``transform`` otherwise. The fitted estimator is ``layer.estimator``;
    ``get_state()`` gives a copy of it. Copies fitted on separate parts merge
    (``merge_states``) where a merge is registered for the estimator's class
    (``megatron_sklearn.merging``: the scalers and naive Bayes models).

    For ``partial_fit``, classifiers get ``classes=`` on the first call: the ``classes``
    argument, or else the classes in the first batch's targets.

    ``iterative`` says whether ``Pipeline.fit_generator`` gives the estimator ``epochs`` passes
    (an iterative learner) or one (a one-pass statistic such as ``StandardScaler`` or the naive
    Bayes counts). By default an estimator with ``partial_fit`` and a ``max_iter`` or ``n_iter``
    parameter (``SGDClassifier``, ``MLPClassifier``, ``MiniBatchKMeans``) is iterative.

    Example::

        probs = Sklearn(LogisticRegression(), method='predict_proba')([features, label], 'probs')
    """

    def __init__(
        self,
        estimator: Any,
        method: str | None = None,
        targets: int | None = None,
        classes: Any = None,
        iterative: bool | None = None,
    ) -> None:
        if not is_estimator(estimator):
            raise SpecError(f"Sklearn needs a scikit-learn estimator; got {type(estimator).__name__}")
        if method is not None and method not in METHODS:
            raise SpecError(f"method must be one of {METHODS}; got {method!r}")
        if method is not None and not hasattr(estimator, method):
            raise SpecError(f"{type(estimator).__name__} has no {method}()")
        self.estimator = estimator
        self.method = method
        self.targets = targets
        self.classes = classes
        self._iterative = iterative

    @property
    def iterative(self) -> bool:
        """Whether more passes over the data teach the estimator more (see the class docstring)."""
        if self._iterative is not None:
            return bool(self._iterative)
        if not hasattr(self.estimator, "partial_fit"):
            return False
        parameters = self.estimator.get_params(deep=False)
        return "max_iter" in parameters or "n_iter" in parameters

    @property
    def output_method(self) -> str:
        """The estimator method that computes the layer's output."""
        if self.method is not None:
            return self.method
        if _supervised(self.estimator) or not hasattr(self.estimator, "transform"):
            return "predict"
        return "transform"

    def n_targets(self, n_inputs: int) -> int:
        if self.targets is not None:
            return self.targets
        return 1 if _supervised(self.estimator) and n_inputs >= 2 else 0

    def output_spec(self, *features: Spec) -> Spec:
        if not features:
            raise SpecError("expected at least one feature input")
        for spec in features:
            if spec.shape is not None and len(spec.shape) > 1:
                raise SpecError(
                    f"scikit-learn takes one row of features per observation; got shape {spec.shape}"
                )
        return Spec((), None) if self.output_method == "predict" else Spec((None,), None)

    def state_size(self) -> int:
        """Bytes of the fitted estimator's learned arrays (its attributes ending in ``_``)."""
        return int(
            sum(
                v.nbytes
                for k, v in vars(self.estimator).items()
                if k.endswith("_") and isinstance(v, np.ndarray)
            )
        )

    # -- learned state ---------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """What the layer learned: its metadata and a copy of its fitted estimator, under
        ``'estimator'``."""
        return {**super().get_state(), "estimator": copy.deepcopy(self.estimator)}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Install a learned state: a copy of its ``'estimator'`` becomes the layer's; a state
        without one (a saved file's, whose estimator is a hyperparameter) keeps the layer's."""
        if not isinstance(state, Mapping):
            raise LayerInputError(f"expected a learned state as a mapping; got {type(state).__name__}")
        if "estimator" in state:
            estimator = state["estimator"]
            if not is_estimator(estimator):
                raise LayerInputError(
                    f"a state's 'estimator' must be an estimator; got {type(estimator).__name__}"
                )
            self.estimator = copy.deepcopy(estimator)
        super().set_state({key: value for key, value in state.items() if key != "estimator"})

    def merge_exactness(self) -> Exactness | None:
        """How the estimator's class merges (:mod:`megatron_sklearn.merging`); ``None`` for a
        class without a registered merge."""
        from megatron_sklearn.merging import merge_for

        entry = merge_for(self.estimator)
        return None if entry is None else entry.exactness

    def merge_states(self, a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
        """The estimators of both states merged by the merge registered for their class."""
        from megatron_sklearn.merging import merge_for

        entry = merge_for(self.estimator)
        if entry is None:
            raise NotImplementedError(f"no merge is registered for {type(self.estimator).__name__}")
        for state in (a, b):
            if "estimator" not in state:
                raise LayerInputError("expected states with the layer's 'estimator' (from get_state)")
        return {"estimator": entry.merged(a["estimator"], b["estimator"])}

    # -- data ------------------------------------------------------------------------------------
    @staticmethod
    def _features(features: tuple[np.ndarray, ...]) -> np.ndarray:
        if len(features) == 1 and features[0].ndim == 2:
            return features[0]  # the common case: no copy
        columns = []
        for X in features:
            if X.ndim > 2:
                raise LayerInputError(f"expected one row of features per observation; got shape {X.shape}")
            columns.append(X.reshape(len(X), -1))
        return np.hstack(columns)

    def _split(self, inputs: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray | None]:
        n_targets = self.n_targets(len(inputs))
        features = inputs[: len(inputs) - n_targets]
        X = self._features(features)
        if n_targets == 0:
            return X, None
        y = inputs[-1] if n_targets == 1 else np.column_stack(inputs[len(features) :])
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        return X, y

    # -- fitting ---------------------------------------------------------------------------------
    def reset(self) -> None:
        from sklearn.base import clone

        super().reset()
        self.estimator = clone(self.estimator)

    def fit(self, *inputs: np.ndarray) -> None:
        X, y = self._split(inputs)
        if len(X) == 0:
            raise LayerInputError(f"cannot fit on an empty batch (shape {X.shape})")
        with self._refusals("fit"):
            self.estimator.fit(X) if y is None else self.estimator.fit(X, y)

    def fit_transform(self, *inputs: np.ndarray) -> np.ndarray:
        """The estimator's own ``fit_transform`` where it computes the output (PCA reuses its
        SVD); otherwise fit, then the output method."""
        if self.output_method != "transform" or not hasattr(self.estimator, "fit_transform"):
            return super().fit_transform(*inputs)
        X, y = self._split(inputs)
        if len(X) == 0:
            raise LayerInputError(f"cannot fit on an empty batch (shape {X.shape})")
        with self._refusals("fit_transform"):
            return np.asarray(
                self.estimator.fit_transform(X) if y is None else self.estimator.fit_transform(X, y)
            )

    def supports_partial_fit(self) -> bool:
        return hasattr(self.estimator, "partial_fit")

    def partial_fit(self, *inputs: np.ndarray) -> None:
        if not hasattr(self.estimator, "partial_fit"):
            raise IncrementalFitError(
                f"{type(self.estimator).__name__} has no partial_fit(), so it cannot learn batch by "
                "batch: fit it on the whole dataset (Pipeline.fit), or choose an estimator with "
                "partial_fit (SGDClassifier, MultinomialNB, MiniBatchKMeans...)"
            )
        X, y = self._split(inputs)
        if len(X) == 0:
            raise LayerInputError(f"cannot fit on an empty batch (shape {X.shape})")
        from sklearn.base import is_classifier

        with self._refusals("partial_fit"):
            if y is None:
                self.estimator.partial_fit(X)
            elif is_classifier(self.estimator) and not hasattr(self.estimator, "classes_"):
                classes = self.classes if self.classes is not None else np.unique(y)
                self.estimator.partial_fit(X, y, classes=np.asarray(classes))
            else:
                self.estimator.partial_fit(X, y)

    @contextlib.contextmanager
    def _refusals(self, operation: str) -> Iterator[None]:
        """scikit-learn's refusal of its input (a ``ValueError`` or ``TypeError``: NaN, text,
        a wrong number of features) as the :class:`LayerInputError` of a megatron layer."""
        try:
            yield
        except (ValueError, TypeError) as exc:
            raise LayerInputError(
                f"{type(self.estimator).__name__}.{operation}() refused its input: {type(exc).__name__}: {exc}"
            ) from exc

    # -- transforming ----------------------------------------------------------------------------
    def transform(self, *features: np.ndarray) -> np.ndarray:
        X = self._features(features)
        method = getattr(self.estimator, self.output_method)
        with self._refusals(self.output_method):
            if len(X) == 0:  # scikit-learn refuses empty input: shape the empty output from one row
                return np.asarray(method(np.zeros((1, X.shape[1]), dtype=X.dtype)))[:0]
            return np.asarray(method(X))
