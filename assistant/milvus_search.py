"""Searching one index version in Milvus: dense and BM25 top-k with a document filter, BM25
scores of given chunks, and the exact stored vectors (milvus_store.py writes and opens versions).

Both top-k lists come from Milvus; retrieval fuses them with its own weights. Dense search is
by inner product on the index the version was written with: FLAT (exact, as FAISS' flat index),
or HNSW (float32 graph, ``ef`` at least the number asked for) when the manifest's ``search``
says so. The vectors are shared by the versions of a generation, so the search keeps to the
version's own rows (its ``visible`` filter) and maps them to its chunk numbers. A document
filter is an ``in [...]`` expression, applied inside the search.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
import functools

import numpy as np
from pymilvus import MilvusClient, MilvusException

from assistant.errors import IndexCorruptError, IndexMissingError, StoreUnavailableError
from assistant.layout import REBUILD_HINT
from assistant.keyword import KeywordIndex
from assistant.search import KeywordMatches

TOP_LIMIT = 16_384  # Milvus' largest limit of one search or get
# milvus-lite's gRPC server keeps gRPC's default ping policy (no more than one ping in 5 minutes
# without data) while pymilvus pings every 10 s: an idle client was sent away ("too many pings")
# and then failed to reconnect. Its clients ping no more often than the server allows.
LITE_GRPC = {"grpc.keepalive_time_ms": 300_000, "grpc.keepalive_permit_without_calls": 0}


def collection(name: str, version: str, kind: str) -> str:
    """The collection of ``kind`` (chunks, sentences, documents) of a version written under ``name``."""
    return f"{name}__{version}__{kind}"


@contextmanager
def answering(uri: str) -> Iterator[None]:
    """Milvus' own errors as the error the user sees."""
    try:
        yield
    except MilvusException as exc:
        raise StoreUnavailableError(f"Milvus at {uri} failed to answer: {exc.message}") from exc


def connect(uri: str) -> MilvusClient:
    """A client of the Milvus server at ``uri``, or of milvus-lite for a local ``.db`` file."""
    lite = str(uri).endswith(".db")
    try:
        return MilvusClient(uri=str(uri), **({"grpc_options": LITE_GRPC} if lite else {}))
    except MilvusException as exc:
        hint = ("; a milvus-lite file is open to one process at a time: stop the other one, or serve the file "
                "with `milvus-lite server --data-dir FILE.db` and give its milvus://HOST:PORT address") if lite else \
            "; check that the Milvus server is running and that the host and port are right"
        raise StoreUnavailableError(f"Milvus at {uri} cannot be reached ({exc.message}){hint}") from exc


