"""Index versions in Milvus through pymilvus' MilvusClient: write (incrementally) and open.

The URI is what ``MilvusClient`` takes: ``http://HOST:PORT`` for a Milvus server, or a local
file ending in ``.db`` for milvus-lite (embedded, the same client API).

A document's vectors and text are written once and shared by every version that holds the
document unchanged; only new and changed documents are written by an update. Its rows sit in
three collections shared by the versions of one *generation* (the model, its dimension and the
dense index: a change of any starts a new generation, written whole), ``NAME__GENERATION__KIND``:

- ``vectors``: each chunk's dense vector (inner product; FLAT, or HNSW when the manifest's
  ``search`` asks for it, as ann.py chooses by size);
- ``sentences``: each sentence's start, end, key (the embedding-cache key, hex) and vector;
- ``documents``: each document's text and record (its JSON without the text) cut into ordered
  parts under VARCHAR's 65,535 bytes and joined back exactly on open.

Each row carries its document's *serial* (a hash of the document's text, record, spans, keys and
generation, so an unchanged document keeps it) and ``born``, the sequence number of the version
that wrote it; a document's rows of each kind have consecutive ids, whose first the manifest
gives. A version reads the rows born at or before it, less those of the documents it dropped
(``dead``): a new version's rows stay invisible to the versions before it.

Each version also has two collections of its own, ``NAME__VERSION__KIND``:

- ``chunks``: id (the chunk number), doc_no, start, end, key, the chunk's text cut from its
  document (``text[start:end]``) and its BM25 ``terms`` (analysed; a BM25 function fills
  ``sparse`` from them). They are written whole for each version: milvus-lite keeps BM25
  statistics per segment, so chunks written by a later update would be scored against their
  own few (measured: a word's score fell from 4.36 to 0.13 in a segment of three chunks);
- ``manifest``: the manifest, with the version's documents (serial and first ids), in parts.

The alias ``NAME`` names the live version's ``manifest`` collection: a build writes and flushes
the new rows and collections, then points the alias at them in one ``alter_alias``, so an open
sees one whole version. An opened version keeps its collection names and filters, so a reader's
results stay from its version while a new one is written; the previous version is kept, and the
next build drops older ones (their own collections first, then the rows only they read), which
their readers are told. Writers are not locked against each other: run one build at a time per
name. An opened version searches through ``MilvusSearch`` (milvus_search.py).

Keyword search is Milvus' BM25 (k1 1.5, b 0.75, the idf of bm25s' "lucene" method) over the
chunk's terms as the folder store's BM25 makes them (``terms_of``: bm25s' tokenizer, its English
stop words, the Snowball stemmer), and the question's terms made the same way, so both stores
count the same terms. (Milvus' own English analysis would differ: milvus-lite 3.2.2 has no
stemmer and refuses ``{"type": "english"}``.) A version's chunks are flushed once, so a version
up to about 128 MB is one segment. README.md ("Milvus store") gives how its lists compare with
bm25s' (bench/bench_milvus.py).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
from pymilvus import DataType, Function, FunctionType, MilvusClient

from assistant.embedding_cache import KEY
from assistant.errors import IndexCorruptError, IndexMismatchError, IndexMissingError, InputError
from assistant.layout import REBUILD_HINT, Index, check_format_and_model, document_slices
from assistant.milvus_search import TOP_LIMIT, MilvusSearch, answering, collection, connect, terms_of
from assistant.types import Document

VARCHAR_BYTES = 65_535  # Milvus' largest VARCHAR, in UTF-8 bytes
VERSION_KINDS = ("manifest", "chunks")  # a version's own collections
SHARED_KINDS = ("vectors", "sentences", "documents")  # a generation's, shared by its versions
ANALYZER = {"tokenizer": "standard", "filter": ["lowercase"]}  # over bm25s' terms, already stemmed (terms_of)
BATCH_BYTES = 8 << 20  # about this much data per insert request (Milvus takes up to 64 MB)
SCAN_BATCH = 4096  # rows per query when a collection is read
CHECK_SAMPLE = 256  # chunks whose stored text is compared with their document's on open
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*")
_ARRAYS = {"chunks.npy": "chunk_rows", "chunk_vectors.npy": "chunk_vectors", "chunk_keys.npy": "chunk_keys",
           "sentences.npy": "sentence_rows", "sentence_vectors.npy": "sentence_vectors",
           "sentence_keys.npy": "sentence_keys"}


@dataclass(frozen=True)
class MilvusVersion:
    """One opened version: what ``layout.Index`` holds apart from its search structures, and ``search``."""

    version: str
    manifest: dict
    documents: list[Document]
    chunk_rows: np.ndarray  # int64 (n, 3): document number, start, end
    chunk_keys: np.ndarray
    sentence_rows: np.ndarray
    sentence_keys: np.ndarray
    search: MilvusSearch


@dataclass(frozen=True)
class _Placed:
    """Where a document's rows are in its generation's collections (the manifest's ``documents``): its
    serial, and the first id and number of its chunk vectors, of its sentences and of its parts."""

    serial: int
    chunks: int
    chunk_count: int
    sentences: int
    sentence_count: int
    parts: int
    part_count: int


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name) or len(name) > 64:
        raise InputError(f"the index name {name!r} cannot name a Milvus index: use up to 64 letters and "
                         "digits, single underscores between them")


def live_version(uri: str, name: str) -> str | None:
    """The name of the live version under ``name`` at ``uri`` (None when nothing was written).

    Asked before each request of the app, so one client per ``uri`` serves all the asking.
    """
    _check_name(name)
    with answering(uri):
        return _live(_client(uri), name)


@functools.cache
def _client(uri: str) -> MilvusClient:
    return connect(uri)


def _live(client: MilvusClient, name: str) -> str | None:
    """The version the alias ``name`` points at, or None when there is none."""
    if name not in client.list_aliases().get("aliases", []):
        return None
    return client.describe_alias(name)["collection_name"].split("__")[1]


def _owned(client: MilvusClient, name: str) -> list[tuple[str, str, str]]:
    """The collections written under ``name``: (collection, version or generation, kind)."""
    found = []
    for other in client.list_collections():
        pieces = other.split("__")
        if len(pieces) == 3 and pieces[0] == name and pieces[2] in VERSION_KINDS + SHARED_KINDS:
            found.append((other, pieces[1], pieces[2]))
    return found


# --- writing -------------------------------------------------------------------------------


def write_version(uri: str, name: str, manifest: dict, documents: list[Document],
                  arrays: dict[str, np.ndarray]) -> str:
    """Write one version under ``name``, then make it the live one; the version's name.

    ``manifest``, ``documents`` and ``arrays`` are what ``layout.write_version`` takes (each
    document's rows one slice, in document order). Only the rows of documents that the live
    version does not hold unchanged are written, besides the version's chunks and manifest.
    """
    _check_name(name)
    version = f"v{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%S')}_{uuid.uuid4().hex[:6]}"
    dense = _dense_index(manifest.get("search", {"type": "flat"}))
    dimension = int(arrays["chunk_vectors.npy"].shape[1])
    generation = _generation(manifest["model"]["name"], dimension, dense)
    slices = {kind: document_slices(arrays[f"{kind}s.npy"], len(documents)) for kind in ("chunk", "sentence")}
    serials = [_serial(generation, doc, arrays, slices["chunk"][i], slices["sentence"][i])
               for i, doc in enumerate(documents)]
    client = connect(uri)
    with answering(uri):
        live = _live(client, name)
        previous = _readable_manifest(client, name, live)
        same = previous is not None and previous["store"]["generation"] == generation
        held = {placed.serial: placed for placed in _placements(previous)} if same else {}
        dead = sorted(set(held) - set(serials))  # the live version's documents this one drops: their rows stay
        next_ids = dict(previous["store"]["next_ids"]) if same else dict.fromkeys(SHARED_KINDS, 0)
        seq = previous["store"]["seq"] + 1 if previous else 1
        shared = {kind: collection(name, generation, kind) for kind in SHARED_KINDS}
        # what no version after this write reads goes first: older versions' own collections, then their rows
        keep = {generation} | ({previous["store"]["generation"]} if previous else set())
        for other, owner, kind in _owned(client, name):
            if owner != live and (kind in VERSION_KINDS or owner not in keep or (owner == generation and not same)):
                client.drop_collection(other)
        if same:
            for kind in SHARED_KINDS:  # rows of documents the live version dropped, and of a failed write
                client.delete(shared[kind], filter=f"id >= {next_ids[kind]} or doc not in {sorted(held)}")
        else:
            _create(client, shared["vectors"], _vectors_schema(dimension), {"vector": dense})
            flat = _dense_index({"type": "flat"})
            _create(client, shared["sentences"], _sentences_schema(dimension), {"vector": flat})
            _create(client, shared["documents"], _documents_schema(), {"unused": flat})
        placed, fresh = [], []
        for number, serial in enumerate(serials):
            if serial not in held:
                document = _document_parts(documents[number])
                held[serial] = _place(serial, next_ids, slices["chunk"][number], slices["sentence"][number], document)
                fresh.append((number, held[serial], document))
            placed.append(held[serial])
        _fill(client, shared["vectors"], _vector_rows(arrays, slices["chunk"], fresh, seq))
        _fill(client, shared["sentences"], _sentence_rows(arrays, slices["sentence"], fresh, seq))
        _fill(client, shared["documents"], _part_rows(fresh, seq))
        manifest = {**manifest, "store": {
            "kind": "milvus", "version": version, "seq": seq, "generation": generation, "analyzer": ANALYZER,
            "dense": dense, "next_ids": next_ids, "dead": dead,
            "documents": [list(dataclasses.astuple(p)) for p in placed]}}
        manifest.pop("files", None)
        chunks = collection(name, version, "chunks")
        _create(client, chunks, _chunks_schema(), {"sparse": {"index_type": "SPARSE_INVERTED_INDEX",
                                                              "metric_type": "BM25"}})
        _fill(client, chunks, _chunk_rows(arrays, documents))
        target = collection(name, version, "manifest")
        _create(client, target, _manifest_schema(), {"unused": _dense_index({"type": "flat"})})
        _fill(client, target, ({"id": i, "text": part, "unused": [1.0, 0.0]}
                               for i, part in enumerate(parts(json.dumps(manifest, ensure_ascii=False)))))
        if live is None:
            client.create_alias(target, name)
        else:
            client.alter_alias(target, name)
    return version


def _readable_manifest(client: MilvusClient, name: str, live: str | None) -> dict | None:
    """The live version's manifest; None when there is none, or it cannot be read (it is replaced whole)."""
    try:
        return _read_manifest(client, collection(name, live, "manifest"), f"Milvus under {name!r}") if live else None
    except (IndexCorruptError, IndexMismatchError):
        return None


def _place(serial: int, next_ids: dict[str, int], chunks: slice, sentences: slice,
           document: tuple[list[str], list[str]]) -> _Placed:
    """A new document's place: the next free ids of each kind, which it then takes (``next_ids`` moves on)."""
    counts = {"vectors": chunks.stop - chunks.start, "sentences": sentences.stop - sentences.start,
              "documents": len(document[0])}
    firsts = dict(next_ids)
    next_ids.update({kind: firsts[kind] + counts[kind] for kind in SHARED_KINDS})
    return _Placed(serial, firsts["vectors"], counts["vectors"], firsts["sentences"], counts["sentences"],
                   firsts["documents"], counts["documents"])


def index_arrays(index: Index) -> dict[str, np.ndarray]:
    """The arrays of a loaded folder version by file name, as ``write_version`` takes them (to copy it to Milvus)."""
    return {file: getattr(index, attribute) for file, attribute in _ARRAYS.items()}


def _generation(model: str, dimension: int, dense: dict) -> str:
    """The name of the generation whose rows a version with this model and dense index can share."""
    spec = json.dumps([model, dimension, dense], sort_keys=True)
    return "g" + hashlib.sha256(spec.encode("utf-8")).hexdigest()[:12]


def _serial(generation: str, doc: Document, arrays: dict[str, np.ndarray], chunks: slice, sentences: slice) -> int:
    """The document's serial: the same for the same text, record, spans and keys in one generation."""
    digest = hashlib.sha256(generation.encode("utf-8"))
    digest.update(json.dumps(doc.to_dict(), sort_keys=True, ensure_ascii=False).encode("utf-8"))
    for kind, part in (("chunk", chunks), ("sentence", sentences)):
        digest.update(np.ascontiguousarray(arrays[f"{kind}s.npy"][part, 1:], np.int64).tobytes())
        digest.update(np.ascontiguousarray(arrays[f"{kind}_keys.npy"][part], KEY).tobytes())
    return int.from_bytes(digest.digest()[:8], "big") >> 1  # a positive int64


def _placements(manifest: dict | None) -> list[_Placed]:
    return [_Placed(*entry) for entry in manifest["store"]["documents"]] if manifest else []


def _dense_index(spec: dict) -> dict:
    """The Milvus index of the dense vectors for a search spec of ann.py (HNSW's graph is float32 here)."""
    if spec["type"] == "hnsw":
        return {"index_type": "HNSW", "metric_type": "IP",
                "params": {"M": spec["m"], "efConstruction": spec["ef_construction"]}, "ef": spec["ef_search"]}
    return {"index_type": "FLAT", "metric_type": "IP"}


def _shared_schema():
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("doc", DataType.INT64)  # the document's serial
    schema.add_field("born", DataType.INT64)  # the sequence number of the version that wrote the row
    return schema


def _vectors_schema(dimension: int):
    schema = _shared_schema()
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
    return schema


def _sentences_schema(dimension: int):
    schema = _shared_schema()
    for field in ("start", "end"):
        schema.add_field(field, DataType.INT64)
    schema.add_field("key", DataType.VARCHAR, max_length=32)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
    return schema


def _documents_schema():
    schema = _shared_schema()
    schema.add_field("part", DataType.INT64)
    for field in ("text", "record"):
        schema.add_field(field, DataType.VARCHAR, max_length=VARCHAR_BYTES)
    schema.add_field("unused", DataType.FLOAT_VECTOR, dim=2)  # Milvus requires a vector field
    return schema


def _chunks_schema():
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    for field in ("doc_no", "start", "end"):
        schema.add_field(field, DataType.INT64)
    schema.add_field("key", DataType.VARCHAR, max_length=32)
    schema.add_field("text", DataType.VARCHAR, max_length=VARCHAR_BYTES)
    schema.add_field("terms", DataType.VARCHAR, max_length=VARCHAR_BYTES, enable_analyzer=True,
                     analyzer_params=ANALYZER)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["terms"],
                                 output_field_names=["sparse"]))
    return schema


