"""Where a staged fit's tasks run: on the caller's dask ``Client`` when dask's scheduler is one,
else on dask's local scheduler (threads, or ``scheduler='sync'``). It ships the pipeline to the
tasks, computes them all at once, or streams their results in order with a bounded look-ahead."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Sequence
from itertools import islice
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from dask.delayed import Delayed

    from megatron.pipeline import Pipeline


@attrs.frozen
class FitScheduler:
    """The dask scheduler in force when a fit starts: a distributed ``client``, or None for
    dask's local schedulers."""

    client: Any

    @classmethod
    def current(cls) -> FitScheduler:
        """The scheduler dask would use now (``dask.config.set(scheduler=...)`` wins over a
        default client, as in ``dask.compute``)."""
        from dask.base import get_scheduler

        scheduler = get_scheduler()
        owner = getattr(scheduler, "__self__", None)
        try:
            from distributed import Client
        except ImportError:  # pragma: no cover - distributed is a dependency
            return cls(None)
        return cls(owner if isinstance(owner, Client) else None)

    def workers(self) -> int:
        """How many tasks run at once: the cluster's threads, or the local scheduler's."""
        if self.client is not None:
            workers = self.client.scheduler_info().get("workers", {})
            return max(1, sum(int(worker.get("nthreads", 1)) for worker in workers.values()))
        import dask

        if dask.config.get("scheduler", None) in ("sync", "synchronous", "single-threaded"):
            return 1
        return int(dask.config.get("num_workers", None) or os.cpu_count() or 1)

    def ship(self, pipeline: Pipeline) -> Any:
        """What the tasks get as the pipeline: on a cluster, one copy sent to every worker now
        (so a layer the caller changes later, in a fold, is not sent half-changed); locally,
        the pipeline itself (tasks read it and never change it)."""
        if self.client is not None:
            return self.client.scatter(pipeline, broadcast=True, hash=False)
        return pipeline

    def compute(self, task: Delayed) -> Any:
        """The result of one task, with everything it depends on computed in parallel."""
        if self.client is not None:
            return self.client.compute(task).result()
        import dask

        return dask.compute(task)[0]

    def in_order(self, tasks: Sequence[Delayed], ahead: int) -> Iterator[Any]:
        """The results of ``tasks`` in their order, at most ``ahead`` of them computed or being
        computed before the caller takes them: on a cluster, later ones run while the caller
        works on earlier ones; locally, ``ahead`` at a time."""
        if self.client is None:
            import dask

            for start in range(0, len(tasks), ahead):
                yield from dask.compute(*tasks[start : start + ahead])
            return
        pending = iter(tasks)
        futures = deque(self.client.compute(task) for task in islice(pending, ahead))
        while futures:
            future = futures.popleft()
            futures.extend(self.client.compute(task) for task in islice(pending, 1))
            yield future.result()
