"""The SearchStore contract (assistant/search.py), checked against brute force on the store the
suite searches: the embedded store, or Milvus in a Milvus run (ASSISTANT_TEST_STORE, conftest.py).

What retrieval relies on whatever the store: dense top-k nearest first and only within the
documents asked for; BM25 top-k best first with scores above 0, the same scores for any other
chunk; the stored vectors of chunks and sentences. The expected values are computed here from the
index folder's arrays and a BM25 built afresh from the chunk texts, not taken from the store.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ON_MILVUS, FakeEncoder

from assistant.config import Settings
from assistant.keyword import KeywordIndex
from assistant.pipeline import Assistant
from assistant.search import SearchStore
from assistant.store import Index, build_index, load_index

QUESTIONS = ["How far does the glacier advance?", "copper mine ore", "budget percent museum", "otters"]


# Milvus' BM25 keeps the (k1 + 1) factor of the formula (k1 = 1.5), which bm25s' Lucene variant
# drops; retrieval divides every keyword score by the best one, so the factor changes no ranking.
BM25_FACTOR = 2.5 if ON_MILVUS else 1.0


@pytest.fixture
def index(fake_settings: Settings) -> Index:
    """The index folder's version, whose arrays give the expected values."""
    build_index(fake_settings, FakeEncoder())
    return load_index(fake_settings.index_dir)


@pytest.fixture
def search(index: Index, fake_settings: Settings) -> SearchStore:
    """What retrieval searches that version with, opened as the assistant opens it."""
    return Assistant.open(fake_settings.with_(reader="none"), FakeEncoder()).index.searcher


def test_dense_top_is_the_nearest_first_within_the_documents_asked(index: Index, search: SearchStore) -> None:
    vectors, docs = index.chunk_vectors, index.chunk_rows[:, 0]
    for question in QUESTIONS:
        vector = FakeEncoder().encode([question])[0]
        scores = vectors @ vector
        for doc_nos in (None, [0], [1, 2]):
            allowed = np.ones(len(index), bool) if doc_nos is None else np.isin(docs, doc_nos)
            n = min(3, int(allowed.sum()))
            found = search.dense_top(vector, 3, doc_nos)
            expected = np.sort(np.where(allowed, scores, -np.inf))[::-1][:n]
            assert len(found) == n and set(docs[found]) <= set(docs[allowed])
            assert np.allclose(scores[found], expected, atol=1e-6)  # nearest first


def test_keyword_matches_are_bm25_best_first_and_score_any_chunk(index: Index, search: SearchStore) -> None:
    fresh = KeywordIndex.build([index.chunk(i).text for i in range(len(index))])
    docs = index.chunk_rows[:, 0]
    for question in QUESTIONS + ["zzz unknown words"]:
        truth = fresh.scores(question)
        for doc_nos in (None, [1]):
            matches = search.keyword(question, 4, doc_nos)
            allowed = truth if doc_nos is None else np.where(np.isin(docs, doc_nos), truth, 0)
            assert np.all(matches.scores > 0) and np.all(np.diff(matches.scores) <= 0)
            assert np.allclose(matches.scores, BM25_FACTOR * np.sort(allowed[allowed > 0])[::-1][:4], atol=1e-5)
            assert np.allclose(matches.score(np.arange(len(index))), BM25_FACTOR * truth, atol=1e-5)
    assert len(search.keyword("zzz unknown words", 4).ids) == 0


def test_vectors_are_the_stored_ones(index: Index, search: SearchStore) -> None:
    ids = np.array([2, 0, 1])
    assert np.array_equal(search.chunk_vectors(ids), index.chunk_vectors[ids])
    assert np.array_equal(search.sentence_vectors(ids), index.sentence_vectors[ids])
    assert len(search) == len(index)


def test_the_suite_searches_the_store_it_was_asked_for(search: SearchStore) -> None:
    """ASSISTANT_TEST_STORE reaches what the assistant opens: a Milvus run that fell back to the
    folder would pass every other test without testing Milvus."""
    assert type(search).__name__ == ("MilvusSearch" if ON_MILVUS else "LocalSearch")
