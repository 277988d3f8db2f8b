"""Question -> ranked Passages: dense (FAISS) and keyword (BM25) retrieval, fused.

Each candidate chunk gets three signals: BM25 over chunks (divided by the best BM25 score),
the chunk's cosine similarity to the question, and the best cosine similarity of one of its
sentences (sentence vectors are precomputed at index time). The dense signals are min-max
scaled over the candidates and the three are blended with the weights in Settings, tuned
on the development sets (bench/README.md). Overlapping chunks of one document are merged
into one passage, so results never repeat each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from assistant.authorship import asks_for_author
from assistant.config import Settings
from assistant.embedding import Encoder
from assistant.errors import InputError
from assistant.layout import Index
from assistant.types import Citation, Passage, Span


@dataclass(frozen=True)
class Hit:
    """One ranked passage (its score is the fused score of its best chunk)."""

    passage: Passage


@dataclass(frozen=True)
class Candidates:
    """Candidate chunks and their signals, before fusion."""

    ids: np.ndarray
    dense: np.ndarray
    keyword: np.ndarray
    sentence: np.ndarray
    sentence_scores: dict[int, float]


@dataclass(frozen=True)
class Retrieval:
    """What one search found: ranked hits, the query vector and the sentence similarities."""

    question: str
    vector: np.ndarray
    hits: list[Hit]
    sentence_scores: dict[int, float]
    notices: list[str] = field(default_factory=list)

    @property
    def passages(self) -> list[Passage]:
        return [hit.passage for hit in self.hits]


def clean_question(question: str, limit: int) -> tuple[str, list[str]]:
    """The question stripped and cut to ``limit`` characters, with a notice if it was cut.

    Raises InputError for an empty question.
    """
    if not isinstance(question, str):
        raise InputError(f"the question must be text, got {type(question).__name__}")
    text = "".join(ch if ch.isprintable() or ch in "\n\t" else " " for ch in question).strip()
    if not text:
        raise InputError("the question is empty: type a question about the documents")
    notices = []
    if len(text) > limit:
        text = text[:limit]
        notices.append(f"the question was longer than {limit} characters and was cut to that length")
    return text, notices


def _minmax(values: np.ndarray) -> np.ndarray:
    if len(values) == 0:
        return values
    low, high = float(values.min()), float(values.max())
    if high - low < 1e-9:
        return np.ones_like(values) if high > 0 else np.zeros_like(values)
    return (values - low) / (high - low)


class Retriever:
    """Ranks the passages of one loaded index for a question."""

    def __init__(self, index: Index, encoder: Encoder, settings: Settings) -> None:
        self.index = index
        self.encoder = encoder
        self.settings = settings
        self.search = index.searcher
        spans = index.chunk_rows[:, 2] - index.chunk_rows[:, 1]
        self.max_passage_chars = 2 * int(spans.max()) if len(spans) else 0

    def retrieve(self, question: str, *, k: int | None = None, doc_ids: list[str] | None = None,
                 vector: np.ndarray | None = None) -> Retrieval:
        """Rank passages for ``question``; ``doc_ids`` restricts the search to those documents.

        Raises InputError for an empty question, a bad ``k`` or an unknown document id.
        """
        settings = self.settings
        k = settings.k if k is None else k
        if not isinstance(k, int) or k < 1:
            raise InputError(f"k must be at least 1, got {k!r}")
        text, notices = clean_question(question, settings.max_question_chars)
        doc_nos = self._doc_numbers(doc_ids)
        if vector is None:
            vector = self.encoder.encode([text])[0]
        n = min(max(settings.candidates, 2 * k), len(self.index))
        found = self.candidates(text, vector, n, doc_nos)
        return Retrieval(text, vector, self.rank(found, k), found.sentence_scores, notices)

    def candidates(self, text: str, vector: np.ndarray, n: int, doc_nos: list[int] | None = None) -> Candidates:
        """The top ``n`` chunks of each retriever, with every signal computed for all of them."""
        search = self.search
        keyword = search.keyword(text, n, doc_nos)
        keyword_max = float(keyword.scores[0]) if len(keyword.ids) else 0.0
        chosen = set(search.dense_top(vector, n, doc_nos).tolist())
        if self.settings.retriever != "dense":
            chosen |= set(keyword.ids.tolist())
        ids = np.fromiter(sorted(chosen), dtype=np.int64)
        dense = search.chunk_vectors(ids) @ vector
        kw = keyword.score(ids) / keyword_max if keyword_max > 0 else np.zeros(len(ids), np.float32)
        if asks_for_author(text):  # a chunk naming its document's author matches fully
            kw = np.where(self.index.chunk_names_author[ids], 1.0, kw).astype(np.float32)
        # one product for the sentences of all candidates, then the best per chunk
        bounds = self.index.chunk_sentences[ids]
        sizes = np.maximum(bounds[:, 1] - bounds[:, 0], 0)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        sentence_ids = np.repeat(bounds[:, 0] - offsets, sizes) + np.arange(int(sizes.sum()))
        sims = search.sentence_vectors(sentence_ids) @ vector if len(sentence_ids) else np.empty(0, np.float32)
        best = np.zeros(len(ids), np.float32)
        nonempty = sizes > 0
        if nonempty.any():
            best[nonempty] = np.maximum.reduceat(sims, offsets[nonempty])
        return Candidates(ids, dense, kw, best, dict(zip(sentence_ids.tolist(), sims.tolist())))

    def rank(self, found: Candidates, k: int) -> list[Hit]:
        """Fuse the signals as Settings says and merge the ranked chunks into ``k`` passages."""
        settings = self.settings
        if settings.retriever == "dense":
            fused = found.dense
        elif settings.retriever == "keyword":
            fused = found.keyword
        else:
            fused = (settings.w_keyword * found.keyword + settings.w_dense * _minmax(found.dense)
                     + settings.w_sentence * _minmax(found.sentence))
        order = np.argsort(-fused, kind="stable")
        return self._merge([(int(found.ids[j]), float(fused[j])) for j in order], k)

    def _doc_numbers(self, doc_ids: list[str] | None) -> list[int] | None:
        if not doc_ids:
            return None
        numbers = self.index.doc_numbers
        unknown = [d for d in doc_ids if d not in numbers]
        if unknown:
            raise InputError(f"unknown document id(s): {', '.join(unknown)}")
        return [numbers[d] for d in doc_ids]

    def _merge(self, ranked: list[tuple[int, float]], k: int) -> list[Hit]:
        """Turn ranked chunks into at most ``k`` passages that never overlap.

        A chunk overlapping passages already chosen is merged with them while the union
        stays within two chunks' length, and dropped otherwise.
        """
        limit = self.max_passage_chars
        groups: list[dict] = []
        for chunk_no, score in ranked:
            if len(groups) >= k:
                break
            doc_no, start, end = (int(x) for x in self.index.chunk_rows[chunk_no])
            touching = [g for g in groups if g["doc"] == doc_no and g["start"] < end and start < g["end"]]
            if not touching:
                groups.append({"doc": doc_no, "start": start, "end": end, "score": score})
                continue
            lo = min([start] + [g["start"] for g in touching])
            hi = max([end] + [g["end"] for g in touching])
            if hi - lo > limit:
                continue
            first, *rest = touching  # groups keep rank order, so the first is the best
            first["start"], first["end"] = lo, hi
            groups = [g for g in groups if not any(g is r for r in rest)]
        hits = []
        for rank, group in enumerate(groups, start=1):
            citation = Citation.of(self.index.documents[group["doc"]], Span(group["start"], group["end"]))
            hits.append(Hit(Passage(rank, citation, round(group["score"], 6))))
        return hits
