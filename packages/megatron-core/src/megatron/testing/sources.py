"""The batch-source conformance suite: what every source of batches must do.

A source is re-iterable (each ``iter()`` is one fresh pass over the same data), yields
:class:`megatron.io.Batch` objects (input arrays by name, of one length, with distinct keys
in ``index`` when it has one) and respects ``batch_size``: every batch but the last holds
exactly that many rows. :func:`source_case` points the suite at a source class.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs
import numpy as np


@attrs.frozen
class SourceCase:
    """How to make a source, and the columns all its batches together hold."""

    make: Callable[[], Iterable[Any]]
    expected: Mapping[str, np.ndarray]
    batch_size: int
    name: str = "source"

    def __str__(self) -> str:
        return self.name


def _pass(source: Iterable[Any]) -> list[Any]:
    return list(iter(source))


def check_yields_batches(case: SourceCase) -> None:
    """Each item is a ``megatron.io.Batch``: arrays by input name, all of one length, and an
    ``index`` of that length when there is one."""
    from megatron.io import Batch

    for number, batch in enumerate(_pass(case.make())):
        assert isinstance(batch, Batch), (
            f"{case}: batch {number} is a {type(batch).__module__}.{type(batch).__qualname__}, not a "
            "megatron.io.Batch (Batch(arrays, index) keeps the rows' keys)"
        )
        lengths = {name: len(np.asarray(column)) for name, column in batch.items()}
        assert lengths and all(isinstance(name, str) for name in lengths), (
            f"{case}: batch {number}: {lengths}"
        )
        assert len(set(lengths.values())) == 1, f"{case}: batch {number} has columns of lengths {lengths}"
        if batch.index is not None:
            (rows,) = set(lengths.values())
            assert len(batch.index) == rows, (
                f"{case}: batch {number} has {rows} rows and {len(batch.index)} keys"
            )


def check_length(case: SourceCase) -> None:
    """A source that knows its number of batches (``len()``) says it right."""
    source = case.make()
    try:
        expected = len(source)  # type: ignore[arg-type]
    except TypeError:
        return
    assert expected == len(_pass(source)), f"{case}: len() says {expected} batches"


def check_batches_hold_the_data(case: SourceCase) -> None:
    """Concatenated, one pass's batches hold exactly the expected columns, in order."""
    batches = _pass(case.make())
    for name, column in case.expected.items():
        np.testing.assert_array_equal(
            np.concatenate([b[name] for b in batches]), column, err_msg=f"{case}: {name}"
        )


def check_batch_sizes(case: SourceCase) -> None:
    """No batch holds more than ``batch_size`` rows, and only the last holds fewer."""
    sizes = [len(next(iter(b.values()))) for b in _pass(case.make())]
    assert all(s == case.batch_size for s in sizes[:-1]) and 0 < sizes[-1] <= case.batch_size, (
        f"{case}: {sizes}"
    )


def check_re_iterable(case: SourceCase) -> None:
    """Each ``iter()`` is a fresh pass over the same data (staged fitting needs several)."""
    source = case.make()
    first, second = _pass(source), _pass(source)
    assert len(first) == len(second) > 0, f"{case}: passes of {len(first)} and {len(second)} batches"
    for a, b in zip(first, second):
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=f"{case}: {name}")


def check_distinct_index(case: SourceCase) -> None:
    """Batches that carry an index give every row its own key."""
    keys = []
    for batch in _pass(case.make()):
        index = getattr(batch, "index", None)
        if index is None:
            return
        keys += list(np.asarray(index).tolist())
    assert len(keys) == len(set(keys)), f"{case}: repeated keys across batches"


def _same_values(got: list[Any], want: list[Any]) -> bool:
    """Equal lists, NaN equal to NaN and None (a missing value either way)."""

    def missing(v: Any) -> bool:
        return v is None or (isinstance(v, float) and v != v)

    return len(got) == len(want) and all((missing(a) and missing(b)) or a == b for a, b in zip(got, want))


def check_batches_go_out_as_tables(case: SourceCase) -> None:
    """Each batch, as outputs, becomes an Arrow table (``Outputs.to_arrow()``) and a Polars
    DataFrame (``Outputs.to_frame(backend="polars")``) holding its values and index: each
    column of one type. Checked with each library that is installed."""
    import importlib.util

    from megatron.outputs import Outputs

    for number, batch in enumerate(_pass(case.make())):
        arrays = {name: np.asarray(column) for name, column in batch.items()}
        outputs = Outputs(list(arrays), list(arrays.values()), getattr(batch, "index", None))
        key = "index" if "index" not in arrays else "__index__"
        tables: list[tuple[str, Any, Callable[[Any, str], list[Any]]]] = []
        if importlib.util.find_spec("pyarrow") is not None:
            tables.append(("Arrow", outputs.to_arrow(index=key), lambda t, c: t[c].to_numpy().tolist()))
        if importlib.util.find_spec("polars") is not None:
            polars = outputs.to_frame(backend="polars", index=key)
            tables.append(("Polars", polars, lambda t, c: t[c].to_numpy().tolist()))
        for library, table, values in tables:
            assert _same_values(values(table, key), outputs.index.tolist()), (
                f"{case}: batch {number} as a {library} table: the index"
            )
            for name, array in arrays.items():
                if array.ndim == 1:
                    assert _same_values(values(table, name), array.tolist()), (
                        f"{case}: batch {number} as a {library} table: column {name!r}"
                    )


def source_checks() -> list[Callable[[SourceCase], None]]:
    """Every source check, for ``pytest.mark.parametrize``."""
    return [
        check_yields_batches,
        check_batches_hold_the_data,
        check_batch_sizes,
        check_re_iterable,
        check_distinct_index,
        check_length,
        check_batches_go_out_as_tables,
    ]


def source_case(
    source: Callable[..., Iterable[Any]],
    *args: Any,
    expected: Mapping[str, np.ndarray],
    batch_size: int,
    name: str | None = None,
    **kwargs: Any,
) -> SourceCase:
    """A case for a source class (or function): ``source(*args, batch_size=batch_size,
    **kwargs)``, whose batches together hold the ``expected`` columns::

        CASE = source_case(NpzSource, "data.npz", expected={"x": x, "y": y}, batch_size=7)
    """
    return SourceCase(
        lambda: source(*args, batch_size=batch_size, **kwargs),
        expected,
        batch_size,
        name or str(getattr(source, "__name__", "source")),
    )


def selected_columns(
    values: np.ndarray,
    columns: list[str],
    exclude_cols: Iterable[str] = (),
    groups: Mapping[str, Iterable[str]] | None = None,
    index_col: str | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """What a source reading a table (``values``, one column per name of ``columns``) gives
    with this selection: each column not excluded, grouped or the index on its own, each
    group's columns stacked, and the index from the index column, else 0..n-1."""
    grouped = [c for cols in (groups or {}).values() for c in cols]
    skipped = {*exclude_cols, *grouped, index_col}
    arrays = {c: values[:, i] for i, c in enumerate(columns) if c not in skipped}
    for name, cols in (groups or {}).items():
        arrays[name] = values[:, [columns.index(c) for c in cols]]
    index = values[:, columns.index(index_col)] if index_col else np.arange(len(values))
    return arrays, index
