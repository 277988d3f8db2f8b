"""The persisted index: build, incremental update, atomic save, verified load.

Layout of the index folder::

    index/
      CURRENT                  name of the live version folder (replaced atomically)
      v-20261122T101500-ab12/  one complete version
        manifest.json          what built it: format, model, chunker, hashes, counts, files
        documents.jsonl        each document's text and metadata as indexed
        chunks.npy             int64 rows (document number, start, end)
        chunks.faiss           FAISS inner-product index of the chunk vectors
        sentences.npy          int64 rows (document number, start, end)
        sentence_vectors.npy   float32 unit vectors, one row per sentence

A build writes a new version folder beside the live one and only then points CURRENT at
it, so a crash at any moment leaves the previous version loadable. Nothing is pickled.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import faiss
import numpy as np

from assistant import __version__
from assistant.chunking import Chunker, SentenceSplitter
from assistant.config import Settings
from assistant.corpus import Skipped, UnreadableFile, load_file, scan
from assistant.embedding import Encoder, canonical_model_name
from assistant.errors import (
    CorpusError,
    IndexBusyError,
    IndexCorruptError,
    IndexMismatchError,
    IndexMissingError,
)
from assistant.types import Chunk, Document, Span

FORMAT_VERSION = 1
CURRENT = "CURRENT"
DATA_FILES = ("documents.jsonl", "chunks.npy", "chunks.faiss", "sentences.npy", "sentence_vectors.npy")
REBUILD_HINT = "run `assistant index --rebuild` to build it again from the corpus"


@dataclass(frozen=True)
class Staleness:
    """How the corpus differs from what the index holds."""

    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    @property
    def stale(self) -> bool:
        return bool(self.new or self.changed or self.deleted)


@dataclass(frozen=True)
class BuildReport:
    """What a build did."""

    version: str
    added: list[str]
    changed: list[str]
    deleted: list[str]
    unchanged: list[str]
    skipped: list[Skipped]
    chunks: int
    chunks_embedded: int
    sentences_embedded: int


class Index:
    """A loaded index version: documents, chunk and sentence spans, vectors and FAISS index."""

    def __init__(
        self,
        manifest: dict,
        documents: list[Document],
        chunk_rows: np.ndarray,
        faiss_index: faiss.Index,
        sentence_rows: np.ndarray,
        sentence_vectors: np.ndarray,
        version: str = "",
    ) -> None:
        self.manifest = manifest
        self.documents = documents
        self.by_id = {doc.doc_id: doc for doc in documents}
        self.chunk_rows = chunk_rows
        self.faiss = faiss_index
        self.sentence_rows = sentence_rows
        self.sentence_vectors = sentence_vectors
        self.version = version

    @property
    def model(self) -> str:
        return self.manifest["model"]["name"]

    def __len__(self) -> int:
        return len(self.chunk_rows)

    def chunk(self, i: int) -> Chunk:
        """Chunk number ``i``, its text cut from its document."""
        doc_no, start, end = (int(x) for x in self.chunk_rows[i])
        doc = self.documents[doc_no]
        return Chunk(doc.doc_id, start, end, doc.text[start:end])

    def document_of_chunk(self, i: int) -> Document:
        return self.documents[int(self.chunk_rows[i, 0])]

    def sentence(self, i: int) -> tuple[Document, Span]:
        doc_no, start, end = (int(x) for x in self.sentence_rows[i])
        return self.documents[doc_no], Span(start, end)

    def search(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Inner-product scores and chunk numbers of the ``k`` nearest chunks."""
        k = min(k, len(self))
        if k == 0:
            return np.empty(0, np.float32), np.empty(0, np.int64)
        scores, ids = self.faiss.search(np.ascontiguousarray(vector.reshape(1, -1), np.float32), k)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep]

    def staleness(self, corpus_dir: Path) -> Staleness:
        """Compare the corpus on disk with the hashes in the manifest (files are not parsed)."""
        files, _ = scan(corpus_dir)
        return _compare(self.manifest["documents"], {f.doc_id: f.content_hash for f in files})