def _manifest_schema():
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)  # the part's number
    schema.add_field("text", DataType.VARCHAR, max_length=VARCHAR_BYTES)
    schema.add_field("unused", DataType.FLOAT_VECTOR, dim=2)
    return schema


def _create(client: MilvusClient, name: str, schema, indexes: dict[str, dict]) -> None:
    params = client.prepare_index_params()
    for field, spec in indexes.items():
        params.add_index(field_name=field, index_type=spec["index_type"], metric_type=spec["metric_type"],
                         params=spec.get("params", {}))
    client.create_collection(name, schema=schema, consistency_level="Strong")
    client.create_index(name, params, sync=False)  # on no rows yet: pymilvus' wait would only sleep 0.5 s an index
    client.load_collection(name)


def _fill(client: MilvusClient, name: str, rows: Iterable[dict]) -> None:
    """Insert ``rows`` in requests of about BATCH_BYTES, then flush once (one segment: see BM25 above)."""
    batch: list[dict] = []
    size = 0
    for row in rows:
        batch.append(row)
        size += sum(len(v) * 4 if isinstance(v, (str, list)) else 8 for v in row.values())
        if size >= BATCH_BYTES:
            client.insert(name, batch)
            batch, size = [], 0
    if batch:
        client.insert(name, batch)
    client.flush(name)


