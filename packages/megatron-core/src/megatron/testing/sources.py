"""The batch-source conformance suite: what every source of batches must do."""

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


def source_checks() -> list[Callable[[SourceCase], None]]:
    """Every source check, for ``pytest.mark.parametrize``."""
    return [check_batches_hold_the_data, check_batch_sizes, check_re_iterable, check_distinct_index]
