"""An index version in Milvus through pymilvus' MilvusClient: write and open.

The URI is what ``MilvusClient`` takes: ``http://HOST:PORT`` for a Milvus server, or a local
file ending in ``.db`` for milvus-lite (embedded, the same client API). Each version is three
collections named ``NAME__VERSION__KIND``:

- ``chunks``: id (the chunk number), doc_no, start, end, key (the embedding-cache key, hex), the
  chunk's text cut from its document (``text[start:end]``), its BM25 ``terms`` (analysed; a BM25
  function fills ``sparse`` from them) and its dense ``vector`` (inner product; FLAT, or HNSW
  when the manifest's ``search`` asks for it, as ann.py chooses by size);
- ``sentences``: id (the sentence number), doc_no, start, end, key, vector;
- ``documents``: each document's text and record (its JSON without the text) cut into ordered
  parts under VARCHAR's 65,535 bytes and joined back exactly on open; the manifest is stored the
  same way as document number -1. Milvus requires a vector field: ``unused`` is one.

The alias ``NAME`` names the live version's ``documents`` collection: a build writes and flushes
the new collections, then points the alias at them in one ``alter_alias``, so an open sees one
whole version. An opened version keeps its collection names, so a reader's results stay from
its version while a new one is written; the previous version is kept and older ones dropped.
Writers are not locked against each other: run one build at a time per name. An opened
version searches through ``MilvusSearch`` (milvus_search.py).

Keyword search is Milvus' BM25 (k1 1.5, b 0.75, the idf of bm25s' "lucene" method) over the
chunk's terms as the folder store's BM25 makes them (``terms_of``: bm25s' tokenizer, its English
stop words, the Snowball stemmer), and the question's terms made the same way, so both stores
count the same terms. (Milvus' own English analysis would differ: milvus-lite 3.2.2 has no
stemmer and refuses ``{"type": "english"}``.) milvus-lite keeps BM25 statistics per segment (a
write is flushed once, so a version up to about 128 MB is one segment). README.md ("Milvus
store") gives how its lists compare with bm25s' (bench/bench_milvus.py).
"""

from __future__ import annotations

import functools
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
from assistant.errors import IndexCorruptError, IndexMissingError, InputError
from assistant.layout import REBUILD_HINT, Index, check_format_and_model
from assistant.milvus_search import MilvusSearch, answering, collection, connect, terms_of
from assistant.types import Document

VARCHAR_BYTES = 65_535  # Milvus' largest VARCHAR, in UTF-8 bytes
KINDS = ("chunks", "sentences", "documents")
MANIFEST_NO = -1  # the document number under which the manifest is stored
ANALYZER = {"tokenizer": "standard", "filter": ["lowercase"]}  # over bm25s' terms, already stemmed (terms_of)
BATCH_BYTES = 8 << 20  # about this much data per insert request (Milvus takes up to 64 MB)
SCAN_BATCH = 4096  # rows per query when a whole collection is read
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


# --- writing -------------------------------------------------------------------------------


def write_version(uri: str, name: str, manifest: dict, documents: list[Document],
                  arrays: dict[str, np.ndarray]) -> str:
    """Write one complete version under ``name``, then make it the live one; the version's name.

    ``manifest``, ``documents`` and ``arrays`` are what ``layout.write_version`` takes.
    """
    _check_name(name)
    version = f"v{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%S')}_{uuid.uuid4().hex[:6]}"
    dense = _dense_index(manifest.get("search", {"type": "flat"}))
    manifest = {**manifest, "store": {"kind": "milvus", "version": version, "analyzer": ANALYZER, "dense": dense}}
    manifest.pop("files", None)
    dimension = int(arrays["chunk_vectors.npy"].shape[1])
    client = connect(uri)
    with answering(uri):
        chunks = _span_rows(arrays, "chunk", documents)
        _create_and_fill(client, collection(name, version, "chunks"), _span_schema(dimension, text=True),
                         {"vector": dense, "sparse": {"index_type": "SPARSE_INVERTED_INDEX", "metric_type": "BM25"}},
                         chunks)
        _create_and_fill(client, collection(name, version, "sentences"), _span_schema(dimension, text=False),
                         {"vector": _dense_index({"type": "flat"})}, _span_rows(arrays, "sentence", documents))
        target = collection(name, version, "documents")
        _create_and_fill(client, target, _documents_schema(), {"unused": _dense_index({"type": "flat"})},
                         _document_rows(manifest, documents))
        previous = _live(client, name)
        if previous is None:
            client.create_alias(target, name)
        else:
            client.alter_alias(target, name)
        for other in client.list_collections():
            pieces = other.split("__")
            if len(pieces) == 3 and pieces[0] == name and pieces[1] not in (version, previous) and pieces[2] in KINDS:
                client.drop_collection(other)
    return version


