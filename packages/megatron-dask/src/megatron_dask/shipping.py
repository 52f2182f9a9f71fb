"""The pipeline as dask tasks receive it: checked on the client before any task runs (its
storage must take writes from other processes), and checked on the worker (it must compute
what the client's does, so that the rows it stores are the client's cache hits)."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from megatron.errors import GraphError, StorageError

if TYPE_CHECKING:
    from megatron.pipeline import Pipeline


class SerialWritesWarning(UserWarning):
    """Several dask worker processes write to a storage that takes one writer at a time."""


def shipped(pipeline: Pipeline, where: str) -> tuple[Any, str]:
    """``pipeline`` as one dask object that every task of a graph shares (sent to each worker
    once), and the fingerprint its copies must compute. Refuses a storage whose copies in other
    processes would lose their writes, and windowed layers, before any task runs."""
    from dask import delayed

    windowed = [layer.name for layer in pipeline.layers if layer.stream_stateful]
    if windowed:
        raise GraphError(
            f"{where}: the outputs of layers {windowed} depend on neighbouring rows (windows), which "
            "a dask partition does not hold across its edges; transform such a pipeline locally, or "
            "with transform_generator over batches that overlap by the layers' context_rows."
        )
    storage = pipeline.storage
    if storage is not None:
        if not storage.shared:
            raise StorageError(
                f"{where}: the storage {storage!r} does not share writes across processes "
                "(Storage.shared is False): rows that dask tasks write in their copies of it would be "
                "lost. Open the storage from a URL of a database every worker reaches (a SQLite file "
                "on one machine, PostgreSQL for several), or transform without storage."
            )
        if storage.serial_writes and _worker_processes() > 1:
            warnings.warn(
                f"{where}: the storage {storage!r} takes one writer at a time and lives on one "
                "machine's disk, so its writers wait for one another: more worker processes add no "
                "speed to writing (use PostgreSQL for several workers or machines).",
                SerialWritesWarning,
                stacklevel=3,
            )
    return delayed(pipeline, pure=False), pipeline.fingerprint


def checked(pipeline: Pipeline, fingerprint: str) -> Pipeline:
    """``pipeline`` (a copy on a worker) if it computes what the client's computes: rows it
    stores under another fingerprint would never be the client's cache hits. Checked where the
    pipeline stores (its fingerprint is computed once per copy)."""
    if pipeline.storage is not None and pipeline.fingerprint != fingerprint:
        raise StorageError(
            f"Pipeline {pipeline.name!r} on a dask worker has fingerprint {pipeline.fingerprint[:12]}..., "
            f"not the client's {fingerprint[:12]}...: the worker computes something else (a function "
            "imported from another version of a module, a library of another version), so its rows "
            "would not be the client's. Install the same code and libraries on the workers."
        )
    return pipeline


def _worker_processes() -> int:
    """The worker processes of the caller's dask client, or 1 without one (dask's default
    schedulers run in this process, except the 'processes' one, counted as several)."""
    try:
        from distributed import get_client

        client = get_client()
    except (ImportError, ValueError):
        import dask

        return 2 if dask.config.get("scheduler", None) in ("processes", "multiprocessing") else 1
    return len(client.scheduler_info().get("workers", {}))
