"""The thread executor: runs the steps of one plan that do not depend on each other at once.

A step waits for the steps that write the slots it reads (and, for a layer being fitted, its
fit step); everything else may run at the same time, on a thread pool. Numpy, and most
libraries that do heavy work, release the GIL while they compute, so independent branches of
one batch then share the cores. Data parallelism (many batches at once) is not an executor's
job: see the megatron-dask plugin.
"""

from __future__ import annotations

import contextvars
import heapq
import os
import threading
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs
import numpy as np

from megatron.arguments import positive_int
from megatron.execution.local import LocalExecutor, run_step
from megatron.execution.plan import Plan, Step


@attrs.frozen
class Schedule:
    """What runs after what in one plan, derived from its slots once and kept."""

    dependents: tuple[tuple[int, ...], ...]
    """For each step, the steps waiting for it."""
    waits: tuple[int, ...]
    """For each step, how many steps it waits for."""
    touches: tuple[tuple[int, ...], ...]
    """For each step, the slots it reads or writes that the plan frees."""
    users: tuple[int, ...]
    """For each slot, how many steps touch it: it is freed when the last of them finishes."""
    chain: bool
    """Whether no two steps are ever ready together (the steps then run in plan order)."""

    @classmethod
    def of(cls, plan: Plan) -> Schedule:
        """The schedule of ``plan``."""
        depends = dependencies(plan.steps)
        dependents: list[list[int]] = [[] for _ in plan.steps]
        for i, before in enumerate(depends):
            for j in before:
                dependents[j].append(i)
        freed = {slot for step in plan.steps for slot in step.frees}
        touches = [tuple({s: None for s in step.inputs + step.outputs if s in freed}) for step in plan.steps]
        users = [0] * plan.n_slots
        for slots in touches:
            for s in slots:
                users[s] += 1
        waits = tuple(len(before) for before in depends)
        return cls(
            tuple(map(tuple, dependents)), waits, tuple(touches), tuple(users), _is_chain(waits, dependents)
        )


def dependencies(steps: Sequence[Step]) -> list[set[int]]:
    """For each step, the earlier steps it must follow: those writing the slots it reads (and
    any step reading or writing a slot before it writes it again), and, for a layer's steps, the
    step fitting that layer (a fit also follows every earlier step of its layer)."""
    writer: dict[int, int] = {}
    readers: dict[int, list[int]] = {}
    fitted_by: dict[int, int] = {}
    layer_steps: dict[int, list[int]] = {}
    depends: list[set[int]] = []
    for i, step in enumerate(steps):
        before = {writer[s] for s in step.inputs if s in writer}
        for s in step.outputs:
            before.update(readers.get(s, ()))
            if s in writer:
                before.add(writer[s])
        layer = id(step.call.layer)
        if layer in fitted_by:
            before.add(fitted_by[layer])
        if step.mode != "transform":
            before.update(layer_steps.get(layer, ()))
            fitted_by[layer] = i
            layer_steps[layer] = []
        layer_steps.setdefault(layer, []).append(i)
        for s in step.inputs:
            readers.setdefault(s, []).append(i)
        for s in step.outputs:
            writer[s] = i
            readers[s] = []
        before.discard(i)
        depends.append(before)
    return depends


def _is_chain(waits: Sequence[int], dependents: Sequence[Sequence[int]]) -> bool:
    left = list(waits)
    ready = [i for i, n in enumerate(left) if n == 0]
    while ready:
        if len(ready) > 1:
            return False
        for j in dependents[ready.pop()]:
            left[j] -= 1
            if left[j] == 0:
                ready.append(j)
    return True


