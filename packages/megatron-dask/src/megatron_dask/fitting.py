"""Staged fit on dask, exact: ``megatron_dask.fit(pipeline, ddf)`` (``pipeline.fit(ddf)`` too).

Stage by stage, as ``Pipeline.fit_generator`` over the partitions as batches: tasks compute each
partition's stage inputs (the core's ``pipeline.stage_inputs``). A layer whose states merge
learns on a fresh copy per partition, and the states are tree-reduced with its
``merge_states``, ``split_every`` at a time, then installed with ``set_state``. A layer that
only learns incrementally folds on the caller's side, partition after partition in order (its
inputs computed at most ``prefetch`` ahead), exactly as ``fit_generator`` feeds it. A layer that
drives its own loop (Keras) gets ``fit_batches`` with a stream of its inputs. A layer that can
do none of these is refused before any task runs.
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import numpy as np

from megatron.arguments import positive_int
from megatron.errors import ConfigError, DataError, MegatronError, layer_failure
from megatron.execution import check_incremental
from megatron.progress import progress_scope
from megatron.suggest import did_you_mean
from megatron_dask.fit_partitions import fit_partitions
from megatron_dask.fit_scheduling import FitScheduler
from megatron_dask.fit_tasks import (
    Arguments,
    Learned,
    learned_by_copies,
    merged_groups,
    picked,
    rows_of,
    stage_inputs,
    together,
)
from megatron_dask.reduction import check_split_every

if TYPE_CHECKING:
    from dask.delayed import Delayed

    from megatron.layers.base import StatefulLayer
    from megatron.pipeline import Pipeline

logger = logging.getLogger("megatron")

ORDERS = ("partitions", "shuffled")
T = TypeVar("T")


def fit(
    pipeline: Pipeline,
    data: Any,
    *,
    split_every: int = 8,
    order: str = "partitions",
    prefetch: int | None = None,
    persist: bool = False,
    epochs: int = 1,
    seed: Any = None,
    progress: bool | None = None,
) -> Pipeline:
    """Fit ``pipeline`` on ``data`` (a dask DataFrame whose index is the observation index, or a
    mapping of input name to dask arrays) stage by stage on the current dask scheduler, and
    return it.

    Layers whose states merge learn one copy per partition, merged ``split_every`` at a time;
    layers that only have ``partial_fit`` fold over the partitions in ``order``
    (``"partitions"``, or ``"shuffled"`` anew each pass from ``seed``), with at most
    ``prefetch`` partitions' inputs computed ahead (default: twice the scheduler's threads);
    layers with a training loop of their own get ``fit_batches``. The result equals
    ``fit_generator`` over the partitions as batches: bit for bit for folds and exact merges,
    up to rounding for merged moments. ``epochs`` passes for iterative layers, as
    ``fit_generator`` gives them (merges are one pass). ``persist`` keeps ``data`` in the
    cluster's memory so that each stage does not read it again. Empty partitions are skipped.
    """
    options = FitOptions.checked(split_every, order, prefetch, epochs, seed)
    stages = pipeline.stages()
    layers = [layer for stage in stages for layer in stage]
    check_incremental(pipeline.name, pipeline.graph, layers, "fit() on a dask collection")
    found = fit_partitions(data, pipeline.name, bool(persist))
    pipeline.feeds(found.empty, "fit")  # inputs missing or of other shapes: refused here, as fit's
    parts = found.parts
    if not parts:
        raise DataError(f"Pipeline {pipeline.name!r}: the dask collection to fit on has no partitions.")
    scheduler = FitScheduler.current()
    run = FitRun(
        pipeline,
        parts,
        scheduler,
        options,
        ahead=options.prefetch or 2 * scheduler.workers(),
        rng=np.random.default_rng(options.seed),
        name=f"megatron-fit-{uuid.uuid4().hex[:12]}",
    )
    with progress_scope(progress):
        for k, stage in enumerate(stages):
            run.stage(k, stage, len(stages))
    return pipeline


@attrs.frozen
class FitOptions:
    """The options of a staged fit on dask, checked."""

    split_every: int
    order: str
    prefetch: int | None
    epochs: int
    seed: Any

    @classmethod
    def checked(cls, split_every: Any, order: Any, prefetch: Any, epochs: Any, seed: Any) -> FitOptions:
        split_every = check_split_every(split_every, "megatron_dask.fit")
        if order not in ORDERS:
            hint = did_you_mean(order, ORDERS) if isinstance(order, str) else ""
            raise ConfigError(f"megatron_dask.fit's order must be one of {ORDERS}; got {order!r}.{hint}")
        if seed is not None and order != "shuffled":
            raise ConfigError(
                f"megatron_dask.fit's seed shuffles the partitions, and order={order!r} does not shuffle "
                "them; pass order='shuffled' with it, or leave seed out."
            )
        positive_int(prefetch, "megatron_dask.fit's prefetch", allow_none=True)
        positive_int(epochs, "megatron_dask.fit's epochs")
        return cls(int(split_every), order, None if prefetch is None else int(prefetch), int(epochs), seed)


@attrs.define
class FitRun:
    """One staged fit: the partitions, where their tasks run, and the options."""

    pipeline: Pipeline
    parts: list[Delayed]
    scheduler: FitScheduler
    options: FitOptions
    ahead: int
    rng: np.random.Generator
    name: str
    passes: Iterator[int] = attrs.field(factory=itertools.count)

    def stage(self, k: int, stage: list[StatefulLayer], n_stages: int) -> None:
        """Fit the layers of stage ``k``: merges and folds together, then each layer that
        drives its own training loop."""
        start = time.perf_counter()
        epochs = self.options.epochs
        driving = [i for i, layer in enumerate(stage) if layer.drives_its_own_loop()]
        merging = [
            i
            for i, layer in enumerate(stage)
            if i not in driving and layer.supports_merge() and not (layer.iterative and epochs > 1)
        ]
        folding = [i for i in range(len(stage)) if i not in driving and i not in merging]
        for i in merging + folding:  # as fit_generator: the tasks' copies start from the reset layers
            stage[i].reset()
        shipped = self.scheduler.ship(self.pipeline)
        if folding:
            leaves = self._fold(k, stage, shipped, merging, folding)
            learned = reduce_tree(
                leaves,
                lambda _level, _n, group: merged_groups(self.pipeline, k, merging, group),
                self.options.split_every,
            )
        elif merging:
            learned = self.scheduler.compute(self._merge_graph(k, shipped, merging))
        for i, (rows, state) in zip(merging, learned if merging else []):
            if rows == 0 or state is None:
                raise self._no_rows(stage[i])
            stage[i].set_state(state)
        for i in driving:
            self._drive(k, stage[i], i, shipped)
        logger.info(
            "pipeline %r: fit stage %d/%d (%s) on %d dask partitions in %.3f s",
            self.pipeline.name,
            k + 1,
            n_stages,
            ", ".join(layer.name for layer in stage),
            len(self.parts),
            time.perf_counter() - start,
        )

    # -- the tasks ---------------------------------------------------------------------------
    def _inputs(self, k: int, shipped: Any) -> tuple[str, list[Delayed]]:
        """A new pass's tasks computing the stage inputs of every partition, and their key prefix."""
        import dask

        prefix = f"{self.name}-stage{k}-pass{next(self.passes)}"
        return prefix, [
            dask.delayed(stage_inputs)(shipped, k, part, dask_key_name=f"{prefix}-inputs-{p}")
            for p, part in enumerate(self.parts)
        ]

    def _merge_graph(self, k: int, shipped: Any, merging: list[int]) -> Delayed:
        """One task per partition fitting fresh copies, then the tree of merges."""
        import dask

        prefix, inputs = self._inputs(k, shipped)
        leaves = [
            dask.delayed(learned_by_copies)(shipped, k, merging, part, dask_key_name=f"{prefix}-learn-{p}")
            for p, part in enumerate(inputs)
        ]

        def combine(level: int, n: int, group: list[Delayed]) -> Delayed:
            key = f"{prefix}-merge-{level}-{n}"
            return dask.delayed(merged_groups)(shipped, k, merging, group, dask_key_name=key)

        return reduce_tree(leaves, combine, self.options.split_every)

    def _order(self) -> list[int]:
        """The partitions in the order of one pass of a fold or a training loop."""
        if self.options.order == "shuffled":
            return [int(p) for p in self.rng.permutation(len(self.parts))]
        return list(range(len(self.parts)))

    # -- folds -------------------------------------------------------------------------------
    def _fold(
        self, k: int, stage: list[StatefulLayer], shipped: Any, merging: list[int], folding: list[int]
    ) -> list[list[Learned]]:
        """``partial_fit`` of the caller's folding layers, partition after partition, one pass
        (``epochs`` for iterative ones, as fit_generator); the first pass also brings back what
        copies of the merging layers learned from each partition, in partition order."""
        import dask

        graph = self.pipeline.graph
        calls = [graph.calls_of(stage[i])[0] for i in folding]
        iterative = [j for j, i in enumerate(folding) if stage[i].iterative]
        leaves: list[list[Learned]] = [[(0, None)] * len(merging) for _ in self.parts]
        rows = [0] * len(folding)
        for epoch in range(self.options.epochs if iterative else 1):
            fitting = list(range(len(folding))) if epoch == 0 else iterative
            prefix, inputs = self._inputs(k, shipped)
            order = self._order()
            tasks = []
            for p in order:
                pick = dask.delayed(picked)(
                    inputs[p], [folding[j] for j in fitting], dask_key_name=f"{prefix}-pick-{p}"
                )
                leaf = (
                    dask.delayed(learned_by_copies)(
                        shipped, k, merging, inputs[p], dask_key_name=f"{prefix}-learn-{p}"
                    )
                    if merging and epoch == 0
                    else None
                )
                tasks.append(dask.delayed(together)(leaf, pick, dask_key_name=f"{prefix}-part-{p}"))
            for p, (leaf, arguments) in zip(order, self.scheduler.in_order(tasks, self.ahead)):
                if leaf is not None:
                    leaves[p] = leaf
                for j, args in zip(fitting, arguments):
                    if rows_of(args):
                        calls[j].run("partial_fit", args)
                        rows[j] += rows_of(args)
        for j, i in enumerate(folding):
            if rows[j] == 0:
                raise self._no_rows(stage[i])
        return leaves

    def _drive(self, k: int, layer: StatefulLayer, i: int, shipped: Any) -> None:
        """Hand a layer that runs its own training loop (Keras) a stream of its inputs, one
        pass per call, as fit_generator does (``epochs`` when it is iterative)."""
        import dask

        def one_pass() -> Iterator[Arguments]:
            prefix, inputs = self._inputs(k, shipped)
            tasks = [
                dask.delayed(picked)(inputs[p], [i], dask_key_name=f"{prefix}-pick-{p}")
                for p in self._order()
            ]
            for (arguments,) in self.scheduler.in_order(tasks, self.ahead):
                if rows_of(arguments):
                    yield arguments

        try:
            layer.fit_batches(one_pass, self.options.epochs if layer.iterative else 1, None)
        except MegatronError:
            raise
        except Exception as exc:
            raise layer_failure(self.pipeline.graph.describe(layer), "fit_batches", [], exc) from exc
        layer.fitted = True

    def _no_rows(self, layer: StatefulLayer) -> DataError:
        return DataError(
            f"Pipeline {self.pipeline.name!r}: {self.pipeline.graph.describe(layer)} had no rows to learn "
            f"from in any of the {len(self.parts)} partitions."
        )


def reduce_tree(items: Sequence[T], combine: Callable[[int, int, list[T]], T], split_every: int) -> T:
    """``items`` combined ``split_every`` consecutive ones at a time, level after level, into
    one: ``combine(level, n, group)`` makes the ``n``-th result of ``level``. The order of the
    items is kept, so a merge in partition order gives the same result wherever it runs."""
    level, items = 0, list(items)
    while len(items) > 1:
        items = [
            combine(level, n, items[start : start + split_every])
            for n, start in enumerate(range(0, len(items), split_every))
        ]
        level += 1
    return items[0]
