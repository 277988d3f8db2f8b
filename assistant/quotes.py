"""Quote -> QuoteCheck: is the quote in the sources, exactly, where, and if not, what differs.

Four verdicts:

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
- ``paraphrase``: not a quote (no region scores at least ``altered_threshold``), but the
  sentence nearest in meaning (cosine similarity of the encoder's vectors, among the
  sentences of the retrieved candidates) reaches ``paraphrase_threshold``: that sentence is
  the one match, its ``score`` the cosine similarity. It says "closest in meaning", never
  that the words were found.
- ``absent``: neither; the nearest passages are returned in ``nearest`` as context only.

Offsets always point into the original document text: ``document.text[start:end] == text``.
Normalisation is :mod:`assistant.textnorm`, word alignment and diff :mod:`assistant.alignment`;
``normalize`` and ``needed_normalizations`` are importable from here too.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from assistant.alignment import Part, best_region, word_diff, word_spans
from assistant.config import QuoteSettings
from assistant.embedding import Encoder
from assistant.errors import InputError
from assistant.retrieval import Retriever
from assistant.store import Index
from assistant.textnorm import Normalized, needed_normalizations, normalize
from assistant.types import Citation, DiffOp, Document, Passage, QuoteCheck, QuoteMatch, Span

__all__ = ["PARAPHRASE_NOTE", "QuoteCheck", "QuoteChecker", "needed_normalizations", "normalize"]

# How a paraphrase is put to readers, by the CLI and the app alike: never as a verified quote.
PARAPHRASE_NOTE = "not a quote; closest in meaning"

_ELLIPSIS = re.compile(r"\s*(?:\[\s*(?:\.\s?){3,}\s*\]|\[\s*\u2026\s*\]|\.(?:\s?\.){2,}|\u2026)\s*")
_WORD = re.compile(r"\w+")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_OPEN_QUOTES, _CLOSE_QUOTES = "\"'\u2018\u201c\u00ab", "\"'\u2019\u201d\u00bb"


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
    """Checks quotes against every document of a loaded index, within ``limits`` (by default
    the retriever's ``Settings.quotes``; see ``QuoteSettings`` for each one)."""

    def __init__(self, index: Index, encoder: Encoder, retriever: Retriever,
                 limits: QuoteSettings | None = None) -> None:
        limits = limits or retriever.settings.quotes
        self.index = index
        self.encoder = encoder
        self.retriever = retriever
        self.min_words = limits.min_words
        self.altered_threshold = limits.altered_threshold
        self.max_gap = limits.max_gap
        self.candidates = limits.candidates
        self.max_matches = limits.max_matches
        self.max_chars = limits.max_chars
        self.paraphrase_threshold = limits.paraphrase_threshold
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
        nearest = tuple(retrieval.passages[:3])
        meaning = self._closest_in_meaning(retrieval.sentence_scores)
        if meaning is not None:
            return QuoteCheck(quote, "paraphrase", best, (meaning,), nearest, tuple(notices))
        return QuoteCheck(quote, "absent", best, (), nearest, tuple(notices))

    # -- parsing ------------------------------------------------------------------------------

    def _parse(self, text: str) -> tuple[str, list[Part], list[str]]:
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
            norm = normalize(piece).strip()
            if norm.text:
                parts.append(Part(piece, norm, word_spans(norm.text)))
        if len(parts) > 1:
            notices.append(f"the ellipsis was read as an elision: {len(parts)} parts must occur in order")
        return quote, parts, notices

    # -- verbatim -----------------------------------------------------------------------------

    def _verbatim(self, parts: list[Part]) -> list[QuoteMatch]:
        matches = []
        for doc_no, (doc, norm) in enumerate(zip(self.index.documents, self.normalized)):
            for chain in self._chains(norm.text, [p.norm.text for p in parts]):
                spans = [Span(*norm.original(a, b)) for a, b in chain]
                matches.append(self._verbatim_match(doc_no, parts, spans))
            if len(parts) == 1:  # byte-exact occurrences are found by the search above; make sure
                seen = {(m.citation.doc_id, m.citation.span.start) for m in matches}
                for start in _find_all(doc.text, parts[0].text):
                    if (doc.doc_id, start) not in seen:
                        matches.append(self._verbatim_match(doc_no, parts, [Span(start, start + len(parts[0].text))]))
        matches.sort(key=lambda m: (not m.exact, self.index.doc_numbers[m.citation.doc_id], m.citation.span.start))
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

    def _verbatim_match(self, doc_no: int, parts: list[Part], spans: list[Span]) -> QuoteMatch:
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
        sentences = self.index.sentences_in(doc_no, start, end)
        c_start, c_end = start, end
        if len(sentences):
            c_start = min(start, int(self.index.sentence_rows[sentences[0], 1]))
            c_end = max(end, int(self.index.sentence_rows[sentences[-1], 2]))
        return QuoteMatch(
            Citation.of(doc, Span(start, end)), exact=exact, score=round(score, 4), normalizations=steps, diff=diff,
            parts=tuple(spans) if len(spans) > 1 else (), context=doc.text[c_start:c_end],
            context_start=c_start, context_end=c_end,
        )

    # -- altered ------------------------------------------------------------------------------

    def _align_regions(self, parts: list[Part], passages: list[Passage]) -> list[_Aligned]:
        """Align the quote against the full text around each retrieved passage."""
        reach = sum(len(p.text) for p in parts) + 100 + (self.max_gap * (len(parts) - 1))
        windows: dict[int, list[tuple[int, int]]] = {}
        for p in passages:
            doc_no, span = self.index.doc_numbers[p.citation.doc_id], p.citation.span
            size = len(self.index.documents[doc_no].text)
            windows.setdefault(doc_no, []).append((max(0, span.start - reach), min(size, span.end + reach)))
        out = []
        for doc_no, spans in windows.items():
            spans.sort()
            merged = [spans[0]]
            for a, b in spans[1:]:
                if a <= merged[-1][1]:
                    merged[-1] = (merged[-1][0], max(merged[-1][1], b))
                else:
                    merged.append((a, b))
            for a, b in merged:
                out += self._align_window(doc_no, a, b, parts)
        return out

    def _align_window(self, doc_no: int, start: int, end: int, parts: list[Part]) -> list[_Aligned]:
        """The best alignment in ``[start, end)`` of the document, then any other close ones
        left or right of it (an altered sentence the document repeats)."""
        doc, norm = self.index.documents[doc_no], self.normalized[doc_no]
        tokens = word_spans(norm.text, norm.at(start), norm.at(end))
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
                     words: list[str], keys: list[str], lo: int, hi: int, parts: list[Part]) -> _Aligned:
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
            a, b = best_region(part.keys, keys, cursor, limit)

            bounds = norm.bounds(tokens[a:b])
            same, ops = word_diff(part, words[a:b], [doc.text[x:y] for x, y in zip(bounds, bounds[1:])])
            equal += same
            size += len(part.tokens) + (b - a)
            diff += ops
            spans.append(Span(*norm.original(tokens[a][0], tokens[b - 1][1])))
            first = a if first is None else first
            cursor = b
        return _Aligned(doc_no, spans, equal, size, diff, lo if first is None else first, cursor)

    # -- paraphrase ---------------------------------------------------------------------------

    def _closest_in_meaning(self, similarities: dict[int, float]) -> QuoteMatch | None:
        """The sentence most similar in meaning (sentence number -> cosine similarity), as a
        match scored by that similarity, when it reaches ``paraphrase_threshold``."""
        if not similarities:
            return None
        number, similarity = max(similarities.items(), key=lambda item: (item[1], -item[0]))
        if similarity < self.paraphrase_threshold:
            return None
        doc_no, start, end = (int(x) for x in self.index.sentence_rows[number])
        return self._match(self.index.documents[doc_no], doc_no, [Span(start, end)], False, similarity, (), ())

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
