"""The pipeline as dask tasks receive it: a parcel of bytes made on the client, opened once per
worker process. Checked on the client before any task runs (its storage must take writes from
other processes) and on the worker (it must compute what the client's does, so that the rows
it stores are the client's cache hits).

The parcel is made with cloudpickle, as dask sends functions: megatron's classes and functions
of installed modules travel by reference (the workers import them), functions of a script or a
notebook (``__main__``) by value. Opening it in a task, rather than letting dask unpickle the
pipeline as a task argument, turns a module the worker cannot import into that task's error,
raised on the client, instead of a worker that fails to read its instructions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import warnings
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from megatron.errors import ConfigError, GraphError, StorageError

if TYPE_CHECKING:
    from megatron.pipeline import Pipeline

KEPT = 4
"""How many pipelines a worker process keeps opened (the most recently used)."""


class SerialWritesWarning(UserWarning):
    """Several dask worker processes write to a storage that takes one writer at a time."""


@dataclasses.dataclass(frozen=True)
class Parcel:
    """A pipeline as bytes, with what its copies must compute."""

    name: str
    payload: bytes
    token: str
    """A digest of ``payload``: a worker opens each parcel once."""
    fingerprint: str | None
    """The client's fingerprint, checked on the worker where the pipeline stores (else None)."""


def parcel(pipeline: Pipeline, fingerprint: str | None = None) -> Any:
    """``pipeline`` as it is now, as one dask object that every task of a graph shares (sent to
    each worker once); open it in a task with :func:`opened`."""
    import cloudpickle
    from dask import delayed

    payload = cloudpickle.dumps(pipeline)
    token = hashlib.sha256(payload).hexdigest()
    packed = Parcel(pipeline.name, payload, token, fingerprint)
    return delayed(packed, name=f"megatron-pipeline-{pipeline.name}-{token[:16]}")


def shipped(pipeline: Pipeline, where: str) -> Any:
    """:func:`parcel` for a transform, which stores with storage: refuses a storage whose copies
    in other processes would lose their writes, and windowed layers, before any task runs."""
    windowed = [layer.name for layer in pipeline.layers if layer.stream_stateful]
    if windowed:
        raise GraphError(
            f"{where}: the outputs of layers {windowed} depend on neighbouring rows (windows), which "
            "a dask partition does not hold across its edges; transform such a pipeline locally, or "
            "with transform_generator over batches that overlap by the layers' context_rows."
        )
    storage = pipeline.storage
    if storage is None:
        return parcel(pipeline)
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
    return parcel(pipeline, pipeline.fingerprint)


_opened: OrderedDict[str, Pipeline] = OrderedDict()
_lock = threading.Lock()


def opened(packed: Parcel) -> Pipeline:
    """The pipeline of ``packed``, opened once per process (run by dask tasks)."""
    with _lock:
        pipeline = _opened.get(packed.token)
        if pipeline is None:
            pipeline = checked(_unpacked(packed), packed.fingerprint)
            _opened[packed.token] = pipeline
            while len(_opened) > KEPT:
                _, dropped = _opened.popitem(last=False)
                if dropped.storage is not None:  # its connections, which the client cannot close
                    dropped.storage.close()
        _opened.move_to_end(packed.token)
        return pipeline


def _unpacked(packed: Parcel) -> Pipeline:
    import cloudpickle

    try:
        pipeline: Pipeline = cloudpickle.loads(packed.payload)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"Pipeline {packed.name!r} cannot be rebuilt on a dask worker: {type(exc).__name__}: {exc}. "
            "Functions and classes of your own modules travel by name: install those modules on the "
            "workers, or define the functions in the script or notebook that runs the pipeline, whose "
            "functions travel whole."
        ) from exc
    return pipeline


def checked(pipeline: Pipeline, fingerprint: str | None) -> Pipeline:
    """``pipeline`` (a copy on a worker) if it computes what the client's computes (when
    ``fingerprint`` is given: rows stored under another fingerprint would never be the
    client's cache hits)."""
    if fingerprint is not None and pipeline.fingerprint != fingerprint:
        raise StorageError(
            f"Pipeline {pipeline.name!r} on a dask worker has fingerprint {pipeline.fingerprint[:12]}..., "
            f"not the client's {fingerprint[:12]}...: the worker computes something else (a function "
            "imported from another version of a module, a library of another version), or the pipeline "
            "reads an object the fingerprint knows only by its identity in one process (a random "
            "Generator, an object whose state lives in C: see the storage guide), so its rows would not "
            "be the client's. Install the same code and libraries on the workers, or transform that "
            "pipeline without storage."
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
