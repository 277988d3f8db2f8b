"""Keyword scoring: BM25 over chunks (bm25s), built once per index version, and the same terms for any text.

Texts become terms with bm25s' own tokenizer: lower case, its default word pattern, its
English stop words and the Snowball stemmer (PyStemmer). A build indexes the chunk texts and
saves the BM25 matrices and vocabulary with the index version (:meth:`KeywordIndex.save`);
opening the index memory-maps them (:meth:`KeywordIndex.load`), nothing is tokenised again.
"""

from __future__ import annotations

import threading
from functools import cached_property
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from bm25s.tokenization import Tokenizer

STOPWORDS = "en"
_local = threading.local()  # a Snowball stemmer per thread: one must not be called concurrently
# The files of a saved BM25 index, as bm25s names them when asked (BM25.save and BM25.load)
FILES = {
    "data_name": "bm25.data.npy",
    "indices_name": "bm25.indices.npy",
    "indptr_name": "bm25.indptr.npy",
    "vocab_name": "bm25.vocab.json",
    "params_name": "bm25.params.json",
}


def _tokenizer() -> Tokenizer:
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    return Tokenizer(stemmer=stemmer, stopwords=STOPWORDS)


class KeywordIndex:
    """BM25 (Lucene variant) over a list of texts, English stemming and stop words."""

    def __init__(self, bm25: bm25s.BM25) -> None:
        self.bm25 = bm25
        self.size = int(bm25.scores["num_docs"])
        self._idf: dict[str, float] = {}

    @classmethod
    def build(cls, texts: list[str]) -> KeywordIndex:
        """Tokenise and index ``texts`` (an index build does this, never a load)."""
        bm25 = bm25s.BM25()
        bm25.index(_tokenizer().tokenize(texts, show_progress=False, return_as="tuple"), show_progress=False)
        return cls(bm25)

    def save(self, folder: Path) -> list[str]:
        """Write the index into ``folder`` without pickle; the names of the files written."""
        self.bm25.save(folder, allow_pickle=False, show_progress=False, **FILES)
        return list(FILES.values())

    @classmethod
    def load(cls, folder: Path) -> KeywordIndex:
        """The index saved in ``folder``, its matrices memory-mapped."""
        return cls(bm25s.BM25.load(folder, mmap=True, allow_pickle=False, show_progress=False, **FILES))

    @property
    def vocabulary(self) -> dict[str, int]:
        """Stemmed term -> id for every term of the indexed texts."""
        return self.bm25.vocab_dict

    @staticmethod
    def terms(text: str) -> list[str]:
        """Stemmed, lower-cased terms of ``text`` without stop words, unknown ones included.

        A tokenizer of its own per call: bm25s' tokenizer keeps a vocabulary, which must neither
        grow with every question nor be shared between threads.
        """
        tokenizer = _tokenizer()
        ids = next(tokenizer.streaming_tokenize([text], allow_empty=False))
        return tokenizer.decode([ids])[0]

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
        return np.diff(self.bm25.scores["indptr"])  # the matrix is by term: a term's column holds its documents
