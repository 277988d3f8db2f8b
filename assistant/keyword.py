"""Keyword scoring: BM25 over chunks (bm25s) and the same stemmed terms for sentences."""

from __future__ import annotations

from functools import cached_property

import bm25s
import numpy as np
import Stemmer
from bm25s.tokenization import Tokenizer


class KeywordIndex:
    """BM25 (Lucene variant) over a list of texts, English stemming and stop words."""

    def __init__(self, texts: list[str]) -> None:
        self.tokenizer = Tokenizer(stemmer=Stemmer.Stemmer("english").stemWord, stopwords="en")
        ids = self.tokenizer.tokenize(texts, show_progress=False, return_as="ids")
        self.bm25 = bm25s.BM25()
        self.bm25.index(ids, show_progress=False)
        self.size = len(texts)

    @cached_property
    def _vocab(self) -> dict[str, int]:
        return self.tokenizer.get_vocab_dict()

    def terms(self, text: str) -> list[str]:
        """Stemmed, lower-cased terms of ``text`` without stop words."""
        stems = self.tokenizer.tokenize([text], update_vocab=False, show_progress=False, return_as="string")
        return stems[0]

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every text for ``query`` (zeros when no query term is known)."""
        ids = self.tokenizer.tokenize([query], update_vocab=False, show_progress=False, return_as="ids")[0]
        known = [i for i in ids if i != self._vocab[""]]
        if not known:
            return np.zeros(self.size, dtype=np.float32)
        return self.bm25.get_scores(known).astype(np.float32)

    def idf(self, term: str) -> float:
        """Inverse document frequency of a stemmed term over the indexed texts (0 if unknown)."""
        token_id = self._vocab.get(term)
        if token_id is None:
            return 0.0
        df = self._document_frequency[token_id]
        return float(np.log(1 + (self.size - df + 0.5) / (df + 0.5)))

    @cached_property
    def _document_frequency(self) -> np.ndarray:
        indptr = self.bm25.scores["indptr"]
        return np.diff(indptr)
