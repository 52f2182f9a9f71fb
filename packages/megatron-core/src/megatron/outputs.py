"""``Outputs``: what ``transform`` and ``storage.read`` return."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from megatron.errors import ConfigError, UnknownOutputError


class Outputs(Mapping[str, np.ndarray]):
    """Output name to array, in the pipeline's output order, with the observation index.

    Works as a mapping (``outputs['preds']``) and by position (``outputs[0]``).
    """

    __slots__ = ("_arrays", "_features", "_given_index", "_index", "_names", "_table")

    def __init__(
        self,
        names: Sequence[str],
        arrays: Sequence[np.ndarray],
        index: Any = None,
        features: Callable[[], Mapping[str, list[str] | None]] | Mapping[str, list[str] | None] | None = None,
    ) -> None:
        self._names = names = names if type(names) is tuple else tuple(names)
        # one output, the common case, without dict(zip()), which costs more than the rest here
        self._arrays = (
            {names[0]: arrays[0]} if len(names) == 1 and len(arrays) == 1 else dict(zip(names, arrays))
        )
        self._given_index = index
        self._index: np.ndarray | None = index if type(index) is np.ndarray else None
        self._table: np.ndarray | None = None
        self._features = features  # the pipeline's names by node, asked for only by feature_names()

    @classmethod
    def from_table(cls, names: Sequence[str], table: np.ndarray, index: Any = None) -> Outputs:
        """Outputs whose arrays are the columns of the 2-D array ``table``, one per name (views
        made when first asked for: reading many scalar outputs costs no array per output)."""
        outputs = cls((), (), index)
        outputs._names = tuple(names)
        outputs._table = table
        return outputs

    @property
    def index(self) -> np.ndarray:
        """The observation index of the rows (0..n-1 unless an index was given)."""
        if self._index is None:
            given = self._given_index
            if given is None:
                self._index = np.arange(len(self[0]) if self._names else 0)
            else:  # a list of keys, turned into an array only when someone asks
                self._index = np.asarray(given)
        return self._index

    @property
    def given_index(self) -> Any:
        """The index as it was given (a list of keys stays that list, whose Python ints numpy
        would turn into floats beyond int64), or :attr:`index` where none was given. Storage
        checks these keys, so that a write refuses exactly the keys it was given."""
        return self.index if self._given_index is None else self._given_index

    def select(self, names: Sequence[str]) -> Outputs:
        """These outputs, only those named, in the order named (the same arrays and index)."""
        return Outputs(tuple(names), [self[name] for name in names], self._given_index, self._features)

    def feature_names(self) -> dict[str, list[str] | None]:
        """The names of each output's last axis, where the pipeline that computed them knows
        them (:meth:`megatron.Pipeline.feature_names`); None otherwise (outputs read from storage).
        ``to_frame`` names an output's columns by them."""
        features = self._features
        known = features() if callable(features) else features or {}
        return {name: _listed(known.get(name)) for name in self._names}

    def __getstate__(self) -> tuple[None, dict[str, Any]]:
        # the names travel as names, not as the pipeline that knows them
        state = {slot: getattr(self, slot) for slot in self.__slots__ if slot != "_features"}
        state["_features"] = self.feature_names() if self._features is not None else None
        return None, state

    def __getitem__(self, key: str | int) -> np.ndarray:
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            try:
                key = self._names[key]
            except IndexError:
                raise UnknownOutputError(
                    f"Output position {key} is out of range: there are {len(self._names)} outputs "
                    f"{list(self._names)}."
                ) from None
        try:
            return self._arrays[key]
        except KeyError:
            if self._table is not None and key in self._names:
                array = self._arrays[key] = self._table[:, self._names.index(key)]
                return array
            raise UnknownOutputError(
                f"No output named {key!r}; the outputs are {list(self._names)}."
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{n!r}: {a.dtype}{a.shape}" for n, a in self.items())
        return f"Outputs({{{shapes}}})"

    def to_frame(self, backend: str = "pandas", index: str | None = "index") -> Any:
        """A DataFrame of the outputs; array outputs become one column per element, named by the
        output's feature names where known (:meth:`feature_names`), else ``name[i]``,
        ``name[i, j]``... With ``backend="pandas"`` (needs ``megatron-core[pandas]``) it is
        indexed by the observation index; with ``backend="polars"`` (``megatron-core[polars]``)
        the index is the first column, named ``index`` (``index=None`` leaves it out)."""
        from megatron import exporting

        if backend not in exporting.BACKENDS:
            raise ConfigError(
                f"Outputs.to_frame(): backend must be one of {list(exporting.BACKENDS)}; got {backend!r}."
            )
        columns = exporting.output_columns(self.items(), "Outputs.to_frame()", self.feature_names())
        if backend == "polars":
            return exporting.polars_frame(columns, self.index, index)
        return exporting.pandas_frame(columns, self.index)

    def to_arrow(self, index: str | None = "index") -> Any:
        """An Arrow table of the outputs, columns as :meth:`to_frame` makes them, the index first
        as column ``index`` (``index=None`` leaves it out). Needs ``megatron-core[parquet]``."""
        from megatron import exporting

        columns = exporting.output_columns(self.items(), "Outputs.to_arrow()", self.feature_names())
        return exporting.arrow_table(columns, self.index, index)


def _listed(names: list[str] | None) -> list[str] | None:
    return None if names is None else list(names)
