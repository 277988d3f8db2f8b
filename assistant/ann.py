"""The approximate-nearest-neighbour (FAISS) index of the chunk vectors: choice, build, search.

The index is exact (flat) for small corpora and HNSW for large ones (:func:`search_spec`).
The choice is recorded in the manifest as ``search`` and configured again at load. The exact
float32 vectors are always kept beside it (``chunk_vectors.npy``), so retrieval scores its
candidates exactly whatever the index type. The other index types compared in
bench/bench_scale.py (IVF) are built there, from the same pieces (:func:`fill`).
"""

from __future__ import annotations

import faiss
import numpy as np

# The search index by corpus size, from bench/bench_scale.py (bench/README.md, "Scale"):
# exact search of one question takes about 0.6 ms at 10k vectors but 7.5-25 ms at 100k, so from
# FLAT_BELOW on the store uses HNSW with 8-bit scalar-quantised storage; its graph and codes
# take 0.43 of the memory of float32 vectors. Its recall@10 (after the exact re-scoring that
# retrieval does) falls as the corpus grows at a fixed efSearch: 0.995 at 100k and 0.98 at
# 300k with 256, 0.9965 at 300k with 512 (4 ms), hence the larger efSearch from EF_512_FROM.
# IVF needed too many probes for recall 0.95 on these vectors.
FLAT_BELOW = 20_000
EF_512_FROM = 500_000
HNSW = {"type": "hnsw", "m": 32, "ef_construction": 64, "storage": "sq8"}
TRAIN_SAMPLE = 100_000  # vectors a quantiser (or the benchmark's IVF centroids) is trained on
ADD_BATCH = 100_000
# FAISS's OpenMP threads are set once per process, where it starts
# (``assistant.runtime.configure_process``): one in a process that answers questions, every
# core in one that builds an index (bench/README.md, "Threads on a shared two-core machine").


def search_spec(n: int) -> dict:
    """The FAISS index for ``n`` chunk vectors: exact below FLAT_BELOW, else HNSW (see above).

    The result is recorded in the manifest as ``search`` and read back by ``load_index``.
    """
    if n < FLAT_BELOW:
        return {"type": "flat"}
    return {**HNSW, "ef_search": 512 if n >= EF_512_FROM else 256}


def factory_string(spec: dict) -> str:
    """The ``faiss.index_factory`` description of ``spec`` (flat, or HNSW with its storage)."""
    kind = spec["type"]
    if kind == "flat":
        return "Flat"
    if kind == "hnsw":
        storage = spec.get("storage", "flat")
        return f"HNSW{spec['m']}" + ("" if storage == "flat" else f"_{storage.upper()}")
    raise ValueError(f"unknown search index type {kind!r}")


def configure_search_index(search_index: faiss.Index, spec: dict) -> None:
    """Set the query-time parameter in ``spec`` (HNSW's ef_search) on ``search_index``."""
    if spec["type"] == "hnsw" and "ef_search" in spec:
        faiss.ParameterSpace().set_index_parameter(search_index, "efSearch", int(spec["ef_search"]))


def fill(search_index: faiss.Index, vectors: np.ndarray) -> faiss.Index:
    """Train ``search_index`` if it needs it (on a fixed sample) and add ``vectors`` in order."""
    if not search_index.is_trained:
        rng = np.random.default_rng(0)  # the same sample every build: the same index
        sample = vectors if len(vectors) <= TRAIN_SAMPLE else \
            vectors[np.sort(rng.choice(len(vectors), TRAIN_SAMPLE, replace=False))]
        search_index.train(sample)
    for begin in range(0, len(vectors), ADD_BATCH):
        search_index.add(vectors[begin : begin + ADD_BATCH])
    return search_index


def make_search_index(spec: dict, vectors: np.ndarray) -> faiss.Index:
    """A FAISS inner-product index of type ``spec`` holding ``vectors`` (rows in order)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    search_index = faiss.index_factory(vectors.shape[1], factory_string(spec), faiss.METRIC_INNER_PRODUCT)
    if spec["type"] == "hnsw":
        faiss.downcast_index(search_index).hnsw.efConstruction = int(spec["ef_construction"])
    fill(search_index, vectors)
    configure_search_index(search_index, spec)
    return search_index


def _query(vector: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(vector.reshape(1, -1), np.float32)


def search(search_index: faiss.Index, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Inner-product scores and row numbers of the ``k`` nearest rows the index finds."""
    scores, ids = search_index.search(_query(vector), k)
    keep = ids[0] >= 0
    return scores[0][keep], ids[0][keep]


def search_selected(search_index: faiss.Index, vector: np.ndarray, k: int, ids: np.ndarray) -> np.ndarray:
    """Row numbers of the ``k`` nearest among ``ids``, with FAISS's ID selector (for a flat index)."""
    selector = faiss.IDSelectorBatch(np.asarray(ids, np.int64))
    _, found = search_index.search(_query(vector), k, params=faiss.SearchParameters(sel=selector))
    return found[0][found[0] >= 0]
