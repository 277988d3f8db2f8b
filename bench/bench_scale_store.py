"""Scale on real text: FAISS HNSW against milvus-lite on N embedded passages (issue 14).

    .venv/bin/python bench/bench_scale_store.py [--n 30000] [--text DIR] [--ray-slice 2000]

1. Corpus: N passages of 3-6 real sentences, recombined with a fixed seed from the sentences of
   the repository's text (``corpus/``, ``eval/squad-sample/corpus/``, ``eval/selqa-dev/corpus/``;
   or every ``*.txt`` under ``--text DIR``). A passage starts at a random sentence of a random
   document; each next sentence is the following one of the same document with probability
   ``CONTINUE``, else a sentence drawn from anywhere; repeated passages are drawn again. See
   bench/README.md for how real and how duplicated this is.
2. Embedding with the packaged model (``SentenceTransformerEncoder``), in chunks of ``--chunk``
   passages saved under ``--cache`` (one ``.npy`` per chunk, named by the hash of its texts), so
   an interrupted run resumes where it stopped; texts/s over the chunks embedded (this run or an
   earlier one, from their saved timings). Then ingestion on the first ``--ray-slice`` passages:
   one process (all cores, model already loaded) against Ray Data ``map_batches`` with an actor
   pool of 2 (one torch thread each, actor start and model load included), and the largest
   difference between their vectors.
3. Stores on those vectors: FAISS HNSW as ``ann.search_spec`` builds it for that size (at least
   FLAT_BELOW, so that a small run still measures HNSW) and a milvus-lite collection (id and
   vector, HNSW with the same M, efConstruction and ef, float32). For each: build time, memory
   per passage (FAISS: serialised index bytes / N; milvus-lite: the .db folder's size and the
   resident-memory growth of this process and its children, milvus-lite's server included, from
   the loaded empty collection to after the searches), query p50/p95 of one question at a time
   (FAISS on one thread; milvus-lite through its local gRPC server, its threads its own), and
   recall@10 against exact search (FAISS ``IndexFlatIP`` on the same vectors). Queries:
   ``--queries`` questions of squad-sample and selqa-dev, embedded.

Writes bench/results/scale_store.json and the Markdown table in scale_store.md (and prints it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.runtime import configure_process  # noqa: E402

configure_process()  # every core while embedding and building; searches are set to one thread below

import faiss  # noqa: E402
from tqdm import tqdm  # noqa: E402

from assistant.ann import FLAT_BELOW, make_search_index, search_spec  # noqa: E402
from assistant.config import Settings  # noqa: E402
from assistant.embedding import SentenceTransformerEncoder  # noqa: E402
from bench_scale import recall  # noqa: E402  (this script's folder is on the path)

TEXT = [ROOT / "corpus", ROOT / "eval" / "squad-sample" / "corpus", ROOT / "eval" / "selqa-dev" / "corpus"]
QUESTIONS = [ROOT / "eval" / "squad-sample" / "questions.jsonl", ROOT / "eval" / "selqa-dev" / "questions.jsonl"]
CACHE = ROOT / "bench" / "results" / "scale-cache"
OUT = ROOT / "bench" / "results" / "scale_store.json"
CONTINUE = 0.7  # chance that a passage's next sentence follows the previous one in its document
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[\"'(\[]?[A-Z0-9])")
K = 10


def documents_sentences(folders: list[Path]) -> list[list[str]]:
    """The sentences (at least 20 characters) of each ``*.txt`` under ``folders``, in a fixed order."""
    docs = []
    for folder in folders:
        for path in sorted(folder.rglob("*.txt")):
            text = path.read_text(encoding="utf-8", errors="replace")
            sentences = [s.strip() for para in text.split("\n") for s in _SENTENCE_END.split(para)]
            sentences = [s for s in sentences if len(s) >= 20]
            if sentences:
                docs.append(sentences)
    if not docs:
        raise SystemExit(f"no text: no .txt file with sentences under {', '.join(map(str, folders))}")
    return docs


def make_passages(docs: list[list[str]], n: int, seed: int = 0) -> list[str]:
    """``n`` distinct passages of 3-6 sentences (see the module docstring), the same for the same seed.

    Distinct, so that exact search has no tied copies whose order would count as misses in recall.
    """
    rng = np.random.default_rng(seed)
    weights = np.array([len(d) for d in docs], np.float64)
    weights /= weights.sum()
    passages: dict[str, None] = {}
    for _ in range(20 * n):
        if len(passages) == n:
            return list(passages)
        d = int(rng.choice(len(docs), p=weights))
        i = int(rng.integers(len(docs[d])))
        picked = [docs[d][i]]
        for _ in range(int(rng.integers(3, 7)) - 1):
            if rng.random() < CONTINUE and i + 1 < len(docs[d]):
                i += 1
            else:
                d = int(rng.choice(len(docs), p=weights))
                i = int(rng.integers(len(docs[d])))
            picked.append(docs[d][i])
        passages[" ".join(picked)] = None
    raise SystemExit(f"the text gives only {len(passages):,} distinct passages, fewer than {n:,}: add text (--text)")


def embed_cached(encoder: SentenceTransformerEncoder, texts: list[str], cache: Path,
                 chunk: int) -> tuple[np.ndarray, dict]:
    """Vectors of ``texts``, chunk by chunk, each chunk saved (and reused) under ``cache``."""
    cache.mkdir(parents=True, exist_ok=True)
    parts, seconds, embedded = [], 0.0, 0
    starts = range(0, len(texts), chunk)
    for begin in tqdm(starts, desc=f"Embedding in chunks of {chunk}", unit="chunk", file=sys.stderr):
        batch = texts[begin : begin + chunk]
        digest = hashlib.sha256("\n\0".join([encoder.name, *batch]).encode()).hexdigest()[:16]
        path = cache / f"chunk-{begin // chunk:05d}-{digest}.npy"
        timing = path.with_suffix(".json")
        if path.exists() and timing.exists():
            parts.append(np.load(path))
        else:
            started = time.perf_counter()
            parts.append(encoder.encode(batch))
            np.save(path, parts[-1])
            timing.write_text(json.dumps({"texts": len(batch), "seconds": time.perf_counter() - started}))
        record = json.loads(timing.read_text())
        seconds += record["seconds"]
        embedded += record["texts"]
    return np.concatenate(parts), {"texts": embedded, "seconds": round(seconds, 1),
                                   "texts_per_s": round(embedded / seconds, 1)}


class _RayEmbedder:
    """A Ray actor holding the model on one torch thread: the vectors of a batch of texts."""

    def __init__(self) -> None:
        configure_process()
        import torch

        torch.set_num_threads(1)
        self.encoder = SentenceTransformerEncoder()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"row": batch["row"], "vector": self.encoder.encode(batch["text"].tolist())}


def ingestion(encoder: SentenceTransformerEncoder, texts: list[str], workers: int = 2) -> dict:
    """Embedding ``texts`` in this process against Ray Data with an actor pool of ``workers``."""
    encoder.encode(texts[:1])  # the model loaded before timing (the actors' load is timed: they start for this)
    started = time.perf_counter()
    alone = encoder.encode(texts, progress=True, desc="One process")
    alone_s = time.perf_counter() - started
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])  # for the workers
    import ray

    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        started = time.perf_counter()
        dataset = ray.data.from_items([{"row": i, "text": t} for i, t in enumerate(texts)],
                                      override_num_blocks=8 * workers)
        dataset = dataset.map_batches(_RayEmbedder, batch_size=None, num_cpus=1,
                                      compute=ray.data.ActorPoolStrategy(size=workers))
        parts = list(dataset.iter_batches(batch_size=None, batch_format="numpy"))
        ray_s = time.perf_counter() - started
    finally:
        ray.shutdown()
    rows = np.concatenate([p["row"] for p in parts])
    vectors = np.concatenate([p["vector"] for p in parts])[np.argsort(rows)]
    return {"texts": len(texts), "one_process_s": round(alone_s, 1),
            "one_process_texts_per_s": round(len(texts) / alone_s, 1),
            "ray_workers": workers, "ray_s": round(ray_s, 1), "ray_texts_per_s": round(len(texts) / ray_s, 1),
            "ray_max_abs_difference": float(np.abs(vectors - alone).max()) if len(vectors) == len(alone) else None}


def tree_rss() -> int:
    """Resident bytes of this process and all its descendants (milvus-lite's server among them)."""
    parents, rss = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        parents[pid], rss[pid] = int(fields[1]), int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    mine, todo = set(), [os.getpid()]
    while todo:
        pid = todo.pop()
        mine.add(pid)
        todo += [child for child, parent in parents.items() if parent == pid and child not in mine]
    return sum(rss.get(pid, 0) for pid in mine)


def timed(search, queries: np.ndarray) -> tuple[list[np.ndarray], dict]:
    """Each query searched alone: the ids found and p50/p95 latency in ms."""
    found, latencies = [], []
    for q in queries:
        started = time.perf_counter()
        found.append(search(q))
        latencies.append(time.perf_counter() - started)
    return found, {f"query_p{p}_ms": round(float(np.percentile(latencies, p)) * 1000, 3) for p in (50, 95)}


def faiss_rows(vectors: np.ndarray, queries: np.ndarray, truth: np.ndarray) -> list[dict]:
    """FAISS exact (the reference) and HNSW as the store builds it (raw top 10 and re-scored)."""
    spec = search_spec(max(len(vectors), FLAT_BELOW))
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    started = time.perf_counter()
    index = make_search_index(spec, vectors)
    build_s = time.perf_counter() - started
    flat = make_search_index({"type": "flat"}, vectors)
    faiss.omp_set_num_threads(1)  # one question at a time on one thread, as the store searches
    rows = []
    for name, idx, s in (("FAISS exact (IndexFlatIP)", flat, None), (f"FAISS {spec_label(spec)}", index, build_s)):
        found, latency = timed(lambda q, idx=idx: idx.search(q.reshape(1, -1), K)[1][0], queries)
        rows.append({"store": name, "build_s": None if s is None else round(s, 1),
                     "bytes_per_passage": round(len(faiss.serialize_index(idx)) / len(vectors), 1),
                     "memory_measure": "serialised index bytes / N", **latency,
                     "recall@10": round(recall(found, truth), 4)})
    depth = Settings().candidates

    def rescored(q: np.ndarray) -> np.ndarray:  # what retrieval does: top `candidates`, scored exactly
        ids = index.search(q.reshape(1, -1), depth)[1][0]
        ids = ids[ids >= 0]
        return ids[np.argsort(-(vectors[ids] @ q), kind="stable")[:K]]

    found, latency = timed(rescored, queries)
    rows.append({**rows[-1], "store": f"{rows[-1]['store']}, top {depth} re-scored exactly", **latency,
                 "recall@10": round(recall(found, truth), 4)})
    return rows


def spec_label(spec: dict) -> str:
    return f"HNSW (M={spec['m']}, efConstruction={spec['ef_construction']}, {spec['storage']}, ef={spec['ef_search']})"


def milvus_row(vectors: np.ndarray, queries: np.ndarray, truth: np.ndarray, folder: Path) -> dict:
    """A milvus-lite collection of ``vectors`` (HNSW with the FAISS spec's parameters, float32)."""
    from pymilvus import DataType, MilvusClient

    spec = search_spec(max(len(vectors), FLAT_BELOW))
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    started = time.perf_counter()
    client = MilvusClient(str(folder / "scale.db"))
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=vectors.shape[1])
    params = client.prepare_index_params()
    params.add_index(field_name="vector", index_type="HNSW", metric_type="IP",
                     params={"M": spec["m"], "efConstruction": spec["ef_construction"]})
    client.create_collection("scale", schema=schema, consistency_level="Strong")
    client.create_index("scale", params, sync=False)
    client.load_collection("scale")
    before = tree_rss()  # milvus-lite's server started, the collection empty
    for begin in range(0, len(vectors), 5000):
        client.insert("scale", [{"id": begin + i, "vector": v.tolist()}
                                for i, v in enumerate(vectors[begin : begin + 5000])])
    client.flush("scale")
    client.release_collection("scale")  # load again: the sealed segments with their index
    client.load_collection("scale")
    build_s = time.perf_counter() - started
    search = {"metric_type": "IP", "params": {"ef": spec["ef_search"]}}
    client.search("scale", data=[queries[0].tolist()], anns_field="vector", limit=K, search_params=search)
    found, latency = timed(lambda q: np.array([h["id"] for h in client.search(
        "scale", data=[q.tolist()], anns_field="vector", limit=K, search_params=search)[0]]), queries)
    rss = tree_rss() - before
    disk = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    client.close()
    return {"store": f"milvus-lite HNSW (M={spec['m']}, efConstruction={spec['ef_construction']}, float32, "
                     f"ef={spec['ef_search']})", "build_s": round(build_s, 1),
            "bytes_per_passage": round(disk / len(vectors), 1), "rss_bytes_per_passage": round(rss / len(vectors), 1),
            "memory_measure": ".db folder bytes / N; RSS growth of this process and its children "
                              "from the empty collection / N",
            **latency, "recall@10": round(recall(found, truth), 4)}