def _hex_keys(keys: np.ndarray) -> list[str]:
    return [k.tobytes().hex() for k in np.ascontiguousarray(keys, KEY).view(np.uint8).reshape(-1, KEY.itemsize)]


def _chunk_rows(arrays: dict[str, np.ndarray], documents: list[Document]) -> Iterator[dict]:
    keys = _hex_keys(arrays["chunk_keys.npy"])
    for i, (doc_no, start, end) in enumerate(arrays["chunks.npy"].tolist()):
        text = documents[doc_no].text[start:end]
        if len(text.encode("utf-8")) > VARCHAR_BYTES:
            raise InputError(f"chunk {i} of {documents[doc_no].doc_id} is longer than Milvus stores in one "
                             f"text ({VARCHAR_BYTES} bytes); index with fewer tokens per chunk")
        yield {"id": i, "doc_no": doc_no, "start": start, "end": end, "key": keys[i], "text": text,
               "terms": terms_of(text)}


def _vector_rows(arrays: dict[str, np.ndarray], slices: list[slice], fresh: list, seq: int) -> Iterator[dict]:
    vectors = arrays["chunk_vectors.npy"]
    for number, placed, _ in fresh:
        for offset, i in enumerate(range(slices[number].start, slices[number].stop)):
            yield {"id": placed.chunks + offset, "doc": placed.serial, "born": seq,
                   "vector": np.asarray(vectors[i], np.float32).tolist()}


