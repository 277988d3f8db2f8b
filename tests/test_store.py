from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import bm25s
from bm25s.tokenization import Tokenizer

from assistant import layout, store
from assistant.config import Settings
from assistant.keyword import KeywordIndex
from assistant.pipeline import Assistant
from assistant.retrieval import Retriever
from assistant.errors import CorpusError, IndexCorruptError, IndexMismatchError, IndexMissingError
from assistant.store import build_index, check_corpus, current_version, load_index
from conftest import FakeEncoder


def _texts_of(index: store.Index, doc_id: str) -> list[str]:
    return [index.chunk(i).text for i in range(len(index)) if index.chunk(i).doc_id == doc_id]


def test_build_and_load_round_trip(fake_settings: Settings) -> None:
    encoder = FakeEncoder()
    report = build_index(fake_settings, encoder)
    assert sorted(report.added) == ["memo", "notes", "page", "repeat", "report"]
    index = load_index(fake_settings.index_dir, "fake-encoder")
    manifest = index.manifest
    assert manifest["model"] == {"name": "fake-encoder", "dimension": 64}
    assert manifest["chunker"] == {"chunk_tokens": 20, "chunk_overlap": 4}
    assert manifest["counts"]["chunks"] == len(index) == index.searcher.search_index.ntotal
    assert set(manifest["documents"]) == {d.doc_id for d in index.documents}
    for i in range(len(index)):
        chunk = index.chunk(i)
        assert index.by_id[chunk.doc_id].text[chunk.start : chunk.end] == chunk.text
    for i in range(len(index.sentence_rows)):
        doc, span = index.sentence(i)
        assert doc.text[span.start : span.end].strip() == doc.text[span.start : span.end]
    # the stored vectors are the encoder's vectors of the chunk texts
    first = index.searcher.search_index.reconstruct(0)
    assert np.allclose(first, FakeEncoder().encode([index.chunk(0).text])[0], atol=1e-6)


def test_incremental_update_embeds_only_what_changed(fake_settings: Settings) -> None:
    build_index(fake_settings, FakeEncoder())
    before = load_index(fake_settings.index_dir)
    memo_texts = _texts_of(before, "memo")

    (fake_settings.corpus_dir / "notes.md").write_text("# Glaciers\n\nThe glacier now retreats ten metres a year.\n")
    (fake_settings.corpus_dir / "repeat.txt").unlink()
    assert check_corpus(fake_settings) == store.Staleness(new=[], changed=["notes"], deleted=["repeat"])

    encoder = FakeEncoder()
    report = build_index(fake_settings, encoder)
    assert report.changed == ["notes"] and report.deleted == ["repeat"]
    after = load_index(fake_settings.index_dir)
    notes_texts = _texts_of(after, "notes")
    assert encoder.encoded[: len(notes_texts)] == notes_texts  # only the changed document's chunks
    assert report.chunks_embedded == len(notes_texts)
    assert _texts_of(after, "repeat") == []
    assert "repeat" not in after.manifest["documents"]
    assert _texts_of(after, "memo") == memo_texts
    assert not check_corpus(fake_settings).stale

    encoder = FakeEncoder()
    report = build_index(fake_settings, encoder)
    assert report.chunks_embedded == 0 and encoder.encoded == []


