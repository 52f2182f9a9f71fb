"""scipy.sparse values in a pipeline: they flow between layers that take them (``Sklearn``
estimators, ``CountVectorize(sparse=True)``, ``Filter``) as they are, never densified; a
pipeline's outputs, which ``Outputs`` and storage hold by row, must be dense arrays."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from megatron.errors import GraphError


def is_sparse(value: Any) -> bool:
    """Whether ``value`` is a scipy.sparse matrix or array (without importing scipy)."""
    return type(value).__module__.startswith("scipy.sparse")


def dense_outputs(pipeline: str, names: Sequence[str], values: list[Any]) -> list[Any]:
    """``values``, refusing a sparse one among the first ``len(names)`` (the outputs) with an
    error saying to densify it, instead of an array of one object."""
    for name, value in zip(names, values):
        if type(value) is not np.ndarray and is_sparse(value):
            raise GraphError(
                f"Pipeline {pipeline!r}: output {name!r} is a scipy.sparse {type(value).__name__} of shape "
                f"{value.shape}; outputs and storage hold dense arrays. Output a dense node instead: a "
                "model's predictions, CountVectorize(sparse=False), or the matrix made dense "
                "(megatron.layers.Lambda(lambda m: m.toarray())), which a wide vocabulary may not fit in memory."
            )
    return values


def take_rows(value: Any, rows: np.ndarray) -> Any:
    """The ``rows`` (positions) of an array of observations, numpy or scipy.sparse: a sparse
    format without row indexing (COO, DIA) is read as CSR first."""
    if type(value) is not np.ndarray and is_sparse(value) and value.format not in ("csr", "csc", "lil"):
        value = value.tocsr()
    return value[rows]
