"""Measuring ours against a baseline in the same run: interleaved repeats, medians, ratios.

Every measurement runs with the BLAS and OpenMP thread pools capped (:data:`BLAS_THREADS`,
one by default; ``MEGATRON_BENCH_THREADS`` or ``run.py --blas-threads`` change it), in this
process through threadpoolctl and in child processes through the usual environment variables,
so that a matrix product does not spread over cores that other jobs hold and come out several
times slower on a loaded machine. Beside the wall clock, :func:`interleaved` records the CPU
time of each call (this process's threads and the child processes it waited for), which other
jobs on the machine disturb far less.
"""

from __future__ import annotations

import os
import resource
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import attrs

BLAS_THREADS = int(os.environ.get("MEGATRON_BENCH_THREADS", "1"))
"""The thread cap of BLAS and OpenMP pools during measurements."""

_POOL_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def cap_threads(threads: int) -> None:
    """Cap the thread pools of child processes started from now on (and of this process's pools,
    at each measurement) to ``threads``."""
    global BLAS_THREADS
    BLAS_THREADS = threads
    for variable in _POOL_VARIABLES:
        os.environ[variable] = str(threads)


cap_threads(BLAS_THREADS)


@contextmanager
def capped_threads() -> Iterator[None]:
    """The BLAS and OpenMP pools of every library loaded so far capped to :data:`BLAS_THREADS`."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=BLAS_THREADS):
        yield


def cpu_seconds() -> float:
    """CPU seconds used so far by this process (all its threads) and the children it waited for."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


@attrs.frozen
class Result:
    """One benchmark outcome; ``ratio`` is ours / baseline and ``goal`` its largest accepted value.

    ``ours_cpu`` and ``baseline_cpu``, where a benchmark measured them, are the CPU time of the
    same calls, in the same unit as ``ours``.
    """

    name: str
    ours: float
    baseline: float
    baseline_name: str
    goal: float
    unit: str
    size: str
    ours_cpu: float | None = None
    baseline_cpu: float | None = None

    @property
    def ratio(self) -> float:
        return self.ours / self.baseline

    @property
    def cpu_ratio(self) -> float | None:
        if self.ours_cpu is None or not self.baseline_cpu:
            return None
        return self.ours_cpu / self.baseline_cpu

    @property
    def met(self) -> bool:
        return self.ratio <= self.goal

    def as_json(self) -> dict[str, Any]:
        cpu_ratio = self.cpu_ratio
        return {
            "name": self.name,
            "ours": self.ours,
            "baseline": self.baseline,
            "baseline_name": self.baseline_name,
            "ratio": round(self.ratio, 4),
            "goal": round(self.goal, 4),
            "met": self.met,
            "unit": self.unit,
            "size": self.size,
            "ours_cpu": self.ours_cpu,
            "baseline_cpu": self.baseline_cpu,
            "cpu_ratio": None if cpu_ratio is None else round(cpu_ratio, 4),
        }


class Times(dict[str, float]):
    """Median wall seconds per call by name (what :func:`interleaved` always returned), with
    the median CPU seconds per call of the same repeats in :attr:`cpu`."""

    cpu: dict[str, float]


def compared(times: Times, ours: str, baseline: str, scale: float = 1.0) -> dict[str, float]:
    """The ``ours``, ``baseline``, ``ours_cpu`` and ``baseline_cpu`` arguments of a
    :class:`Result` from two names of ``times``, each multiplied by ``scale`` (into the unit)."""
    return {
        "ours": times[ours] * scale,
        "baseline": times[baseline] * scale,
        "ours_cpu": times.cpu[ours] * scale,
        "baseline_cpu": times.cpu[baseline] * scale,
    }


def per_call_seconds(function: Callable[[], Any], calls: int) -> float:
    """Seconds per call of ``function`` over ``calls`` calls."""
    start = time.perf_counter()
    for _ in range(calls):
        function()
    return (time.perf_counter() - start) / calls


def per_call_times(function: Callable[[], Any], calls: int) -> tuple[float, float]:
    """Wall and CPU seconds per call of ``function`` over ``calls`` calls."""
    cpu, start = cpu_seconds(), time.perf_counter()
    for _ in range(calls):
        function()
    return (time.perf_counter() - start) / calls, (cpu_seconds() - cpu) / calls


def interleaved(functions: dict[str, Callable[[], Any]], calls: int, repeats: int) -> Times:
    """Median seconds per call of each function, measured in alternation so that drift in the
    machine's speed affects all of them alike; the CPU medians are in the result's ``cpu``."""
    with capped_threads():
        for function in functions.values():  # warm up caches and lazy initialisation
            function()
        walls: dict[str, list[float]] = {name: [] for name in functions}
        cpus: dict[str, list[float]] = {name: [] for name in functions}
        for _ in range(repeats):
            for name, function in functions.items():
                wall, cpu = per_call_times(function, calls)
                walls[name].append(wall)
                cpus[name].append(cpu)
    times = Times({name: statistics.median(values) for name, values in walls.items()})
    times.cpu = {name: statistics.median(values) for name, values in cpus.items()}
    return times
