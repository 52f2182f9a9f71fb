"""The executor interface: how a compiled plan is run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

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