def test_interrupted_build_leaves_previous_index(fake_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    build_index(fake_settings, FakeEncoder())
    version = current_version(fake_settings.index_dir)
    old = load_index(fake_settings.index_dir)
    (fake_settings.corpus_dir / "new.txt").write_text("A brand new document about otters.")

    class Crash(Exception):
        pass

    def crash_on_pointer(*args: object) -> None:
        raise Crash  # the new version is fully written, the pointer not yet switched

    monkeypatch.setattr(layout.os, "replace", crash_on_pointer)
    with pytest.raises(Crash):
        build_index(fake_settings, FakeEncoder())
    monkeypatch.undo()

    assert current_version(fake_settings.index_dir) == version
    again = load_index(fake_settings.index_dir)
    assert [d.doc_id for d in again.documents] == [d.doc_id for d in old.documents]

    class Interrupted(FakeEncoder):
        def encode(self, texts, **kwargs):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_index(fake_settings, Interrupted())
    assert current_version(fake_settings.index_dir) == version
    report = build_index(fake_settings, FakeEncoder())  # the next build completes normally
    assert report.added == ["new"]
    leftovers = [p.name for p in fake_settings.index_dir.iterdir() if p.name.startswith(".tmp-")]
    assert leftovers == []


def test_model_mismatch_is_refused(fake_settings: Settings) -> None:
    build_index(fake_settings, FakeEncoder())
    with pytest.raises(IndexMismatchError, match=r"built with model 'fake-encoder'.*--rebuild"):
        load_index(fake_settings.index_dir, "all-MiniLM-L6-v2")

    class Other(FakeEncoder):
        name = "other-model"

    with pytest.raises(IndexMismatchError, match="--rebuild"):
        build_index(fake_settings.with_(model="other-model"), Other())
    report = build_index(fake_settings.with_(model="other-model"), Other(), rebuild=True)
    assert load_index(fake_settings.index_dir).model == "other-model"
    assert report.chunks_embedded == report.chunks


def test_chunker_change_needs_rebuild(fake_settings: Settings) -> None:
    build_index(fake_settings, FakeEncoder())
    with pytest.raises(IndexMismatchError, match="chunker"):
        build_index(fake_settings.with_(chunk_tokens=30), FakeEncoder())


@pytest.mark.parametrize("name", ["chunks.faiss", "sentence_vectors.npy", "documents.jsonl", "bm25.data.npy",
                                  "bm25.indptr.npy", "bm25.vocab.json", "bm25.params.json"])
def test_corrupt_file_is_named(fake_settings: Settings, name: str) -> None:
    build_index(fake_settings, FakeEncoder())
    path = fake_settings.index_dir / current_version(fake_settings.index_dir) / name
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(IndexCorruptError) as info:
        load_index(fake_settings.index_dir)
    assert name in str(info.value) and "assistant index --rebuild" in str(info.value)


def test_corrupt_manifest_and_missing_index(fake_settings: Settings) -> None:
    with pytest.raises(IndexMissingError, match="assistant index"):
        load_index(fake_settings.index_dir)
    build_index(fake_settings, FakeEncoder())
    manifest = fake_settings.index_dir / current_version(fake_settings.index_dir) / "manifest.json"
    manifest.write_text("{not json")
    with pytest.raises(IndexCorruptError, match="manifest.json"):
        load_index(fake_settings.index_dir)


def test_format_version_mismatch(fake_settings: Settings) -> None:
    build_index(fake_settings, FakeEncoder())
    path = fake_settings.index_dir / current_version(fake_settings.index_dir) / "manifest.json"
    data = json.loads(path.read_text())
    data["format_version"] = 999
    path.write_text(json.dumps(data))
    with pytest.raises(IndexMismatchError, match="format version 999"):
        load_index(fake_settings.index_dir)


def test_empty_or_missing_corpus(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    settings = Settings(corpus_dir=tmp_path / "empty", index_dir=tmp_path / "index", model="fake-encoder")
    with pytest.raises(CorpusError, match="no readable documents"):
        build_index(settings, FakeEncoder())
    with pytest.raises(CorpusError, match="does not exist"):
        build_index(settings.with_(corpus_dir=tmp_path / "missing"), FakeEncoder())
    assert current_version(settings.index_dir) is None


BM25_FILES = ["bm25.data.npy", "bm25.indices.npy", "bm25.indptr.npy", "bm25.vocab.json", "bm25.params.json"]


@pytest.mark.folder_store("the folder's saved BM25; a Milvus open builds the answer step's term statistics anew")
def test_opening_an_index_does_not_rebuild_bm25(fake_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    build_index(fake_settings, FakeEncoder())
    folder = fake_settings.index_dir / current_version(fake_settings.index_dir)
    manifest = json.loads((folder / "manifest.json").read_text())
    for name in BM25_FILES:  # saved with the version, each under the manifest's checksums
        assert (folder / name).is_file() and manifest["files"][name]["bytes"] == (folder / name).stat().st_size
    assert set(BM25_FILES) <= set(store.DATA_FILES)
    assert json.loads((folder / "bm25.params.json").read_text())["num_docs"] == manifest["counts"]["chunks"]

    tokenized: list[list[str]] = []
    streaming = Tokenizer.streaming_tokenize

    def recording(self, texts, *args, **kwargs):  # noqa: ANN001, ANN202
        texts = list(texts)
        tokenized.append(texts)
        return streaming(self, texts, *args, **kwargs)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("the corpus was tokenised or indexed again")

    monkeypatch.setattr(Tokenizer, "streaming_tokenize", recording)
    monkeypatch.setattr(Tokenizer, "tokenize", forbidden)
    monkeypatch.setattr(bm25s.BM25, "index", forbidden)
    index = load_index(fake_settings.index_dir)
    retriever = Retriever(index, FakeEncoder(), fake_settings)
    assert tokenized == []  # opening read the saved BM25: no text was tokenised
    assert retriever.search.keyword_index is index.keyword and index.keyword.size == len(index)
    retriever.retrieve("How far does the glacier advance?")
    assert tokenized == [["How far does the glacier advance?"]]  # only the question
    assert Assistant.open(fake_settings, FakeEncoder()).ask("copper mine").passages
    monkeypatch.undo()

    # what was loaded is what building BM25 from the chunk texts gives
    rebuilt = KeywordIndex.build([index.chunk(i).text for i in range(len(index))])
    assert rebuilt.vocabulary == index.keyword.vocabulary
    for question in ("How far does the glacier advance?", "copper mine ore", "budget percent museum", "zzz"):
        assert np.array_equal(rebuilt.scores(question), index.keyword.scores(question))
        terms = index.keyword.terms(question)
        assert terms == rebuilt.terms(question) and [rebuilt.idf(t) for t in terms] == [index.keyword.idf(t) for t in terms]


def test_keyword_terms_are_bm25s_tokens() -> None:
    """Question terms: lower-cased, stop words out, Snowball-stemmed, unknown words kept, in order."""
    assert KeywordIndex.terms("The Glaciers are retreating, and THE glacier retreats!") == \
        ["glacier", "retreat", "glacier", "retreat"]
    assert KeywordIndex.terms("") == [] and KeywordIndex.terms("the and of a") == []
    corpus = ["Otters hold hands while sleeping.", "The glacier advances two metres a day."]
    keyword = KeywordIndex.build(corpus)
    for text in corpus:
        assert set(keyword.terms(text)) <= set(keyword.vocabulary)
    assert keyword.idf("otter") < keyword.idf("unknownterm")
    assert keyword.scores("otters")[0] > 0 == keyword.scores("otters")[1]


def test_format_2_index_is_rebuilt_from_its_vectors(fake_settings: Settings) -> None:
    """An index of format 2 (no saved BM25) is refused by load, rebuilt by the next build, and its
    vectors are reused: the cache files of format 2 are those of format 3."""
    build_index(fake_settings, FakeEncoder())
    folder = fake_settings.index_dir / current_version(fake_settings.index_dir)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["format_version"] = 2
    for name in BM25_FILES:
        (folder / name).unlink()
        del manifest["files"][name]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match="format version 2.*assistant index --rebuild"):
        load_index(fake_settings.index_dir)
    assert set(check_corpus(fake_settings).changed) == set(manifest["documents"])

    encoder = FakeEncoder()
    report = build_index(fake_settings, encoder)
    assert report.chunks_embedded == 0 and report.sentences_embedded == 0 and encoder.encoded == []
    index = load_index(fake_settings.index_dir)
    assert index.manifest["format_version"] == store.FORMAT_VERSION == 3
    assert all((fake_settings.index_dir / index.version / name).is_file() for name in BM25_FILES)
    assert not check_corpus(fake_settings).stale
