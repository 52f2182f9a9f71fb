"""Turning a graph into steps (planning) and running the steps (executors)."""

from megatron.execution.executor import Executor
from megatron.execution.local import LocalExecutor
from megatron.execution.plan import Plan, Step, compile_plan, stateful_stages

__all__ = ["Executor", "LocalExecutor", "Plan", "Step", "compile_plan", "stateful_stages"]
