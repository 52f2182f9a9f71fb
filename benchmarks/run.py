"""Run every benchmark; write ``benchmarks/results.json`` and the table in ``docs/performance.md``.

python benchmarks/run.py            # full sizes
python benchmarks/run.py --quick    # every benchmark on small sizes (a smoke run)

BLAS and OpenMP pools run one thread each unless ``--blas-threads`` says otherwise; each row
gives the CPU time of ours and of the baseline beside the wall clock, where its benchmark
measured them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_dask  # noqa: E402
import bench_engine  # noqa: E402
import bench_io  # noqa: E402
import bench_layers  # noqa: E402
import bench_parquet  # noqa: E402
import bench_sklearn  # noqa: E402
import bench_sql  # noqa: E402
import bench_threads  # noqa: E402

import bench_core  # noqa: E402
from harness import Result, cap_threads, capped_threads  # noqa: E402

SUITES = [
    bench_core,
    bench_threads,
    bench_engine,
    bench_layers,
    bench_io,
    bench_parquet,
    bench_sql,
    bench_sklearn,
    bench_dask,
]
TABLE_START, TABLE_END = "<!-- results:start -->", "<!-- results:end -->"


def table(results: list[Result]) -> str:
    lines = [
        "| benchmark | size | ours | baseline | ratio | goal | met | CPU ours | CPU baseline | CPU ratio |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        cpu_ratio = r.cpu_ratio
        cpu = (
            "n/a | n/a | n/a"
            if r.ours_cpu is None or r.baseline_cpu is None or cpu_ratio is None
            else f"{r.ours_cpu:.3g} {r.unit} | {r.baseline_cpu:.3g} {r.unit} | {cpu_ratio:.2f}"
        )
        lines.append(
            f"| {r.name} | {r.size} | {r.ours:.3g} {r.unit} | {r.baseline:.3g} {r.unit} "
            f"({r.baseline_name}) | {r.ratio:.2f} | ≤ {r.goal:.2f} | {'yes' if r.met else 'no'} | {cpu} |"
        )
    return "\n".join(lines)


def kept_result(row: dict[str, object]) -> Result:
    """A row of an earlier results.json as a Result (rows written before CPU times have none)."""
    fields = {field.name for field in Result.__attrs_attrs__}
    return Result(**{k: v for k, v in row.items() if k in fields})  # type: ignore[arg-type]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, a few seconds each")
    parser.add_argument(
        "--suite",
        action="append",
        choices=[s.__name__ for s in SUITES],
        help="run only these suites, replacing their results in the output (repeatable)",
    )
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=None,
        help="threads of the BLAS and OpenMP pools while measuring (default 1, or MEGATRON_BENCH_THREADS)",
    )
    parser.add_argument("--output", type=Path, default=HERE / "results.json")
    parser.add_argument(
        "--docs",
        type=Path,
        default=HERE.parent / "docs" / "performance.md",
        help="markdown file whose results table is replaced (full runs only)",
    )
    args = parser.parse_args()
    if args.blas_threads is not None:
        cap_threads(args.blas_threads)

    results = []
    for suite in SUITES:
        if args.suite and suite.__name__ not in args.suite:
            continue
        for benchmark in suite.BENCHMARKS:
            with capped_threads():
                outcome = benchmark(args.quick)
            for result in outcome if isinstance(outcome, list) else [outcome]:
                results.append(result)
                cpu = "" if result.cpu_ratio is None else f", CPU ratio {result.cpu_ratio:.2f}"
                print(
                    f"{result.name}: ratio {result.ratio:.2f} (goal ≤ {result.goal:.2f}) "
                    f"{'met' if result.met else 'NOT met'}{cpu}",
                    flush=True,
                )
    if args.suite and args.output.exists():  # keep the other suites' results, in their order
        fresh = {r.name: r for r in results}
        kept = [kept_result(r) for r in json.loads(args.output.read_text())]
        names = [r.name for r in kept]
        results = [fresh.pop(r.name, r) for r in kept] + [r for r in results if r.name not in names]
    args.output.write_text(json.dumps([r.as_json() for r in results], indent=2) + "\n")
    if not args.quick and args.docs.exists():
        text = args.docs.read_text()
        start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
        args.docs.write_text(text[:start] + "\n" + table(results) + "\n" + text[end:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
