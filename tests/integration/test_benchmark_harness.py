"""The benchmark harness: interleaved medians with CPU time beside them, thread pools capped
while measuring, and results files written before CPU times still read."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def harness(monkeypatch):
    pytest.importorskip("threadpoolctl", reason="needs threadpoolctl, which the benchmarks use")
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.delitem(sys.modules, "harness", raising=False)
    import harness

    return harness


def test_interleaved_gives_wall_and_cpu_medians(harness):
    a = np.ones((200, 200))
    times = harness.interleaved({"product": lambda: a @ a, "nothing": lambda: None}, calls=3, repeats=3)
    assert set(times) == set(times.cpu) == {"product", "nothing"}
    assert times["product"] > times["nothing"] >= 0 and times.cpu["product"] > 0
    result = harness.Result(
        name="r",
        **harness.compared(times, "product", "product", 1e3),
        baseline_name="b",
        goal=1.0,
        unit="ms",
        size="",
    )
    row = result.as_json()
    assert row["ratio"] == 1.0 and row["cpu_ratio"] == 1.0 and row["ours_cpu"] == times.cpu["product"] * 1e3


def test_blas_pools_are_capped_while_measuring(harness):
    from threadpoolctl import threadpool_info

    seen = []
    harness.interleaved({"pools": lambda: seen.append([p["num_threads"] for p in threadpool_info()])}, 1, 1)
    assert seen and all(threads == harness.BLAS_THREADS for pools in seen for threads in pools)


def test_a_result_row_without_cpu_times_is_read_back(harness, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import run

    old = {"name": "n", "ours": 2.0, "baseline": 1.0, "baseline_name": "b", "ratio": 2.0, "goal": 3.0}
    result = run.kept_result(json.loads(json.dumps({**old, "met": True, "unit": "s", "size": ""})))
    assert result.ours_cpu is None and result.cpu_ratio is None
    assert "| n |  | 2 s | 1 s (b) | 2.00 | ≤ 3.00 | yes | n/a | n/a | n/a |" in run.table([result])
