"""Keyword scoring: BM25 over chunks (bm25s) and the same stemmed terms for sentences."""

from __future__ import annotations

import re
from functools import cached_property

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN
from bm25s.tokenization import Tokenizer

_WORD = re.compile(r"(?u)\b\w\w+\b")
_STOPWORDS = frozenset(STOPWORDS_EN)


class KeywordIndex:
    """BM25 (Lucene variant) over a list of texts, English stemming and stop words."""

    def __init__(self, texts: list[str]) -> None:
        self.stemmer = Stemmer.Stemmer("english")
        self.tokenizer = Tokenizer(stemmer=self.stemmer.stemWord, stopwords="en")
        ids = self.tokenizer.tokenize(texts, show_progress=False, return_as="ids")
        self.bm25 = bm25s.BM25()
        self.bm25.index(ids, show_progress=False)
        self.size = len(texts)
        self._idf: dict[str, float] = {}

    @cached_property
    def vocabulary(self) -> dict[str, int]:
        """Stemmed term -> id for every term of the indexed texts."""
        return self.tokenizer.get_vocab_dict()

    def terms(self, text: str) -> list[str]:
        """Stemmed, lower-cased terms of ``text`` without stop words, unknown ones included.

        The same steps as the BM25 tokenizer (bm25s' default word pattern, its English stop
        words, the Snowball stemmer), so terms compare with the indexed vocabulary.
        """
        words = [w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]
        return self.stemmer.stemWords(words)

    def terms_many(self, texts: list[str]) -> list[list[str]]:
        """``terms`` of each text."""
        return [self.terms(text) for text in texts]

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every text for ``query`` (zeros when no query term is known)."""
        vocabulary = self.vocabulary
        known = [vocabulary[t] for t in self.terms(query) if t in vocabulary and t]
        if not known:
            return np.zeros(self.size, dtype=np.float32)
        return self.bm25.get_scores(known).astype(np.float32)

    def idf(self, term: str) -> float:
        """Inverse document frequency of a stemmed term; an unknown term counts as rarest."""
        cached = self._idf.get(term)
        if cached is None:
            token_id = self.vocabulary.get(term)
            df = 0 if token_id is None else self._document_frequency[token_id]
            cached = self._idf[term] = float(np.log(1 + (self.size - df + 0.5) / (df + 0.5)))
        return cached

    @cached_property
    def _document_frequency(self) -> np.ndarray:
        indptr = self.bm25.scores["indptr"]
        return np.diff(indptr)
