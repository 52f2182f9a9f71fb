"""``hypothesis`` strategies for what flows into layers, and the property checks that use them.

A layer case (:class:`~megatron.testing.layers.LayerCase`) says what its inputs look like;
these strategies generate batches like them (0, 1 or many rows; NaN, infinities and extremes;
any text) and unlike them (other shapes, other dtypes, lists instead of arrays), and ways to
cut the data into batches. The checks run a fitted layer on them:

- :func:`check_generated_batches`: ``transform`` never changes its inputs, gives one row per
  input row (fewer for a row filter), and either succeeds or raises a megatron error;
- :func:`check_generated_splits`: ``fit_generator`` over any split into batches equals
  ``fit`` on all the data, for a layer whose ``partial_fit`` is exact.

Needs ``hypothesis`` (``pip install -e "packages/megatron-core[testing]"``)::

    @pytest.mark.parametrize("check", layer_properties(), ids=lambda c: c.__name__)
    def test_my_layer_properties(check):
        check(LayerCase(MyLayer, (data,)))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from megatron.errors import LayerError, MegatronError
from megatron.testing.layers import LayerCase, _assert_same, _run, named_pipeline

TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8)  # no lone surrogates


def _elements(dtype: np.dtype) -> st.SearchStrategy[Any] | None:
    if dtype.kind == "f":
        width: Literal[16, 32, 64] = 16 if dtype.itemsize == 2 else 32 if dtype.itemsize == 4 else 64
        return st.floats(width=width)  # NaN and infinities included
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return st.integers(int(info.min), int(info.max))
    if dtype.kind == "U":
        return TEXT.map(lambda text: text[: dtype.itemsize // 4])
    return None


def rows(min_rows: int = 0, max_rows: int = 12) -> st.SearchStrategy[int]:
    """Numbers of rows, with 0 and 1 drawn often."""
    return st.sampled_from([0, 1]) | st.integers(min_rows, max_rows)


def arrays_like(example: np.ndarray, n_rows: int) -> st.SearchStrategy[np.ndarray]:
    """Arrays of ``n_rows`` rows with ``example``'s row shape and dtype, any values."""
    dtype = example.dtype
    if dtype.kind == "O":  # a column of objects (dicts): the case's own values, resampled
        return st.lists(st.sampled_from(list(example)), min_size=n_rows, max_size=n_rows).map(
            lambda items: np.array([*items, None], dtype=object)[:-1]
        )
    return hnp.arrays(dtype, (n_rows, *example.shape[1:]), elements=_elements(dtype))


@st.composite
def batches_like(draw: st.DrawFn, case: LayerCase, max_rows: int = 12) -> tuple[np.ndarray, ...]:
    """A batch of the case's inputs: the same row shapes and dtypes, 0 to ``max_rows`` rows,
    any values (NaN, infinities, extremes, any text)."""
    n = draw(rows(0, max_rows))
    return tuple(draw(arrays_like(a, n)) for a in case.inputs)


@st.composite
def batches_unlike(draw: st.DrawFn, case: LayerCase, max_rows: int = 6) -> tuple[Any, ...]:
    """A batch a layer may well refuse: an input of another dtype, of another row shape, a
    plain list, or inputs of different lengths."""
    n = draw(st.integers(1, max_rows))
    batch: list[Any] = [draw(arrays_like(a, n)) for a in case.inputs]
    i = draw(st.integers(0, len(batch) - 1))
    kind = draw(st.sampled_from(["dtype", "shape", "list", "length"]))
    if kind == "dtype":
        dtype = draw(st.sampled_from(["U3", "bool", "int8", "float32", "complex64"]))
        batch[i] = draw(hnp.arrays(np.dtype(dtype), (n, *case.inputs[i].shape[1:])))
    elif kind == "shape":
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=3))
        batch[i] = draw(hnp.arrays(np.float64, (n, *shape)))
    elif kind == "list":
        batch[i] = np.asarray(batch[i]).tolist()
    else:
        batch[i] = np.asarray(batch[i])[: n - 1]
    return tuple(batch)


def splits(n_rows: int, max_batches: int = 5) -> st.SearchStrategy[list[int]]:
    """Sorted cut points that split ``n_rows`` rows into 1 to ``max_batches`` non-empty batches."""
    if n_rows < 2:
        return st.just([])
    return st.lists(st.integers(1, n_rows - 1), max_size=max_batches - 1, unique=True).map(sorted)


def _copies(batch: tuple[Any, ...]) -> list[Any]:
    return [np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in batch]


def check_generated_batches(case: LayerCase, examples: int = 25) -> None:
    """On generated batches like and unlike the case's inputs, a fitted layer's ``transform``
    never changes its inputs, gives one row per input row (at most that for a row filter), and
    succeeds or refuses with a megatron error (a :class:`~megatron.errors.LayerInputError`
    from the layer itself, never a bare ``ValueError`` or ``TypeError``; a case with
    ``user_code`` runs a user's function, whose own errors are let through, wrapped)."""
    pipeline, layer = named_pipeline(case, declare=False)
    _run(case, case.inputs, pipeline, layer)

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,  # a conformance suite gives the same verdict on every run
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(batch=batches_like(case) | batches_unlike(case))
    def transform(batch: tuple[Any, ...]) -> None:
        before = _copies(batch)
        try:
            outputs = pipeline.transform(case.feed(batch))
        except LayerError as exc:
            cause = exc.__cause__
            if not case.user_code and cause is not None and not isinstance(cause, MegatronError):
                raise AssertionError(
                    f"{case}: the layer raised {type(cause).__name__}, not a LayerInputError, on inputs "
                    f"{[getattr(a, 'dtype', type(a).__name__) for a in batch]}: {cause}"
                ) from cause
            outputs = None
        except MegatronError:
            outputs = None
        except Exception as exc:
            raise AssertionError(
                f"{case}: transform raised {type(exc).__name__} (not a megatron error) on inputs "
                f"{[getattr(a, 'dtype', type(a).__name__) for a in batch]}: {exc}"
            ) from exc
        for old, new in zip(before, batch):
            np.testing.assert_array_equal(
                np.asarray(old), np.asarray(new), err_msg=f"{case}: an input changed"
            )
        if outputs is not None:
            n = len(batch[0])
            for name in outputs:
                got = len(outputs[name])
                assert got <= n if layer.filters_rows else got == n, (
                    f"{case}: {n} input rows gave {got} rows of output {name!r}"
                )

    transform()


def check_generated_splits(case: LayerCase, examples: int = 15) -> None:
    """``fit_generator`` over any split of the case's inputs into batches equals ``fit`` on all
    of them (for a stateful layer whose ``partial_fit`` is exact)."""
    pipeline, layer = named_pipeline(case)
    if not layer.stateful or not layer.supports_partial_fit():
        return
    whole = _run(case, case.inputs, pipeline, layer)
    n = len(case.inputs[0])

    @settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(cuts=splits(n))
    def fit_in_batches(cuts: list[int]) -> None:
        streamed, _ = named_pipeline(case)
        batches = [case.feed(part) for part in zip(*(np.split(a, cuts) for a in case.inputs))]
        streamed.fit_generator(batches)
        _assert_same(
            case, streamed.transform(case.feed(case.inputs)), whole, f"fit_generator over cuts {cuts}"
        )

    fit_in_batches()


def layer_properties() -> list[Callable[[LayerCase], None]]:
    """Every property check of generated data, for ``pytest.mark.parametrize``."""
    return [check_generated_batches, check_generated_splits]
