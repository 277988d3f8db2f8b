"""The index folder on disk: what each file holds, and reading, verifying and writing a version.

Layout of the index folder::

    index/
      CURRENT                  name of the live version folder (replaced atomically)
      v-20261122T101500-ab12/  one complete version
        manifest.json          what built it: format, model, chunker, search index, hashes, counts, files
        documents.jsonl        each document's text and metadata as indexed
        chunks.npy             int64 rows (document number, start, end)
        chunk_vectors.npy      float32 unit vectors, one row per chunk (memory-mapped when loaded)
        chunk_keys.npy         16-byte key of each chunk vector: a hash of the model name and the text
        chunks.faiss           FAISS inner-product index of the chunk vectors (type chosen by size, ann.py)
        sentences.npy          int64 rows (document number, start, end)
        sentence_vectors.npy   float32 unit vectors, one row per sentence (memory-mapped when loaded)
        sentence_keys.npy      16-byte key of each sentence vector
        bm25.*.npy, bm25.vocab.json, bm25.params.json
                               BM25 of the chunk texts as bm25s saves it (matrices memory-mapped, keyword.py)

A build writes a new version folder beside the live one and only then points CURRENT at
it, so a crash at any moment leaves the previous version loadable. Nothing is pickled. The
manifest records each file's size and SHA-256, and loading checks them all, so a damaged
file is named with the command that repairs it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path

import faiss
import numpy as np

from assistant import ann
from assistant.authorship import author_mentions
from assistant.config import Settings
from assistant.corpus import scan
from assistant.embedding import canonical_model_name, index_model_name, split_model_name
from assistant.errors import IndexCorruptError, IndexMismatchError, IndexMissingError
from assistant.keyword import FILES as BM25_FILES
from assistant.keyword import KeywordIndex
from assistant.search import LocalSearch, SearchStore
from assistant.types import Chunk, Document, Span

FORMAT_VERSION = 3  # 3: BM25 saved with the version; 2: the embedding cache keys
CACHE_FORMATS = (2, 3)  # formats whose *_keys.npy and *_vectors.npy mean what this one's do
CURRENT = "CURRENT"
ARRAY_FILES = ("chunks.npy", "chunk_vectors.npy", "chunk_keys.npy", "sentences.npy", "sentence_vectors.npy",
               "sentence_keys.npy")
DATA_FILES = ("documents.jsonl", *ARRAY_FILES, "chunks.faiss", *BM25_FILES.values())
CACHE_FILES = ("chunk_keys.npy", "chunk_vectors.npy", "sentence_keys.npy", "sentence_vectors.npy")
REBUILD_HINT = "run `assistant index --rebuild` to build it again from the corpus"
_KEY = 1 << 40  # document number * _KEY + offset orders spans across documents


@dataclass(frozen=True)
class Staleness:
    """How the corpus differs from what the index holds."""

    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    @property
    def stale(self) -> bool:
        return bool(self.new or self.changed or self.deleted)


def compare(indexed: dict[str, dict], on_disk: dict[str, str], unreadable: dict[str, str] | None = None) -> Staleness:
    """``unreadable`` maps files that failed to load at the last build to their hashes: an
    unchanged one is neither new nor stale (it is reported again at each build)."""
    unreadable = unreadable or {}
    return Staleness(
        new=sorted(d for d in set(on_disk) - set(indexed) if unreadable.get(d) != on_disk[d]),
        changed=sorted(d for d in on_disk if d in indexed and indexed[d]["content_hash"] != on_disk[d]),
        deleted=sorted(set(indexed) - set(on_disk)),
    )


def corpus_hashes(corpus_dir: Path) -> dict[str, str]:
    """Document id -> content hash of every file of the corpus (nothing is parsed)."""
    files, _ = scan(corpus_dir)
    return {f.doc_id: f.content_hash for f in files}


class Index:
    """A loaded index version: documents, chunk and sentence spans, what searches them, and the
    documents' structure: their numbers, which sentences lie where (and who speaks them), where
    they name an author. ``searcher`` is what retrieval searches with (search.py); ``keyword`` the
    chunks' BM25, whose terms and IDF the answer step also weighs.
    """

    def __init__(self, manifest: dict, documents: list[Document], arrays: dict[str, np.ndarray],
                 searcher: SearchStore, keyword: KeywordIndex, version: str = "") -> None:
        self.manifest = manifest
        self.documents = documents
        self.by_id = {doc.doc_id: doc for doc in documents}
        self.doc_numbers = {doc.doc_id: i for i, doc in enumerate(documents)}
        self.chunk_rows = arrays["chunks.npy"]
        self.chunk_keys = arrays["chunk_keys.npy"]
        self.sentence_rows = arrays["sentences.npy"]
        self.sentence_keys = arrays["sentence_keys.npy"]
        # the vectors themselves, where the version was read from the index folder (builds reuse them)
        self.chunk_vectors = arrays.get("chunk_vectors.npy")
        self.sentence_vectors = arrays.get("sentence_vectors.npy")
        self.searcher = searcher
        self.keyword = keyword
        self.version = version

    @property
    def model(self) -> str:
        return self.manifest["model"]["name"]

    @property
    def search_spec(self) -> dict:
        """The type and parameters of the FAISS index (see :func:`ann.search_spec`)."""
        return self.manifest.get("search", {"type": "flat"})

    @property
    def exact(self) -> bool:
        """Whether the FAISS index searches exactly (a flat index)."""
        return self.search_spec["type"] == "flat"

    def __len__(self) -> int:
        return len(self.chunk_rows)

    def chunk(self, i: int) -> Chunk:
        """Chunk number ``i``, its text cut from its document."""
        doc_no, start, end = (int(x) for x in self.chunk_rows[i])
        doc = self.documents[doc_no]
        return Chunk(doc.doc_id, start, end, doc.text[start:end])

    def sentence(self, i: int) -> tuple[Document, Span]:
        doc_no, start, end = (int(x) for x in self.sentence_rows[i])
        return self.documents[doc_no], Span(start, end)

    def speaker(self, i: int) -> str | None:
        """Who speaks sentence ``i`` in an interview (its document's speaker turns), else None."""
        doc, span = self.sentence(i)
        return doc.speaker_of(span)

    @cached_property
    def _sentence_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Each sentence's start and end as sort keys across documents (document number * _KEY + offset)."""
        rows = self.sentence_rows
        return rows[:, 0] * _KEY + rows[:, 1], rows[:, 0] * _KEY + rows[:, 2]

    def sentences_in(self, doc_no: int, start: int, end: int) -> range:
        """Numbers of the sentences overlapping ``[start, end)`` of document ``doc_no``."""
        starts, ends = self._sentence_bounds
        lo = np.searchsorted(ends, doc_no * _KEY + start, side="right")
        hi = np.searchsorted(starts, doc_no * _KEY + end, side="left")
        return range(int(lo), int(hi))

    @cached_property
    def chunk_sentences(self) -> np.ndarray:
        """For each chunk, the first and past-the-last numbers of the sentences overlapping it."""
        starts, ends = self._sentence_bounds
        chunks = self.chunk_rows
        return np.stack([np.searchsorted(ends, chunks[:, 0] * _KEY + chunks[:, 1], side="right"),
                         np.searchsorted(starts, chunks[:, 0] * _KEY + chunks[:, 2], side="left")], axis=1)

    @cached_property
    def author_mentions(self) -> list[list[Span]]:
        """For each document number, the places where its text names one of its authors."""
        return [author_mentions(doc) for doc in self.documents]

    def names_author(self, doc_no: int, start: int, end: int) -> bool:
        """Whether ``[start, end)`` of document ``doc_no`` names an author of the document."""
        return any(start <= m.start and m.end <= end for m in self.author_mentions[doc_no])

    @cached_property
    def chunk_names_author(self) -> np.ndarray:
        """For each chunk, whether it names an author of its document."""
        rows = self.chunk_rows.tolist()
        return np.fromiter((self.names_author(*row) for row in rows), dtype=bool, count=len(rows))

    def staleness(self, corpus_dir: Path) -> Staleness:
        """Compare the corpus on disk with the hashes in the manifest (files are not parsed)."""
        return compare(self.manifest["documents"], corpus_hashes(corpus_dir), self.manifest.get("unreadable"))


# --- reading and verifying -----------------------------------------------------------------


def document_slices(rows: np.ndarray, count: int) -> list[slice]:
    """Each of ``count`` documents' slice of a rows array (document number, start, end): a version
    stores its rows in document order, so each document's rows are one slice."""
    if len(rows) and np.any(np.diff(rows[:, 0]) < 0):
        raise ValueError("the rows of a version are not in document order")
    bounds = np.searchsorted(rows[:, 0], np.arange(count + 1), side="left").tolist()
    return [slice(bounds[i], bounds[i + 1]) for i in range(count)]


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


def load_npy(path: Path, mmap: bool = False) -> np.ndarray:
    array = np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    return np.asarray(array)  # a plain read-only view of a memory map: no np.memmap overhead per slice


def read_manifest(folder: Path) -> dict:
    manifest_path = folder / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        manifest["format_version"]
    except FileNotFoundError as exc:
        raise IndexCorruptError(f"index file {manifest_path} is missing; {REBUILD_HINT}") from exc
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise IndexCorruptError(f"index file {manifest_path} is damaged ({exc}); {REBUILD_HINT}") from exc
    return manifest


def verify(folder: Path, manifest: dict, names: Iterable[str]) -> None:
    """Check each file's size and checksum against the manifest; IndexCorruptError names a bad one."""
    for name in names:
        path = folder / name
        expected = manifest["files"][name]
        if not path.is_file():
            raise IndexCorruptError(f"index file {path} is missing; {REBUILD_HINT}")
        if path.stat().st_size != expected["bytes"] or _sha256(path) != expected["sha256"]:
            raise IndexCorruptError(
                f"index file {path} is damaged or truncated (its checksum does not match the "
                f"manifest); {REBUILD_HINT}"
            )


def check_format_and_model(index_dir: Path, manifest: dict, model: str | None) -> None:
    fmt = manifest["format_version"]
    if fmt != FORMAT_VERSION:
        raise IndexMismatchError(
            f"the index in {index_dir} has format version {fmt}, this assistant reads "
            f"version {FORMAT_VERSION}; {REBUILD_HINT}"
        )
    check_model(index_dir, manifest, model)


def check_model(index_dir: Path, manifest: dict, model: str | None) -> None:
    """IndexMismatchError when the index was built with another model, or backend, than ``model``."""
    built_with = manifest["model"]["name"]
    if model is None or canonical_model_name(model) == built_with:
        return
    asked = canonical_model_name(model)
    (built_model, built_backend), (asked_model, asked_backend) = split_model_name(built_with), split_model_name(asked)
    built = (f"the {built_backend} backend, not the {asked_backend} one asked for" if built_model == asked_model
             else f"model {built_with!r}, but model {asked!r} was asked for")
    raise IndexMismatchError(
        f"the index in {index_dir} was built with {built}. Ask with {_model_options(built_with)}, or rebuild "
        f"for the new {'backend' if built_model == asked_model else 'model'} with "
        f"`assistant index --rebuild {_model_options(asked)}`"
    )


def _model_options(name: str) -> str:
    """The command-line options that ask for the index model ``name`` (the backend too: the
    user may have asked for the other one)."""
    model, backend = split_model_name(name)
    return f"--model {model!r} --backend {backend}"


def load_index(index_dir: Path, model: str | None = None) -> Index:
    """Load and verify the live index version; the vectors and BM25 matrices are memory-mapped, not read.

    Raises IndexMissingError when nothing was built, IndexMismatchError when it was built
    with another format or with a model other than ``model``, and IndexCorruptError naming
    the damaged file.
    """
    index_dir = Path(index_dir)
    version = current_version(index_dir)
    if version is None:
        raise IndexMissingError(f"no index in {index_dir}; run `assistant index` to build one")
    folder = index_dir / version
    manifest = read_manifest(folder)
    check_format_and_model(index_dir, manifest, model)
    verify(folder, manifest, DATA_FILES)
    try:
        with (folder / "documents.jsonl").open(encoding="utf-8") as fh:
            documents = [Document.from_dict(json.loads(line)) for line in fh]
        arrays = {name: load_npy(folder / name, mmap=name.endswith(("_vectors.npy", "_keys.npy")))
                  for name in ARRAY_FILES}
        search_index = faiss.read_index(str(folder / "chunks.faiss"))
        spec = manifest.get("search", {"type": "flat"})
        ann.configure_search_index(search_index, spec)
        keyword = KeywordIndex.load(folder)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise IndexCorruptError(f"index in {folder} cannot be read ({exc}); {REBUILD_HINT}") from exc
    chunks, sentences = len(arrays["chunks.npy"]), len(arrays["sentences.npy"])
    if (search_index.ntotal != chunks or keyword.size != chunks
            or any(len(arrays[f"chunk_{kind}.npy"]) != chunks for kind in ("vectors", "keys"))
            or any(len(arrays[f"sentence_{kind}.npy"]) != sentences for kind in ("vectors", "keys"))):
        raise IndexCorruptError(f"index in {folder} is inconsistent (counts differ); {REBUILD_HINT}")
    searcher = LocalSearch(search_index, keyword, arrays["chunks.npy"][:, 0], arrays["chunk_vectors.npy"],
                           arrays["sentence_vectors.npy"], spec["type"] == "flat")
    return Index(manifest, documents, arrays, searcher, keyword, version)


def check_corpus(settings: Settings) -> Staleness:
    """New, changed and deleted documents of the corpus against the index (nothing is parsed).

    An index of an older format counts every document as changed, since it must be rebuilt.
    """
    index_dir = Path(settings.index_dir)
    version = current_version(index_dir)
    indexed: dict[str, dict] = {}
    unreadable: dict[str, str] | None = None
    if version is not None:
        try:
            manifest = json.loads((index_dir / version / "manifest.json").read_text("utf-8"))
            indexed = manifest["documents"]
            unreadable = manifest.get("unreadable")
            if manifest["format_version"] != FORMAT_VERSION:
                indexed = {doc: {**record, "content_hash": ""} for doc, record in indexed.items()}
            else:  # an index of another model (or backend) cannot be updated, as `assistant index` says too
                check_model(index_dir, manifest, index_model_name(settings.model, settings.backend))
        except (OSError, ValueError, KeyError) as exc:
            raise IndexCorruptError(f"index manifest in {index_dir / version} is damaged ({exc}); {REBUILD_HINT}") from exc
    return compare(indexed, corpus_hashes(settings.corpus_dir), unreadable)


# --- writing -------------------------------------------------------------------------------


class _HashingWriter:
    """A file-like sink that counts and hashes what passes through it into ``fh``."""

    def __init__(self, fh) -> None:  # noqa: ANN001 - a binary file
        self.fh = fh
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.fh.write(data)
        self.digest.update(data)
        self.size += len(data)
        return len(data)


def fsync_write(path: Path, data: bytes | Iterable[bytes] | np.ndarray) -> dict:
    """Write ``data`` (bytes, pieces of bytes, or an array saved as .npy) and fsync it.

    Returns the file's size and SHA-256 as the manifest records them. Large arrays are
    written in pieces, never copied whole into memory.
    """
    with path.open("wb") as fh:
        sink = _HashingWriter(fh)
        if isinstance(data, np.ndarray):
            np.lib.format.write_array(sink, data, allow_pickle=False)
        else:
            for piece in [data] if isinstance(data, bytes) else data:
                sink.write(piece)
        fh.flush()
        os.fsync(fh.fileno())
    return {"bytes": sink.size, "sha256": sink.digest.hexdigest()}


def _seal(path: Path) -> dict:
    """Fsync a file a library wrote; its size and SHA-256 as the manifest records them."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return {"bytes": path.stat().st_size, "sha256": _sha256(path)}


def write_version(index_dir: Path, manifest: dict, documents: list[Document], arrays: dict[str, np.ndarray],
                  search_index: faiss.Index, keyword: KeywordIndex) -> str:
    """Write a complete version folder, then point CURRENT at it; the new version's name."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    version = f"v-{stamp}-{uuid.uuid4().hex[:6]}"
    tmp = index_dir / f".tmp-{version}"
    tmp.mkdir(parents=True)
    payload = {
        "documents.jsonl": (json.dumps(d.to_dict(), ensure_ascii=False).encode() + b"\n" for d in documents),
        **arrays,
        "chunks.faiss": faiss.serialize_index(search_index).tobytes(),
    }
    files = {name: fsync_write(tmp / name, payload[name]) for name in DATA_FILES if name in payload}
    files.update({name: _seal(tmp / name) for name in keyword.save(tmp)})
    manifest = {**manifest, "files": files}
    fsync_write(tmp / "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False).encode())
    os.rename(tmp, index_dir / version)
    pointer = index_dir / f".{CURRENT}.tmp"
    fsync_write(pointer, version.encode())
    os.replace(pointer, index_dir / CURRENT)
    return version


def prune(index_dir: Path, keep: set[str]) -> None:
    """Remove unfinished builds and versions older than the previous one."""
    for path in index_dir.iterdir():
        if path.is_dir() and (path.name.startswith(".tmp-") or path.name.startswith("v-")) and path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)
