"""Building an index version: lock, gather the documents, chunk and embed, assemble, write, prune.

Only new or changed documents are read, chunked and embedded; the rows of unchanged ones are
taken from the live version, and texts whose vectors an earlier build made come from the
embedding cache (embedding_cache.py). The FAISS index (ann.py) and BM25 (keyword.py) are
built over all chunks and written with the rest (layout.py). The chunk-and-embed step runs in
this process, or on a Ray cluster (distributed.py, ``assistant index --ray``): the rest is the same.
"""

from __future__ import annotations

import fcntl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from assistant import __version__, ann
from assistant.chunking import Chunker, SentenceSplitter
from assistant.config import Settings
from assistant.corpus import Skipped, UnreadableFile, load_file, scan
from assistant.embedding import Encoder, index_model_name
from assistant.embedding_cache import KEY, Encode, VectorCache, cache_of, embed, text_keys
from assistant.errors import CorpusError, IndexBusyError, IndexMismatchError
from assistant.keyword import KeywordIndex
from assistant.layout import (
    FORMAT_VERSION,
    Index,
    Staleness,
    compare,
    current_version,
    document_slices,
    load_index,
    prune,
    read_manifest,
    write_version,
)
from assistant.types import Document


@dataclass(frozen=True)
class BuildReport:
    """What a build did; ``*_embedded`` count the texts the model embedded, the rest came from the cache."""

    version: str
    added: list[str]
    changed: list[str]
    deleted: list[str]
    unchanged: list[str]
    skipped: list[Skipped]
    chunks: int
    chunks_embedded: int
    sentences_embedded: int
    sentences: int = 0
    search_index: str = "flat"


@dataclass
class _Rows:
    """One document's spans, vectors and keys, for chunks or for sentences."""

    spans: np.ndarray
    vectors: np.ndarray
    keys: np.ndarray


KINDS = ("chunks", "sentences")  # the spans each document is embedded in, in this order

# The step that chunks and embeds the new and changed documents: (fresh, settings, encoder, model
# name, cache, progress) -> [(chunk rows by document id, texts embedded), (sentence rows, ...)].
ChunkAndEmbed = Callable[[list[Document], Settings, Encoder, str, VectorCache, bool],
                         list[tuple[dict[str, _Rows], int]]]


@dataclass
class _Gathered:
    """The documents of the new version, in corpus order, and how the corpus changed."""

    documents: list[Document]
    fresh: list[Document]  # new or changed: to chunk and embed
    status: Staleness
    unchanged: set[str]
    skipped: list[Skipped]
    unreadable: dict[str, str]  # document id -> hash of a file that could not be read


