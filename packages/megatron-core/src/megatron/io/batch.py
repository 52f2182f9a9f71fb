"""``Batch``: input arrays by name, with the observation index of their rows."""

from __future__ import annotations

from typing import Any

import numpy as np


class Batch(dict[str, np.ndarray]):
    """A dict of input name to array that also carries the rows' observation ``index``
    (``None`` for positions). Sources return batches; pipelines accept them anywhere they
    accept a dict, and use the index."""

    def __init__(self, arrays: dict[str, np.ndarray], index: Any = None) -> None:
        super().__init__(arrays)
        self.index = None if index is None else np.asarray(index)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k!r}: {v.dtype}{v.shape}" for k, v in self.items())
        return (
            f"Batch({{{shapes}}}, index={'positions' if self.index is None else f'{len(self.index)} keys'})"
        )
