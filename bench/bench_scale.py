"""Scale: exact FAISS search against approximate indexes on synthetic unit vectors (dim 384).

    .venv/bin/python bench/bench_scale.py [--sizes 10000 100000 1000000] [--queries 200] [--full]

The vectors are clustered, like real sentence embeddings (a uniform cloud on the sphere has
no neighbourhood structure and is the worst case for every approximate index): each is a
random cluster centre plus Gaussian noise, normalised, with cosine about 0.75 to its centre.
Queries are drawn the same way and are not in the index.

For each size and index type: build time (training included), the index's bytes per vector,
the median and p95 latency of one query searched alone (as the assistant searches), and
recall@10 against exact search, both raw (the index's own top 10) and as the store uses it
(the index's top ``candidates`` re-scored exactly with the stored float32 vectors, then cut
to 10). Without ``--full`` the 1M run is limited to the index types that build quickly.
Writes bench/results/scale.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import faiss
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.store import SEARCH_CANDIDATES, make_search_index, search_spec  # noqa: E402

DIM = 384


def clustered(n: int, rng: np.random.Generator, centres: np.ndarray, noise: float = 0.045) -> np.ndarray:
    """``n`` unit vectors near randomly chosen rows of ``centres``, float32."""
    out = np.empty((n, DIM), np.float32)
    step = 100_000
    for begin in range(0, n, step):
        m = min(step, n - begin)
        block = centres[rng.integers(0, len(centres), m)] + rng.standard_normal((m, DIM), np.float32) * noise
        out[begin : begin + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def make_data(n: int, queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(n // 200, 50), DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    return clustered(n, rng, centres), clustered(queries, rng, centres)


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    flat = faiss.IndexFlatIP(DIM)
    flat.add(vectors)
    return flat.search(queries, k)[1]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def _ms(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)) * 1000, 3)


def measure(spec: dict, vectors: np.ndarray, queries: np.ndarray, truth: np.ndarray) -> dict:
    """Build the index of ``spec`` over ``vectors`` and measure it against ``truth``."""
    started = time.perf_counter()
    index = make_search_index(spec, vectors)
    build_s = time.perf_counter() - started
    size = len(faiss.serialize_index(index))
    depth = SEARCH_CANDIDATES
    raw, reranked, latencies = [], [], []
    for q in queries:
        one = q.reshape(1, -1)
        t0 = time.perf_counter()
        _, ids = index.search(one, depth)
        latencies.append(time.perf_counter() - t0)
        ids = ids[0][ids[0] >= 0]
        raw.append(index.search(one, 10)[1][0])
        exact = vectors[ids] @ q  # the store re-scores its candidates with the stored vectors
        reranked.append(ids[np.argsort(-exact, kind="stable")[:10]])
    return {
        "type": spec["type"],
        "description": spec_name(spec),
        "build_s": round(build_s, 2),
        "bytes_per_vector": round(size / len(vectors), 1),
        "query_p50_ms": _ms(latencies, 50),
        "query_p95_ms": _ms(latencies, 95),
        "recall@10": round(recall(raw, truth), 4),
        "recall@10_reranked": round(recall(reranked, truth), 4),
    }


def spec_name(spec: dict) -> str:
    params = ", ".join(f"{k}={v}" for k, v in spec.items() if k != "type")
    return f"{spec['type']} ({params})" if params else spec["type"]


def candidates_for(n: int, full: bool) -> list[dict]:
    """The index specs compared at size ``n``: the store's own choice first, then alternatives."""
    nlist = search_spec(max(n, 200_000))["nlist"] if n >= 200_000 else max(64, int(4 * np.sqrt(n)))
    specs = [
        {"type": "flat"},
        {"type": "hnsw", "m": 32, "ef_construction": 64, "ef_search": 64, "storage": "flat"},
        {"type": "hnsw", "m": 32, "ef_construction": 64, "ef_search": 64, "storage": "sq8"},
        {"type": "ivf", "nlist": nlist, "nprobe": 8, "storage": "flat"},
        {"type": "ivf", "nlist": nlist, "nprobe": 16, "storage": "sq8"},
        {"type": "ivf", "nlist": nlist, "nprobe": 16, "storage": "pq48"},
    ]
    if n >= 1_000_000 and not full:
        specs = [s for s in specs if s["type"] != "hnsw"]  # minutes to build on two cores
    chosen = search_spec(n)
    if chosen not in specs and (full or chosen["type"] != "hnsw" or n < 1_000_000):
        specs.insert(1, chosen)
    return specs


def run(sizes: list[int], queries: int, full: bool = False) -> dict:
    results: dict = {"dim": DIM, "queries": queries, "candidates": SEARCH_CANDIDATES, "sizes": {}}
    for n in sizes:
        vectors, qs = make_data(n, queries)
        truth = exact_top(vectors, qs, 10)
        rows = []
        for spec in candidates_for(n, full):
            row = measure(spec, vectors, qs, truth)
            row["store_choice"] = spec == search_spec(n)
            rows.append(row)
            print(f"  {n:>9} {row['description']}: {row}", file=sys.stderr, flush=True)
        results["sizes"][str(n)] = rows
        del vectors
    return results


def table(results: dict) -> str:
    lines = ["| vectors | index | build | bytes/vector | query p50 | query p95 | recall@10 | recall@10, re-scored top "
             f"{results['candidates']} |", "|---|---|---|---|---|---|---|---|"]
    for n, rows in results["sizes"].items():
        for r in rows:
            mark = " **(store's choice)**" if r["store_choice"] else ""
            lines.append(f"| {int(n):,} | {r['description']}{mark} | {r['build_s']} s | {r['bytes_per_vector']} | "
                         f"{r['query_p50_ms']} ms | {r['query_p95_ms']} ms | {r['recall@10']} | "
                         f"{r['recall@10_reranked']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--full", action="store_true", help="HNSW at 1M too (several minutes to build).")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "scale.json")
    args = parser.parse_args()
    results = run(args.sizes, args.queries, args.full)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
