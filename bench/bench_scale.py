"""Scale: exact FAISS search against approximate indexes on synthetic unit vectors (dim 384).

    .venv/bin/python bench/bench_scale.py [--sizes 10000 100000 1000000] [--queries 200] [--full]

The vectors imitate the model's: a uniform cloud on the sphere has no neighbourhood structure
and would be the worst case for every approximate index, so each vector is a point of a
48-dimensional Gaussian mixture (clusters of about 300) mapped into 384 dimensions, plus a
little isotropic noise, normalised. The mix was set so that a vector's 1st, 5th and 10th
nearest similarities (0.60, 0.55, 0.52 at 2,000 vectors) are close to those of the real
sentence vectors of the squad-sample index (0.62, 0.49, 0.44). Queries are drawn the same way
and are not in the index.

For each size and index: build time (training included), the index's bytes per vector, the
median and p95 latency of one query searched alone (as the assistant searches), and
recall@10 against exact search, both raw (the index's own top 10) and as the store uses it
(the index's top ``Settings.candidates`` re-scored exactly with the stored float32 vectors,
then cut to 10). One build serves every query-time setting (efSearch, nprobe). Without
``--full`` the 1M run leaves out HNSW (many minutes to build on two cores).
Writes bench/results/scale.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.runtime import configure_process  # noqa: E402

configure_process()  # before torch and FAISS are loaded

import faiss  # noqa: E402

from assistant.config import Settings  # noqa: E402
from assistant.ann import configure_search_index, fill, make_search_index, search_spec  # noqa: E402

DIM = 384
LATENT = 48
PQ_TRAIN = 16_000  # product quantisers train for minutes on more


def make_data(n: int, queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` vectors and ``queries`` queries, unit length, float32 (see the module docstring)."""
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((LATENT, DIM)).astype(np.float32) / np.sqrt(LATENT)
    centres = rng.standard_normal((max(n // 300, 4), LATENT)).astype(np.float32)

    def draw(m: int) -> np.ndarray:
        out = np.empty((m, DIM), np.float32)
        for begin in range(0, m, 100_000):
            size = min(100_000, m - begin)
            z = centres[rng.integers(0, len(centres), size)] + 1.8 * rng.standard_normal((size, LATENT), np.float32)
            x = z @ mixing + 0.3 * np.sqrt(LATENT / DIM) * rng.standard_normal((size, DIM), np.float32)
            out[begin : begin + size] = x / np.linalg.norm(x, axis=1, keepdims=True)
        return out

    return draw(n), draw(queries)


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    flat = faiss.IndexFlatIP(DIM)
    flat.add(vectors)
    return flat.search(queries, k)[1]


def recall(found: list[np.ndarray], truth: np.ndarray) -> float:
    return float(np.mean([len(set(f.tolist()) & set(t.tolist())) / len(t) for f, t in zip(found, truth)]))


def _ms(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)) * 1000, 3)


def build_index(spec: dict, vectors: np.ndarray) -> faiss.Index:
    """The index of ``spec``: the store's own kinds (flat, HNSW) as the store builds them, and IVF,
    which only this benchmark builds (``nlist`` lists, ``storage`` flat, sq8 or pqN)."""
    if spec["type"] != "ivf":
        return make_search_index(spec, vectors)
    storage = spec.get("storage", "flat")  # "np": no polysemous training, minutes for nothing used here
    codes = "Flat" if storage == "flat" else storage.upper() + ("np" if storage.startswith("pq") else "")
    index = faiss.index_factory(DIM, f"IVF{spec['nlist']},{codes}", faiss.METRIC_INNER_PRODUCT)
    return fill(index, np.ascontiguousarray(vectors, dtype=np.float32))


def configure(index: faiss.Index, spec: dict) -> None:
    """Set the query-time parameter of ``spec``: IVF's nprobe here, the others as the store does."""
    if spec["type"] == "ivf" and "nprobe" in spec:
        faiss.ParameterSpace().set_index_parameter(index, "nprobe", int(spec["nprobe"]))
    else:
        configure_search_index(index, spec)


def spec_name(spec: dict) -> str:
    params = ", ".join(f"{k}={v}" for k, v in spec.items() if k != "type")
    return f"{spec['type']} ({params})" if params else spec["type"]


def measure(build: dict, settings: list[dict], vectors: np.ndarray, queries: np.ndarray,
            truth: np.ndarray) -> list[dict]:
    """Build the index of ``build`` once, then measure it with each query-time setting."""
    started = time.perf_counter()
    if build.get("storage") == "pq48":  # train on a sample, then add everything
        index = build_index(build, vectors[:PQ_TRAIN])
        index.add(vectors[PQ_TRAIN:])
    else:
        index = build_index(build, vectors)
    build_s = time.perf_counter() - started
    size = len(faiss.serialize_index(index))
    depth = Settings().candidates
    faiss.omp_set_num_threads(1)  # one question at a time on one thread, as the store searches
    rows = []
    for query_time in settings:
        spec = {**build, **query_time}
        configure(index, spec)
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
        rows.append({
            "spec": spec,
            "description": spec_name(spec),
            "build_s": round(build_s, 2),
            "bytes_per_vector": round(size / len(vectors), 1),
            "query_p50_ms": _ms(latencies, 50),
            "query_p95_ms": _ms(latencies, 95),
            "recall@10": round(recall(raw, truth), 4),
            "recall@10_reranked": round(recall(reranked, truth), 4),
        })
    return rows


def plan(n: int, full: bool) -> list[tuple[dict, list[dict]]]:
    """(build spec, query-time settings) pairs compared at size ``n``."""
    hnsw = {"type": "hnsw", "m": 32, "ef_construction": 64}
    if n >= 1_000_000:  # minutes per build on two cores: the fastest to build, and HNSW only with --full
        nlist = int(np.sqrt(n))
        runs = [({"type": "flat"}, [{}]),
                ({"type": "ivf", "nlist": nlist, "storage": "sq8"}, [{"nprobe": p} for p in (64, 128, 256)])]
        if full:
            runs.insert(1, ({**hnsw, "storage": "sq8"}, [{"ef_search": ef} for ef in (128, 256, 512)]))
        return runs
    nlist = max(64, int(4 * np.sqrt(n)))
    probes = [{"nprobe": p} for p in (16, 64, 128)]
    runs = [
        ({"type": "flat"}, [{}]),
        ({**hnsw, "storage": "sq8"}, [{"ef_search": ef} for ef in (64, 128, 256)]),
        ({**hnsw, "storage": "flat"}, [{"ef_search": 256}]),
        ({"type": "ivf", "nlist": nlist, "storage": "flat"}, probes),
        ({"type": "ivf", "nlist": nlist, "storage": "sq8"}, probes),
        ({"type": "ivf", "nlist": nlist, "storage": "pq48"}, probes),
    ]
    if n > 10_000 and not full:  # float32 storage recalls as SQ8 does at 10k: keep the 15-minute budget
        runs = [r for r in runs if r[0].get("storage") != "flat" or r[0]["type"] == "flat"]
    return runs


def run(sizes: list[int], queries: int, full: bool = False) -> dict:
    results: dict = {"dim": DIM, "queries": queries, "candidates": Settings().candidates, "sizes": {}}
    for n in sizes:
        vectors, qs = make_data(n, queries if n < 1_000_000 else min(queries, 100))
        truth = exact_top(vectors, qs, 10)
        rows = []
        for build, query_settings in plan(n, full):
            for row in measure(build, query_settings, vectors, qs, truth):
                row["queries"] = len(qs)
                row["store_choice"] = row["spec"] == search_spec(n)
                rows.append(row)
                print(f"  {n:>9} {row}", file=sys.stderr, flush=True)
        results["sizes"][str(n)] = rows
        del vectors
    return results


def table(results: dict) -> str:
    lines = ["| vectors | index | build | bytes/vector | query p50 | query p95 | recall@10 | recall@10, top "
             f"{results['candidates']} re-scored |", "|---|---|---|---|---|---|---|---|"]
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
    parser.add_argument("--full", action="store_true", help="HNSW at 1M too (many minutes to build).")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "scale.json")
    args = parser.parse_args()
    results = run(args.sizes, args.queries, args.full)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
