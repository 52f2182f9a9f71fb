"""``hypothesis`` strategies for the answers a layer gives: data drawn from a case's own rows
(valid by construction, so a layer must succeed on it), parts of such rows for copies of a
layer to learn from and merge, the same data with NaN or infinities
put in, batches whose per-observation shape or dtype the declared inputs refuse, values that
are not a mapping of input name to array, and numbers of epochs.

:mod:`megatron.testing.batches` holds the strategies for arbitrary values like and unlike a
case's inputs; :mod:`megatron.testing.layer_answers` the checks that use both. Needs
``hypothesis`` (``pip install -e "packages/megatron-core[testing]"``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from megatron.specs import Spec
from megatron.testing.layers import LayerCase


def row_counts(max_rows: int = 12, min_rows: int = 0) -> st.SearchStrategy[int]:
    """Numbers of rows, 0 (where allowed) and 1 drawn often."""
    return st.sampled_from([n for n in (0, 1) if n >= min_rows]) | st.integers(max(min_rows, 2), max_rows)


@st.composite
def rows_of(
    draw: st.DrawFn, case: LayerCase, min_rows: int = 0, max_rows: int = 12
) -> tuple[np.ndarray, ...]:
    """A batch of the case's own rows, drawn with repeats in any order: 0, 1 or many rows of
    the same inputs, which a layer must accept (a row filter's rows among them)."""
    n_rows = draw(row_counts(max_rows, min_rows))
    available = len(case.inputs[0])
    picked = draw(st.lists(st.integers(0, available - 1), min_size=n_rows, max_size=n_rows))
    index = np.array(picked, dtype=np.intp)
    return tuple(a[index] for a in case.inputs)


@st.composite
def parts_of(
    draw: st.DrawFn, case: LayerCase, min_parts: int = 2, max_parts: int = 3, max_rows: int = 8
) -> list[tuple[np.ndarray, ...]]:
    """Two or three (``min_parts`` to ``max_parts``) batches of the case's own rows, none
    empty: the parts that copies of a layer learn from before their states are merged."""
    n_parts = draw(st.integers(min_parts, max_parts))
    return [draw(rows_of(case, min_rows=1, max_rows=max_rows)) for _ in range(n_parts)]


@st.composite
def with_nonfinite(draw: st.DrawFn, batch: tuple[np.ndarray, ...]) -> tuple[tuple[np.ndarray, ...], str]:
    """``batch`` with a NaN or an infinity put at one place of one of its float inputs (the batch
    as it is when it has none), and a description of where."""
    floats = [i for i, a in enumerate(batch) if a.dtype.kind == "f" and a.size]
    if not floats:
        return batch, "no float input"
    i = draw(st.sampled_from(floats))
    array = batch[i].copy()
    position = draw(st.integers(0, array.size - 1))
    value = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    array.flat[position] = value
    where = f"input {i}, row {np.unravel_index(position, array.shape)[0]}: {value}"
    return (*batch[:i], array, *batch[i + 1 :]), where


def declared_spec(case: LayerCase, i: int) -> Spec:
    """The spec the conformance pipeline declares for input ``i`` of ``case``."""
    return case.input_specs[i] if case.input_specs else Spec.of(case.inputs[i])


@st.composite
def outside_spec(
    draw: st.DrawFn, case: LayerCase, max_rows: int = 6, features: int | None = None
) -> tuple[tuple[Any, ...], int]:
    """A batch of the case's rows in which one of the first ``features`` inputs (all, by
    default) is of a per-observation shape its declared spec refuses, or of a dtype that cannot
    be cast safely to the declared one; and which input that is."""
    n_rows = draw(st.integers(1, max_rows))
    available = len(case.inputs[0])
    index = np.array(draw(st.lists(st.integers(0, available - 1), min_size=n_rows, max_size=n_rows)))
    batch: list[Any] = [a[index] for a in case.inputs]
    i = draw(st.integers(0, (len(batch) if features is None else features) - 1))
    spec = declared_spec(case, i)
    uncastable = (
        []
        if spec.dtype is None
        else [d for d in _OTHER_DTYPES if not np.can_cast(np.dtype(d), spec.dtype, casting="same_kind")]
    )
    if spec.shape is not None and (not uncastable or draw(st.booleans())):
        shape = draw(
            hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4).filter(
                lambda s: not spec.accepts_shape(s)
            )
        )
        dtype = batch[i].dtype if batch[i].dtype.kind != "O" else np.dtype(np.float64)
        batch[i] = draw(hnp.arrays(dtype, (n_rows, *shape)))
    elif uncastable:
        batch[i] = draw(hnp.arrays(np.dtype(draw(st.sampled_from(uncastable))), batch[i].shape))
    else:  # the input takes any shape and dtype: nothing is outside its spec
        return tuple(batch), -1
    return tuple(batch), i


_OTHER_DTYPES = ("U3", "complex128", "float64", "int64", "bool")


def not_mappings(case: LayerCase) -> st.SearchStrategy[Any]:
    """Values given where a mapping of input name to array belongs: an input's array itself,
    a list or tuple of the arrays, one row, a string, a number, None."""
    first = case.inputs[0]
    return st.sampled_from(
        [
            first,
            list(case.inputs),
            tuple(case.inputs),
            first[:1].tolist(),
            "in0",
            3.5,
            None,
        ]
    )


def epochs(max_epochs: int = 4) -> st.SearchStrategy[int]:
    """Numbers of epochs for ``fit_generator``, more than one drawn often."""
    return st.integers(1, max_epochs)
