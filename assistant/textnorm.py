"""Text normalisation that keeps a map back to the original offsets.

The steps (see :data:`STEPS`) are NFKC, quote marks, dashes, white space and line-break
hyphenation. :data:`QUOTE_MARKS` is the one table of typographic quote marks: the quote
checker and :func:`assistant.metrics.normalize_answer` both straighten quotes with it, so the two
treat the same characters the same way.

This module imports nothing of the assistant: metrics and quotes import it, never the reverse.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

STEPS = ("nfkc", "quotes", "dashes", "whitespace", "hyphenation")
ALL_STEPS = frozenset(STEPS)

# Typographic single and double quote marks (guillemets included) -> ASCII ' and ".
QUOTE_MARKS = {c: "'" for c in "\u2018\u2019\u201a\u201b\u2032\u2039\u203a"}
QUOTE_MARKS.update({c: '"' for c in "\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb"})
QUOTE_TABLE = str.maketrans(QUOTE_MARKS)

_DASHES = frozenset("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d")
_HYPHENS = frozenset("-\u2010")
_ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff")
_COMBINING = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
# Plain ASCII runs need no work under any step; a letter followed by a combining mark goes
# to the slow path so that NFKC can compose the two.
_SCAN = re.compile(rf"(?P<plain>[\x21-\x2c\x2e-\x7e]+(?![{_COMBINING}]))|(?P<space>\s+)|(?P<other>.[{_COMBINING}]*)", re.S)


@dataclass(frozen=True)
class Normalized:
    """Normalised text; character ``i`` came from ``original[starts[i]:ends[i]]``."""

    text: str
    starts: np.ndarray
    ends: np.ndarray

    def original(self, a: int, b: int) -> tuple[int, int]:
        """Original offsets of the normalised range ``[a, b)`` (``b > a``)."""
        return int(self.starts[a]), int(self.ends[b - 1])

    def at(self, offset: int) -> int:
        """The first normalised position whose source starts at or after ``offset``."""
        return int(np.searchsorted(self.starts, offset, side="left"))

    def bounds(self, tokens: Sequence[tuple[int, int]]) -> list[int]:
        """Original start of each normalised token range, then the original end of the last.

        ``original[bounds[i]:bounds[i + 1]]`` is token ``i`` and what follows it up to the
        next token (non-empty ``tokens`` in order).
        """
        return [int(self.starts[a]) for a, _ in tokens] + [int(self.ends[tokens[-1][1] - 1])]

    def strip(self) -> Normalized:
        """The same text without leading and trailing spaces."""
        lead = len(self.text) - len(self.text.lstrip(" "))
        end = len(self.text.rstrip(" "))
        return Normalized(self.text[lead:end], self.starts[lead:end], self.ends[lead:end])


def normalize(text: str, steps: frozenset[str] = ALL_STEPS) -> Normalized:
    """``text`` with the given normalisation steps applied (see STEPS), keeping offsets.

    White space runs become one space; with ``quotes``, every mark of :data:`QUOTE_MARKS`
    becomes its ASCII quote (before NFKC, so that ``″`` is ``"`` as in the metrics, not
    ``''``); with ``dashes``, every dash variant becomes ``-`` and the spaces around a dash
    are dropped (``a — b`` == ``a--b`` == ``a–b``); with ``hyphenation``, ``exam-\\nple``
    becomes ``example`` and soft hyphens vanish.
    """
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    ws, dashes, hyph = "whitespace" in steps, "dashes" in steps, "hyphenation" in steps
    nfkc, quotes = "nfkc" in steps, "quotes" in steps

    def emit(c: str, i: int, j: int) -> None:
        if c == " " and chars and ((ws and chars[-1] == " ") or (dashes and chars[-1] == "-")):
            ends[-1] = j  # collapse a run of spaces, or absorb the space after a dash
            return
        if c == "-" and dashes and chars:
            if chars[-1] == "-":
                ends[-1] = j
                return
            if chars[-1] == " ":
                chars.pop(), ends.pop()
                i = starts.pop()
        chars.append(c), starts.append(i), ends.append(j)

    for m in _SCAN.finditer(text):
        i, j = m.span()
        kind = m.lastgroup
        if kind == "plain":
            chars.extend(m.group())
            starts.extend(range(i, j))
            ends.extend(range(i + 1, j + 1))
            continue
        if kind == "space":
            if (hyph and "\n" in m.group() and chars and chars[-1] in _HYPHENS and ends[-1] - starts[-1] == 1
                    and starts[-1] > 0 and text[starts[-1] - 1].isalpha() and j < len(text) and text[j].isalpha()):
                chars.pop(), starts.pop(), ends.pop()  # a word broken at the end of a line
                continue
            if ws:
                emit(" ", i, j)
                continue
        for k, piece in enumerate(m.group()) if kind == "space" else [(0, m.group())]:
            a, b = (i + k, i + k + 1) if kind == "space" else (i, j)
            if quotes:
                piece = piece.translate(QUOTE_TABLE)
            for c in unicodedata.normalize("NFKC", piece) if nfkc else piece:
                if (ws and c in _ZERO_WIDTH) or (hyph and c == "\u00ad"):
                    continue
                if quotes:  # NFKC may make a mark of the table (e.g. from a triple prime)
                    c = QUOTE_MARKS.get(c, c)
                if dashes and c in _DASHES:
                    c = "-"
                if ws and c.isspace():
                    c = " "
                emit(c, a, b)
    return Normalized("".join(chars), np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64))


def _fold_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def needed_normalizations(quote: str, source: str) -> tuple[str, ...]:
    """Which steps (and ``case`` of the first letter) make ``quote`` equal to ``source``.

    A step is needed when leaving it out makes the two differ; empty when they are equal.
    """
    if quote == source:
        return ()

    def same(steps: frozenset[str], fold: bool) -> bool:
        q, s = normalize(quote, steps).strip().text, normalize(source, steps).strip().text
        return _fold_first(q) == _fold_first(s) if fold else q == s

    out = [step for step in STEPS if not same(ALL_STEPS - {step}, True)]
    if not same(ALL_STEPS, False):
        out.append("case")
    if not out:  # two steps each able to do the job (e.g. NBSP): name those that change anything
        out = [s for s in STEPS if normalize(quote, frozenset({s})).text != quote
               or normalize(source, frozenset({s})).text != source]
    return tuple(out)