def _sentence_rows(arrays: dict[str, np.ndarray], slices: list[slice], fresh: list, seq: int) -> Iterator[dict]:
    rows, vectors = arrays["sentences.npy"], arrays["sentence_vectors.npy"]
    for number, placed, _ in fresh:
        part = slices[number]
        keys = _hex_keys(arrays["sentence_keys.npy"][part])
        for offset, i in enumerate(range(part.start, part.stop)):
            yield {"id": placed.sentences + offset, "doc": placed.serial, "born": seq, "start": int(rows[i, 1]),
                   "end": int(rows[i, 2]), "key": keys[offset], "vector": np.asarray(vectors[i], np.float32).tolist()}


def _document_parts(doc: Document) -> tuple[list[str], list[str]]:
    """A document's text and record (its JSON without the text), each cut into as many parts as the longer needs."""
    texts = parts(doc.text)
    records = parts(json.dumps({k: v for k, v in doc.to_dict().items() if k != "text"}, ensure_ascii=False))
    count = max(len(texts), len(records))
    return texts + [""] * (count - len(texts)), records + [""] * (count - len(records))


def _part_rows(fresh: list, seq: int) -> Iterator[dict]:
    for _, placed, (texts, records) in fresh:
        for part, (text, record) in enumerate(zip(texts, records)):
            yield {"id": placed.parts + part, "doc": placed.serial, "born": seq, "part": part, "text": text,
                   "record": record, "unused": [1.0, 0.0]}


