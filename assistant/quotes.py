"""Quote -> QuoteCheck: is the quote in the sources, exactly, where, and if not, what differs.

Three verdicts:

- ``verbatim``: the quote occurs in a document, byte for byte or after normalisation (NFKC,
  quote marks, dashes, white space, line-break hyphenation, case of the first letter). Every
  occurrence in every document is reported. An ellipsis (``...``, ``…``, ``[...]``) is an
  elision: the parts must occur in order in one document, each gap at most ``max_gap``
  characters.
- ``altered``: no occurrence, but a close passage. Candidate regions come from the index
  (dense and keyword retrieval); the quote is then aligned with rapidfuzz against the full
  document text around each region, word by word, so quotes longer than a chunk or straddling
  chunks align in one piece. The score is the share of words that agree exactly
  (``2 * equal / (quote words + source words)``, a word that differs only in case counting
  3/4); a changed number, name or negation is one changed word, so it can never pass as
  verbatim.
- ``absent``: no region scores at least ``altered_threshold``; the nearest passages are
  returned in ``nearest`` as context only.

Offsets always point into the original document text: ``document.text[start:end] == text``.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np
from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

from assistant.embedding import Encoder
from assistant.errors import InputError
from assistant.retrieval import Retriever
from assistant.store import Index
from assistant.types import DiffOp, Document, Passage, QuoteCheck, QuoteMatch, Span, source_link

VERDICTS = ("verbatim", "altered", "absent")
STEPS = ("nfkc", "quotes", "dashes", "whitespace", "hyphenation")
ALL_STEPS = frozenset(STEPS)

_QUOTE_MAP = {c: "'" for c in "\u2018\u2019\u201a\u201b\u2032\u2039\u203a"}
_QUOTE_MAP.update({c: '"' for c in "\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb"})
_DASHES = frozenset("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d")
_HYPHENS = frozenset("-\u2010")
_ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff")
_COMBINING = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
# Plain ASCII runs need no work under any step; a letter followed by a combining mark goes
# to the slow path so that NFKC can compose the two.
_SCAN = re.compile(rf"(?P<plain>[\x21-\x2c\x2e-\x7e]+(?![{_COMBINING}]))|(?P<space>\s+)|(?P<other>.[{_COMBINING}]*)", re.S)
_ELLIPSIS = re.compile(r"\s*(?:\[\s*(?:\.\s?){3,}\s*\]|\[\s*\u2026\s*\]|\.(?:\s?\.){2,}|\u2026)\s*")
_TOKEN = re.compile(r"\d+(?:[.,:]\d+)+|\w+|[^\w\s]")  # 8.2 and 1,200 are one word
_WORD = re.compile(r"\w+")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_OPEN_QUOTES, _CLOSE_QUOTES = "\"'\u2018\u201c\u00ab", "\"'\u2019\u201d\u00bb"


# --- normalisation with a map back to original offsets ----------------------------------------


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


def normalize(text: str, steps: frozenset[str] = ALL_STEPS) -> Normalized:
    """``text`` with the given normalisation steps applied (see STEPS), keeping offsets.

    White space runs become one space; with ``dashes``, every dash variant becomes ``-`` and
    the spaces around a dash are dropped (``a — b`` == ``a--b`` == ``a–b``); with
    ``hyphenation``, ``exam-\\nple`` becomes ``example`` and soft hyphens vanish.
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
            for c in unicodedata.normalize("NFKC", piece) if nfkc else piece:
                if (ws and c in _ZERO_WIDTH) or (hyph and c == "\u00ad"):
                    continue
                if quotes:
                    c = _QUOTE_MAP.get(c, c)
                if dashes and c in _DASHES:
                    c = "-"
                if ws and c.isspace():
                    c = " "
                emit(c, a, b)
    return Normalized("".join(chars), np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64))


def _strip(norm: Normalized) -> Normalized:
    lead = len(norm.text) - len(norm.text.lstrip(" "))
    end = len(norm.text.rstrip(" "))
    return Normalized(norm.text[lead:end], norm.starts[lead:end], norm.ends[lead:end])


