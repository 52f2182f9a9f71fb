"""Progress bars for batch-by-batch operations (tqdm, an optional dependency)."""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

_requested: contextvars.ContextVar[bool | None] = contextvars.ContextVar("megatron_progress", default=None)


def enabled(requested: bool | None = None) -> bool:
    """Whether to show progress: as ``requested``, else as the running pipeline operation was
    asked, else when stderr is a terminal and ``MEGATRON_PROGRESS`` is not ``0``. Layers with
    progress output of their own (Keras) follow this switch."""
    if requested is None:
        requested = _requested.get()
    if requested is not None:
        return requested
    return os.environ.get("MEGATRON_PROGRESS", "1") != "0" and sys.stderr.isatty()


@contextlib.contextmanager
def progress_scope(requested: bool | None) -> Iterator[None]:
    """Within the block, :func:`enabled` answers ``requested`` (when not None)."""
    token = _requested.set(requested if requested is not None else _requested.get())
    try:
        yield
    finally:
        _requested.reset(token)


def progress(
    iterable: Iterable[Any], *, total: int | None, description: str, requested: bool | None
) -> Iterator[Any]:
    """``iterable``, with a progress bar when enabled and tqdm is installed."""
    if not enabled(requested):
        return iter(iterable)
    try:
        from tqdm.auto import tqdm
    except ImportError:
        if requested:
            from megatron.dependencies import install_command

            warnings.warn(
                f"Progress bars need tqdm, which is not installed: {install_command('megatron-core[progress]')}",
                stacklevel=3,
            )
        return iter(iterable)
    return iter(tqdm(iterable, total=total, desc=description, unit="batch", leave=False))


def batch_count(batches: Any, steps: int | None) -> int | None:
    """Batches in one pass, where known."""
    if steps is not None:
        return steps
    try:
        return len(batches)
    except TypeError:
        return None
