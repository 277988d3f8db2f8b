"""The Milvus store (assistant/milvus_store.py) against milvus-lite: a version reads back as written,
offsets hold, dense search is exact, BM25 finds rare words, versions switch atomically, errors are clear."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

from pymilvus import DataType, MilvusClient  # noqa: E402

from assistant import milvus_store  # noqa: E402
from assistant.config import Settings  # noqa: E402
from assistant.embedding_cache import text_keys  # noqa: E402
from assistant.errors import (  # noqa: E402
    IndexCorruptError,
    IndexMismatchError,
    IndexMissingError,
    InputError,
    StoreUnavailableError,
)
from assistant.layout import FORMAT_VERSION, Index  # noqa: E402
from assistant.store import build_index, load_index  # noqa: E402
from assistant.types import Document, Metadata  # noqa: E402
from conftest import DATA, SEED_QUESTIONS, FakeEncoder  # noqa: E402

QUESTIONS = ("lighthouse keeper forty-two ships harbour", "glacier advances metres", "Where is the copper mine?",
             "zeppelin over the quarry", "budget percent", "who wrote the notes")


def inputs(index: Index, **manifest) -> tuple[dict, list[Document], dict[str, np.ndarray]]:
    """What ``write_version`` takes, from a loaded index (``manifest`` entries replaced)."""
    return {**index.manifest, **manifest}, index.documents, milvus_store.index_arrays(index)


def build(root: Path, extra: dict[str, str]) -> Index:
    """The mini corpus plus ``extra`` files, indexed with the fake encoder in ``root``."""
    shutil.copytree(DATA / "mini", root / "corpus")
    for name, text in extra.items():
        (root / "corpus" / name).write_text(text, encoding="utf-8")
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index", model="fake-encoder",
                        chunk_tokens=20, chunk_overlap=4)
    build_index(settings, FakeEncoder())
    return load_index(settings.index_dir, "fake-encoder")


FAR = {"far.txt": "A zeppelin moored above the quarry at dawn. The quarry men waved at the crew of the zeppelin.\n"}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Index, str]:
    """The mini corpus indexed in a folder and written to milvus-lite as "mini"; the index and the URI."""
    root = tmp_path_factory.mktemp("milvus")
    index = build(root, FAR)
    uri = str(root / "milvus.db")
    milvus_store.write_version(uri, "mini", *inputs(index))
    return index, uri


def test_version_reads_back_as_written(built: tuple[Index, str]) -> None:
    index, uri = built
    opened = milvus_store.open_version(uri, "mini", "fake-encoder")
    assert {k: v for k, v in opened.manifest.items() if k != "store"} == \
        {k: v for k, v in index.manifest.items() if k != "files"}
    assert [d.to_dict() for d in opened.documents] == [d.to_dict() for d in index.documents]
    for mine, theirs in (("chunk_rows", "chunk_rows"), ("chunk_keys", "chunk_keys"),
                         ("sentence_rows", "sentence_rows"), ("sentence_keys", "sentence_keys")):
        assert np.array_equal(getattr(opened, mine), getattr(index, theirs)), mine
    search = opened.search
    assert len(search) == len(index) > 10
    backwards = np.arange(len(index))[::-1]
    assert np.array_equal(search.chunk_vectors(backwards), index.chunk_vectors[backwards])  # exact, in the order asked
    some = np.array([3, 0, 3, len(index.sentence_rows) - 1])
    assert np.array_equal(search.sentence_vectors(some), index.sentence_vectors[some])
    assert search.chunk_vectors(np.array([], np.int64)).shape == (0, 64)
    # the offset invariant, for every record read back
    stored = {r["id"]: r["text"] for r in MilvusClient(uri).query(search.chunks, filter="id >= 0",
                                                                  output_fields=["text"], limit=10_000)}
    assert len(stored) == len(index)
    for i, (doc_no, start, end) in enumerate(opened.chunk_rows.tolist()):
        assert stored[i] == opened.documents[doc_no].text[start:end] == index.chunk(i).text
    for doc_no, start, end in opened.sentence_rows.tolist():
        sentence = opened.documents[doc_no].text[start:end]
        assert sentence and sentence.strip() == sentence


def test_parts_cut_between_characters() -> None:
    text = "a😀é中" * 50
    pieces = milvus_store.parts(text, limit=10)
    assert "".join(pieces) == text
    assert all(0 < len(p.encode("utf-8")) <= 10 for p in pieces)
    assert milvus_store.parts("") == [""]


def test_long_document_is_split_and_joined_exactly(tmp_path: Path) -> None:
    text = "".join(f"Straße {i}: Zürich → 東京 😀 naïve café.\r\n\tzero\x00width\u200b.\n" for i in range(3000))
    assert len(text) > 2 * milvus_store.VARCHAR_BYTES
    doc = Document("long/ünïcode", "long/ünïcode.txt", text, Metadata(title="Lange Straße", author="Zoë"),
                   "hash", page_starts=(0, 70_000))
    cut = len(milvus_store.parts(text)[0])  # where the first stored part ends: a chunk straddles it
    spans = [(0, 300), (cut - 100, cut + 100), (len(text) - 50, len(text))]
    rows = np.array([(0, s, e) for s, e in spans], np.int64)
    texts = [text[s:e] for s, e in spans]
    vectors = FakeEncoder().encode(texts)
    manifest = {"format_version": FORMAT_VERSION, "model": {"name": "fake-encoder", "dimension": 64},
                "counts": {"documents": 1, "chunks": 3, "sentences": 3}}
    arrays = {"chunks.npy": rows, "chunk_vectors.npy": vectors, "chunk_keys.npy": text_keys("fake-encoder", texts),
              "sentences.npy": rows, "sentence_vectors.npy": vectors,
              "sentence_keys.npy": text_keys("fake-encoder", texts)}
    uri = str(tmp_path / "milvus.db")
    milvus_store.write_version(uri, "long", manifest, [doc], arrays)
    opened = milvus_store.open_version(uri, "long", "fake-encoder")
    assert opened.documents[0].to_dict() == doc.to_dict()
    client = MilvusClient(uri)
    stored = client.query(milvus_store.collection("long", opened.manifest["store"]["generation"], "documents"),
                          filter="part >= 0", output_fields=["text"], limit=100)
    assert len(stored) >= 3 and all(len(r["text"].encode("utf-8")) <= milvus_store.VARCHAR_BYTES for r in stored)
    chunks = client.query(opened.search.chunks, filter="id >= 0", output_fields=["text"], limit=10)
    assert sorted(r["text"] for r in chunks) == sorted(texts)


def _check_exact(found: np.ndarray, vector: np.ndarray, vectors: np.ndarray, faiss_ids: np.ndarray) -> int:
    """``found`` is the exact top-k FAISS found: the same scores in the same order, and the same chunks
    but among those tied with the last score (chunks of equal vectors); how many chunks were compared."""
    exact = vectors @ vector
    assert len(found) == len(faiss_ids) == len(set(found.tolist()))
    np.testing.assert_allclose(exact[found], exact[faiss_ids], atol=1e-5)
    last = exact[faiss_ids[-1]]
    above = [{i for i in ids.tolist() if exact[i] > last + 1e-5} for ids in (found, faiss_ids)]
    assert above[0] == above[1]
    return len(above[1])


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_dense_top_is_faiss_exact_search(built: tuple[Index, str], kind: str) -> None:
    index, uri = built
    name = "mini" if kind == "flat" else "mini_hnsw"
    if kind == "hnsw":  # a graph small enough that HNSW finds the exact neighbours
        milvus_store.write_version(uri, name, *inputs(index, search={"type": "hnsw", "m": 16,
                                                                     "ef_construction": 64, "ef_search": 64}))
    search = milvus_store.open_version(uri, name).search
    vectors = index.chunk_vectors
    rng = np.random.default_rng(7)  # random directions: fewer ties than the bag-of-words vectors
    queries = np.vstack([FakeEncoder().encode(list(QUESTIONS)), vectors[::7], rng.standard_normal((8, 64))])
    documents = [1, 3]
    allowed = np.flatnonzero(np.isin(index.chunk_rows[:, 0], documents))
    compared = 0
    for vector in queries:
        compared += _check_exact(search.dense_top(vector, 10), vector, vectors, index.searcher.dense_top(vector, 10))
        among = index.searcher.dense_top(vector, 5, documents)
        found = search.dense_top(vector, 5, documents)
        assert set(found.tolist()) <= set(allowed.tolist())
        compared += _check_exact(found, vector, vectors, among)
        assert search.dense_top(vector, 5, []).size == 0 == index.searcher.dense_top(vector, 5, []).size  # no documents
    assert compared >= 5 * len(queries)  # the chunks were compared, not only their scores


def test_keyword_search_finds_the_chunk_of_a_rare_word(built: tuple[Index, str]) -> None:
    index, uri = built
    search = milvus_store.open_version(uri, "mini").search
    texts = [index.chunk(i).text.lower() for i in range(len(index))]
    in_chunks = Counter(w for t in texts for w in set(re.findall(r"\w+", t)))
    rare = sorted(w for w, n in in_chunks.items() if n == 1 and len(w) >= 6 and not w.isdigit())[:6]
    assert len(rare) >= 3
    for word in rare:
        chunk = next(i for i, t in enumerate(texts) if word in re.findall(r"\w+", t))
        found = search.keyword(f"the {word}", 5)
        ids, scores = found.ids, found.scores
        assert ids.tolist() == [chunk] and scores[0] > 0, word  # "the" is a stop word: only the rare word counts
        every = search.keyword(word, 5).score(np.arange(len(index)))
        assert np.flatnonzero(every).tolist() == [chunk]
        assert every[chunk] == pytest.approx(scores[0], rel=1e-5)
        elsewhere = [d for d in range(len(index.documents)) if d != index.chunk_rows[chunk, 0]]
        assert search.keyword(word, 5, elsewhere).ids.size == 0
        assert search.keyword(word, 5, []).ids.size == 0 == index.searcher.keyword(word, 5, []).ids.size
    # several words: best first, positive scores
    found = search.keyword("zeppelin quarry crew dawn", 10)
    ids, scores = found.ids, found.scores
    assert len(ids) >= 1 and np.all(scores > 0) and np.all(np.diff(scores) <= 0)
    assert search.keyword("the and of", 5).ids.size == 0  # stop words only


def test_reader_keeps_its_version_while_new_ones_are_written(built: tuple[Index, str], tmp_path: Path) -> None:
    index, uri = built
    first = milvus_store.write_version(uri, "live", *inputs(index))
    reader = milvus_store.open_version(uri, "live")
    newer = build(tmp_path, {**FAR, "new.txt": "The quokka grins at the photographer on the island.\n"})
    counts = {first: len(index)}
    opened: list[milvus_store.MilvusVersion] = []
    writer = threading.Thread(target=lambda: counts.setdefault(
        milvus_store.write_version(uri, "live", *inputs(newer)), len(newer)))
    writer.start()
    while writer.is_alive() or len(opened) < 2:  # opens during the write see one whole version
        opened.append(milvus_store.open_version(uri, "live"))
    writer.join()
    second = next(v for v in counts if v != first)
    for version in opened:
        assert len(version.chunk_rows) == len(version.search) == version.manifest["counts"]["chunks"] == \
            counts[version.version]
    # the reader of the first version still answers from it alone
    assert reader.version == first and len(reader.search) == len(index)
    assert reader.search.keyword("quokka", 5).ids.size == 0
    assert np.array_equal(reader.search.chunk_vectors(np.arange(len(index))), index.chunk_vectors)
    fresh = milvus_store.open_version(uri, "live")
    assert fresh.version == second
    found = fresh.search.keyword("quokka", 5).ids
    assert fresh.documents[fresh.chunk_rows[found[0], 0]].doc_id == "new"
    # a third version: the second stays as the previous one, the first is dropped, its reader is told
    third = milvus_store.write_version(uri, "live", *inputs(index))
    kept = {c.split("__")[1] for c in MilvusClient(uri).list_collections() if c.startswith("live__v")}
    assert kept == {second, third}
    assert fresh.search.keyword("quokka", 5).ids.tolist() == found.tolist()
    with pytest.raises(IndexMissingError, match="removed by two newer builds; open the index again"):
        reader.search.dense_top(index.chunk_vectors[0], 3)


def _rows(client: MilvusClient, name: str, where: str = "") -> int:
    return client.query(name, filter=where, output_fields=["count(*)"])[0]["count(*)"]


def test_an_update_writes_only_new_and_changed_documents(built: tuple[Index, str], tmp_path: Path) -> None:
    """Vectors, sentences and texts are written once per document and shared by the versions that hold
    it unchanged; each version still reads exactly its own documents, and BM25 counts its own chunks."""
    index, uri = built
    client = MilvusClient(uri)
    milvus_store.write_version(uri, "grow", *inputs(index))
    first = milvus_store.open_version(uri, "grow")
    shared = {kind: milvus_store.collection("grow", first.manifest["store"]["generation"], kind)
              for kind in milvus_store.SHARED_KINDS}
    assert _rows(client, shared["vectors"]) == len(index)
    changed = {"far.txt": FAR["far.txt"].replace("dawn", "dusk"), "new.txt": "The quokka grins at the photographer.\n"}
    newer = build(tmp_path, changed)
    milvus_store.write_version(uri, "grow", *inputs(newer))
    written = [d for d in range(len(newer.documents)) if newer.documents[d].doc_id in ("far", "new")]
    assert len(written) == 2
    # only the two documents' rows were written: the others' are the first version's
    assert _rows(client, shared["vectors"], "born == 2") == int(np.isin(newer.chunk_rows[:, 0], written).sum()) > 0
    assert _rows(client, shared["sentences"], "born == 2") == int(np.isin(newer.sentence_rows[:, 0], written).sum())
    assert _rows(client, shared["vectors"], "born == 1") == len(index)  # far's old rows serve the first version
    second = milvus_store.open_version(uri, "grow")
    assert [d.to_dict() for d in second.documents] == [d.to_dict() for d in newer.documents]
    for mine, theirs in (("chunk_rows", "chunk_rows"), ("chunk_keys", "chunk_keys"),
                         ("sentence_rows", "sentence_rows"), ("sentence_keys", "sentence_keys")):
        assert np.array_equal(getattr(second, mine), getattr(newer, theirs)), mine
    everything = np.arange(len(newer))
    assert np.array_equal(second.search.chunk_vectors(everything), newer.chunk_vectors)
    assert np.array_equal(second.search.sentence_vectors(np.arange(len(newer.sentence_rows))), newer.sentence_vectors)
    for vector in newer.chunk_vectors[::3]:  # each version finds its own chunks, all of them
        assert sorted(second.search.dense_top(vector, len(newer) + 5).tolist()) == everything.tolist()
        assert sorted(first.search.dense_top(vector, len(index) + 5).tolist()) == list(range(len(index)))
    for word in ("dusk", "quokka", "zeppelin"):  # BM25 over the version's own chunks, as bm25s counts them
        found = second.search.keyword(word, 5)
        assert found.ids.size and np.allclose(found.scores, 2.5 * newer.keyword.scores(word)[found.ids], rtol=1e-5)
    assert first.search.keyword("dusk", 5).ids.size == 0 == first.search.keyword("quokka", 5).ids.size
    # a third version drops the first: the rows only it read go, the second's stay
    milvus_store.write_version(uri, "grow", *inputs(index))
    third = milvus_store.open_version(uri, "grow")
    assert np.array_equal(third.search.chunk_vectors(np.arange(len(index))), index.chunk_vectors)
    assert _rows(client, shared["vectors"]) == len(newer) + int((index.chunk_rows[:, 0] == written[0]).sum())
    assert np.array_equal(second.search.chunk_vectors(everything), newer.chunk_vectors)
    with pytest.raises(IndexMissingError, match="removed by two newer builds"):
        first.search.chunk_vectors(np.arange(len(index)))


def test_a_write_that_fails_midway_is_never_seen(built: tuple[Index, str], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A build that stops after writing its shared rows, before its version goes live: readers keep the
    live version exactly (the new rows are born after it), and the next write removes the strays."""
    index, uri = built
    milvus_store.write_version(uri, "crash", *inputs(index))
    live = milvus_store.open_version(uri, "crash")
    vectors = milvus_store.collection("crash", live.manifest["store"]["generation"], "vectors")
    client = MilvusClient(uri)
    quokka = {**FAR, "new.txt": "The quokka grins at the photographer on the island.\n"}
    failed = build(tmp_path / "failed", {**quokka, "more.txt": "The ferry left the harbour at noon. " * 40})
    newer = build(tmp_path / "newer", quokka)
    create = milvus_store._create

    def fail_on_manifest(client: MilvusClient, name: str, *args) -> None:  # noqa: ANN002
        if name.endswith("__manifest"):
            raise RuntimeError("the build was stopped")
        create(client, name, *args)

    monkeypatch.setattr(milvus_store, "_create", fail_on_manifest)
    with pytest.raises(RuntimeError, match="stopped"):
        milvus_store.write_version(uri, "crash", *inputs(failed))
    monkeypatch.undo()
    strays = _rows(client, vectors, f"born == {live.manifest['store']['seq'] + 1}")
    assert strays > 0  # the failed write's rows are there, unseen:
    for reader in (live, milvus_store.open_version(uri, "crash")):
        assert reader.version == live.version
        for vector in index.chunk_vectors[::4]:
            assert sorted(reader.search.dense_top(vector, len(index) + 5).tolist()) == list(range(len(index)))
        assert reader.search.keyword("quokka", 5).ids.size == 0
    milvus_store.write_version(uri, "crash", *inputs(newer))
    after = milvus_store.open_version(uri, "crash")
    assert after.version != live.version and len(after.search) == len(newer)
    written = int((newer.chunk_rows[:, 0] == newer.doc_numbers["new"]).sum())
    assert strays > written  # the failed write wrote more than the next one
    assert _rows(client, vectors) == len(index) + written  # the strays went; the new version wrote its own
    assert np.array_equal(after.search.chunk_vectors(np.arange(len(newer))), newer.chunk_vectors)


