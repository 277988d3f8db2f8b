"""The trained reader: does a candidate sentence answer the question, and with which phrase?

A 6-layer BERT encoder (fine-tuned from all-MiniLM-L6-v2 by ``training/train_reader.py``; see
the model card in the reader's folder), exported to ONNX and run with ONNX Runtime, with two heads: one logit on [CLS] saying that the sentence holds
the answer, and start/end logits over the tokens marking the answer phrase inside it. It reads
the question against the candidate sentence followed by its neighbours, so it knows what "he"
or "it" refers to (``pair_text``). Weights are loaded from a local folder only.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from assistant.embedding import onnx_session
from assistant.errors import InputError

MODELS = Path(__file__).resolve().parent.parent / "models"
READER_FILES = ("model.onnx", "tokenizer.json", "reader.json", "calibration.json")

NEIGHBOUR_CHARS = 200  # of each neighbour, read after the candidate


_ENDS_SENTENCE = re.compile(r"[.!?…:;\"”’')\]]\s*$")


def reads_as_sentence(text: str) -> bool:
    """Whether ``text`` ends as a sentence does: a title, heading, standfirst or fact box's line
    does not (the ranker's ``heading`` signal)."""
    return bool(_ENDS_SENTENCE.search(text))


def pair_text(sentence: str, before: str, after: str) -> str:
    """What the reader reads against the question: the candidate first, then its neighbours.

    The candidate opens the text, so a phrase's offset in it is its offset in the sentence.
    """
    context = " ".join(x for x in (before[-NEIGHBOUR_CHARS:], after[:NEIGHBOUR_CHARS]) if x)
    return f"{sentence} [SEP] {context}" if context else sentence


@dataclass(frozen=True)
class Reading:
    """The reader's verdict on one candidate: the ``logit`` that it answers, and the answer
    phrase as ``[start, end)`` in the candidate sentence with its span score."""

    logit: float
    start: int
    end: int
    phrase_score: float


class Reader:
    """A reader folder (``model.onnx``, tokenizer, ``reader.json``) run with ONNX Runtime."""

    MAX_PHRASE_TOKENS = 30

    def __init__(self, folder: str | Path) -> None:
        from tokenizers import Tokenizer

        self.folder = Path(folder)
        self.config = json.loads((self.folder / "reader.json").read_text(encoding="utf-8"))
        digest = hashlib.sha256()
        for name in ("model.onnx", "calibration.json"):
            if (self.folder / name).is_file():
                digest.update((self.folder / name).read_bytes())
        self.name = self.config["name"]
        self.fingerprint = digest.hexdigest()[:16]  # names the exact weights and calibration in stamps
        self.tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        # The longer side is cut first: the candidate's neighbours, unless the question is longer still.
        self.tokenizer.enable_truncation(self.config["max_tokens"], strategy="longest_first")
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self.session = onnx_session(self.folder / "model.onnx")

    def read(self, question: str, candidates: list[tuple[str, str, str]]) -> list[Reading]:
        """One Reading per ``(sentence, before, after)``, read in one batch."""
        if not candidates:
            return []
        texts = [pair_text(*c) for c in candidates]
        encodings = self.tokenizer.encode_batch([(question, t) for t in texts])
        feed = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        answers, start, end = self.session.run(None, feed)
        return [self._phrase(float(answers[row]), start[row], end[row], encodings[row], len(candidates[row][0]))
                for row in range(len(candidates))]

    def _phrase(self, logit: float, start: np.ndarray, end: np.ndarray, encoding, sentence_chars: int) -> Reading:
        """The best span of tokens that lies inside the candidate sentence (none: an empty phrase)."""
        inside = np.array([sid == 1 and 0 <= a < b <= sentence_chars
                           for sid, (a, b) in zip(encoding.sequence_ids, encoding.offsets)])
        found = best_span(start, end, inside, self.MAX_PHRASE_TOKENS)
        if found is None:
            return Reading(logit, 0, 0, float("-inf"))
        i, j, score = found
        return Reading(logit, encoding.offsets[i][0], encoding.offsets[j][1], score)


def best_span(start: np.ndarray, end: np.ndarray, inside: np.ndarray, max_tokens: int) -> tuple[int, int, float] | None:
    """The tokens ``i <= j < i + max_tokens``, both ``inside``, with the highest ``start[i] + end[j]``,
    and that score; None when no token is inside."""
    if not inside.any():
        return None
    s = np.where(inside, start, -np.inf)
    e = np.where(inside, end, -np.inf)
    pairs = s[:, None] + e[None, :]
    n = len(s)
    band = np.triu(np.ones((n, n), dtype=bool)) & ~np.triu(np.ones((n, n), dtype=bool), max_tokens)
    pairs[~band] = -np.inf
    i, j = np.unravel_index(int(np.argmax(pairs)), pairs.shape)
    return int(i), int(j), float(pairs[i, j])


def reader_folder(name: str) -> Path | None:
    """The folder of the reader called ``name`` (a path, or a folder under models/); None for "none".

    Raises InputError, in the user's terms, when it is not a complete reader folder.
    """
    if name.strip().lower() == "none":
        return None
    folder = Path(name).expanduser()
    if not folder.is_dir() and (MODELS / name).is_dir():
        folder = MODELS / name
    missing = [f for f in READER_FILES if not (folder / f).is_file()]
    if missing:
        raise InputError(f"no reader at {name!r}: a reader is a folder with {', '.join(READER_FILES)} "
                         f"(missing: {', '.join(missing)}); give --reader a reader folder, or --reader none "
                         f"for the hand-tuned scorer")
    return folder.resolve()


@lru_cache(maxsize=4)
def load_reader(folder: Path) -> Reader:
    """The reader of ``folder``, loaded once per process."""
    return Reader(folder)
