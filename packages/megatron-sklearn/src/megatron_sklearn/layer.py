"""``Sklearn``: a scikit-learn estimator as a megatron layer."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from megatron.errors import IncrementalFitError, LayerInputError, NotInvertibleError, SpecError
from megatron.layers.affine import Affine
from megatron.layers.naming import FeatureNames, numbered
from megatron.layers.out_of_fold import OutOfFold, Splits, checked_cv, checked_splits
from megatron.layers.state import Exactness
from megatron.specs import Spec

METHODS = ("transform", "predict", "predict_proba", "predict_log_proba", "decision_function")


def is_estimator(obj: Any) -> bool:
    """A scikit-learn style estimator (without importing scikit-learn for other objects)."""
    return hasattr(obj, "fit") and hasattr(obj, "get_params") and not isinstance(obj, type)


def _sparse(X: Any) -> bool:
    return type(X).__module__.startswith("scipy.sparse")


def _supervised(estimator: Any) -> bool:
    from sklearn.base import is_classifier, is_regressor

    return bool(is_classifier(estimator) or is_regressor(estimator))


class Sklearn(OutOfFold):
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

    ``cv`` (a number of folds, a splitter such as ``StratifiedKFold(5)``, or a list of (train,
    test) positions) makes the outputs a fit hands downstream out-of-fold predictions, as
    ``StackingClassifier`` makes them: a number of folds is ``StratifiedKFold`` for a classifier
    and ``KFold`` otherwise, without shuffling; the estimator is then refit on all rows for
    ``transform`` (:mod:`megatron.layers.out_of_fold`).

    Arguments routed to fit (``Pipeline.fit(data, sample_weight=w)``, :mod:`megatron.routing`)
    reach the estimator's ``fit`` (or ``partial_fit``) where its signature names them.
    scipy.sparse features pass through as they are, for estimators that take them; several
    feature inputs are joined as sparse columns where one of them is sparse.

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
        cv: Any = None,
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
        self.cv = checked_cv(cv, f"Sklearn({type(estimator).__name__})")

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

    def affine(self) -> Affine | None:
        """The fitted estimator's output method as an affine map where it is one
        (:mod:`megatron_sklearn.affine`: scalers, PCA, TruncatedSVD, linear models), so that
        a pipeline folds it with the affine layers around it."""
        from megatron_sklearn.affine import affine_of

        return affine_of(self.estimator, self.output_method) if self.fitted else None

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
    def _features(features: tuple[Any, ...]) -> Any:
        if len(features) == 1 and features[0].ndim == 2:
            return features[0]  # the common case: no copy (a sparse matrix stays sparse)
        if any(_sparse(X) for X in features):
            import scipy.sparse

            return scipy.sparse.hstack(
                [X if _sparse(X) else np.asarray(X).reshape(X.shape[0], -1) for X in features], format="csr"
            )
        columns = []
        for X in features:
            if X.ndim > 2:
                raise LayerInputError(f"expected one row of features per observation; got shape {X.shape}")
            columns.append(X.reshape(len(X), -1))
        return np.hstack(columns)

    def _split(self, inputs: tuple[Any, ...]) -> tuple[Any, np.ndarray | None]:
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
    def accepted_fit_params(self, mode: str = "fit") -> frozenset[str] | None:
        """The arguments the estimator's ``fit`` (``partial_fit`` for ``mode='partial_fit'``)
        names, which :mod:`megatron.routing` may send it; None where it takes any (``**params``,
        a scikit-learn ``Pipeline``): those take only arguments addressed to the layer by name."""
        import inspect

        method = getattr(self.estimator, "partial_fit" if mode == "partial_fit" else "fit", None)
        if method is None:
            return frozenset()
        parameters = list(inspect.signature(method).parameters.values())
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            return None
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        named = {p.name for p in parameters if p.kind in kinds and p.name not in ("X", "y", "Y")}
        return frozenset(named - {"classes"} if mode == "partial_fit" else named)

    def reset(self) -> None:
        from sklearn.base import clone

        super().reset()
        self.estimator = clone(self.estimator)

    def fit(self, *inputs: Any, **params: Any) -> None:
        X, y = self._split(inputs)
        if X.shape[0] == 0:
            raise LayerInputError(f"cannot fit on an empty batch (shape {X.shape})")
        with self._refusals("fit"):
            self.estimator.fit(X, **params) if y is None else self.estimator.fit(X, y, **params)

    def fit_transform(self, *inputs: Any, **params: Any) -> Any:
        """Out-of-fold outputs where ``cv`` is set; else the estimator's own ``fit_transform``
        where it computes the output (PCA reuses its SVD); otherwise fit, then the output method."""
        if self.cv is not None:
            return self.out_of_fold_outputs(*inputs, **params)
        if self.output_method != "transform" or not hasattr(self.estimator, "fit_transform"):
            return super().fit_transform(*inputs, **params)
        X, y = self._split(inputs)
        if X.shape[0] == 0:
            raise LayerInputError(f"cannot fit on an empty batch (shape {X.shape})")
        with self._refusals("fit_transform"):
            result = (
                self.estimator.fit_transform(X, **params)
                if y is None
                else self.estimator.fit_transform(X, y, **params)
            )
        return result if _sparse(result) else np.asarray(result)

    # -- out-of-fold outputs ---------------------------------------------------------------------
    def fold_splits(self, inputs: Any, n: int) -> Splits:
        """An int ``cv`` as scikit-learn's ``check_cv`` reads it (``StratifiedKFold`` for a
        classifier given its targets, else ``KFold``, without shuffling); other ``cv`` as
        :class:`~megatron.layers.out_of_fold.OutOfFold` reads it."""
        if not isinstance(self.cv, int | np.integer) or isinstance(self.cv, bool):
            return super().fold_splits(inputs, n)
        from sklearn.base import is_classifier
        from sklearn.model_selection import check_cv

        X, y = self._split(tuple(inputs))
        splitter = check_cv(int(self.cv), y, classifier=is_classifier(self.estimator))
        with self._refusals("cv split"):
            return checked_splits(splitter.split(X, y), n, f"layer {self.name!r}")

    def fold_start(self) -> Any:
        """The unfitted estimator each fold clones (a ``warm_start`` one starts afresh too)."""
        from sklearn.base import clone

        return clone(self.estimator)

    def fold_restore(self, start: Any) -> None:
        from sklearn.base import clone

        self.estimator = clone(start)

    def supports_partial_fit(self) -> bool:
        return self.cv is None and hasattr(self.estimator, "partial_fit")

    def partial_fit(self, *inputs: Any, **params: Any) -> None:
        if self.cv is not None:
            raise IncrementalFitError(
                f"layer {self.name!r} has cv=: out-of-fold outputs need all the rows at once, so it "
                "cannot learn batch by batch"
            )
        if not hasattr(self.estimator, "partial_fit"):
            raise IncrementalFitError(
                f"{type(self.estimator).__name__} has no partial_fit(), so it cannot learn batch by "
                "batch: fit it on the whole dataset (Pipeline.fit), or choose an estimator with "
                "partial_fit (SGDClassifier, MultinomialNB, MiniBatchKMeans...)"
            )
        X, y = self._split(inputs)
        if X.shape[0] == 0:
            raise LayerInputError(f"cannot fit on an empty batch (shape {X.shape})")
        from sklearn.base import is_classifier

        with self._refusals("partial_fit"):
            if y is None:
                self.estimator.partial_fit(X, **params)
            elif is_classifier(self.estimator) and not hasattr(self.estimator, "classes_"):
                classes = self.classes if self.classes is not None else np.unique(y)
                self.estimator.partial_fit(X, y, classes=np.asarray(classes), **params)
            else:
                self.estimator.partial_fit(X, y, **params)

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
    def transform(self, *features: Any) -> Any:
        X = self._features(features)
        method = getattr(self.estimator, self.output_method)
        with self._refusals(self.output_method):
            if X.shape[0] == 0:  # scikit-learn refuses empty input: shape the empty output from one row
                one = np.zeros((1, X.shape[1]), dtype=X.dtype)
                return np.asarray(method(one))[:0]
            result = method(X)
        return result if _sparse(result) else np.asarray(result)

    # -- the shared layer protocol ---------------------------------------------------------------
    def get_feature_names_out(self, *input_features: FeatureNames) -> FeatureNames:
        """The names of the output's columns: the fitted estimator's own
        (``get_feature_names_out``) for ``transform``, given the names of the feature inputs'
        columns where all are known; ``<layer name>0..k-1`` for the classes of
        ``predict_proba``/``predict_log_proba``/``decision_function``; the layer's name for one
        value per row (``predict``, a binary ``decision_function``); None where the estimator
        cannot say."""
        method = self.output_method
        if method == "transform":
            own = getattr(self.estimator, "get_feature_names_out", None)
            if own is None:
                return None
            known = all(names is not None for names in input_features) and bool(input_features)
            given = [name for names in input_features for name in (names or [])] if known else None
            try:
                return [str(name) for name in own(given)]
            except Exception:  # not fitted, or the names do not match what it was fitted on
                try:
                    return [str(name) for name in own()]
                except Exception:
                    return None
        classes = getattr(self.estimator, "classes_", None)
        if method == "predict":
            return None if classes is not None and np.ndim(classes) > 1 else [self.name]
        if classes is None or np.ndim(classes) != 1:
            return None
        k = len(classes)
        if method == "decision_function" and k == 2:
            return [self.name]  # one score per row
        return numbered(self.name, k)

    @property
    def invertible(self) -> bool:
        """Whether the output maps back to the input: a transformer whose fitted estimator has
        ``inverse_transform`` (scalers, PCA...)."""
        return self.output_method == "transform" and hasattr(self.estimator, "inverse_transform")

    def inverse_transform(self, *outputs: Any) -> Any:
        """The estimator's ``inverse_transform`` of the output: the features it came from."""
        if not self.invertible:
            raise NotInvertibleError(
                f"layer {self.name!r} ({type(self.estimator).__name__}, method {self.output_method!r}) "
                "cannot map its output back: only a transformer whose estimator has inverse_transform can"
            )
        with self._refusals("inverse_transform"):
            result = self.estimator.inverse_transform(outputs[0])
        return result if _sparse(result) else np.asarray(result)