def test_open_errors_say_what_to_do(built: tuple[Index, str]) -> None:
    index, uri = built
    with pytest.raises(IndexMissingError, match="no index named 'absent' in Milvus .* run `assistant index`"):
        milvus_store.open_version(uri, "absent")
    with pytest.raises(IndexMismatchError, match="was built with model 'fake-encoder'.* was asked for"):
        milvus_store.open_version(uri, "mini", "all-MiniLM-L6-v2")
    with pytest.raises(InputError, match="cannot name a Milvus index"):
        milvus_store.open_version(uri, "two words")
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{closed.getsockname()[1]}"
    with pytest.raises(StoreUnavailableError, match="cannot be reached .*; check that the Milvus server is running"):
        milvus_store.open_version(nowhere, "mini")
    # a chunk whose stored text is not its document's text at its offsets
    version = milvus_store.write_version(uri, "tampered", *inputs(index))
    client = MilvusClient(uri)
    name = milvus_store.collection("tampered", version, "chunks")
    row = client.query(name, filter="id == 0", output_fields=["doc_no", "start", "end", "key"])[0]
    client.upsert(name, [{**row, "text": "words that are not in the document", "terms": "word document"}])
    with pytest.raises(IndexCorruptError, match="text stored for chunk 0 is not the text of .* `assistant index --rebuild`"):
        milvus_store.open_version(uri, "tampered")
    # a sentence row gone from the rows the versions share
    milvus_store.write_version(uri, "lost", *inputs(index))
    sentences = milvus_store.collection("lost", milvus_store.open_version(uri, "lost").manifest["store"]["generation"],
                                        "sentences")
    client.delete(sentences, filter="id == 3")
    with pytest.raises(IndexCorruptError, match="sentences are missing: .* `assistant index --rebuild`"):
        milvus_store.open_version(uri, "lost")
    # a store written in the layout before versions shared their rows: one collection per kind and version
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("unused", DataType.FLOAT_VECTOR, dim=2)
    client.create_collection("old__v20261130T000000_abcdef__documents", schema=schema)
    client.create_alias("old__v20261130T000000_abcdef__documents", "old")
    with pytest.raises(IndexMismatchError, match="written by an earlier version of the assistant; run `assistant index`"):
        milvus_store.open_version(uri, "old")
    milvus_store.write_version(uri, "old", *inputs(index))  # writing it again replaces it
    assert len(milvus_store.open_version(uri, "old").search) == len(index)


