"""Out-of-fold outputs: a stateful layer whose outputs feed the fit of another (stacking) hands
it, while the pipeline fits, predictions for each row made by a copy that never saw that row.

A layer with ``cv=`` (subclasses of :class:`OutOfFold`: ``Sklearn(..., cv=5)``, ``Keras(..., cv=5)``)
answers ``fit_transform``, which a fit runs where the layer's outputs are needed at once, with
k-fold out-of-fold outputs, then refits on every row; ``transform`` afterwards uses that refit,
as scikit-learn's ``StackingClassifier`` and ``cross_val_predict`` do. Routes by which the
outputs used downstream could come from the refit (the layer called on several nodes, fitting
batch by batch) are refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from megatron.errors import ConfigError, GraphError, IncrementalFitError
from megatron.layers.base import StatefulLayer
from megatron.sparse import take_rows

Splits = list[tuple[np.ndarray, np.ndarray]]
"""The (train rows, test rows) of each fold, as positions."""


def take(value: Any, rows: np.ndarray) -> Any:
    """The ``rows`` of an array of observations (numpy or scipy.sparse alike)."""
    return take_rows(value, rows)


def kfold(n_splits: int, n: int) -> Splits:
    """Contiguous folds, the first ``n % n_splits`` one row larger: scikit-learn's ``KFold``
    without shuffling."""
    if n_splits < 2:
        raise ConfigError(f"cv= takes at least 2 folds; got {n_splits}")
    if n < n_splits:
        raise ConfigError(f"cv={n_splits} needs at least {n_splits} rows to fit on; got {n}")
    sizes = np.full(n_splits, n // n_splits)
    sizes[: n % n_splits] += 1
    rows, first, splits = np.arange(n), 0, []
    for size in sizes:
        test = rows[first : first + size]
        splits.append((np.concatenate([rows[:first], rows[first + size :]]), test))
        first += size
    return splits


CV_FORMS = (
    "a number of folds (2 or more), a splitter with split(X, y) (KFold, StratifiedKFold) or a list "
    "of (train, test) positions"
)


def checked_cv(cv: Any, where: str) -> Any:
    """``cv`` checked when a layer is built, as far as it can be without the rows: None, a
    number of folds of at least 2, a splitter with ``split``, or (train, test) folds, each
    checked by :func:`fold_positions` (an iterator of folds is read into a list, so that every
    fit sees them)."""
    if cv is None or (hasattr(cv, "split") and not isinstance(cv, str | bytes)):
        return cv
    if isinstance(cv, bool | np.bool_):
        raise ConfigError(f"{where}: cv= takes {CV_FORMS}; got {cv!r} (leave cv= out for no folds)")
    if isinstance(cv, int | np.integer):
        if cv < 2:
            raise ConfigError(
                f"{where}: cv= takes at least 2 folds (each row is predicted by a copy fitted on the "
                f"others); got cv={int(cv)}. Leave cv= out for no folds."
            )
        return cv
    if isinstance(cv, Iterable) and not isinstance(cv, str | bytes | Mapping) and not hasattr(cv, "dtype"):
        folds = cv if isinstance(cv, Sequence) else list(cv)
        for index, split in enumerate(folds):
            fold_positions(split, index, None, where)
        return folds
    raise ConfigError(f"{where}: cv= takes {CV_FORMS}; got {type(cv).__name__} {cv!r}"[:400])


def fold_positions(split: Any, index: int, n: int | None, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Fold ``index`` of cv= as (train, test) arrays of positions, checked: a pair of 1-D lists
    of integer positions (a boolean mask of ``n`` rows is read as the positions it marks),
    within ``n`` rows where ``n`` is known, each non-empty, and no test row among the training
    rows (a fold trained on its own test rows gives in-sample outputs, not out-of-fold ones)."""
    what = f"{where}: fold {index} of cv="
    try:
        train, test = split
    except (TypeError, ValueError):
        raise ConfigError(
            f"{what} must be a (train, test) pair of positions; got {type(split).__name__}"
        ) from None
    parts = []
    for label, part in (("train", train), ("test", test)):
        array = np.asarray(part)
        if array.dtype == np.bool_:
            if n is not None and array.shape != (n,):
                raise ConfigError(
                    f"{what} gives its {label} rows as a boolean mask of shape {array.shape}; a mask "
                    f"needs one value per row ({n}). Give positions (np.flatnonzero(mask)) instead."
                )
            array = np.flatnonzero(array) if n is not None else array
        elif array.size == 0:
            array = array.astype(np.int64)
        elif array.dtype.kind not in "iu":
            raise ConfigError(f"{what} gives {label} rows of dtype {array.dtype}; it takes integer positions")
        if array.ndim != 1:
            raise ConfigError(
                f"{what} gives {label} rows of shape {array.shape}; it takes a 1-D list of positions"
            )
        if not array.size:
            raise ConfigError(f"{what} has no {label} rows; every fold needs training rows and test rows")
        if array.dtype != np.bool_ and (array.min() < 0 or (n is not None and array.max() >= n)):
            low, high = int(array.min()), int(array.max())
            bad = low if low < 0 else high
            raise ConfigError(
                f"{what} gives {label} row {bad}, outside the rows "
                f"{'0..n-1' if n is None else f'0..{n - 1} of the {n} fitted on'}"
            )
        parts.append(array)
    train, test = parts
    if train.dtype == np.bool_ or test.dtype == np.bool_:  # masks, before the rows are known
        return train, test
    overlap = np.intersect1d(train, test)
    if overlap.size:
        raise ConfigError(
            f"{what} trains on {overlap.size} of its own {np.unique(test).size} test rows (first: row "
            f"{int(overlap[0])}): its outputs for them would be in-sample predictions, not out-of-fold "
            "ones. The train and test rows of a fold must not overlap, as in a KFold."
        )
    return train.astype(np.int64, copy=False), test.astype(np.int64, copy=False)


