"""Turning a graph into steps (planning) and running the steps (executors)."""

from megatron.execution.executor import Executor, resolve_executor
from megatron.execution.local import LocalExecutor
from megatron.execution.plan import Plan, Plans, Step, compile_plan
from megatron.execution.readiness import check_fitted, check_incremental
from megatron.execution.stages import StagedFit
from megatron.graph.topology import stateful_stages

__all__ = [
    "Executor",
    "LocalExecutor",
    "Plan",
    "Plans",
    "StagedFit",
    "Step",
    "check_fitted",
    "check_incremental",
    "compile_plan",
    "resolve_executor",
    "stateful_stages",
]