def _fold_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def needed_normalizations(quote: str, source: str) -> tuple[str, ...]:
    """Which steps (and ``case`` of the first letter) make ``quote`` equal to ``source``.

    A step is needed when leaving it out makes the two differ; empty when they are equal.
    """
    if quote == source:
        return ()

    def same(steps: frozenset[str], fold: bool) -> bool:
        q, s = _strip(normalize(quote, steps)).text, _strip(normalize(source, steps)).text
        return _fold_first(q) == _fold_first(s) if fold else q == s

    out = [step for step in STEPS if not same(ALL_STEPS - {step}, True)]
    if not same(ALL_STEPS, False):
        out.append("case")
    if not out:  # two steps each able to do the job (e.g. NBSP): name those that change anything
        out = [s for s in STEPS if normalize(quote, frozenset({s})).text != quote
               or normalize(source, frozenset({s})).text != source]
    return tuple(out)


# --- the checker -----------------------------------------------------------------------------


@dataclass
class _Part:
    """One elision part of the quote: its original text, normalised form and word tokens."""

    text: str
    norm: Normalized
    tokens: list[tuple[int, int]] = field(default_factory=list)

    @property
    def keys(self) -> list[str]:
        return [self.norm.text[a:b].casefold() for a, b in self.tokens]


@dataclass
class _Aligned:
    """A candidate region: token ranges per part, words agreeing exactly, and the diff."""

    doc_no: int
    spans: list[Span]
    equal: float
    size: int
    diff: list[DiffOp]
    first: int = 0  # window tokens [first, last) it covers
    last: int = 0

    @property
    def score(self) -> float:
        return 2 * self.equal / self.size if self.size else 0.0