def parts(text: str, limit: int = VARCHAR_BYTES) -> list[str]:
    """``text`` cut into pieces of at most ``limit`` UTF-8 bytes, never inside a character; at least one."""
    data = text.encode("utf-8")
    pieces, begin = [], 0
    while True:
        end = min(begin + limit, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # a continuation byte: back to the character's start
            end -= 1
        pieces.append(data[begin:end].decode("utf-8"))
        if end == len(data):
            return pieces
        begin = end


# --- opening -------------------------------------------------------------------------------


def open_version(uri: str, name: str, model: str | None = None) -> MilvusVersion:
    """Open the live version under ``name``, check it, and return it with its search.

    Raises IndexMissingError when nothing was written under ``name``, IndexMismatchError when
    it was built with another format or with a model other than ``model``, IndexCorruptError
    when its records disagree (a chunk's stored text is not its document's text at its offsets,
    rows are missing), StoreUnavailableError when Milvus fails to answer.
    """
    _check_name(name)
    where = f"Milvus at {uri} under the name {name!r}"
    client = connect(uri)
    with answering(uri):
        version = _live(client, name)
        if version is None:
            raise IndexMissingError(f"no index named {name!r} in Milvus at {uri}; run `assistant index` to build one")
        manifest = _read_manifest(client, collection(name, version, "manifest"), where)
        check_format_and_model(where, manifest, model)
        try:
            store = manifest["store"]
            placed = _placements(manifest)
            shared = {kind: collection(name, store["generation"], kind) for kind in SHARED_KINDS}
            visible = f"born <= {int(store['seq'])}" + (f" and doc not in {store['dead']}" if store["dead"] else "")
            if manifest["counts"]["documents"] != len(placed):
                raise ValueError("the manifest counts other documents")
        except (KeyError, TypeError, ValueError) as exc:
            raise _corrupt(where, f"unreadable manifest: {exc}") from exc
        for kind in SHARED_KINDS:  # a server (or a milvus-lite file reopened by another process) may hold them released
            client.load_collection(shared[kind])
        client.load_collection(collection(name, version, "chunks"))
        documents = _read_documents(client, shared["documents"], placed, visible, where)
        chunk_rows, chunk_keys = _read_chunks(client, collection(name, version, "chunks"), manifest["counts"]["chunks"],
                                              where)
        sentence_rows, sentence_keys, sentence_ids = _read_sentences(client, shared["sentences"], placed, visible,
                                                                     where)
        for rows in (chunk_rows, sentence_rows):
            _check_bounds(rows, documents, where)
        chunk_ids = _chunk_ids(chunk_rows, placed, where)
        search = MilvusSearch(client, uri, collection(name, version, "chunks"), shared["vectors"], shared["sentences"],
                              chunk_ids, sentence_ids, [p.serial for p in placed], visible, manifest)
        _check_texts(client, search.chunks, chunk_rows, documents, where)
    return MilvusVersion(version, manifest, documents, chunk_rows, chunk_keys, sentence_rows, sentence_keys, search)


def _corrupt(where: str, what: str) -> IndexCorruptError:
    return IndexCorruptError(f"the index in {where} is damaged ({what}); {REBUILD_HINT}")


def _windows(ranges: Iterable[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """Id windows of at most SCAN_BATCH covering ``ranges`` (first id, count), adjacent ranges merged."""
    merged: list[list[int]] = []
    for first, count in sorted(ranges):
        if count <= 0:
            continue
        if merged and first <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], first + count)
        else:
            merged.append([first, first + count])
    for begin, end in merged:
        for low in range(begin, end, SCAN_BATCH):
            yield low, min(low + SCAN_BATCH, end)


def _scan(client: MilvusClient, name: str, windows: Iterable[tuple[int, int]], fields: list[str],
          where: str = "") -> Iterator[dict]:
    """The rows of a collection in id windows, one query each (pymilvus' query iterator warns on every use
    with milvus-lite)."""
    for low, high in windows:
        yield from client.query(name, filter=f"id >= {low} and id < {high}" + (f" and {where}" if where else ""),
                                output_fields=fields)


def _read_manifest(client: MilvusClient, name: str, where: str) -> dict:
    if not client.has_collection(name):
        raise IndexMismatchError(f"the index in {where} was written by an earlier version of the assistant; "
                                 "run `assistant index` with this store to write it again")
    client.load_collection(name)  # a server (or a milvus-lite file reopened by another process) may hold it released
    rows = sorted(client.query(name, filter="id >= 0", output_fields=["text"], limit=TOP_LIMIT), key=lambda r: r["id"])
    try:
        if [r["id"] for r in rows] != list(range(len(rows))):
            raise ValueError("parts are missing")
        manifest = json.loads("".join(r["text"] for r in rows))
        manifest["format_version"]
        manifest["store"]["dense"]
        return manifest
    except (ValueError, KeyError, TypeError) as exc:
        raise _corrupt(where, f"unreadable manifest: {exc}") from exc


def _read_documents(client: MilvusClient, name: str, placed: list[_Placed], visible: str,
                    where: str) -> list[Document]:
    pieces: dict[int, list[tuple[int, str, str]]] = defaultdict(list)
    for row in _scan(client, name, _windows((p.parts, p.part_count) for p in placed),
                     ["doc", "part", "text", "record"], visible):
        pieces[row["doc"]].append((row["part"], row["text"], row["record"]))
    documents = []
    for number, p in enumerate(placed):
        rows = sorted(pieces.get(p.serial, []))
        if [part for part, _, _ in rows] != list(range(p.part_count)):
            raise _corrupt(where, f"parts of document {number} are missing")
        try:
            record = json.loads("".join(r[2] for r in rows))
            documents.append(Document.from_dict({**record, "text": "".join(r[1] for r in rows)}))
        except (ValueError, KeyError, TypeError) as exc:
            raise _corrupt(where, f"unreadable document record: {exc}") from exc
    return documents


def _read_chunks(client: MilvusClient, name: str, count: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    rows = sorted((r["id"], r["doc_no"], r["start"], r["end"], r["key"])
                  for r in _scan(client, name, _windows([(0, count)]), ["id", "doc_no", "start", "end", "key"]))
    if [r[0] for r in rows] != list(range(count)):
        raise _corrupt(where, f"chunks are missing: {len(rows)} of {count} stored")
    table = np.array([r[1:4] for r in rows], np.int64).reshape(-1, 3)
    return table, np.array([bytes.fromhex(r[4]) for r in rows], KEY)


def _read_sentences(client: MilvusClient, name: str, placed: list[_Placed], visible: str,
                    where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The version's sentence rows and keys in document order, and the id of each in ``name``."""
    counts = [p.sentence_count for p in placed]
    found = {r["id"]: (r["start"], r["end"], r["key"]) for r in _scan(
        client, name, _windows((p.sentences, n) for p, n in zip(placed, counts)), ["id", "start", "end", "key"],
        visible)}
    ids = np.concatenate([np.arange(p.sentences, p.sentences + n, dtype=np.int64) for p, n in zip(placed, counts)]
                         or [np.zeros(0, np.int64)])
    if len(found) != len(ids) or not all(i in found for i in ids.tolist()):
        raise _corrupt(where, f"sentences are missing: {len(found)} of {len(ids)} stored")
    doc_nos = np.repeat(np.arange(len(placed), dtype=np.int64), counts)
    table = np.array([(d, *found[i][:2]) for d, i in zip(doc_nos.tolist(), ids.tolist())], np.int64).reshape(-1, 3)
    return table, np.array([bytes.fromhex(found[i][2]) for i in ids.tolist()], KEY), ids


def _chunk_ids(rows: np.ndarray, placed: list[_Placed], where: str) -> np.ndarray:
    """The id of each chunk's vector in the generation's ``vectors``: its document's first, plus its place
    among the document's chunks."""
    counts = np.array([p.chunk_count for p in placed], np.int64)
    doc_nos = rows[:, 0]
    if np.any(np.diff(doc_nos) < 0) or not np.array_equal(np.bincount(doc_nos, minlength=len(placed)), counts):
        raise _corrupt(where, "the chunks are not those the manifest counts")
    starts = np.cumsum(counts) - counts  # the chunk number of each document's first chunk
    firsts = np.array([p.chunks for p in placed], np.int64)
    return firsts[doc_nos] + np.arange(len(rows), dtype=np.int64) - starts[doc_nos]


def _check_bounds(rows: np.ndarray, documents: list[Document], where: str) -> None:
    lengths = np.array([len(doc.text) for doc in documents], np.int64)
    doc_no, start, end = rows.T
    inside = (doc_no >= 0) & (doc_no < len(documents))
    if not inside.all() or not ((start >= 0) & (start <= end) & (end <= lengths[doc_no])).all():
        raise _corrupt(where, "a span lies outside its document")


def _check_texts(client: MilvusClient, name: str, rows: np.ndarray, documents: list[Document], where: str) -> None:
    """The stored text of a sample of chunks (evenly spread, first and last included) is its document's text."""
    sample = np.unique(np.linspace(0, len(rows) - 1, min(len(rows), CHECK_SAMPLE)).astype(np.int64)).tolist()
    stored = {r["id"]: r["text"] for r in client.get(name, ids=sample, output_fields=["text"])} if sample else {}
    for i in sample:
        doc_no, start, end = rows[i].tolist()
        if stored.get(i) != documents[doc_no].text[start:end]:
            raise _corrupt(where, f"the text stored for chunk {i} is not the text of {documents[doc_no].doc_id} "
                                  f"at characters {start}-{end}")
