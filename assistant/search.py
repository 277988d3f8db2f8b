"""What retrieval asks of an index version's search structures, and the embedded store's answer.

``SearchStore`` is the seam between retrieval and the place where vectors and the keyword index
live: dense and keyword top-k with a document filter, the keyword scores of other chunks, and
the exact stored vectors of chunks and sentences. Chunks and sentences are numbered as in
``Index.chunk_rows`` and ``Index.sentence_rows``; documents by their place in ``Index.documents``.

``LocalSearch`` is the embedded store of the index folder: FAISS over the chunk vectors
(``ann.py``), BM25 over their texts (``keyword.py``) and the vectors as NumPy arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import faiss
import numpy as np

from assistant import ann
from assistant.keyword import KeywordIndex


@dataclass(frozen=True)
class KeywordMatches:
    """The chunks scoring best for a text by BM25, and the scores of any other chunks for it."""

    ids: np.ndarray  # chunk numbers, best first, every score above 0
    scores: np.ndarray
    score: Callable[[np.ndarray], np.ndarray]  # chunk numbers -> their scores (0 without any of the terms)


class SearchStore(Protocol):
    """One index version's search structures."""

    def __len__(self) -> int: ...  # the number of chunks

    def dense_top(self, vector: np.ndarray, n: int, doc_nos: list[int] | None = None) -> np.ndarray:
        """Numbers of the ``n`` chunks nearest ``vector`` (inner product), nearest first;
        only chunks of the documents ``doc_nos`` when given."""
        ...

    def keyword(self, text: str, n: int, doc_nos: list[int] | None = None) -> KeywordMatches:
        """The ``n`` chunks scoring best for ``text`` by BM25 (of the documents ``doc_nos`` when given)."""
        ...

    def chunk_vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored unit vectors (float32) of the chunks ``ids``."""
        ...

    def sentence_vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored unit vectors (float32) of the sentences ``ids``."""
        ...


class LocalSearch:
    """FAISS, bm25s and NumPy arrays, as loaded from an index version folder."""

    def __init__(self, search_index: faiss.Index, keyword: KeywordIndex, chunk_docs: np.ndarray,
                 chunk_vectors: np.ndarray, sentence_vectors: np.ndarray, exact: bool) -> None:
        self.search_index = search_index
        self.keyword_index = keyword
        self.chunk_docs = chunk_docs  # the document number of each chunk
        self._chunk_vectors = chunk_vectors
        self._sentence_vectors = sentence_vectors
        self.exact = exact  # whether the FAISS index is flat

    def __len__(self) -> int:
        return len(self.chunk_docs)

    def dense_top(self, vector: np.ndarray, n: int, doc_nos: list[int] | None = None) -> np.ndarray:
        n = min(n, len(self))
        if n == 0:
            return np.empty(0, np.int64)
        if doc_nos is None:
            return ann.search(self.search_index, vector, n)[1]
        ids = np.flatnonzero(np.isin(self.chunk_docs, doc_nos))
        if self.exact:
            return ann.search_selected(self.search_index, vector, n, ids)
        # an approximate index searched with a filter finds too few: score the allowed chunks exactly
        if len(ids) > n:
            scores = self._chunk_vectors[ids] @ vector
            top = np.argpartition(-scores, n - 1)[:n]
            ids = ids[top[np.argsort(-scores[top], kind="stable")]]
        return ids

    def keyword(self, text: str, n: int, doc_nos: list[int] | None = None) -> KeywordMatches:
        every = self.keyword_index.scores(text)  # one BM25 pass per question
        scores = every if doc_nos is None else np.where(np.isin(self.chunk_docs, doc_nos), every, 0.0)
        top = np.argpartition(-scores, min(n, len(scores) - 1))[:n] if len(scores) and n > 0 else np.empty(0, np.int64)
        top = top[scores[top] > 0]
        top = top[np.argsort(-scores[top], kind="stable")].astype(np.int64)
        return KeywordMatches(top, scores[top].astype(np.float32), every.__getitem__)

    def chunk_vectors(self, ids: np.ndarray) -> np.ndarray:
        return self._chunk_vectors[ids]

    def sentence_vectors(self, ids: np.ndarray) -> np.ndarray:
        return self._sentence_vectors[ids]
