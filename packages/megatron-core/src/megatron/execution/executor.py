"""The executor interface: how a compiled plan is run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from megatron.errors import ConfigError
from megatron.execution.local import LocalExecutor
from megatron.execution.plan import Plan


@runtime_checkable
class Executor(Protocol):
    """Runs a :class:`Plan` on one batch of input arrays and returns its result arrays.

    Executors are registered by name through the ``register_executors`` hook; the local
    executor runs the steps in order in the calling thread.
    """

    def run(self, plan: Plan, feeds: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Run ``plan`` with ``feeds`` in the order of ``plan.inputs``; results in ``plan.results`` order."""
        ...


def resolve_executor(executor: Executor | str | None) -> Executor:
    """``executor`` itself, the executor registered under that name (a class is instantiated),
    or the local executor for None."""
    if executor is None:
        return LocalExecutor()
    found: Any = executor
    if isinstance(executor, str):
        from megatron.plugins import get_registry

        found = get_registry().get("executor", executor)
        if isinstance(found, type):
            found = found()
    if not isinstance(found, Executor):
        raise ConfigError(f"Expected an executor with run(plan, feeds); got {found!r}.")
    return found
