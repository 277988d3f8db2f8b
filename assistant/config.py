"""Settings: every default in one place, built once at the edge and passed down."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from assistant.errors import InputError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
DEFAULT_READER = "reader-v2"  # a folder under models/ (see its README.md, the model card)
RETRIEVERS = ("hybrid", "dense", "keyword")
BACKENDS = ("torch", "onnx")  # what runs the embedding model: PyTorch, or ONNX Runtime on a local export


@dataclass(frozen=True)
class AnswerWeights:
    """Sentence-scoring and confidence weights of the hand-tuned scorer (``answer.py``),
    fitted on the development sets by bench/tune_answers.py."""

    semantic: float = 0.3
    keyword: float = 0.5
    passage: float = 0.2
    cue: float = 0.1
    # confidence = sigmoid(bias + c_semantic * semantic + c_keyword * keyword + c_coverage * coverage)
    bias: float = -18.3
    c_semantic: float = 23.1
    c_keyword: float = 9.9
    c_coverage: float = 7.5
    abstain_below: float = 0.5  # without a reader; a reader's threshold is in its calibration.json


@dataclass(frozen=True)
class QuoteSettings:
    """The quote checker's limits (``quotes.py``).

    ``min_words``: shorter quotes are refused; ``max_chars``: longer ones are refused;
    ``altered_threshold``: least word similarity for ``altered``; ``max_gap``: most characters
    between elided parts; ``candidates``: passages retrieved to find regions for alignment;
    ``max_matches``: altered spans kept; ``paraphrase_threshold``: least cosine similarity
    (with the index's encoder) between a quote that is neither verbatim nor altered and its
    nearest sentence for ``paraphrase``, calibrated for the default model by
    bench/bench_paraphrase.py on eval/seed/paraphrases.jsonl.
    """

    min_words: int = 4
    max_chars: int = 20000
    altered_threshold: float = 0.72
    max_gap: int = 1000
    candidates: int = 8
    max_matches: int = 5
    # bench/bench_paraphrase.py (all-MiniLM-L6-v2): precision 1.00 (17 of 17 called), recall 0.81 of 21
    # paraphrases, on the 43 sentences of eval/seed/paraphrases.jsonl; most similar unrelated one 0.62
    paraphrase_threshold: float = 0.65

    def __post_init__(self) -> None:
        for name in ("altered_threshold", "paraphrase_threshold"):
            if not 0 < getattr(self, name) <= 1:
                raise InputError(f"{name} must be in (0, 1], got {getattr(self, name)!r}")
        for name in ("min_words", "max_gap", "candidates", "max_matches", "max_chars"):
            _whole(name, getattr(self, name))


@dataclass(frozen=True)
class Settings:
    """What the library needs to know; the CLI and the app build one and pass it down.

    ``model``, ``backend``, ``chunk_tokens`` and ``chunk_overlap`` shape the index and are
    recorded in its manifest; the rest are query-time settings.
    """

    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("index")
    model: str = DEFAULT_MODEL
    backend: str = "torch"
    chunk_tokens: int = 200
    chunk_overlap: int = 32
    batch_size: int = 32
    k: int = 5  # passages shown for a question
    eval_k: int = 10  # passages per question in an evaluation (hit@10, mrr@10 and ndcg@10 need 10)
    answer_passages: int = 5  # top passages whose sentences are answer candidates
    max_question_chars: int = 2000
    retriever: str = "hybrid"
    candidates: int = 50
    w_keyword: float = 0.4
    w_dense: float = 0.2
    w_sentence: float = 0.4
    abstain_below: float | None = None  # None: the answerer's own calibrated threshold
    reader: str = DEFAULT_READER  # a reader folder, a name under models/, or "none" (the hand-tuned scorer)
    store: str = ""  # where searches run: "" the index folder, "milvus-lite:FILE.db" or "milvus://HOST:PORT" (stores.py)
    answer_weights: AnswerWeights = field(default_factory=AnswerWeights)  # the hand-tuned scorer's
    quotes: QuoteSettings = field(default_factory=QuoteSettings)

    def __post_init__(self) -> None:
        if self.retriever not in RETRIEVERS:
            raise InputError(f"retriever must be one of {', '.join(RETRIEVERS)}, got {self.retriever!r}")
        if self.backend not in BACKENDS:
            raise InputError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        for name in ("chunk_tokens", "batch_size", "k", "eval_k", "answer_passages", "max_question_chars",
                     "candidates"):
            _whole(name, getattr(self, name))
        if self.store and not re.fullmatch(r"milvus-lite:.+\.db|milvus://[^/\s]+:\d+", self.store):
            raise InputError(f"store must be milvus-lite:FILE.db or milvus://HOST:PORT (or empty for the index "
                             f"folder), got {self.store!r}")
        if self.abstain_below is not None and not 0.0 <= self.abstain_below <= 1.0:
            raise InputError(f"abstain_below must be between 0 and 1, got {self.abstain_below!r}")
        if not 0 <= self.chunk_overlap < self.chunk_tokens:
            raise InputError(
                f"chunk_overlap must be at least 0 and less than chunk_tokens "
                f"({self.chunk_tokens}), got {self.chunk_overlap}"
            )
        if self.chunk_tokens > 254:
            raise InputError(
                f"chunk_tokens must be at most 254 so that no chunk is truncated by the model "
                f"(it reads 256 word pieces, two of them special), got {self.chunk_tokens}"
            )
        object.__setattr__(self, "corpus_dir", Path(self.corpus_dir))
        object.__setattr__(self, "index_dir", Path(self.index_dir))

    def with_(self, **changes: object) -> Settings:
        """A copy with some fields changed; unknown names are refused."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise InputError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return replace(self, **changes)


def _whole(name: str, value: object) -> None:
    if not isinstance(value, int) or value < 1:
        raise InputError(f"{name} must be a whole number of at least 1, got {value!r}")