def question_texts(count: int, seed: int = 1) -> list[str]:
    questions = [json.loads(line)["question"] for path in QUESTIONS for line in path.read_text().splitlines() if line]
    rng = np.random.default_rng(seed)
    return [questions[i] for i in sorted(rng.choice(len(questions), min(count, len(questions)), replace=False))]


def table(results: dict) -> str:
    lines = [f"N = {results['n']:,} passages; {results['queries']} questions; embedding "
             f"{results['embedding']['texts_per_s']} texts/s. Median similarity of the 1st, 5th and 10th nearest "
             f"passage: {results['corpus']['passage_neighbour_similarity_1_5_10']} to a passage, "
             f"{results['corpus']['question_neighbour_similarity_1_5_10']} to a question.", "",
             "| store | build | bytes/passage | query p50 | query p95 | recall@10 |", "|---|---|---|---|---|---|"]
    for r in results["stores"]:
        memory = f"{r['bytes_per_passage']:,}" + (f" on disk; {r['rss_bytes_per_passage']:,} RSS" if
                                                  "rss_bytes_per_passage" in r else "")
        build = "" if r["build_s"] is None else f"{r['build_s']} s"
        lines.append(f"| {r['store']} | {build} | {memory} | {r['query_p50_ms']} ms | {r['query_p95_ms']} ms | "
                     f"{r['recall@10']} |")
    ing = results.get("ingestion")
    if ing:
        lines += ["", f"Ingestion of {ing['texts']:,} passages: one process {ing['one_process_texts_per_s']} texts/s "
                      f"({ing['one_process_s']} s); Ray Data, actor pool of {ing['ray_workers']}: "
                      f"{ing['ray_texts_per_s']} texts/s ({ing['ray_s']} s, actor start and model load included); "
                      f"largest vector difference {ing['ray_max_abs_difference']:.2e}."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30_000, help="passages (default 30,000)")
    parser.add_argument("--text", type=Path, help="a folder of .txt files to take sentences from instead")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--chunk", type=int, default=2000, help="passages per saved chunk of vectors")
    parser.add_argument("--ray-slice", type=int, default=2000, help="passages for one process against Ray (0: skip)")
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if args.text is not None and not args.text.is_dir():
        raise SystemExit(f"--text: {args.text} is not a folder")
    began = time.perf_counter()
    docs = documents_sentences([args.text] if args.text else TEXT)
    passages = make_passages(docs, args.n)
    corpus = {"documents": len(docs), "sentences": sum(map(len, docs)),
              "distinct_sentences": len({s for d in docs for s in d}),
              "mean_characters": round(float(np.mean([len(p) for p in passages])), 1)}
    print(f"corpus: {corpus}", file=sys.stderr)
    encoder = SentenceTransformerEncoder()
    vectors, embedding = embed_cached(encoder, passages, args.cache, args.chunk)
    # Ray first: its start timed out once milvus-lite's gRPC threads were running in this process
    ingest = ingestion(encoder, passages[: args.ray_slice]) if args.ray_slice else None
    queries = encoder.encode(question_texts(args.queries))
    flat = make_search_index({"type": "flat"}, vectors)  # exact search: the reference for recall
    near, truth = flat.search(queries, K)
    corpus["question_neighbour_similarity_1_5_10"] = [round(float(np.median(near[:, i])), 3) for i in (0, 4, 9)]
    # how close the passages' neighbourhoods are (bench_scale.py set its synthetic vectors to real ones this way)
    near = flat.search(vectors[:: max(1, len(vectors) // 200)], K + 1)[0][:, 1:]  # itself left out
    corpus["passage_neighbour_similarity_1_5_10"] = [round(float(np.median(near[:, i])), 3) for i in (0, 4, 9)]
    results = {"n": args.n, "queries": len(queries), "text": str(args.text) if args.text else "repository corpora",
               "corpus": corpus, "embedding": embedding, "ingestion": ingest,
               "stores": faiss_rows(vectors, queries, truth)}
    results["stores"].append(milvus_row(vectors, queries, truth, args.cache / "milvus-lite"))
    results["total_s"] = round(time.perf_counter() - began, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(table(results) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