def index_arrays(index: Index) -> dict[str, np.ndarray]:
    """The arrays of a loaded folder version by file name, as ``write_version`` takes them (to copy it to Milvus)."""
    return {file: getattr(index, attribute) for file, attribute in _ARRAYS.items()}


def _dense_index(spec: dict) -> dict:
    """The Milvus index of the dense vectors for a search spec of ann.py (HNSW's graph is float32 here)."""
    if spec["type"] == "hnsw":
        return {"index_type": "HNSW", "metric_type": "IP",
                "params": {"M": spec["m"], "efConstruction": spec["ef_construction"]}, "ef": spec["ef_search"]}
    return {"index_type": "FLAT", "metric_type": "IP"}


def _span_schema(dimension: int, *, text: bool):
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    for field in ("doc_no", "start", "end"):
        schema.add_field(field, DataType.INT64)
    schema.add_field("key", DataType.VARCHAR, max_length=32)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
    if text:
        schema.add_field("text", DataType.VARCHAR, max_length=VARCHAR_BYTES)
        schema.add_field("terms", DataType.VARCHAR, max_length=VARCHAR_BYTES, enable_analyzer=True,
                         analyzer_params=ANALYZER)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["terms"],
                                     output_field_names=["sparse"]))
    return schema


def _documents_schema():
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("doc_no", DataType.INT64)
    schema.add_field("part", DataType.INT64)
    for field in ("doc_id", "text", "record"):
        schema.add_field(field, DataType.VARCHAR, max_length=VARCHAR_BYTES)
    schema.add_field("unused", DataType.FLOAT_VECTOR, dim=2)
    return schema


def _create_and_fill(client: MilvusClient, name: str, schema, indexes: dict[str, dict], rows: Iterable[dict]) -> None:
    params = client.prepare_index_params()
    for field, spec in indexes.items():
        params.add_index(field_name=field, index_type=spec["index_type"], metric_type=spec["metric_type"],
                         params=spec.get("params", {}))
    client.create_collection(name, schema=schema, consistency_level="Strong")
    client.create_index(name, params, sync=False)  # on no rows yet: pymilvus' wait would only sleep 0.5 s an index
    client.load_collection(name)
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


def _span_rows(arrays: dict[str, np.ndarray], kind: str, documents: list[Document]) -> Iterator[dict]:
    rows, vectors = arrays[f"{kind}s.npy"], arrays[f"{kind}_vectors.npy"]
    keys = np.ascontiguousarray(arrays[f"{kind}_keys.npy"], KEY).view(np.uint8).reshape(-1, KEY.itemsize)
    for i, (doc_no, start, end) in enumerate(rows.tolist()):
        row = {"id": i, "doc_no": doc_no, "start": start, "end": end, "key": keys[i].tobytes().hex(),
               "vector": np.asarray(vectors[i], np.float32).tolist()}
        if kind == "chunk":
            row["text"] = text = documents[doc_no].text[start:end]
            row["terms"] = terms_of(text)
            if len(text.encode("utf-8")) > VARCHAR_BYTES:
                raise InputError(f"chunk {i} of {documents[doc_no].doc_id} is longer than Milvus stores in one "
                                 f"text ({VARCHAR_BYTES} bytes); index with fewer tokens per chunk")
        yield row