def build_index(settings: Settings, encoder: Encoder, *, rebuild: bool = False, progress: bool = False,
                chunk_and_embed: ChunkAndEmbed | None = None) -> BuildReport:
    """Build or update the index of ``settings.corpus_dir`` in ``settings.index_dir``.

    Only new or changed documents are chunked; deleted ones are dropped. With ``rebuild``
    every document is chunked again. Either way a text whose vector the live version holds
    (same model, same text) is not embedded again. An index of an older format is rebuilt.
    ``chunk_and_embed`` is the step that chunks and embeds the new and changed documents: in
    this process by default, elsewhere when given (distributed.on_ray); the rest is the same.
    Raises IndexMismatchError when the existing index was built with other model or chunker
    settings and ``rebuild`` is not set, CorpusError when no document of the corpus can be
    loaded, IndexBusyError when another build is running.
    """
    index_dir = Path(settings.index_dir)
    model = index_model_name(settings.model, settings.backend)
    chunker = {"chunk_tokens": settings.chunk_tokens, "chunk_overlap": settings.chunk_overlap}
    with _write_lock(index_dir):
        previous = None if rebuild else _live_version(index_dir, model, chunker)
        cache = cache_of(index_dir, previous)
        gathered = _gather(settings.corpus_dir, previous)
        (chunks, chunks_embedded), (sentences, sentences_embedded) = (chunk_and_embed or _chunk_and_embed)(
            gathered.fresh, settings, encoder, model, cache, progress)
        arrays, records = _assemble(gathered.documents, chunks, sentences, previous, encoder.dimension)
        spec = ann.search_spec(len(arrays["chunks.npy"]))
        search_index = ann.make_search_index(spec, arrays["chunk_vectors.npy"])
        keyword = KeywordIndex.build([gathered.documents[d].text[s:e] for d, s, e in arrays["chunks.npy"].tolist()])
        manifest = {
            "format_version": FORMAT_VERSION,
            "package_version": __version__,
            "model": {"name": model, "dimension": encoder.dimension},
            "chunker": chunker,
            "search": spec,
            "documents": records,
            "unreadable": gathered.unreadable,
            "counts": {"documents": len(gathered.documents), "chunks": len(arrays["chunks.npy"]),
                       "sentences": len(arrays["sentences.npy"])},
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        version = write_version(index_dir, manifest, gathered.documents, arrays, search_index, keyword)
        prune(index_dir, keep={version} | ({previous.version} if previous else set()))
    return BuildReport(
        version=version,
        added=[d for d in gathered.status.new if d not in gathered.unreadable],
        changed=[d for d in gathered.status.changed if d not in gathered.unreadable],
        deleted=gathered.status.deleted,
        unchanged=sorted(gathered.unchanged),
        skipped=gathered.skipped,
        chunks=manifest["counts"]["chunks"],
        chunks_embedded=chunks_embedded,
        sentences_embedded=sentences_embedded,
        sentences=manifest["counts"]["sentences"],
        search_index=ann.factory_string(spec),
    )


@contextmanager
def _write_lock(index_dir: Path) -> Iterator[None]:
    index_dir.mkdir(parents=True, exist_ok=True)
    with (index_dir / ".lock").open("w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise IndexBusyError(
                f"another process is writing the index in {index_dir}; wait for it to finish"
            ) from exc
        yield


def _live_version(index_dir: Path, model: str, chunker: dict) -> Index | None:
    """The live version to update, or None when there is none of this format (build from scratch).

    Raises IndexMismatchError when it was built with another model or other chunker settings.
    """
    version = current_version(index_dir)
    if version is None or read_manifest(index_dir / version)["format_version"] != FORMAT_VERSION:
        return None
    previous = load_index(index_dir, model)
    if previous.manifest["chunker"] != chunker:
        raise IndexMismatchError(
            f"the index in {index_dir} was built with chunker settings "
            f"{previous.manifest['chunker']}, not {chunker}; "
            "run `assistant index --rebuild` to rebuild it with the new settings"
        )
    return previous


def _gather(corpus_dir: Path, previous: Index | None) -> _Gathered:
    """Take unchanged documents from ``previous``, load new and changed ones from the corpus.

    Raises CorpusError when no document can be loaded.
    """
    files, skipped = scan(corpus_dir)
    status = compare(previous.manifest["documents"] if previous else {}, {f.doc_id: f.content_hash for f in files})
    unchanged = {f.doc_id for f in files} - set(status.new) - set(status.changed)
    documents: list[Document] = []
    fresh: list[Document] = []
    unreadable: dict[str, str] = {}
    for file in files:
        if file.doc_id in unchanged:
            documents.append(previous.by_id[file.doc_id])
            continue
        try:
            doc = load_file(file)
        except UnreadableFile as exc:
            skipped.append(Skipped(file.relpath, str(exc)))
            unreadable[file.doc_id] = file.content_hash
            continue
        documents.append(doc)
        fresh.append(doc)
    if not documents:
        raise CorpusError(
            f"no readable documents in {corpus_dir}"
            + (f" ({len(skipped)} file(s) skipped)" if skipped else "")
            + "; add .txt, .md, .html, .pdf or .docx files"
        )
    return _Gathered(documents, fresh, status, unchanged, skipped, unreadable)


def _chunk_and_embed(fresh: list[Document], settings: Settings, encoder: Encoder, model: str, cache: VectorCache,
                     progress: bool) -> list[tuple[dict[str, _Rows], int]]:
    """Chunks, then sentences, of each fresh document with their vectors; and how many texts were embedded."""
    spans_of = span_maker(encoder.count_tokens, settings)
    spans = [spans_of(doc) for doc in fresh]

    def encode(kind: str) -> Encode:
        return lambda texts, rows: encoder.encode([texts[i] for i in rows], progress=progress, desc=f"Embedding {kind}")

    return [embedded_rows(fresh, {doc.doc_id: doc_spans[kind] for doc, doc_spans in zip(fresh, spans)}, model, cache,
                          encoder.dimension, encode(kind)) for kind in KINDS]


def span_maker(count_tokens: Callable[[str], int], settings: Settings
               ) -> Callable[[Document], dict[str, list[tuple[int, int]]]]:
    """A document's chunk spans and sentence spans (by KINDS), as every build computes them."""
    chunker = Chunker(count_tokens, settings.chunk_tokens, settings.chunk_overlap)
    splitter = SentenceSplitter()
    return lambda doc: {"chunks": [(c.start, c.end) for c in chunker.chunk(doc)],
                        "sentences": [(s.start, s.end) for s in splitter.split(doc.text)]}


def embedded_rows(docs: list[Document], spans: dict[str, list[tuple[int, int]]], model: str, cache: VectorCache,
                  dimension: int, encode: Encode) -> tuple[dict[str, _Rows], int]:
    """Each document's rows for its ``spans`` (one kind): vectors from the cache where it has them,
    else from ``encode``; and how many texts were embedded."""
    texts = [doc.text[s:e] for doc in docs for s, e in spans[doc.doc_id]]
    keys = text_keys(model, texts)
    vectors, embedded = embed(encode, cache, keys, texts, dimension)
    out, begin = {}, 0
    for doc in docs:
        n = len(spans[doc.doc_id])
        out[doc.doc_id] = _Rows(np.asarray(spans[doc.doc_id], np.int64).reshape(-1, 2),
                                vectors[begin : begin + n], keys[begin : begin + n])
        begin += n
    return out, embedded


def _assemble(documents: list[Document], chunks: dict[str, _Rows], sentences: dict[str, _Rows],
              previous: Index | None, dimension: int) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """The version's arrays (by file name) from fresh rows and the previous version's, and its document records."""
    old_chunks, old_sentences = _rows_by_document(previous) if previous else ({}, {})
    chunk_parts: list[tuple[int, _Rows]] = []
    sentence_parts: list[tuple[int, _Rows]] = []
    records = {}
    for number, doc in enumerate(documents):
        doc_chunks = chunks[doc.doc_id] if doc.doc_id in chunks else old_chunks[doc.doc_id]
        doc_sentences = sentences[doc.doc_id] if doc.doc_id in sentences else old_sentences[doc.doc_id]
        chunk_parts.append((number, doc_chunks))
        sentence_parts.append((number, doc_sentences))
        records[doc.doc_id] = {"path": doc.path, "content_hash": doc.content_hash,
                               "chunks": len(doc_chunks.spans), "sentences": len(doc_sentences.spans)}
    arrays = {}
    for kind, parts in (("chunk", chunk_parts), ("sentence", sentence_parts)):
        rows, vectors, keys = _concatenate(parts, dimension)
        arrays |= {f"{kind}s.npy": rows, f"{kind}_vectors.npy": vectors, f"{kind}_keys.npy": keys}
    return arrays, records


def _concatenate(parts: list[tuple[int, _Rows]], dimension: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows (document number, start, end), vectors and keys of all documents, in order."""
    total = sum(len(rows.spans) for _, rows in parts)
    table = np.empty((total, 3), np.int64)
    vectors = np.empty((total, dimension), np.float32)
    keys = np.empty(total, KEY)
    begin = 0
    for number, rows in parts:
        end = begin + len(rows.spans)
        table[begin:end, 0] = number
        table[begin:end, 1:] = rows.spans
        vectors[begin:end] = rows.vectors
        keys[begin:end] = rows.keys
        begin = end
    return table, vectors, keys


def _rows_by_document(index: Index) -> tuple[dict[str, _Rows], dict[str, _Rows]]:
    """Chunk and sentence spans, vectors and keys of each document of an index, for reuse."""
    out = []
    for rows, vectors, keys in ((index.chunk_rows, index.chunk_vectors, index.chunk_keys),
                                (index.sentence_rows, index.sentence_vectors, index.sentence_keys)):
        slices = document_slices(rows, len(index.documents))
        out.append({doc.doc_id: _Rows(rows[part, 1:], vectors[part], keys[part])
                    for doc, part in zip(index.documents, slices)})
    return out[0], out[1]