class QuoteChecker:
    """Checks quotes against every document of a loaded index.

    ``min_words``: shorter quotes are refused; ``altered_threshold``: least word similarity
    for ``altered``; ``max_gap``: most characters between elided parts; ``candidates``:
    passages retrieved to find regions for alignment; ``max_matches``: altered spans kept.
    """

    def __init__(self, index: Index, encoder: Encoder, retriever: Retriever, *, min_words: int = 4,
                 altered_threshold: float = 0.72, max_gap: int = 1000, candidates: int = 8,
                 max_matches: int = 5, max_chars: int = 20000) -> None:
        if not 0 < altered_threshold <= 1:
            raise InputError(f"altered_threshold must be in (0, 1], got {altered_threshold!r}")
        for name, value in (("min_words", min_words), ("max_gap", max_gap), ("candidates", candidates),
                            ("max_matches", max_matches), ("max_chars", max_chars)):
            if not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a whole number of at least 1, got {value!r}")
        self.index = index
        self.encoder = encoder
        self.retriever = retriever
        self.min_words = min_words
        self.altered_threshold = altered_threshold
        self.max_gap = max_gap
        self.candidates = candidates
        self.max_matches = max_matches
        self.max_chars = max_chars
        self._numbers = {doc.doc_id: i for i, doc in enumerate(index.documents)}
        self._normalized: list[Normalized] | None = None

    @property
    def normalized(self) -> list[Normalized]:
        """Each document's normalised text, computed once on first use."""
        if self._normalized is None:
            self._normalized = [normalize(doc.text) for doc in self.index.documents]
        return self._normalized

    def check(self, text: str) -> QuoteCheck:
        """The verdict on ``text``. Raises InputError for a quote too short or too long to check."""
        quote, parts, notices = self._parse(text)
        found = self._verbatim(parts)
        if found:
            return QuoteCheck(quote, "verbatim", 1.0, tuple(found), (), tuple(notices))
        joined = " ".join(p.text for p in parts)
        vector = self.encoder.encode([joined])[0]
        retrieval = self.retriever.retrieve(joined, k=self.candidates, vector=vector)
        aligned = [a for a in self._align_regions(parts, retrieval.passages) if a.equal]
        aligned.sort(key=lambda a: (-a.score, a.doc_no, a.spans[0].start))
        best = round(aligned[0].score, 4) if aligned else 0.0
        close = [a for a in aligned if a.score >= self.altered_threshold][: self.max_matches]
        if close:
            matches = tuple(self._altered_match(a) for a in close)
            return QuoteCheck(quote, "altered", best, matches, (), tuple(notices))
        return QuoteCheck(quote, "absent", best, (), tuple(retrieval.passages[:3]), tuple(notices))

    # -- parsing ------------------------------------------------------------------------------

    def _parse(self, text: str) -> tuple[str, list[_Part], list[str]]:
        if not isinstance(text, str):
            raise InputError(f"the quote must be text, got {type(text).__name__}")
        quote = text.strip()
        notices = []
        if len(quote) > self.max_chars:
            raise InputError(f"the quote is {len(quote)} characters long; check at most {self.max_chars} at a time")
        # Control characters other than white space are paste debris: they become spaces. A
        # lone surrogate (JSON allows one) would break the tokenizer: it becomes U+FFFD.
        quote = _SURROGATE.sub("\ufffd", _CONTROL.sub(" ", quote)).strip()
        if len(quote) >= 2 and quote[0] in _OPEN_QUOTES and quote[-1] in _CLOSE_QUOTES:
            quote = quote[1:-1].strip()
            notices.append("the quotation marks around the quote were left out of the check")
        words = len(_WORD.findall(quote))
        if words < self.min_words:
            raise InputError(
                f"the quote has {words} word(s); quotes of fewer than {self.min_words} words occur in "
                f"too many places to verify meaningfully. Give the whole sentence or a longer phrase"
            )
        pieces = [p.strip() for p in _ELLIPSIS.split(quote)]
        parts = []
        for piece in pieces:
            norm = _strip(normalize(piece))
            if norm.text:
                tokens = [m.span() for m in _TOKEN.finditer(norm.text)]
                parts.append(_Part(piece, norm, tokens))
        if len(parts) > 1:
            notices.append(f"the ellipsis was read as an elision: {len(parts)} parts must occur in order")
        return quote, parts, notices

    # -- verbatim -----------------------------------------------------------------------------

    def _verbatim(self, parts: list[_Part]) -> list[QuoteMatch]:
        matches = []
        for doc_no, (doc, norm) in enumerate(zip(self.index.documents, self.normalized)):
            for chain in self._chains(norm.text, [p.norm.text for p in parts]):
                spans = [Span(*norm.original(a, b)) for a, b in chain]
                matches.append(self._verbatim_match(doc_no, parts, spans))
            if len(parts) == 1:  # byte-exact occurrences are found by the search above; make sure
                seen = {(m.doc_id, m.start) for m in matches}
                for start in _find_all(doc.text, parts[0].text):
                    if (doc.doc_id, start) not in seen:
                        matches.append(self._verbatim_match(doc_no, parts, [Span(start, start + len(parts[0].text))]))
        matches.sort(key=lambda m: (not m.exact, self._numbers[m.doc_id], m.start))
        return matches

    def _chains(self, hay: str, needles: list[str]) -> list[list[tuple[int, int]]]:
        """Normalised ranges of each occurrence of the needles in order, gaps at most max_gap."""
        hits = [_occurrences(hay, needle) for needle in needles]
        chains = []
        for first in hits[0]:
            chain = [(first, first + len(needles[0]))]
            for needle, positions in zip(needles[1:], hits[1:]):
                end = chain[-1][1]
                nxt = next((p for p in positions if p >= end), None)
                if nxt is None or nxt - end > self.max_gap:
                    break
                chain.append((nxt, nxt + len(needle)))
            else:
                chains.append(chain)
        return chains

    def _verbatim_match(self, doc_no: int, parts: list[_Part], spans: list[Span]) -> QuoteMatch:
        doc = self.index.documents[doc_no]
        sources = [doc.text[s.start : s.end] for s in spans]
        steps: list[str] = []
        for part, source in zip(parts, sources):
            steps += [s for s in needed_normalizations(part.text, source) if s not in steps]
        exact = all(p.text == s for p, s in zip(parts, sources))
        return self._match(doc, doc_no, spans, exact, 1.0, tuple(steps), ())

    def _match(self, doc: Document, doc_no: int, spans: list[Span], exact: bool, score: float,
               steps: tuple[str, ...], diff: tuple[DiffOp, ...]) -> QuoteMatch:
        start, end = spans[0].start, spans[-1].end
        sentences = self.retriever.sentences_in(doc_no, start, end)
        c_start, c_end = start, end
        if len(sentences):
            c_start = min(start, int(self.index.sentence_rows[sentences[0], 1]))
            c_end = max(end, int(self.index.sentence_rows[sentences[-1], 2]))
        match = QuoteMatch(
            doc_id=doc.doc_id, title=doc.metadata.title, source=doc.source, start=start, end=end,
            text=doc.text[start:end], exact=exact, score=round(score, 4), normalizations=steps, diff=diff,
            parts=tuple(spans) if len(spans) > 1 else (), context=doc.text[c_start:c_end],
            context_start=c_start, context_end=c_end, page=doc.page_at(start),
            link=source_link(doc.doc_id, start, end),
        )
        assert doc.text[match.start : match.end] == match.text
        return match

    # -- altered ------------------------------------------------------------------------------

    def _align_regions(self, parts: list[_Part], passages: list[Passage]) -> list[_Aligned]:
        """Align the quote against the full text around each retrieved passage."""
        reach = sum(len(p.text) for p in parts) + 100 + (self.max_gap * (len(parts) - 1))
        windows: dict[int, list[list[int]]] = {}
        for p in passages:
            doc_no = self._numbers[p.doc_id]
            size = len(self.index.documents[doc_no].text)
            windows.setdefault(doc_no, []).append([max(0, p.start - reach), min(size, p.end + reach)])
        out = []
        for doc_no, spans in windows.items():
            spans.sort()
            merged = [spans[0]]
            for a, b in spans[1:]:
                if a <= merged[-1][1]:
                    merged[-1][1] = max(merged[-1][1], b)
                else:
                    merged.append([a, b])
            for a, b in merged:
                out += self._align_window(doc_no, a, b, parts)
        return out

    def _align_window(self, doc_no: int, start: int, end: int, parts: list[_Part]) -> list[_Aligned]:
        """The best alignment in ``[start, end)`` of the document, then any other close ones
        left or right of it (an altered sentence the document repeats)."""
        doc, norm = self.index.documents[doc_no], self.normalized[doc_no]
        tokens = [m.span() for m in _TOKEN.finditer(norm.text, norm.at(start), norm.at(end))]
        words = [norm.text[a:b] for a, b in tokens]
        keys = [w.casefold() for w in words]
        least = max(1, sum(len(p.tokens) for p in parts) // 2)
        found: list[_Aligned] = []
        pending = [(0, len(keys))]
        while pending and len(found) < self.max_matches:
            lo, hi = pending.pop()
            if hi - lo < least:
                continue
            aligned = self._align_range(doc, doc_no, norm, tokens, words, keys, lo, hi, parts)
            found.append(aligned)
            if aligned.score >= self.altered_threshold:
                pending += [(lo, aligned.first), (aligned.last, hi)]
        return found

    def _align_range(self, doc: Document, doc_no: int, norm: Normalized, tokens: list[tuple[int, int]],
                     words: list[str], keys: list[str], lo: int, hi: int, parts: list[_Part]) -> _Aligned:
        """Align the parts in order within window tokens ``[lo, hi)``."""
        spans: list[Span] = []
        diff: list[DiffOp] = []
        equal, size = 0.0, 0
        cursor, first = lo, None
        for part in parts:
            if cursor >= hi:
                size += len(part.tokens)
                continue
            limit = hi
            if first is not None:  # elided parts lie close together
                reach = tokens[cursor - 1][1] + self.max_gap + len(part.norm.text)
                limit = max(cursor + 1, min(hi, bisect.bisect_left(tokens, (reach, reach), cursor, hi)))
            a, b = _best_region(part.keys, keys, cursor, limit)

            region = tokens[a:b]
            bounds = [int(norm.starts[t[0]]) for t in region] + [int(norm.ends[region[-1][1] - 1])]
            same, ops = _diff(part, words[a:b], [doc.text[x:y] for x, y in zip(bounds, bounds[1:])])
            equal += same
            size += len(part.tokens) + (b - a)
            diff += ops
            spans.append(Span(*norm.original(tokens[a][0], tokens[b - 1][1])))
            first = a if first is None else first
            cursor = b
        return _Aligned(doc_no, spans, equal, size, diff, lo if first is None else first, cursor)

    def _altered_match(self, aligned: _Aligned) -> QuoteMatch:
        doc = self.index.documents[aligned.doc_no]
        return self._match(doc, aligned.doc_no, aligned.spans, False, aligned.score, (), tuple(aligned.diff))


def _word(c: str) -> bool:
    return c.isalnum() or c == "_"


def _find_all(hay: str, needle: str) -> list[int]:
    """Every start of ``needle`` in ``hay`` that does not cut a word ("he said" is not in "she said")."""
    out, i = [], hay.find(needle)
    while i >= 0:
        j = i + len(needle)
        if not (i > 0 and _word(hay[i - 1]) and _word(hay[i])) and not (
                j < len(hay) and _word(hay[j]) and _word(hay[j - 1])):
            out.append(i)
        i = hay.find(needle, i + 1)
    return out


def _occurrences(hay: str, needle: str) -> list[int]:
    """Start of every whole-word occurrence of ``needle``, its first letter in either case."""
    hits = _find_all(hay, needle)
    swapped = needle[:1].swapcase() + needle[1:]
    if swapped != needle:
        hits = sorted(set(hits) | set(_find_all(hay, swapped)))
    return hits


def _best_region(query: list[str], keys: list[str], lo: int, hi: int) -> tuple[int, int]:
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


def _diff(part: _Part, words: list[str], pieces: list[str]) -> tuple[float, list[DiffOp]]:
    """Agreeing words (first word: any case) and the word diff of source ``words`` to the part.

    ``pieces[i]`` is the original source text from word ``i`` up to word ``i + 1``. Each op's
    texts run up to the next op's, so joining the ops' ``source`` (``quote``) texts gives
    back the source span (the quote part) character for character.
    """
    q_words = [part.norm.text[a:b] for a, b in part.tokens]
    steps: list[list] = []  # [op, src_from, src_to, quote_from, quote_to]
    run = [0, 0, 0, 0]  # a stretch of source and quote words between equal ones
    for op in Levenshtein.opcodes([w.casefold() for w in words], [w.casefold() for w in q_words]):
        if op.tag != "equal":
            if run[1] == run[0] and run[3] == run[2]:
                run = [op.src_start, op.src_start, op.dest_start, op.dest_start]
            run[1], run[3] = op.src_end, op.dest_end
            continue
        steps += _pair_up(words, q_words, *run)
        run = [0, 0, 0, 0]
        for k in range(op.src_end - op.src_start):
            i, j = op.src_start + k, op.dest_start + k
            same = words[i] == q_words[j] or (j == 0 and words[i].casefold() == q_words[j].casefold())
            steps.append(["equal" if same else "replace", i, i + 1, j, j + 1])
    steps += _pair_up(words, q_words, *run)
    merged: list[list] = []
    for step in steps:
        if merged and merged[-1][0] == step[0]:
            merged[-1][2], merged[-1][4] = step[2], step[4]
        else:
            merged.append(list(step))
    # a word changed only in case still counts three quarters (an all-capitals quote is close)
    case_only = sum(1 for s in steps if s[0] == "replace" and s[2] - s[1] == 1 == s[4] - s[3]
                    and words[s[1]].casefold() == q_words[s[3]].casefold())
    equal = sum(s[2] - s[1] for s in merged if s[0] == "equal") + 0.75 * case_only
    q_norm = part.norm
    q_bounds = [int(q_norm.starts[a]) for a, _ in part.tokens] + [int(q_norm.ends[part.tokens[-1][1] - 1])]
    ops = [DiffOp(tag, part.text[q_bounds[j1] : q_bounds[j2]], "".join(pieces[i1:i2]))
           for tag, i1, i2, j1, j2 in merged]
    return equal, ops


def _pair_up(words: list[str], q_words: list[str], i1: int, i2: int, j1: int, j2: int) -> list[list]:
    """Diff steps for differing source ``words[i1:i2]`` and quote ``q_words[j1:j2]``.

    The shorter side is paired with the stretch of the longer side it resembles most, so
    ``did not approve`` -> ``approved`` reads as "did not" left out and a changed word.
    """
    n, m = i2 - i1, j2 - j1
    if n == 0 and m == 0:
        return []
    if n == 0 or m == 0:
        return [["insert" if n == 0 else "delete", i1, i2, j1, j2]]
    if n == m:
        return [["replace", i1, i2, j1, j2]]
    short = min(n, m)

    def fit(shift: int) -> float:
        if n > m:
            return sum(fuzz.ratio(words[i1 + shift + k], q_words[j1 + k]) for k in range(short))
        return sum(fuzz.ratio(words[i1 + k], q_words[j1 + shift + k]) for k in range(short))

    shift = max(range(abs(n - m) + 1), key=fit)
    tag = "delete" if n > m else "insert"
    si, sj = (shift, 0) if n > m else (0, shift)
    out = [[tag, i1, i1 + si, j1, j1 + sj]] if shift else []
    out.append(["replace", i1 + si, i1 + si + short, j1 + sj, j1 + sj + short])
    if shift < abs(n - m):
        out.append([tag, i1 + si + short, i2, j1 + sj + short, j2])
    return out
