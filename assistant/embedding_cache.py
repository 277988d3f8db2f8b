"""The embedding cache: vectors of earlier builds, found by a hash of the model name and the text.

Every version folder keeps a 16-byte key beside each chunk and sentence vector, so the live
version is the cache: a build looks up every text it needs (with the model's name) among
the live version's keys and embeds only those it does not find. ``--rebuild`` of unchanged
text and an update after an edit therefore embed only what is new, and a different model
never matches, since its name is hashed into every key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from assistant.errors import AssistantError
from assistant.layout import CACHE_FILES, CACHE_FORMATS, Index, current_version, load_npy, read_manifest, verify

KEY = np.dtype("S16")


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

    def known(self, dimension: int) -> np.ndarray:
        """The keys of the vectors of ``dimension`` it holds, sorted: those ``lookup`` finds."""
        parts = [keys for keys, _, source in self.sources if source.shape[1] == dimension]
        return np.unique(np.concatenate(parts)) if parts else np.empty(0, KEY)

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


def cache_of(index_dir: Path, previous: Index | None) -> VectorCache:
    """The vectors of the live version: ``previous`` when it was loaded, else read from disk when
    its format keeps the same cache files (CACHE_FORMATS) and they verify."""
    if previous is not None:
        return VectorCache([(previous.chunk_keys, previous.chunk_vectors),
                            (previous.sentence_keys, previous.sentence_vectors)])
    version = current_version(index_dir)
    if version is None:
        return VectorCache([])
    folder = index_dir / version
    try:
        manifest = read_manifest(folder)
        if manifest["format_version"] not in CACHE_FORMATS:
            return VectorCache([])
        verify(folder, manifest, CACHE_FILES)
        arrays = {name: load_npy(folder / name, mmap=True) for name in CACHE_FILES}
    except (AssistantError, OSError, ValueError, KeyError):
        return VectorCache([])  # a damaged index is what --rebuild is for: build without it
    return VectorCache([(arrays["chunk_keys.npy"], arrays["chunk_vectors.npy"]),
                        (arrays["sentence_keys.npy"], arrays["sentence_vectors.npy"])])


# encode(texts, rows): the vectors of texts[rows], the texts the cache does not hold
Encode = Callable[[list[str], np.ndarray], np.ndarray]


def embed(encode: Encode, cache: VectorCache, keys: np.ndarray, texts: list[str], dimension: int
          ) -> tuple[np.ndarray, int]:
    """Vectors of ``texts``, from the cache where found, else from ``encode``; and how many were embedded."""
    vectors, found = cache.lookup(keys, dimension)
    missing = np.flatnonzero(~found)
    if len(missing):
        vectors[missing] = encode(texts, missing)
    return vectors, len(missing)