def _compare(indexed: dict[str, dict], on_disk: dict[str, str]) -> Staleness:
    return Staleness(
        new=sorted(set(on_disk) - set(indexed)),
        changed=sorted(d for d in on_disk if d in indexed and indexed[d]["content_hash"] != on_disk[d]),
        deleted=sorted(set(indexed) - set(on_disk)),
    )


# --- reading -------------------------------------------------------------------------------


def current_version(index_dir: Path) -> str | None:
    """Name of the live version folder, or None when no index has been built."""
    try:
        name = (Path(index_dir) / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return name or None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _load_npy(path: Path) -> np.ndarray:
    return np.load(path, allow_pickle=False)


def load_index(index_dir: Path, model: str | None = None) -> Index:
    """Load and verify the live index version.

    Raises IndexMissingError when nothing was built, IndexMismatchError when it was built
    with another format or with a model other than ``model``, and IndexCorruptError naming
    the damaged file.
    """
    index_dir = Path(index_dir)
    version = current_version(index_dir)
    if version is None:
        raise IndexMissingError(f"no index in {index_dir}; run `assistant index` to build one")
    folder = index_dir / version
    manifest_path = folder / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        fmt = manifest["format_version"]
    except FileNotFoundError as exc:
        raise IndexCorruptError(f"index file {manifest_path} is missing; {REBUILD_HINT}") from exc
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise IndexCorruptError(f"index file {manifest_path} is damaged ({exc}); {REBUILD_HINT}") from exc
    if fmt != FORMAT_VERSION:
        raise IndexMismatchError(
            f"the index in {index_dir} has format version {fmt}, this assistant reads "
            f"version {FORMAT_VERSION}; {REBUILD_HINT}"
        )
    built_with = manifest["model"]["name"]
    if model is not None and canonical_model_name(model) != built_with:
        raise IndexMismatchError(
            f"the index in {index_dir} was built with model {built_with!r}, but model "
            f"{canonical_model_name(model)!r} was asked for. Ask with --model {built_with!r}, or "
            f"rebuild for the new model with `assistant index --rebuild --model {model}`"
        )
    for name in DATA_FILES:
        path = folder / name
        expected = manifest["files"][name]
        if not path.is_file():
            raise IndexCorruptError(f"index file {path} is missing; {REBUILD_HINT}")
        if path.stat().st_size != expected["bytes"] or _sha256(path) != expected["sha256"]:
            raise IndexCorruptError(
                f"index file {path} is damaged or truncated (its checksum does not match the "
                f"manifest); {REBUILD_HINT}"
            )
    try:
        with (folder / "documents.jsonl").open(encoding="utf-8") as fh:
            documents = [Document.from_dict(json.loads(line)) for line in fh]
        chunk_rows = _load_npy(folder / "chunks.npy")
        faiss_index = faiss.read_index(str(folder / "chunks.faiss"))
        sentence_rows = _load_npy(folder / "sentences.npy")
        sentence_vectors = _load_npy(folder / "sentence_vectors.npy")
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise IndexCorruptError(f"index in {folder} cannot be read ({exc}); {REBUILD_HINT}") from exc
    if faiss_index.ntotal != len(chunk_rows) or len(sentence_vectors) != len(sentence_rows):
        raise IndexCorruptError(f"index in {folder} is inconsistent (counts differ); {REBUILD_HINT}")
    return Index(manifest, documents, chunk_rows, faiss_index, sentence_rows, sentence_vectors, version)


def check_corpus(settings: Settings) -> Staleness:
    """New, changed and deleted documents of the corpus against the index (nothing is parsed)."""
    version = current_version(settings.index_dir)
    indexed: dict[str, dict] = {}
    if version is not None:
        try:
            manifest = json.loads((settings.index_dir / version / "manifest.json").read_text("utf-8"))
            indexed = manifest["documents"]
        except (OSError, ValueError, KeyError) as exc:
            raise IndexCorruptError(f"index manifest in {settings.index_dir / version} is damaged ({exc}); {REBUILD_HINT}") from exc
    files, _ = scan(settings.corpus_dir)
    return _compare(indexed, {f.doc_id: f.content_hash for f in files})


# --- writing -------------------------------------------------------------------------------


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


def _fsync_write(path: Path, data: bytes) -> None:
    with path.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _write_version(index_dir: Path, manifest: dict, documents: list[Document], chunk_rows: np.ndarray,
                   chunk_vectors: np.ndarray, sentence_rows: np.ndarray, sentence_vectors: np.ndarray) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    version = f"v-{stamp}-{uuid.uuid4().hex[:6]}"
    tmp = index_dir / f".tmp-{version}"
    tmp.mkdir(parents=True)
    flat = faiss.IndexFlatIP(chunk_vectors.shape[1])
    flat.add(np.ascontiguousarray(chunk_vectors, dtype=np.float32))
    payload = {
        "documents.jsonl": "".join(json.dumps(d.to_dict(), ensure_ascii=False) + "\n" for d in documents).encode(),
        "chunks.npy": _npy_bytes(chunk_rows),
        "chunks.faiss": faiss.serialize_index(flat).tobytes(),
        "sentences.npy": _npy_bytes(sentence_rows),
        "sentence_vectors.npy": _npy_bytes(sentence_vectors),
    }
    files = {}
    for name, data in payload.items():
        _fsync_write(tmp / name, data)
        files[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    manifest = {**manifest, "files": files}
    _fsync_write(tmp / "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False).encode())
    os.rename(tmp, index_dir / version)
    pointer = index_dir / f".{CURRENT}.tmp"
    _fsync_write(pointer, version.encode())
    os.replace(pointer, index_dir / CURRENT)
    return version


def _prune(index_dir: Path, keep: set[str]) -> None:
    """Remove unfinished builds and versions older than the previous one."""
    for path in index_dir.iterdir():
        if path.is_dir() and (path.name.startswith(".tmp-") or path.name.startswith("v-")) and path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)


def build_index(settings: Settings, encoder: Encoder, *, rebuild: bool = False, progress: bool = False) -> BuildReport:
    """Build or update the index of ``settings.corpus_dir`` in ``settings.index_dir``.

    Only new or changed documents are chunked and embedded; deleted ones are dropped. With
    ``rebuild`` everything is embedded again. Raises IndexMismatchError when the existing
    index was built with other model or chunker settings and ``rebuild`` is not set,
    CorpusError when no document of the corpus can be loaded, IndexBusyError when another
    build is running.
    """
    index_dir = Path(settings.index_dir)
    model = canonical_model_name(settings.model)
    chunker_settings = {"chunk_tokens": settings.chunk_tokens, "chunk_overlap": settings.chunk_overlap}
    with _write_lock(index_dir):
        previous: Index | None = None
        if not rebuild and current_version(index_dir) is not None:
            previous = load_index(index_dir, model)
            if previous.manifest["chunker"] != chunker_settings:
                raise IndexMismatchError(
                    f"the index in {index_dir} was built with chunker settings "
                    f"{previous.manifest['chunker']}, not {chunker_settings}; "
                    "run `assistant index --rebuild` to rebuild it with the new settings"
                )
        files, skipped = scan(settings.corpus_dir)
        indexed = previous.manifest["documents"] if previous else {}
        status = _compare(indexed, {f.doc_id: f.content_hash for f in files})
        reuse = {f.doc_id for f in files} - set(status.new) - set(status.changed)

        documents: list[Document] = []
        fresh: list[Document] = []
        for file in files:
            if file.doc_id in reuse:
                documents.append(previous.by_id[file.doc_id])
                continue
            try:
                doc = load_file(file)
            except UnreadableFile as exc:
                skipped.append(Skipped(file.relpath, str(exc)))
                continue
            documents.append(doc)
            fresh.append(doc)
        if not documents:
            raise CorpusError(
                f"no readable documents in {settings.corpus_dir}"
                + (f" ({len(skipped)} file(s) skipped)" if skipped else "")
                + "; add .txt, .md, .html, .pdf or .docx files"
            )

        chunker = Chunker(encoder.count_tokens, settings.chunk_tokens, settings.chunk_overlap)
        splitter = SentenceSplitter()
        new_chunks = {doc.doc_id: chunker.chunk(doc) for doc in fresh}
        new_sentences = {doc.doc_id: splitter.split(doc.text) for doc in fresh}
        chunk_texts = [c.text for doc in fresh for c in new_chunks[doc.doc_id]]
        sentence_texts = [doc.text[s.start : s.end] for doc in fresh for s in new_sentences[doc.doc_id]]
        chunk_vecs = encoder.encode(chunk_texts, progress=progress, desc="Embedding chunks")
        sent_vecs = encoder.encode(sentence_texts, progress=progress, desc="Embedding sentences")
        fresh_chunk_vecs = _split_rows(chunk_vecs, [len(new_chunks[d.doc_id]) for d in fresh], fresh)
        fresh_sent_vecs = _split_rows(sent_vecs, [len(new_sentences[d.doc_id]) for d in fresh], fresh)

        old = _rows_by_document(previous) if previous else {}
        chunk_rows, chunk_vectors, sentence_rows, sentence_vectors = [], [], [], []
        doc_records = {}
        for number, doc in enumerate(documents):
            if doc.doc_id in fresh_chunk_vecs:
                c_spans = [(c.start, c.end) for c in new_chunks[doc.doc_id]]
                s_spans = [(s.start, s.end) for s in new_sentences[doc.doc_id]]
                c_vecs, s_vecs = fresh_chunk_vecs[doc.doc_id], fresh_sent_vecs[doc.doc_id]
            else:
                c_spans, c_vecs, s_spans, s_vecs = old[doc.doc_id]
            chunk_rows += [(number, s, e) for s, e in c_spans]
            sentence_rows += [(number, s, e) for s, e in s_spans]
            chunk_vectors.append(c_vecs)
            sentence_vectors.append(s_vecs)
            doc_records[doc.doc_id] = {
                "path": doc.path,
                "content_hash": doc.content_hash,
                "chunks": len(c_spans),
                "sentences": len(s_spans),
            }
        dimension = encoder.dimension
        manifest = {
            "format_version": FORMAT_VERSION,
            "package_version": __version__,
            "model": {"name": model, "dimension": dimension},
            "chunker": chunker_settings,
            "documents": doc_records,
            "counts": {"documents": len(documents), "chunks": len(chunk_rows), "sentences": len(sentence_rows)},
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        version = _write_version(
            index_dir,
            manifest,
            documents,
            np.asarray(chunk_rows, dtype=np.int64).reshape(-1, 3),
            np.concatenate(chunk_vectors).astype(np.float32),
            np.asarray(sentence_rows, dtype=np.int64).reshape(-1, 3),
            np.concatenate(sentence_vectors).astype(np.float32),
        )
        _prune(index_dir, keep={version} | ({previous.version} if previous else set()))
    return BuildReport(
        version=version,
        added=status.new,
        changed=status.changed,
        deleted=status.deleted,
        unchanged=sorted(reuse),
        skipped=skipped,
        chunks=len(chunk_rows),
        chunks_embedded=len(chunk_texts),
        sentences_embedded=len(sentence_texts),
    )


def _split_rows(vectors: np.ndarray, counts: list[int], docs: list[Document]) -> dict[str, np.ndarray]:
    out, begin = {}, 0
    for doc, n in zip(docs, counts):
        out[doc.doc_id] = vectors[begin : begin + n]
        begin += n
    return out


def _rows_by_document(index: Index) -> dict[str, tuple[list, np.ndarray, list, np.ndarray]]:
    """Spans and vectors of each document of an index, for reuse in an update."""
    vectors = index.faiss.reconstruct_n(0, index.faiss.ntotal)
    out = {}
    for number, doc in enumerate(index.documents):
        c_mask = index.chunk_rows[:, 0] == number
        s_mask = index.sentence_rows[:, 0] == number
        out[doc.doc_id] = (
            [tuple(r) for r in index.chunk_rows[c_mask, 1:].tolist()],
            vectors[c_mask],
            [tuple(r) for r in index.sentence_rows[s_mask, 1:].tolist()],
            index.sentence_vectors[s_mask],
        )
    return out

