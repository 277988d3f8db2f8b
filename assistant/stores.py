"""Where an index version is searched, by the ``store`` setting: the index folder, or Milvus.

- ``""`` (the default): the index folder (``layout.load_index``: FAISS, bm25s, NumPy arrays).
- ``milvus-lite:FILE.db``: milvus-lite, embedded in the process, a local file.
- ``milvus://HOST:PORT``: a Milvus server or cluster.

Milvus needs the ``scale`` extra (``pip install -e '.[scale]'``). A build always writes the index
folder first (incrementally: only new or changed documents are embedded); with a Milvus store
the new version is then written to Milvus under ``MILVUS_NAME`` (incrementally too: the vectors
and texts of documents the live version holds unchanged are not written again) and goes live
there with one alias switch (milvus_store.py), so a Milvus store can be rebuilt from the folder
at any time.
"""

from __future__ import annotations

from types import ModuleType

from assistant.config import Settings
from assistant.errors import InputError
from assistant.keyword import KeywordIndex
from assistant.layout import Index, current_version, load_index

MILVUS_NAME = "assistant"  # the alias of the live version in Milvus


def milvus_uri(store: str) -> str | None:
    """The pymilvus URI of a Milvus ``store`` setting; None for the index folder."""
    if store.startswith("milvus-lite:"):
        return store.removeprefix("milvus-lite:")
    if store.startswith("milvus://"):
        return "http://" + store.removeprefix("milvus://")
    return None


def _milvus() -> ModuleType:
    try:
        from assistant import milvus_store
    except ImportError as exc:
        raise InputError("a Milvus store needs the scale extra: pip install -e '.[scale]'") from exc
    return milvus_store


def open_index(settings: Settings, model: str | None) -> Index:
    """The live index version of ``settings``' store, checked against ``model``."""
    uri = milvus_uri(settings.store)
    if uri is None:
        return load_index(settings.index_dir, model)
    opened = _milvus().open_version(uri, MILVUS_NAME, model)
    arrays = {"chunks.npy": opened.chunk_rows, "chunk_keys.npy": opened.chunk_keys,
              "sentences.npy": opened.sentence_rows, "sentence_keys.npy": opened.sentence_keys}
    docs = opened.documents
    # the answer step weighs question terms by their IDF among the chunks: bm25s' statistics, built here
    keyword = KeywordIndex.build([docs[d].text[s:e] for d, s, e in opened.chunk_rows.tolist()])
    return Index(opened.manifest, docs, arrays, opened.search, keyword, opened.version)


def live_version(settings: Settings) -> str | None:
    """The name of the store's live version (None when there is none), to notice a rebuild."""
    uri = milvus_uri(settings.store)
    if uri is None:
        return current_version(settings.index_dir)
    return _milvus().live_version(uri, MILVUS_NAME)


def publish(settings: Settings) -> str | None:
    """Copy the index folder's live version into a Milvus store; its version there (None: no Milvus)."""
    uri = milvus_uri(settings.store)
    if uri is None:
        return None
    milvus = _milvus()
    index = load_index(settings.index_dir)
    return milvus.write_version(uri, MILVUS_NAME, {**index.manifest, "folder_version": index.version},
                                index.documents, milvus.index_arrays(index))