def checked_splits(splits: Iterable[Any], n: int, where: str) -> Splits:
    """``splits`` as arrays of positions, each fold checked by :func:`fold_positions`, and
    checked together to give every row of ``n`` to exactly one test fold (out-of-fold outputs
    need one prediction per row), as scikit-learn's ``cross_val_predict`` requires."""
    out: Splits = []
    seen = np.zeros(n, dtype=np.int64)
    for index, split in enumerate(splits):
        train, test = fold_positions(split, index, n, where)
        np.add.at(seen, test, 1)
        out.append((train, test))
    if len(out) < 2 or not np.all(seen == 1):
        missing, repeated = np.flatnonzero(seen == 0), np.flatnonzero(seen > 1)
        detail = []
        if missing.size:
            detail.append(f"{missing.size} rows in no test fold (first: row {int(missing[0])})")
        if repeated.size:
            detail.append(f"{repeated.size} rows in several test folds (first: row {int(repeated[0])})")
        raise ConfigError(
            f"{where}: cv= must split the rows into at least 2 folds whose test rows hold every row "
            f"exactly once (a KFold), so that each row gets one out-of-fold output; got {len(out)} "
            f"folds over {n} rows" + (f", with {' and '.join(detail)}" if detail else "")
        )
    return out


def is_per_row(value: Any, n: int) -> bool:
    """Whether a fit argument holds one value per row (sliced with the rows of each fold)."""
    shape = getattr(value, "shape", None)
    return isinstance(shape, tuple) and len(shape) >= 1 and shape[0] == n


