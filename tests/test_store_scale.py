"""The store at scale: the embedding cache, the search index chosen by size, exact vectors kept."""

from __future__ import annotations

import json
import sys

import faiss
import numpy as np
import pytest

from assistant import ann, store
from assistant.config import Settings
from assistant.pipeline import Assistant
from assistant.store import build_index, check_corpus, current_version, load_index, make_search_index, search_spec
from conftest import REPO, FakeEncoder

sys.path.insert(0, str(REPO / "bench"))
from bench_memory import per_chunk  # noqa: E402


def test_rebuild_of_unchanged_text_embeds_nothing(fake_settings: Settings) -> None:
    first = build_index(fake_settings, FakeEncoder())
    assert first.chunks_embedded == first.chunks > 0 and first.sentences_embedded == first.sentences > 0
    before = load_index(fake_settings.index_dir)

    encoder = FakeEncoder()
    report = build_index(fake_settings, encoder, rebuild=True)
    assert encoder.encoded == [] and report.chunks_embedded == 0 and report.sentences_embedded == 0
    after = load_index(fake_settings.index_dir)
    assert after.version != before.version
    assert np.array_equal(after.chunk_vectors, before.chunk_vectors)
    assert np.array_equal(after.sentence_vectors, before.sentence_vectors)
    assert np.array_equal(after.chunk_keys, before.chunk_keys)


def test_cached_vectors_are_the_encoders_vectors(fake_settings: Settings) -> None:
    build_index(fake_settings, FakeEncoder())
    build_index(fake_settings, FakeEncoder(), rebuild=True)
    index = load_index(fake_settings.index_dir)
    texts = [index.chunk(i).text for i in range(len(index))]
    assert np.allclose(index.chunk_vectors, FakeEncoder().encode(texts), atol=1e-6)
    sentences = [doc.text[span.start : span.end] for doc, span in map(index.sentence, range(len(index.sentence_rows)))]
    assert np.allclose(index.sentence_vectors, FakeEncoder().encode(sentences), atol=1e-6)


def test_another_model_never_reuses_cached_vectors(fake_settings: Settings) -> None:
    build_index(fake_settings, FakeEncoder())

    class Other(FakeEncoder):
        name = "other-model"

        def encode(self, texts, **kwargs):  # noqa: ANN001, ANN201
            return -super().encode(texts, **kwargs)  # other vectors for the same texts

    encoder = Other()
    report = build_index(fake_settings.with_(model="other-model"), encoder, rebuild=True)
    assert report.chunks_embedded == report.chunks and report.sentences_embedded == report.sentences
    index = load_index(fake_settings.index_dir, "other-model")
    assert np.allclose(index.chunk_vectors[0], -FakeEncoder().encode([index.chunk(0).text])[0], atol=1e-6)
    assert not set(index.chunk_keys.tolist()) & set(store.text_keys("fake-encoder", [index.chunk(0).text]).tolist())


def test_edit_embeds_only_the_changed_text(fake_settings: Settings) -> None:
    path = fake_settings.corpus_dir / "repeat.txt"
    path.write_text("\n\n".join(f"Paragraph {i} tells of lantern number {i} on the quay." for i in range(12)) + "\n")
    build_index(fake_settings, FakeEncoder())
    path.write_text(path.read_text().replace("lantern number 11", "lantern number eleven"))
    encoder = FakeEncoder()
    report = build_index(fake_settings, encoder)
    assert report.changed == ["repeat"]
    assert report.sentences_embedded == 1 and 1 <= report.chunks_embedded < len(_chunks_of(fake_settings, "repeat"))
    assert any("lantern number eleven" in text for text in encoder.encoded)
    assert all("lantern number 3 " not in text for text in encoder.encoded)


def _chunks_of(settings: Settings, doc_id: str) -> list[int]:
    index = load_index(settings.index_dir)
    return [i for i in range(len(index)) if index.chunk(i).doc_id == doc_id]


def test_damaged_cache_is_ignored_by_rebuild(fake_settings: Settings) -> None:
    build_index(fake_settings, FakeEncoder())
    version = current_version(fake_settings.index_dir)
    vectors = fake_settings.index_dir / version / "chunk_vectors.npy"
    vectors.write_bytes(vectors.read_bytes()[:-8])
    report = build_index(fake_settings, FakeEncoder(), rebuild=True)
    assert report.chunks_embedded == report.chunks  # nothing taken from a file that fails its checksum
    assert len(load_index(fake_settings.index_dir)) == report.chunks


def test_older_format_is_rebuilt_not_refused(fake_settings: Settings) -> None:
    build_index(fake_settings, FakeEncoder())
    manifest_path = fake_settings.index_dir / current_version(fake_settings.index_dir) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["format_version"] = 1
    manifest_path.write_text(json.dumps(manifest))
    assert set(check_corpus(fake_settings).changed) == set(manifest["documents"])  # `make index` rebuilds it
    report = build_index(fake_settings, FakeEncoder())
    assert report.chunks_embedded == report.chunks  # an old format's files are not trusted as a cache
    assert load_index(fake_settings.index_dir).manifest["format_version"] == store.FORMAT_VERSION