class ThreadExecutor:
    """Runs each step as soon as the steps it depends on have run: independent branches of a
    batch run at once, at most ``max_workers`` steps at a time (default: the number of CPUs),
    the calling thread being one of the workers. A plan that is a single chain runs in the
    calling thread, as the local executor runs it. Results, freed values and errors are those
    of the local executor; when several steps fail, the first of them in plan order is raised,
    and no step starts once a failure is seen."""

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers: int | None = positive_int(max_workers, "max_workers", allow_none=True)
        self.workers: int = max_workers or _usable_cpus()
        """How many steps may run at once (the calling thread and the pool's threads)."""
        self._schedules: dict[int, tuple[weakref.ref[Plan], Schedule]] = {}
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0
        self._local = LocalExecutor()

    def run(self, plan: Plan, feeds: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Run ``plan`` with ``feeds`` in the order of ``plan.inputs``; results in ``plan.results`` order."""
        schedule = self.schedule(plan)
        if schedule.chain or self.workers < 2:
            return self._local.run(plan, feeds)
        values: list[Any] = [None] * plan.n_slots
        for slot, array in zip(plan.input_slots, feeds):
            values[slot] = array
        _Run(plan.steps, schedule, values, self._get_pool(), self.workers - 1).drive()
        return [values[i] for i in plan.result_slots]

    def schedule(self, plan: Plan) -> Schedule:
        """The schedule of ``plan``, derived on its first run and kept while the plan lives."""
        key = id(plan)
        entry = self._schedules.get(key)
        if entry is not None and entry[0]() is plan:
            return entry[1]
        schedule = Schedule.of(plan)
        schedules = self._schedules

        def forget(ref: weakref.ref[Plan]) -> None:  # a dict's pop is atomic: no lock needed
            if (found := schedules.get(key)) is not None and found[0] is ref:
                schedules.pop(key, None)

        self._schedules[key] = (weakref.ref(plan, forget), schedule)
        return schedule

    def _get_pool(self) -> ThreadPoolExecutor:
        pool = self._pool
        if pool is None or self._pool_pid != os.getpid():  # created lazily, again after a fork
            with self._lock:
                if self._pool is None or self._pool_pid != os.getpid():
                    self._pool = ThreadPoolExecutor(self.workers - 1, thread_name_prefix="megatron-step")
                    self._pool_pid = os.getpid()
                pool = self._pool
        return pool

    def __getstate__(self) -> dict[str, Any]:
        return {"max_workers": self.max_workers}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["max_workers"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"ThreadExecutor(max_workers={self.max_workers!r})"


def _usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, where the system has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class _Run:
    """One run of a plan: its own values and counters. Any thread working on it takes the
    ready step first in plan order; the calling thread works too, and waits only for steps
    running elsewhere, never for a helper the pool has not started yet."""

    def __init__(
        self,
        steps: Sequence[Step],
        schedule: Schedule,
        values: list[Any],
        pool: ThreadPoolExecutor,
        most: int,
    ) -> None:
        self.steps, self.schedule, self.values = steps, schedule, values
        self.waits = list(schedule.waits)
        self.users = list(schedule.users)
        self.ready = [i for i, n in enumerate(self.waits) if n == 0]
        self.running = 0
        self.pending_helpers = 0
        self.errors: dict[int, BaseException] = {}
        self.condition = threading.Condition(threading.Lock())
        self.pool, self.most_helpers = pool, most

    def drive(self) -> None:
        """Work until every step has run or a step failed; raise the first failure in plan order."""
        with self.condition:
            wanted = self._helpers_wanted(spare=1)
        self._call_helpers(wanted)
        while True:
            self._work()
            with self.condition:
                while self.running and (self.errors or not self.ready):
                    self.condition.wait()
                if self.errors or not self.ready:
                    break
        if self.errors:
            raise self.errors[min(self.errors)]

    def _help(self) -> None:
        with self.condition:
            self.pending_helpers -= 1
        self._work()

    def _work(self) -> None:
        with self.condition:
            if self.errors or not self.ready:
                return
            i: int | None = heapq.heappop(self.ready)
            self.running += 1
        while i is not None:
            error = None
            try:
                run_step(self.steps[i], self.values)
            except BaseException as exc:  # raised in the calling thread once the others stop
                error = exc
            with self.condition:
                self.running -= 1
                if error is not None:
                    self.errors[i] = error
                else:
                    self._finished(i)
                i = None
                if self.ready and not self.errors:
                    i = heapq.heappop(self.ready)
                    self.running += 1
                wanted = self._helpers_wanted(spare=0)
                self.condition.notify()
            self._call_helpers(wanted)

    def _finished(self, i: int) -> None:
        """Free the slots whose last user ``i`` was and release the steps waiting for it."""
        values, users, waits = self.values, self.users, self.waits
        for slot in self.schedule.touches[i]:
            users[slot] -= 1
            if users[slot] == 0:
                values[slot] = None
        for j in self.schedule.dependents[i]:
            waits[j] -= 1
            if waits[j] == 0:
                heapq.heappush(self.ready, j)

    def _helpers_wanted(self, spare: int) -> int:
        """How many more helpers the ready steps need (``spare`` of them this thread takes)."""
        if self.errors:
            return 0
        wanted = min(len(self.ready) - spare, self.most_helpers) - self.pending_helpers
        if wanted > 0:
            self.pending_helpers += wanted
        return max(wanted, 0)

    def _call_helpers(self, count: int) -> None:
        for _ in range(count):
            try:  # each in a copy of the caller's context (progress switches are context variables)
                self.pool.submit(contextvars.copy_context().run, self._help)
            except RuntimeError:  # the interpreter is shutting down: this thread does the work
                with self.condition:
                    self.pending_helpers -= 1
