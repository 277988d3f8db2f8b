"""The benchmark suite behind `make bench`: every figure a ratio or a curve measured in one run.

    .venv/bin/python bench/suite.py [--quick]

Runs, in order: the index build (bench_build), the query path (bench_query), the reader's
accuracy/latency curve (bench_reader), batch evaluation (bench_eval), memory (bench_memory), embedding threads and backends
(bench_embed) and FAISS at scale (bench_scale), sharing one squad-sample index. Each writes
bench/results/NAME.json; this writes bench/results/bench.md with every table, the load
average around each part and the wall time of each. ``--quick`` shrinks every part (for a
smoke test; its figures are not the committed ones).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from assistant.runtime import QUERY_THREADS, configure_process  # noqa: E402

configure_process()  # before torch and FAISS are loaded: every core, for the build and the embedding parts

import torch  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import bench_build  # noqa: E402
import bench_embed  # noqa: E402
import bench_eval  # noqa: E402
import bench_memory  # noqa: E402
import bench_query  # noqa: E402
import bench_reader  # noqa: E402
import bench_scale  # noqa: E402

RESULTS = ROOT / "bench" / "results"
# The parts that answer questions run on the threads `ask`, `eval` and the app answer on (each of
# their scripts sets this itself when run alone; in one process it has to be set around the part).
ON_QUERY_THREADS = {"query", "reader", "eval"}

TITLES = {
    "build": "Index build (squad-sample)",
    "query": "Query path: answer against bare question embedding",
    "reader": "Reader: accuracy and latency against candidates read",
    "eval": "Batch evaluation throughput",
    "memory": "Memory",
    "embed": "Embedding: threads and backends",
    "scale": "FAISS at scale (synthetic vectors, dim 384)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="A smoke test with tiny sizes.")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    sections, timings = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        squad_index = Path(tmp) / "squad-index"
        parts = [
            ("build", lambda: bench_build.run(bench_build.SQUAD, squad_index), bench_build.table),
            ("query", lambda: bench_query.run(squad_index, repeats=1,
                                              limit=20 if args.quick else 200), bench_query.table),
            ("reader", lambda: bench_reader.run(squad_index, limit=60 if args.quick else 300), bench_reader.table),
            ("eval", lambda: bench_eval.run(squad_index, questions=50 if args.quick else 500), bench_eval.table),
            ("memory", lambda: bench_memory.run(squad_index, questions=20 if args.quick else 200), bench_memory.table),
            ("embed", lambda: bench_embed.run(rounds=1 if args.quick else 2), bench_embed.table),
            ("scale", lambda: bench_scale.run([2_000, 10_000] if args.quick else [10_000, 100_000, 1_000_000],
                                              queries=50 if args.quick else 200), bench_scale.table),
        ]
        for name, run, table in parts:
            load = os.getloadavg()[0]
            started = time.perf_counter()
            print(f"bench: {name} ...", file=sys.stderr, flush=True)
            result = on_threads(QUERY_THREADS, run) if name in ON_QUERY_THREADS else run()
            seconds = time.perf_counter() - started
            timings[name] = {"seconds": round(seconds, 1), "load_before": round(load, 2),
                             "load_after": round(os.getloadavg()[0], 2)}
            (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
            sections.append(f"## {TITLES[name]}\n\n{table(result)}\n")
            print(f"bench: {name} done in {seconds:.0f} s", file=sys.stderr, flush=True)
    total = time.perf_counter() - began
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    header = (f"# Benchmark results\n\n`make bench`{' --quick' if args.quick else ''}, {stamp}, "
              f"{os.cpu_count()} cores, Python {platform.python_version()}; whole run {total / 60:.1f} min.\n\n"
              "| part | wall time | load average before | after |\n|---|---|---|---|\n"
              + "".join(f"| {name} | {t['seconds']} s | {t['load_before']} | {t['load_after']} |\n"
                        for name, t in timings.items()))
    (RESULTS / "timings.json").write_text(json.dumps({"total_seconds": round(total, 1), **timings}, indent=2) + "\n")
    (RESULTS / "bench.md").write_text(header + "\n" + "\n".join(sections))
    print(header + "\n" + "\n".join(sections))


def on_threads(threads: int, run):  # noqa: ANN201 - whatever the part returns
    """``run()`` with torch, FAISS and the BLAS under NumPy on ``threads`` OpenMP threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            return run()
    finally:
        torch.set_num_threads(before)


if __name__ == "__main__":
    main()
