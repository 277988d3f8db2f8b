"""Word alignment of a quote part with source words, and the word diff between them.

Words are tokens of normalised text (:func:`word_spans`); :func:`best_region` finds the
stretch of source words most like the quote's, :func:`word_diff` says word by word how the
two differ, with texts cut from the original quote and source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

from assistant.textnorm import Normalized
from assistant.types import DiffOp

_TOKEN = re.compile(r"\d+(?:[.,:]\d+)+|\w+|[^\w\s]")  # 8.2 and 1,200 are one word


def word_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """``(start, end)`` of every word and punctuation mark of ``text[start:end]``."""
    return [m.span() for m in _TOKEN.finditer(text, start, len(text) if end is None else end)]


@dataclass
class Part:
    """One elision part of the quote: its original text, normalised form and word tokens."""

    text: str
    norm: Normalized
    tokens: list[tuple[int, int]] = field(default_factory=list)

    @property
    def words(self) -> list[str]:
        return [self.norm.text[a:b] for a, b in self.tokens]

    @property
    def keys(self) -> list[str]:
        return [w.casefold() for w in self.words]


class Step(NamedTuple):
    """One diff step: source words ``[src_from, src_to)`` against quote words ``[quote_from, quote_to)``."""

    op: str
    src_from: int
    src_to: int
    quote_from: int
    quote_to: int


def best_region(query: list[str], keys: list[str], lo: int, hi: int) -> tuple[int, int]:
    """Token range ``[a, b)`` of ``keys`` (``lo <= a < b <= hi``) most similar to ``query``.

    rapidfuzz's partial alignment finds the best window of the query's length; its edges are
    then moved a few tokens each way, to the least edit distance, so that the source may be
    longer or shorter than the quote.
    """
    if hi - lo <= len(query):
        start, stop = lo, hi
    else:
        found = fuzz.partial_ratio_alignment(query, keys[lo:hi])
        start, stop = found.dest_start + lo, found.dest_end + lo
    slack = max(3, len(query) // 8)

    def cost(a: int, b: int) -> int:
        return Levenshtein.distance(query, keys[a:b])

    # Ties go to the wider span, so a changed first or last word reads as replaced, not added.
    top = min(hi, stop + slack)
    start = min(range(max(lo, start - slack), min(start + slack, top - 1) + 1), key=lambda a: (cost(a, top), a))
    stop = min(range(max(start + 1, stop - slack), top + 1), key=lambda b: (cost(start, b), -b))
    return start, stop


def word_diff(part: Part, words: list[str], pieces: list[str]) -> tuple[float, list[DiffOp]]:
    """Agreeing words (first word: any case) and the word diff of source ``words`` to the part.

    ``pieces[i]`` is the original source text from word ``i`` up to word ``i + 1``. Each op's
    texts run up to the next op's, so joining the ops' ``source`` (``quote``) texts gives
    back the source span (the quote part) character for character.
    """
    q_words = part.words
    steps: list[Step] = []
    gap: Step | None = None  # a stretch of source and quote words between equal ones
    for op in Levenshtein.opcodes([w.casefold() for w in words], part.keys):
        if op.tag != "equal":
            gap = (gap or Step("replace", op.src_start, op.src_start, op.dest_start, op.dest_start))._replace(
                src_to=op.src_end, quote_to=op.dest_end)
            continue
        steps += _pair_up(words, q_words, gap)
        gap = None
        for k in range(op.src_end - op.src_start):
            i, j = op.src_start + k, op.dest_start + k
            same = words[i] == q_words[j] or (j == 0 and words[i].casefold() == q_words[j].casefold())
            steps.append(Step("equal" if same else "replace", i, i + 1, j, j + 1))
    steps += _pair_up(words, q_words, gap)
    merged: list[Step] = []
    for step in steps:
        if merged and merged[-1].op == step.op:
            merged[-1] = merged[-1]._replace(src_to=step.src_to, quote_to=step.quote_to)
        else:
            merged.append(step)
    # a word changed only in case still counts three quarters (an all-capitals quote is close)
    case_only = sum(1 for s in steps if s.op == "replace" and s.src_to - s.src_from == 1 == s.quote_to - s.quote_from
                    and words[s.src_from].casefold() == q_words[s.quote_from].casefold())
    equal = sum(s.src_to - s.src_from for s in merged if s.op == "equal") + 0.75 * case_only
    q_bounds = part.norm.bounds(part.tokens)
    return equal, [DiffOp(s.op, part.text[q_bounds[s.quote_from] : q_bounds[s.quote_to]],
                          "".join(pieces[s.src_from : s.src_to])) for s in merged]


def _pair_up(words: list[str], q_words: list[str], gap: Step | None) -> list[Step]:
    """Diff steps for a stretch of differing source and quote words (none for no stretch).

    The shorter side is paired with the stretch of the longer side it resembles most, so
    ``did not approve`` -> ``approved`` reads as "did not" left out and a changed word.
    """
    if gap is None:
        return []
    _, i1, i2, j1, j2 = gap
    n, m = i2 - i1, j2 - j1
    if n == 0 or m == 0:
        return [Step("insert" if n == 0 else "delete", i1, i2, j1, j2)]
    if n == m:
        return [Step("replace", i1, i2, j1, j2)]
    short = min(n, m)

    def fit(shift: int) -> float:
        if n > m:
            return sum(fuzz.ratio(words[i1 + shift + k], q_words[j1 + k]) for k in range(short))
        return sum(fuzz.ratio(words[i1 + k], q_words[j1 + shift + k]) for k in range(short))

    shift = max(range(abs(n - m) + 1), key=fit)
    tag = "delete" if n > m else "insert"
    si, sj = (shift, 0) if n > m else (0, shift)
    out = [Step(tag, i1, i1 + si, j1, j1 + sj)] if shift else []
    out.append(Step("replace", i1 + si, i1 + si + short, j1 + sj, j1 + sj + short))
    if shift < abs(n - m):
        out.append(Step(tag, i1 + si + short, i2, j1 + sj + short, j2))
    return out
