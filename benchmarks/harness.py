"""Measuring ours against a baseline in the same run: interleaved repeats, medians, ratios."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import attrs


@attrs.frozen
class Result:
    """One benchmark outcome; ``ratio`` is ours / baseline and ``goal`` its largest accepted value."""

    name: str
    ours: float
    baseline: float
    baseline_name: str
    goal: float
    unit: str
    size: str

    @property
    def ratio(self) -> float:
        return self.ours / self.baseline

    @property
    def met(self) -> bool:
        return self.ratio <= self.goal

    def as_json(self) -> dict[str, Any]:
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
        }


def per_call_seconds(function: Callable[[], Any], calls: int) -> float:
    """Seconds per call of ``function`` over ``calls`` calls."""
    start = time.perf_counter()
    for _ in range(calls):
        function()
    return (time.perf_counter() - start) / calls


def interleaved(functions: dict[str, Callable[[], Any]], calls: int, repeats: int) -> dict[str, float]:
    """Median seconds per call of each function, measured in alternation so that drift in the
    machine's speed affects all of them alike."""
    for function in functions.values():  # warm up caches and lazy initialisation
        function()
    samples: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            samples[name].append(per_call_seconds(function, calls))
    return {name: statistics.median(values) for name, values in samples.items()}