class MilvusSearch:
    """One version's search structures in Milvus: dense and BM25 top-k, BM25 scores, stored vectors."""

    def __init__(self, client: MilvusClient, uri: str, chunks: str, vectors: str, sentences: str,
                 chunk_ids: np.ndarray, sentence_ids: np.ndarray, serials: list[int], visible: str,
                 manifest: dict) -> None:
        """``chunks``: the version's own collection (text, BM25), by chunk number; ``vectors`` and
        ``sentences``: its generation's, where chunk and sentence ``i`` have the ids ``chunk_ids[i]`` and
        ``sentence_ids[i]``; ``serials``: each document's; ``visible``: the filter keeping the version's rows."""
        self.client = client
        self.uri = uri
        self.chunks = chunks
        self.vectors = vectors
        self.sentences = sentences
        self.chunk_ids = chunk_ids
        self.sentence_ids = sentence_ids
        self.serials = serials
        self.visible = visible
        self.chunk_of = dict(zip(chunk_ids.tolist(), range(len(chunk_ids))))
        self.dense = manifest["store"]["dense"]
        self.dimension = int(manifest["model"]["dimension"])

    def __len__(self) -> int:
        return len(self.chunk_ids)

    def dense_top(self, vector: np.ndarray, n: int, doc_nos: list[int] | None = None) -> np.ndarray:
        """Chunk numbers of the ``n`` chunks nearest ``vector`` (inner product), nearest first."""
        params = {"metric_type": "IP"}
        if "ef" in self.dense:
            params["params"] = {"ef": max(int(self.dense["ef"]), n)}
        # the listed documents' rows are all the version's; without a list, the version's rows
        where = self.visible if doc_nos is None else _in("doc", [self.serials[d] for d in doc_nos])
        hits = self._search(self.vectors, [np.asarray(vector, np.float32).tolist()], "vector", n, params, where)
        self._still_there()  # the rows searched were the version's only while it was kept
        return np.array([self.chunk_of[hit["id"]] for hit in hits], np.int64)

    def keyword(self, text: str, n: int, doc_nos: list[int] | None = None) -> KeywordMatches:
        """The ``n`` best chunks for ``text`` by Milvus' BM25, best first; other chunks scored on demand."""
        terms = terms_of(text)  # as the chunks' terms were made
        found = self._search(self.chunks, [terms], "sparse", n, {"metric_type": "BM25"},
                             _in("doc_no", doc_nos)) if terms else []
        hits = [(h["id"], _bm25(h)) for h in found]
        hits = [(i, score) for i, score in hits if score > 0]
        return KeywordMatches(np.array([i for i, _ in hits], np.int64), np.array([s for _, s in hits], np.float32),
                              functools.partial(self._keyword_scores, terms))

    def _keyword_scores(self, terms: str, ids: np.ndarray) -> np.ndarray:
        """BM25 score for ``terms`` of each chunk in ``ids`` (0.0 where it has none of them)."""
        ids = np.asarray(ids, np.int64)
        scores: dict[int, float] = {}
        if not terms:
            return np.zeros(len(ids), np.float32)
        for batch in _batches(np.unique(ids)):
            hits = self._search(self.chunks, [terms], "sparse", len(batch), {"metric_type": "BM25"},
                                _in("id", batch.tolist()))
            scores.update((hit["id"], _bm25(hit)) for hit in hits)
        return np.array([scores.get(i, 0.0) for i in ids.tolist()], np.float32)

    def chunk_vectors(self, ids: np.ndarray) -> np.ndarray:
        return self._vectors(self.vectors, self.chunk_ids[np.asarray(ids, np.int64)])

    def sentence_vectors(self, ids: np.ndarray) -> np.ndarray:
        return self._vectors(self.sentences, self.sentence_ids[np.asarray(ids, np.int64)])

    def _search(self, name: str, data: list, field: str, n: int, params: dict, where: str) -> list[dict]:
        n = min(n, len(self), TOP_LIMIT)
        if n < 1:
            return []
        with self._answering():
            return list(self.client.search(name, data=data, anns_field=field, limit=n, filter=where,
                                           search_params=params, output_fields=["id"])[0])

    def _vectors(self, name: str, ids: np.ndarray) -> np.ndarray:
        """The stored float32 vectors of ``ids`` of collection ``name``, in the order of ``ids``."""
        unique, inverse = np.unique(np.asarray(ids, np.int64), return_inverse=True)
        found: dict[int, list[float]] = {}
        with self._answering():
            for batch in _batches(unique):
                found.update((r["id"], r["vector"]) for r in self.client.get(name, ids=batch.tolist(),
                                                                              output_fields=["vector"]))
        if len(found) != len(unique):
            self._still_there()
            raise IndexCorruptError(f"the index in Milvus at {self.uri} is damaged (vectors are missing); "
                                    f"{REBUILD_HINT}")
        table = np.array([found[i] for i in unique.tolist()], np.float32).reshape(len(unique), self.dimension)
        return table[inverse]

    def _still_there(self) -> None:
        """Raise IndexMissingError when the version was dropped (its own collections go before its rows)."""
        with answering(self.uri):
            there = self.client.has_collection(self.chunks)
        if not there:
            raise IndexMissingError("the index version this assistant opened was removed by two newer builds; "
                                    "open the index again (restart the app)")

    @contextmanager
    def _answering(self) -> Iterator[None]:
        """Milvus' errors for the user; a version dropped since it was opened says so."""
        try:
            with answering(self.uri):
                yield
        except StoreUnavailableError:
            self._still_there()
            raise


def terms_of(text: str) -> str:
    """The BM25 terms of ``text`` as the folder store makes them (keyword.py: bm25s' tokenizer, English
    stop words, the Snowball stemmer), joined by spaces: Milvus' BM25 then counts the same terms, for
    the chunks (milvus_store writes them) and for the question."""
    return " ".join(KeywordIndex.terms(text))


def _bm25(hit: dict) -> float:
    """The BM25 score of a hit: Milvus gives it as the distance, milvus-lite 3.2.2 negated."""
    return abs(float(hit["distance"]))


def _in(field: str, values: Iterable[int] | None) -> str:
    """A filter keeping rows whose ``field`` is one of ``values`` (None: every row; an empty
    list: none, as in LocalSearch)."""
    if values is None:
        return ""
    values = [int(v) for v in values]
    return f"{field} in {values}" if values else f"{field} < 0"  # numbers are never negative


def _batches(ids: np.ndarray, size: int = TOP_LIMIT) -> Iterator[np.ndarray]:
    for begin in range(0, len(ids), size):
        yield ids[begin : begin + size]