def _document_rows(manifest: dict, documents: list[Document]) -> Iterator[dict]:
    items = [(MANIFEST_NO, "", "", manifest)]
    items += [(number, doc.doc_id, doc.text, {k: v for k, v in doc.to_dict().items() if k != "text"})
              for number, doc in enumerate(documents)]
    row_id = 0
    for doc_no, doc_id, text, record in items:
        texts, records = parts(text), parts(json.dumps(record, ensure_ascii=False))
        for part in range(max(len(texts), len(records))):
            yield {"id": row_id, "doc_no": doc_no, "part": part, "doc_id": doc_id,
                   "text": texts[part] if part < len(texts) else "",
                   "record": records[part] if part < len(records) else "", "unused": [1.0, 0.0]}
            row_id += 1


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
    when its records disagree (a chunk's stored text is not its document's text at its offsets),
    StoreUnavailableError when Milvus fails to answer.
    """
    _check_name(name)
    where = f"Milvus at {uri} under the name {name!r}"
    client = connect(uri)
    with answering(uri):
        version = _live(client, name)
        if version is None:
            raise IndexMissingError(f"no index named {name!r} in Milvus at {uri}; run `assistant index` to build one")
        for kind in KINDS:  # a server (or a milvus-lite file reopened by another process) may hold them released
            client.load_collection(collection(name, version, kind))
        manifest, documents = _read_documents(client, collection(name, version, "documents"), where)
        check_format_and_model(where, manifest, model)
        counts = manifest["counts"]
        chunk_rows, chunk_keys = _read_spans(client, collection(name, version, "chunks"), counts["chunks"], where)
        sentence_rows, sentence_keys = _read_spans(client, collection(name, version, "sentences"),
                                                   counts["sentences"], where)
        for rows in (chunk_rows, sentence_rows):
            _check_bounds(rows, documents, where)
        search = MilvusSearch(client, uri, collection(name, version, "chunks"), collection(name, version, "sentences"),
                              len(chunk_rows), manifest)
        _check_texts(client, search.chunks, chunk_rows, documents, where)
    return MilvusVersion(version, manifest, documents, chunk_rows, chunk_keys, sentence_rows, sentence_keys, search)


def _corrupt(where: str, what: str) -> IndexCorruptError:
    return IndexCorruptError(f"the index in {where} is damaged ({what}); {REBUILD_HINT}")


def _scan(client: MilvusClient, name: str, fields: list[str]) -> Iterator[dict]:
    """Every row of a collection whose ids run from 0 without gaps, a page of ids at a time (pymilvus'
    query iterator warns on every use with milvus-lite)."""
    begin = 0
    while page := client.query(name, filter=f"id >= {begin} and id < {begin + SCAN_BATCH}", output_fields=fields):
        yield from page
        begin += SCAN_BATCH


def _read_documents(client: MilvusClient, name: str, where: str) -> tuple[dict, list[Document]]:
    pieces: dict[int, list[tuple[int, str, str]]] = defaultdict(list)
    for row in _scan(client, name, ["doc_no", "part", "text", "record"]):
        pieces[row["doc_no"]].append((row["part"], row["text"], row["record"]))
    if sorted(pieces) != list(range(MANIFEST_NO, len(pieces) - 1)):
        raise _corrupt(where, "document numbers are missing")
    joined = {}
    for doc_no, rows in pieces.items():
        rows.sort()
        if [part for part, _, _ in rows] != list(range(len(rows))):
            raise _corrupt(where, f"parts of document {doc_no} are missing")
        joined[doc_no] = ("".join(r[1] for r in rows), "".join(r[2] for r in rows))
    try:
        manifest = json.loads(joined[MANIFEST_NO][1])
        documents = [Document.from_dict({**json.loads(joined[i][1]), "text": joined[i][0]})
                     for i in range(len(joined) - 1)]
        manifest["format_version"]
        manifest["store"]["dense"]
        if manifest["counts"]["documents"] != len(documents):
            raise ValueError("the manifest counts other documents")
    except (ValueError, KeyError, TypeError) as exc:
        raise _corrupt(where, f"unreadable manifest or document record: {exc}") from exc
    return manifest, documents


def _read_spans(client: MilvusClient, name: str, count: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    rows = sorted((r["id"], r["doc_no"], r["start"], r["end"], r["key"])
                  for r in _scan(client, name, ["id", "doc_no", "start", "end", "key"]))
    if [r[0] for r in rows] != list(range(count)):
        raise _corrupt(where, f"{name.rsplit('__', 1)[1]} are missing: {len(rows)} of {count} stored")
    table = np.array([r[1:4] for r in rows], np.int64).reshape(-1, 3)
    return table, np.array([bytes.fromhex(r[4]) for r in rows], KEY)


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
