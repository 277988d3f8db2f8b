"""The persisted index: build, incremental update, atomic save, verified load.

Layout of the index folder::

    index/
      CURRENT                  name of the live version folder (replaced atomically)
      v-20261122T101500-ab12/  one complete version
        manifest.json          what built it: format, model, chunker, search index, hashes, counts, files
        documents.jsonl        each document's text and metadata as indexed
        chunks.npy             int64 rows (document number, start, end)
        chunk_vectors.npy      float32 unit vectors, one row per chunk (memory-mapped when loaded)
        chunk_keys.npy         16-byte key of each chunk vector: a hash of the model name and the text
        chunks.faiss           FAISS inner-product index of the chunk vectors (type chosen by size)
        sentences.npy          int64 rows (document number, start, end)
        sentence_vectors.npy   float32 unit vectors, one row per sentence (memory-mapped when loaded)
        sentence_keys.npy      16-byte key of each sentence vector

A build writes a new version folder beside the live one and only then points CURRENT at
it, so a crash at any moment leaves the previous version loadable. Nothing is pickled.

The keys make the live version an embedding cache: a build looks up every chunk and
sentence text it needs (with the model's name) among the live version's keys and embeds
only those it does not find, so ``--rebuild`` of unchanged text and an update after an
edit embed only what is new. A different model never matches, since its name is hashed in.

The FAISS index is exact (flat) for small corpora and approximate for large ones
(:func:`search_spec`); the exact float32 vectors are always kept beside it, so retrieval
scores its candidates exactly whatever the index type.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
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
    AssistantError,
    CorpusError,
    IndexBusyError,
    IndexCorruptError,
    IndexMismatchError,
    IndexMissingError,
)
from assistant.types import Chunk, Document, Span

FORMAT_VERSION = 2
CURRENT = "CURRENT"
DATA_FILES = ("documents.jsonl", "chunks.npy", "chunk_vectors.npy", "chunk_keys.npy", "chunks.faiss",
              "sentences.npy", "sentence_vectors.npy", "sentence_keys.npy")
CACHE_FILES = ("chunk_keys.npy", "chunk_vectors.npy", "sentence_keys.npy", "sentence_vectors.npy")
REBUILD_HINT = "run `assistant index --rebuild` to build it again from the corpus"
KEY = np.dtype("S16")

# The search index by corpus size, from bench/bench_scale.py (bench/README.md, "Scale"):
# exact search of one question takes about 0.6 ms at 10k vectors but 7.5-25 ms at 100k, so from
# FLAT_BELOW on the store uses HNSW with 8-bit scalar-quantised storage; its graph and codes
# take 0.43 of the memory of float32 vectors. Its recall@10 (after the exact re-scoring that
# retrieval does) falls as the corpus grows at a fixed efSearch: 0.995 at 100k and 0.98 at
# 300k with 256, 0.9965 at 300k with 512 (4 ms), hence the larger efSearch from EF_512_FROM.
# IVF needed too many probes for recall 0.95 on these vectors.
FLAT_BELOW = 20_000
EF_512_FROM = 500_000
HNSW = {"type": "hnsw", "m": 32, "ef_construction": 64, "storage": "sq8"}
TRAIN_SAMPLE = 100_000  # vectors the scalar quantiser or the IVF centroids are trained on
# FAISS searches one question at a time on one OpenMP thread: with two, a search of 10k
# vectors took 24-32 ms instead of 0.7 ms on a busy two-core machine (threads waiting on each
# other; bench/README.md). The setting is per calling thread, so builds keep every core.
_BUILD_THREADS = faiss.omp_get_max_threads()


def search_spec(n: int) -> dict:
    """The FAISS index for ``n`` chunk vectors: exact below FLAT_BELOW, else HNSW (see above).

    The result is recorded in the manifest as ``search`` and read back by ``load_index``.
    """
    if n < FLAT_BELOW:
        return {"type": "flat"}
    return {**HNSW, "ef_search": 512 if n >= EF_512_FROM else 256}


def _factory(spec: dict) -> str:
    kind = spec["type"]
    if kind == "flat":
        return "Flat"
    storage = spec.get("storage", "flat")
    if kind == "hnsw":
        return f"HNSW{spec['m']}" + ("" if storage == "flat" else f"_{storage.upper()}")
    if kind == "ivf":  # "np": no polysemous training, which took minutes for nothing used here
        return f"IVF{spec['nlist']}," + ("Flat" if storage == "flat" else storage.upper()
                                         + ("np" if storage.startswith("pq") else ""))
    raise ValueError(f"unknown search index type {kind!r}")


def configure_search_index(index: faiss.Index, spec: dict) -> None:
    """Set the query-time parameters in ``spec`` (HNSW ef_search, IVF nprobe) on ``index``."""
    space = faiss.ParameterSpace()
    if spec["type"] == "hnsw" and "ef_search" in spec:
        space.set_index_parameter(index, "efSearch", int(spec["ef_search"]))
    elif spec["type"] == "ivf" and "nprobe" in spec:
        space.set_index_parameter(index, "nprobe", int(spec["nprobe"]))


def make_search_index(spec: dict, vectors: np.ndarray) -> faiss.Index:
    """A FAISS inner-product index of type ``spec`` holding ``vectors`` (rows in order)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    dimension = vectors.shape[1]
    faiss.omp_set_num_threads(_BUILD_THREADS)
    index = faiss.index_factory(dimension, _factory(spec), faiss.METRIC_INNER_PRODUCT)
    if spec["type"] == "hnsw":
        faiss.downcast_index(index).hnsw.efConstruction = int(spec["ef_construction"])
    if not index.is_trained:
        rng = np.random.default_rng(0)  # the same sample every build: the same index
        sample = vectors if len(vectors) <= TRAIN_SAMPLE else vectors[np.sort(rng.choice(len(vectors), TRAIN_SAMPLE, replace=False))]
        index.train(sample)
    for begin in range(0, len(vectors), 100_000):
        index.add(vectors[begin : begin + 100_000])
    configure_search_index(index, spec)
    return index


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
        *,
        chunk_vectors: np.ndarray | None = None,
        chunk_keys: np.ndarray | None = None,
        sentence_keys: np.ndarray | None = None,
    ) -> None:
        self.manifest = manifest
        self.documents = documents
        self.by_id = {doc.doc_id: doc for doc in documents}
        self.chunk_rows = chunk_rows
        self.faiss = faiss_index
        self.chunk_vectors = faiss_index.reconstruct_n(0, faiss_index.ntotal) if chunk_vectors is None else chunk_vectors
        self.sentence_rows = sentence_rows
        self.sentence_vectors = sentence_vectors
        self.chunk_keys = chunk_keys
        self.sentence_keys = sentence_keys
        self.version = version

    @property
    def model(self) -> str:
        return self.manifest["model"]["name"]

    @property
    def search_spec(self) -> dict:
        """The type and parameters of the FAISS index (see :func:`search_spec`)."""
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

    def document_of_chunk(self, i: int) -> Document:
        return self.documents[int(self.chunk_rows[i, 0])]

    def sentence(self, i: int) -> tuple[Document, Span]:
        doc_no, start, end = (int(x) for x in self.sentence_rows[i])
        return self.documents[doc_no], Span(start, end)

    def search(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Inner-product scores and chunk numbers of the ``k`` nearest chunks.

        Exact for a flat index; for an approximate one, the nearest the index finds.
        """
        k = min(k, len(self))
        if k == 0:
            return np.empty(0, np.float32), np.empty(0, np.int64)
        faiss.omp_set_num_threads(1)
        scores, ids = self.faiss.search(np.ascontiguousarray(vector.reshape(1, -1), np.float32), k)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep]

    def search_among(self, vector: np.ndarray, k: int, allowed: np.ndarray) -> np.ndarray:
        """Chunk numbers of the ``k`` nearest chunks among those where ``allowed`` is true, exactly."""
        if self.exact:
            faiss.omp_set_num_threads(1)
            selector = faiss.IDSelectorBatch(np.flatnonzero(allowed).astype(np.int64))
            _, ids = self.faiss.search(np.ascontiguousarray(vector.reshape(1, -1), np.float32), k,
                                       params=faiss.SearchParameters(sel=selector))
            return ids[0][ids[0] >= 0]
        # an approximate index searched with a filter finds too few: score the allowed chunks exactly
        ids = np.flatnonzero(allowed)
        if len(ids) > k:
            scores = self.chunk_vectors[ids] @ vector
            top = np.argpartition(-scores, k - 1)[:k]
            ids = ids[top[np.argsort(-scores[top], kind="stable")]]
        return ids

    def staleness(self, corpus_dir: Path) -> Staleness:
        """Compare the corpus on disk with the hashes in the manifest (files are not parsed)."""
        files, _ = scan(corpus_dir)
        return _compare(self.manifest["documents"], {f.doc_id: f.content_hash for f in files},
                        self.manifest.get("unreadable"))


def _compare(indexed: dict[str, dict], on_disk: dict[str, str], unreadable: dict[str, str] | None = None) -> Staleness:
    """``unreadable`` maps files that failed to load at the last build to their hashes: an
    unchanged one is neither new nor stale (it is reported again at each build)."""
    unreadable = unreadable or {}
    return Staleness(
        new=sorted(d for d in set(on_disk) - set(indexed) if unreadable.get(d) != on_disk[d]),
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


def _load_npy(path: Path, mmap: bool = False) -> np.ndarray:
    array = np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    return np.asarray(array)  # a plain read-only view of a memory map: no np.memmap overhead per slice


def _read_manifest(folder: Path) -> dict:
    manifest_path = folder / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        manifest["format_version"]
    except FileNotFoundError as exc:
        raise IndexCorruptError(f"index file {manifest_path} is missing; {REBUILD_HINT}") from exc
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise IndexCorruptError(f"index file {manifest_path} is damaged ({exc}); {REBUILD_HINT}") from exc
    return manifest


def _verify(folder: Path, manifest: dict, names: Iterable[str]) -> None:
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


def load_index(index_dir: Path, model: str | None = None) -> Index:
    """Load and verify the live index version; the vectors are memory-mapped, not read.

    Raises IndexMissingError when nothing was built, IndexMismatchError when it was built
    with another format or with a model other than ``model``, and IndexCorruptError naming
    the damaged file.
    """
    index_dir = Path(index_dir)
    version = current_version(index_dir)
    if version is None:
        raise IndexMissingError(f"no index in {index_dir}; run `assistant index` to build one")
    folder = index_dir / version
    manifest = _read_manifest(folder)
    fmt = manifest["format_version"]
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
    _verify(folder, manifest, DATA_FILES)
    try:
        with (folder / "documents.jsonl").open(encoding="utf-8") as fh:
            documents = [Document.from_dict(json.loads(line)) for line in fh]
        chunk_rows = _load_npy(folder / "chunks.npy")
        chunk_vectors = _load_npy(folder / "chunk_vectors.npy", mmap=True)
        faiss_index = faiss.read_index(str(folder / "chunks.faiss"))
        configure_search_index(faiss_index, manifest.get("search", {"type": "flat"}))
        sentence_rows = _load_npy(folder / "sentences.npy")
        sentence_vectors = _load_npy(folder / "sentence_vectors.npy", mmap=True)
        chunk_keys = _load_npy(folder / "chunk_keys.npy", mmap=True)
        sentence_keys = _load_npy(folder / "sentence_keys.npy", mmap=True)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise IndexCorruptError(f"index in {folder} cannot be read ({exc}); {REBUILD_HINT}") from exc
    if (faiss_index.ntotal != len(chunk_rows) or len(chunk_vectors) != len(chunk_rows)
            or len(chunk_keys) != len(chunk_rows) or len(sentence_vectors) != len(sentence_rows)
            or len(sentence_keys) != len(sentence_rows)):
        raise IndexCorruptError(f"index in {folder} is inconsistent (counts differ); {REBUILD_HINT}")
    return Index(manifest, documents, chunk_rows, faiss_index, sentence_rows, sentence_vectors, version,
                 chunk_vectors=chunk_vectors, chunk_keys=chunk_keys, sentence_keys=sentence_keys)


def check_corpus(settings: Settings) -> Staleness:
    """New, changed and deleted documents of the corpus against the index (nothing is parsed).

    An index of an older format counts every document as changed, since it must be rebuilt.
    """
    version = current_version(settings.index_dir)
    indexed: dict[str, dict] = {}
    unreadable: dict[str, str] | None = None
    if version is not None:
        try:
            manifest = json.loads((settings.index_dir / version / "manifest.json").read_text("utf-8"))
            indexed = manifest["documents"]
            unreadable = manifest.get("unreadable")
            if manifest["format_version"] != FORMAT_VERSION:
                indexed = {doc: {**record, "content_hash": ""} for doc, record in indexed.items()}
        except (OSError, ValueError, KeyError) as exc:
            raise IndexCorruptError(f"index manifest in {settings.index_dir / version} is damaged ({exc}); {REBUILD_HINT}") from exc
    files, _ = scan(settings.corpus_dir)
    return _compare(indexed, {f.doc_id: f.content_hash for f in files}, unreadable)


# --- the embedding cache -------------------------------------------------------------------


def text_keys(model: str, texts: list[str]) -> np.ndarray:
    """The cache key of each text's vector: 16 bytes of BLAKE2b over the model name and the text."""
    prefix = model.encode("utf-8") + b"\0"
    return np.array([hashlib.blake2b(prefix + t.encode("utf-8"), digest_size=16).digest() for t in texts],
                    dtype=KEY).reshape(-1)


class VectorCache:
    """Vectors of earlier builds found by key; sources are (keys, vectors) pairs of one dimension."""

    def __init__(self, sources: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self.sources = []
        for keys, vectors in sources:
            if len(keys):
                order = np.argsort(keys, kind="stable")
                self.sources.append((np.asarray(keys)[order], order, vectors))

    def lookup(self, keys: np.ndarray, dimension: int) -> tuple[np.ndarray, np.ndarray]:
        """Vectors for ``keys`` (zero rows where missing) and a mask of the keys found."""
        vectors = np.zeros((len(keys), dimension), np.float32)
        found = np.zeros(len(keys), bool)
        for sorted_keys, order, source in self.sources:
            if source.shape[1] != dimension:
                continue
            todo = np.flatnonzero(~found)
            if not len(todo):
                break
            at = np.minimum(np.searchsorted(sorted_keys, keys[todo]), len(sorted_keys) - 1)
            hit = sorted_keys[at] == keys[todo]
            rows = order[at[hit]]
            take = np.argsort(rows, kind="stable")  # read a memory-mapped source in file order
            vectors[todo[hit][take]] = source[rows[take]]
            found[todo[hit]] = True
        return vectors, found


def _cache_of(index_dir: Path, previous: Index | None) -> VectorCache:
    """The vectors of the live version, when it is of this format and its cache files verify."""
    if previous is not None:
        return VectorCache([(previous.chunk_keys, previous.chunk_vectors),
                            (previous.sentence_keys, previous.sentence_vectors)])
    version = current_version(index_dir)
    if version is None:
        return VectorCache([])
    folder = index_dir / version
    try:
        manifest = _read_manifest(folder)
        if manifest["format_version"] != FORMAT_VERSION:
            return VectorCache([])
        _verify(folder, manifest, CACHE_FILES)
        arrays = {name: _load_npy(folder / name, mmap=True) for name in CACHE_FILES}
    except (AssistantError, OSError, ValueError, KeyError):
        return VectorCache([])  # a damaged index is what --rebuild is for: build without it
    return VectorCache([(arrays["chunk_keys.npy"], arrays["chunk_vectors.npy"]),
                        (arrays["sentence_keys.npy"], arrays["sentence_vectors.npy"])])


def _embed(encoder: Encoder, cache: VectorCache, keys: np.ndarray, texts: list[str], *, progress: bool,
           desc: str) -> tuple[np.ndarray, int]:
    """Vectors of ``texts``, from the cache where found, else embedded; and how many were embedded."""
    vectors, found = cache.lookup(keys, encoder.dimension)
    missing = np.flatnonzero(~found)
    if len(missing):
        vectors[missing] = encoder.encode([texts[i] for i in missing], progress=progress, desc=desc)
    return vectors, len(missing)


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


def _fsync_write(path: Path, data: bytes | Iterable[bytes] | np.ndarray) -> dict:
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


def _write_version(index_dir: Path, manifest: dict, documents: list[Document], arrays: dict[str, np.ndarray],
                   search: faiss.Index) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    version = f"v-{stamp}-{uuid.uuid4().hex[:6]}"
    tmp = index_dir / f".tmp-{version}"
    tmp.mkdir(parents=True)
    payload = {
        "documents.jsonl": (json.dumps(d.to_dict(), ensure_ascii=False).encode() + b"\n" for d in documents),
        **arrays,
        "chunks.faiss": faiss.serialize_index(search).tobytes(),
    }
    files = {name: _fsync_write(tmp / name, payload[name]) for name in DATA_FILES}
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


@dataclass
class _Rows:
    """One document's spans, vectors and keys, for chunks or for sentences."""

    spans: np.ndarray
    vectors: np.ndarray
    keys: np.ndarray


def build_index(settings: Settings, encoder: Encoder, *, rebuild: bool = False, progress: bool = False) -> BuildReport:
    """Build or update the index of ``settings.corpus_dir`` in ``settings.index_dir``.

    Only new or changed documents are chunked; deleted ones are dropped. With ``rebuild``
    every document is chunked again. Either way a text whose vector the live version holds
    (same model, same text) is not embedded again. An index of an older format is rebuilt.
    Raises IndexMismatchError when the existing index was built with other model or chunker
    settings and ``rebuild`` is not set, CorpusError when no document of the corpus can be
    loaded, IndexBusyError when another build is running.
    """
    index_dir = Path(settings.index_dir)
    model = canonical_model_name(settings.model)
    chunker_settings = {"chunk_tokens": settings.chunk_tokens, "chunk_overlap": settings.chunk_overlap}
    with _write_lock(index_dir):
        previous: Index | None = None
        version = current_version(index_dir)
        if not rebuild and version is not None and _read_manifest(index_dir / version)["format_version"] == FORMAT_VERSION:
            previous = load_index(index_dir, model)
            if previous.manifest["chunker"] != chunker_settings:
                raise IndexMismatchError(
                    f"the index in {index_dir} was built with chunker settings "
                    f"{previous.manifest['chunker']}, not {chunker_settings}; "
                    "run `assistant index --rebuild` to rebuild it with the new settings"
                )
        cache = _cache_of(index_dir, previous)
        files, skipped = scan(settings.corpus_dir)
        indexed = previous.manifest["documents"] if previous else {}
        status = _compare(indexed, {f.doc_id: f.content_hash for f in files})
        reuse = {f.doc_id for f in files} - set(status.new) - set(status.changed)

        documents: list[Document] = []
        fresh: list[Document] = []
        unreadable: dict[str, str] = {}
        for file in files:
            if file.doc_id in reuse:
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
                f"no readable documents in {settings.corpus_dir}"
                + (f" ({len(skipped)} file(s) skipped)" if skipped else "")
                + "; add .txt, .md, .html, .pdf or .docx files"
            )

        chunker = Chunker(encoder.count_tokens, settings.chunk_tokens, settings.chunk_overlap)
        splitter = SentenceSplitter()
        new_chunks = {doc.doc_id: [(c.start, c.end) for c in chunker.chunk(doc)] for doc in fresh}
        new_sentences = {doc.doc_id: [(s.start, s.end) for s in splitter.split(doc.text)] for doc in fresh}
        chunk_texts = [doc.text[s:e] for doc in fresh for s, e in new_chunks[doc.doc_id]]
        sentence_texts = [doc.text[s:e] for doc in fresh for s, e in new_sentences[doc.doc_id]]
        chunk_keys = text_keys(model, chunk_texts)
        sentence_keys = text_keys(model, sentence_texts)
        chunk_vecs, chunks_embedded = _embed(encoder, cache, chunk_keys, chunk_texts, progress=progress,
                                             desc="Embedding chunks")
        sent_vecs, sentences_embedded = _embed(encoder, cache, sentence_keys, sentence_texts, progress=progress,
                                               desc="Embedding sentences")
        fresh_chunks = _per_document(fresh, new_chunks, chunk_vecs, chunk_keys)
        fresh_sentences = _per_document(fresh, new_sentences, sent_vecs, sentence_keys)
        old_chunks, old_sentences = _rows_by_document(previous) if previous else ({}, {})

        chunk_parts: list[tuple[int, _Rows]] = []
        sentence_parts: list[tuple[int, _Rows]] = []
        doc_records = {}
        for number, doc in enumerate(documents):
            chunks = fresh_chunks.get(doc.doc_id) or old_chunks[doc.doc_id]
            sentences = fresh_sentences.get(doc.doc_id) or old_sentences[doc.doc_id]
            chunk_parts.append((number, chunks))
            sentence_parts.append((number, sentences))
            doc_records[doc.doc_id] = {
                "path": doc.path,
                "content_hash": doc.content_hash,
                "chunks": len(chunks.spans),
                "sentences": len(sentences.spans),
            }
        dimension = encoder.dimension
        chunk_rows, chunk_vectors, all_chunk_keys = _concatenate(chunk_parts, dimension)
        sentence_rows, sentence_vectors, all_sentence_keys = _concatenate(sentence_parts, dimension)
        spec = search_spec(len(chunk_rows))
        search = make_search_index(spec, chunk_vectors)
        manifest = {
            "format_version": FORMAT_VERSION,
            "package_version": __version__,
            "model": {"name": model, "dimension": dimension},
            "chunker": chunker_settings,
            "search": spec,
            "documents": doc_records,
            "unreadable": unreadable,
            "counts": {"documents": len(documents), "chunks": len(chunk_rows), "sentences": len(sentence_rows)},
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        arrays = {
            "chunks.npy": chunk_rows,
            "chunk_vectors.npy": chunk_vectors,
            "chunk_keys.npy": all_chunk_keys,
            "sentences.npy": sentence_rows,
            "sentence_vectors.npy": sentence_vectors,
            "sentence_keys.npy": all_sentence_keys,
        }
        version = _write_version(index_dir, manifest, documents, arrays, search)
        _prune(index_dir, keep={version} | ({previous.version} if previous else set()))
    return BuildReport(
        version=version,
        added=[d for d in status.new if d not in unreadable],
        changed=[d for d in status.changed if d not in unreadable],
        deleted=status.deleted,
        unchanged=sorted(reuse),
        skipped=skipped,
        chunks=len(chunk_rows),
        chunks_embedded=chunks_embedded,
        sentences_embedded=sentences_embedded,
        sentences=len(sentence_rows),
        search_index=_factory(spec),
    )


def _per_document(docs: list[Document], spans: dict[str, list[tuple[int, int]]], vectors: np.ndarray,
                  keys: np.ndarray) -> dict[str, _Rows]:
    out, begin = {}, 0
    for doc in docs:
        n = len(spans[doc.doc_id])
        out[doc.doc_id] = _Rows(np.asarray(spans[doc.doc_id], np.int64).reshape(-1, 2),
                                vectors[begin : begin + n], keys[begin : begin + n])
        begin += n
    return out


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
        # rows are stored in document order, so each document's rows are one slice
        bounds = np.searchsorted(rows[:, 0], np.arange(len(index.documents) + 1), side="left")
        out.append({doc.doc_id: _Rows(rows[bounds[i] : bounds[i + 1], 1:], vectors[bounds[i] : bounds[i + 1]],
                                      keys[bounds[i] : bounds[i + 1]])
                    for i, doc in enumerate(index.documents)})
    return out[0], out[1]