class OutOfFold(StatefulLayer):
    """Base of a stateful layer with a ``cv`` hyperparameter (None: off; an int: that many
    folds; a splitter with ``split(X, y)``; or a list of (train, test) positions).

    The layer provides :meth:`fold_splits` (how ``cv`` splits the rows it fits on),
    :meth:`fold_start` and :meth:`fold_restore` (the untrained state every fold starts from).
    """

    cv: Any = None

    @property
    def out_of_fold(self) -> bool:
        """Whether the layer gives out-of-fold outputs while it is fitted (``cv`` is set)."""
        return self.cv is not None

    def fold_splits(self, inputs: Sequence[Any], n: int) -> Splits:
        """The folds of ``cv`` over ``n`` rows (targets are the trailing ``inputs``)."""
        cv = self.cv
        where = f"layer {self.name!r}"
        if isinstance(cv, bool | np.bool_):
            raise ConfigError(f"{where}: cv= takes {CV_FORMS}; got {cv!r}")
        if isinstance(cv, int | np.integer):
            return kfold(int(cv), n)
        if hasattr(cv, "split") and not isinstance(cv, str | bytes):
            targets = inputs[len(inputs) - self.n_targets(len(inputs)) :]
            y = targets[0] if len(targets) == 1 else None
            return checked_splits(cv.split(np.zeros((n, 1)), y), n, where)
        if isinstance(cv, Iterable) and not isinstance(cv, str | bytes):
            return checked_splits(cv, n, where)
        raise ConfigError(f"{where}: cv= takes {CV_FORMS}; got {type(cv).__name__}")

    def fold_start(self) -> Any:
        """What every fold, and the final refit, starts from (by default nothing: ``fit``
        starts afresh). A layer that trains on from where it is (Keras) keeps its weights."""
        return None

    def fold_restore(self, start: Any) -> None:
        """Go back to :meth:`fold_start`'s state before a fold's fit."""

    def fit_transform(self, *inputs: Any, **params: Any) -> Any:
        """Out-of-fold outputs (:meth:`out_of_fold_outputs`) where ``cv`` is set; otherwise fit,
        then transform."""
        if self.cv is not None:
            return self.out_of_fold_outputs(*inputs, **params)
        return super().fit_transform(*inputs, **params)

    def out_of_fold_outputs(self, *inputs: Any, **params: Any) -> Any:
        """Fit one copy per fold on the other folds and transform the fold with it; then refit
        on all rows. Returns the fold outputs in row order; per-row ``params`` (sample weights)
        are sliced with each fold's training rows."""
        n = inputs[0].shape[0]
        n_features = len(inputs) - self.n_targets(len(inputs))
        splits = self.fold_splits(inputs, n)
        start = self.fold_start()
        parts: list[tuple[np.ndarray, Any]] = []
        for train, test in splits:
            self.fold_restore(start)
            fold_params = {k: take(v, train) if is_per_row(v, n) else v for k, v in params.items()}
            self.fit(*(take(a, train) for a in inputs), **fold_params)
            parts.append((test, self.transform(*(take(a, test) for a in inputs[:n_features]))))
        self.fold_restore(start)
        self.fit(*inputs, **params)
        return _assembled(parts, n)

    def __call__(self, inputs: Any, name: Any = None) -> Any:
        if self.cv is not None and self.__dict__.get("_out_of_fold_called"):
            raise GraphError(
                f"Layer {self.name!r} has cv= and is called already: a layer called on several nodes is "
                "fitted once on all of them, so its out-of-fold outputs could not be told apart. Use one "
                "layer per call."
            )
        node = super().__call__(inputs, name)
        self.__dict__["_out_of_fold_called"] = True
        return node


def _assembled(parts: list[tuple[np.ndarray, Any]], n: int) -> Any:
    """One output (or a tuple of them) of ``n`` rows from the test rows of each fold."""
    first = parts[0][1]
    if isinstance(first, tuple):
        return tuple(_assembled([(rows, out[k]) for rows, out in parts], n) for k in range(len(first)))
    order = np.argsort(np.concatenate([rows for rows, _ in parts]), kind="stable")
    values = [out for _, out in parts]
    if all(isinstance(v, np.ndarray) for v in values):
        return np.concatenate(values)[order]
    import scipy.sparse  # a sparse output: the layer that made it brought scipy

    return scipy.sparse.vstack(values, format="csr")[order]


def refuse_out_of_fold(layers: Iterable[Any], describe: Callable[[Any], str], operation: str) -> None:
    """A clear refusal of ``operation`` (``fit_generator``, ``partial_fit``) for layers with
    ``cv=``: out-of-fold outputs need every row at once."""
    for layer in layers:
        if getattr(layer, "out_of_fold", False):
            raise IncrementalFitError(
                f"{operation}() cannot fit {describe(layer)}: it has cv=, and out-of-fold outputs need "
                "all the rows at once (each fold is fitted on the others). Use fit() on the whole data, "
                "or leave cv= out."
            )