def test_a_lite_file_open_in_another_process_is_named(tmp_path: Path) -> None:
    uri = str(tmp_path / "milvus.db")
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pymilvus import MilvusClient; "
                               "MilvusClient(sys.argv[1]); print('open', flush=True); time.sleep(120)", uri],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(StoreUnavailableError, match="open to one process at a time: stop the other one, or serve"):
            milvus_store.open_version(uri, "mini")
    finally:
        holder.kill()
        holder.wait()


def test_seed_corpus_with_real_vectors(seed_index: Settings, real_encoder, tmp_path: Path) -> None:
    """The seed index (real model) in Milvus: for every development question, dense top-10 is FAISS'
    exact top-10, and BM25 top-10 is bm25s' top-10 with each score (k1 + 1) times bm25s' (Milvus'
    BM25 keeps the (k1 + 1) factor of the formula, bm25s' Lucene variant drops it; fusion divides
    by the best score, so the factor cancels)."""
    index = load_index(seed_index.index_dir)
    uri = str(tmp_path / "milvus.db")
    milvus_store.write_version(uri, "seed", *inputs(index))
    search = milvus_store.open_version(uri, "seed", index.model).search
    questions = [json.loads(line)["question"] for line in SEED_QUESTIONS.read_text(encoding="utf-8").splitlines()]
    compared = 0
    for question, vector in zip(questions, real_encoder.encode(questions)):
        assert search.dense_top(vector, 10).tolist() == index.searcher.dense_top(vector, 10).tolist(), question
        scores = index.keyword.scores(question)
        expected = [int(i) for i in np.argsort(-scores, kind="stable")[:10] if scores[i] > 0]
        found = search.keyword(question, 10)
        assert found.ids.tolist() == expected, question
        assert np.allclose(found.scores, 2.5 * scores[found.ids], rtol=1e-5), question  # k1 = 1.5
        compared += len(expected)
    assert compared >= 400