def test_small_corpus_gets_an_exact_index(fake_settings: Settings) -> None:
    report = build_index(fake_settings, FakeEncoder())
    index = load_index(fake_settings.index_dir)
    assert search_spec(report.chunks) == {"type": "flat"} == index.manifest["search"]
    assert index.exact and isinstance(index.searcher.search_index, faiss.IndexFlatIP)
    assert report.search_index == "Flat"


def test_choice_by_size() -> None:
    assert search_spec(1)["type"] == "flat"
    assert search_spec(store.FLAT_BELOW - 1)["type"] == "flat"
    large = search_spec(store.FLAT_BELOW)
    assert large["type"] != "flat"
    assert search_spec(10 * store.FLAT_BELOW)["type"] != "flat"


def _like_embeddings(n: int, queries: int, dim: int = 384, latent: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors with the neighbourhood structure of sentence embeddings (bench/bench_scale.py)."""
    rng = np.random.default_rng(7)
    mixing = rng.standard_normal((latent, dim)).astype(np.float32) / np.sqrt(latent)
    centres = rng.standard_normal((n // 300, latent)).astype(np.float32)

    def draw(m: int) -> np.ndarray:
        z = centres[rng.integers(0, len(centres), m)] + 1.8 * rng.standard_normal((m, latent), np.float32)
        x = z @ mixing + 0.3 * np.sqrt(latent / dim) * rng.standard_normal((m, dim), np.float32)
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    return draw(n), draw(queries)


def test_large_corpus_index_finds_the_exact_neighbours() -> None:
    """From the size where the store leaves exact search, recall@10 against exact is at least 0.95."""
    n = store.FLAT_BELOW
    vectors, queries = _like_embeddings(n, 100)
    spec = search_spec(n)
    index = make_search_index(spec, vectors)
    assert index.ntotal == n and not isinstance(index, faiss.IndexFlat)
    depth = Settings().candidates  # retrieval asks for this many and re-scores them exactly
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    found = []
    for q, best in zip(queries, truth):
        ids = index.search(q.reshape(1, -1), depth)[1][0]
        ids = ids[ids >= 0]
        top = ids[np.argsort(-(vectors[ids] @ q))[:10]]
        found.append(len(set(top.tolist()) & set(best.tolist())) / 10)
    assert np.mean(found) >= 0.95, np.mean(found)


def test_approximate_index_round_trip(fake_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Forced onto HNSW, a small corpus loads, answers and filters like the exact index does."""
    encoder = FakeEncoder()
    build_index(fake_settings, encoder)
    exact = Assistant.open(fake_settings, encoder)
    monkeypatch.setattr(ann, "FLAT_BELOW", 1)
    report = build_index(fake_settings, encoder, rebuild=True)
    assert report.chunks_embedded == 0 and report.search_index.startswith("HNSW")
    approx = Assistant.open(fake_settings, encoder)
    assert approx.index.manifest["search"]["type"] == "hnsw" and not approx.index.exact
    every = np.arange(len(exact.index))  # the stored vectors, wherever the store keeps them
    assert np.array_equal(approx.index.searcher.chunk_vectors(every), exact.index.searcher.chunk_vectors(every))
    for question in ("copper mine", "glacier advances metres", "budget percent"):
        a, b = exact.ask(question), approx.ask(question)
        assert [(p.citation.doc_id, p.citation.span) for p in a.passages] == [
            (p.citation.doc_id, p.citation.span) for p in b.passages]
    only = approx.ask("copper mine", doc_ids=["memo"]).passages
    assert only and {p.citation.doc_id for p in only} == {"memo"}
    vector = encoder.encode(["copper mine"])[0]
    assert set(approx.index.searcher.dense_top(vector, 3, [1, 2])) == set(exact.index.searcher.dense_top(vector, 3, [1, 2]))


def test_bench_memory_accounts_for_each_part_of_a_loaded_index(fake_settings: Settings) -> None:
    """`make bench`'s memory part (bench/bench_memory.py) reads each part of a loaded index where
    the index keeps it: the vectors at 4 bytes a dimension, the flat FAISS index holding them once."""
    build_index(fake_settings, FakeEncoder())
    index = load_index(fake_settings.index_dir)
    measured = per_chunk(fake_settings.index_dir)
    parts = measured["bytes_per_chunk"]
    assert measured["chunks"] == len(index) and measured["sentences"] == len(index.sentence_rows)
    assert parts["chunk_vectors"] == FakeEncoder.dimension * 4
    assert parts["faiss_index"] >= parts["chunk_vectors"]  # flat: the vectors and a header
    assert parts["sentence_vectors"] == round(index.sentence_vectors.nbytes / len(index))
    assert all(value > 0 for value in parts.values())
