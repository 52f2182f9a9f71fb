"""Streams of batches: checking that a stream was given, drawing a number of batches per pass,
and saying why when a source runs dry during ``fit_generator``'s passes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from megatron.errors import DataError
from megatron.io.columnar import is_table
from megatron.io.feeds import Data, describe_data
from megatron.progress import batch_count, progress

if TYPE_CHECKING:
    from megatron.layers.base import StatefulLayer


def check_stream(pipeline: str, batches: Any, operation: str) -> None:
    """A DataError for a single dataset (or anything else not iterable) given as a stream."""
    single = (
        isinstance(batches, Mapping | np.ndarray | str | bytes)
        or (hasattr(batches, "columns") and hasattr(batches, "iloc"))
        or is_table(batches)
    )
    if single or not isinstance(batches, Iterable):
        whole = operation.removesuffix("_generator")
        raise DataError(
            f"Pipeline {pipeline!r}.{operation}() takes an iterable of batches (a list of mappings "
            f"of input name to array, a megatron batch source); got {describe_data(batches)}. For one "
            f"dataset, use {whole}(data) or pass [data]."
        )


def numbered(
    batches: Iterable[Data],
    steps: int | None,
    description: str,
    show: bool | None,
    pipeline: str,
    passes: Passes | None = None,
) -> Iterator[tuple[int, Data]]:
    """One pass of numbered batches (``steps`` of them, all when None), with a progress bar
    where enabled."""
    total = batch_count(batches, steps)
    return enumerate(
        progress(take(batches, steps, pipeline, passes), total=total, description=description, requested=show)
    )


def take(
    batches: Iterable[Data], steps: int | None, pipeline: str, passes: Passes | None = None
) -> Iterator[Data]:
    """One pass: ``steps`` batches from ``batches`` (all of them when None)."""
    iterator = iter(batches)
    if steps is None:
        yield from iterator
        return
    for drawn in range(steps):
        try:
            yield next(iterator)
        except StopIteration:
            if passes is not None:
                raise DataError(passes.ran_out(drawn, steps)) from None
            raise DataError(
                f"Pipeline {pipeline!r}: the batch source ran out after {drawn} batches; "
                f"{steps} were asked for per pass."
            ) from None


class Passes:
    """The passes ``fit_generator`` makes over its batches, to say why when a source runs dry."""

    def __init__(
        self, pipeline: str, stages: Sequence[Sequence[StatefulLayer]], epochs: int, one_shot: bool
    ) -> None:
        self.pipeline = pipeline
        self.n_stages = len(stages)
        self.epochs = epochs
        self.iterative_stages = sum(1 for stage in stages if any(layer.iterative for layer in stage))
        self.total = sum(
            (epochs if any(layer.iterative for layer in plain) else 1 if plain else 0)
            + sum(epochs if layer.iterative else 1 for layer in stage if layer.drives_its_own_loop())
            for stage in stages
            for plain in [[layer for layer in stage if not layer.drives_its_own_loop()]]
        )
        self.one_shot = one_shot
        self.done = 0

    def why(self) -> str:
        stages = f"{self.n_stages} stage{'s' if self.n_stages != 1 else ''} of stateful layers"
        if not self.iterative_stages or self.epochs == 1:
            return f"{stages}, one pass each"
        return f"{stages}; {self.epochs} epochs for the {self.iterative_stages} with an iterative layer"

    def finished(self, drawn: int) -> None:
        """A pass ended after ``drawn`` batches: none at all is an error saying why."""
        if drawn == 0:
            raise DataError(self.ran_out(0, None))
        self.done += 1

    def ran_out(self, drawn: int, steps: int | None) -> str:
        asked = f"; {steps} were asked for per pass" if steps is not None else ""
        message = (
            f"Pipeline {self.pipeline!r}.fit_generator(): the batch source ran out after {drawn} "
            f"batches{asked}, in pass {self.done + 1} of {self.total} ({self.why()})."
        )
        if self.one_shot:
            needed = f"{steps * self.total} batches in all" if steps is not None else "a new pass each time"
            return (
                f"{message} It is a one-shot iterator, which the passes draw from in turn, so it must "
                f"give {needed}: pass a list or a megatron source, which is read afresh for each pass."
            )
        if drawn == 0:
            return (
                f"{message} Each pass reads the data again: the source must give batches every time "
                "it is iterated (not an exhausted generator, not an empty table)."
            )
        return message
