"""What a node holds for each observation: its shape and dtype, where known."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs
import numpy as np

Shape = tuple[int | None, ...]


def _to_shape(value: Iterable[int | None] | int | None) -> Shape | None:
    if value is None:
        return None
    if isinstance(value, (int, np.integer)):
        return (int(value),)
    return tuple(None if d is None else int(d) for d in value)


def _to_dtype(value: Any) -> np.dtype | None:
    return None if value is None else np.dtype(value)


@attrs.frozen
class Spec:
    """The per-observation shape and the dtype of a node's values.

    ``shape`` excludes the observation axis; ``None`` stands for an unknown shape, and a
    ``None`` entry for an unknown length along that axis. ``dtype`` is ``None`` when unknown.
    """

    shape: Shape | None = attrs.field(default=None, converter=_to_shape)
    dtype: np.dtype | None = attrs.field(default=None, converter=_to_dtype)

    @classmethod
    def of(cls, array: np.ndarray) -> Spec:
        """The spec of a batch ``array`` (first axis = observations)."""
        return cls(array.shape[1:], array.dtype)

    def accepts_shape(self, shape: tuple[int, ...]) -> bool:
        """Whether a per-observation ``shape`` fits this spec."""
        if self.shape is None:
            return True
        return len(shape) == len(self.shape) and all(
            want is None or want == got for want, got in zip(self.shape, shape, strict=True)
        )

    def compatible(self, other: Spec) -> bool:
        """Whether values of ``other`` may be where values of this spec are expected."""
        if self.shape is not None and other.shape is not None:
            if len(self.shape) != len(other.shape):
                return False
            if any(a is not None and b is not None and a != b for a, b in zip(self.shape, other.shape)):
                return False
        return True

    def __str__(self) -> str:
        shape = (
            "?"
            if self.shape is None
            else "("
            + ", ".join("?" if d is None else str(d) for d in self.shape)
            + ("," if len(self.shape) == 1 else "")
            + ")"
        )
        return f"{shape} {self.dtype if self.dtype is not None else '?'}"


UNKNOWN = Spec()
