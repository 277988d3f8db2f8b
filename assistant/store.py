"""The persisted index: build, incremental update, atomic save, verified load.

The public names of the store, each from the module of its stage (imports flow this way):

- ``ann.py``: which FAISS index for how many chunks, building, configuring and searching it;
- ``keyword.py``: BM25 over the chunks (bm25s), saved with each version;
- ``layout.py``: the index folder, reading, verifying and writing a version, ``Index``;
- ``embedding_cache.py``: vectors of earlier builds found by model and text;
- ``build.py``: ``build_index``, step by step.
"""

from __future__ import annotations

from assistant.ann import FLAT_BELOW, configure_search_index, make_search_index, search_spec
from assistant.build import BuildReport, build_index
from assistant.embedding_cache import VectorCache, text_keys
from assistant.layout import (
    CURRENT,
    DATA_FILES,
    FORMAT_VERSION,
    REBUILD_HINT,
    Index,
    Staleness,
    check_corpus,
    current_version,
    load_index,
)

__all__ = [
    "CURRENT",
    "DATA_FILES",
    "FLAT_BELOW",
    "FORMAT_VERSION",
    "REBUILD_HINT",
    "BuildReport",
    "Index",
    "Staleness",
    "VectorCache",
    "build_index",
    "check_corpus",
    "configure_search_index",
    "current_version",
    "load_index",
    "make_search_index",
    "search_spec",
    "text_keys",
]
